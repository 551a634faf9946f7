"""The static picture of a job's main scalars that a notebook keeps when TensorBoard is gone."""

from __future__ import annotations

import asyncio
import datetime
import math
import xml.etree.ElementTree as ET

import nbformat
from conftest import write_scalars
from nbconvert import HTMLExporter
from test_magic import magic, shell  # noqa: F401 (a fixture)

from jupyter_forgather_tb.clients.snapshot import (
    MAX_CHARTS,
    caption_text,
    main_tags,
    snapshot_svg,
    thin,
)

SVG = "{http://www.w3.org/2000/svg}"


def test_the_picture_has_a_chart_per_tag_a_line_per_run_and_the_caption():
    curves = {
        "train/loss": {"a": [(0, 1.0), (1, 0.5), (2, 0.25)], "b<&>": [(0, 2.0), (1, 1.0)]},
        "accuracy": {"a": [(0, 0.1), (5, 0.9)]},
    }
    svg = snapshot_svg(curves, "Scalars of runs/ at 2026-12-07 22:00 UTC")
    root = ET.fromstring(svg)  # well-formed, names escaped
    texts = [element.text for element in root.iter(f"{SVG}text")]
    assert "train/loss" in texts and "accuracy" in texts
    assert "b<&>" in texts  # in the legend, escaped in the markup
    assert "Scalars of runs/ at 2026-12-07 22:00 UTC" in texts
    assert len(list(root.iter(f"{SVG}polyline"))) == 3


def test_values_that_are_not_finite_leave_a_gap_and_a_lone_point_is_a_dot():
    svg = snapshot_svg({"loss": {"a": [(0, 1.0), (1, 0.5), (2, math.nan), (3, 0.2)]}}, "c")
    root = ET.fromstring(svg)
    assert len(list(root.iter(f"{SVG}polyline"))) == 1
    assert len(list(root.iter(f"{SVG}circle"))) == 1


def test_a_job_without_scalars_says_so():
    root = ET.fromstring(snapshot_svg({}, "c"))
    assert "no scalars yet" in [element.text for element in root.iter(f"{SVG}text")]


def test_loss_tags_come_first_and_charts_and_runs_are_bounded():
    index = {f"run{i}": {f"t{j}": {} for j in range(10)} | {"val/loss": {}} for i in range(20)}
    tags, runs = main_tags(index)
    assert tags[0] == "val/loss" and len(tags) == MAX_CHARTS
    assert runs == sorted(runs) and len(runs) == 8


def test_thinning_keeps_the_first_and_last_points():
    points = [(step, float(step)) for step in range(1000)]
    kept = thin(points, 10)
    assert len(kept) == 10 and kept[0] == (0, 0.0) and kept[-1] == (999, 999.0)


def test_the_caption_names_the_log_directories_and_the_time():
    now = datetime.datetime(2026, 12, 7, 22, 5, tzinfo=datetime.UTC)
    job = {"id": "j", "label": "runs", "options": {"logdir": "/data/runs", "logdirs": None}}
    assert (
        caption_text(job, now) == "Scalars of /data/runs at 2026-12-07 22:05 UTC (TensorBoard runs)"
    )
    compare = {"id": "j", "label": "c", "options": {"logdir": "", "logdirs": {"A": "/x"}}}
    assert caption_text(compare, now).startswith("Scalars of A: /x at")


def notebook_html(outputs) -> str:
    """The HTML nbconvert makes of a notebook holding one cell with these outputs."""
    cell = nbformat.v4.new_code_cell("%forgather_tb --logdir curves")
    cell.outputs = [
        nbformat.v4.new_output("display_data", data=dict(output.data)) for output in outputs
    ]
    notebook = nbformat.v4.new_notebook(cells=[cell])
    body, _ = HTMLExporter().from_notebook_node(notebook)
    return body


async def test_the_magics_output_keeps_a_picture_that_nbconvert_shows(
    shell,  # noqa: F811
    api,
    jp_root_dir,
    monkeypatch,
):
    write_scalars(jp_root_dir / "curves" / "a", "train/loss", [1.0, 0.5, 0.25])
    write_scalars(jp_root_dir / "curves" / "b", "accuracy", [0.1, 0.2])
    monkeypatch.chdir(jp_root_dir)
    captured = await magic(shell, "--logdir curves")
    last = captured.outputs[-1].data
    assert "<iframe" in last["text/html"]  # the live view
    assert "<svg" in last["text/html"] and last["image/svg+xml"].startswith("<svg")
    body = notebook_html(captured.outputs)
    start = body.index("<svg")
    picture = body[start : body.index("</svg>", start)]
    assert "train/loss" in picture and "accuracy" in picture
    assert "curves" in picture  # the caption names the log directory
    (job,) = await api.json("GET", "jobs")
    alone = await magic(shell, f"snapshot {job['id']}")
    assert "train/loss" in alone.outputs[-1].data["image/svg+xml"]
    assert "text/html" not in alone.outputs[-1].data
    frame = await asyncio.get_running_loop().run_in_executor(
        None, shell.run_line_magic, "forgather_tb", f"scalars {job['id']}"
    )
    assert sorted(set(zip(frame["run"], frame["tag"], strict=True))) == [
        ("a", "train/loss"),
        ("b", "accuracy"),
    ]
    assert list(frame["step"]) == [0, 1, 2, 0, 1]
    await api.kill(job["id"])
    ended = await magic(shell, f"snapshot {job['id']}")
    assert "only a running job" in ended.stderr
