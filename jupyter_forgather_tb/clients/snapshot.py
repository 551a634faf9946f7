"""A static picture of a job's main scalars, so a notebook still shows them without TensorBoard.

The magic puts it in the same output as the live view: an inline ``<svg>`` under the
TensorBoard frame in the HTML (what JupyterLab, Notebook and nbconvert's HTML show,
and what stays readable once the frame can no longer load), and the same SVG as
``image/svg+xml`` for frontends that do not render HTML. Not layered under the
frame: a frame that cannot load shows the browser's opaque error page, which would
hide it.
"""

from __future__ import annotations

import datetime
import html
import io
import json
import math
from collections.abc import Sequence
from typing import Any

from .client import Client, ClientError
from .scalars import tag_index, wait_loaded, write_export

#: Charts in a snapshot at most (tags whose name has ``loss`` first, then by name).
MAX_CHARTS = 6
#: Runs drawn in each chart at most (the first by name).
MAX_LINES = 8
#: Points drawn per run at most (evenly spread, the last kept).
MAX_POINTS = 200
#: Seconds the magic waits for a job just started to read its runs before its snapshot.
SNAPSHOT_WAIT = 5.0
COLUMNS = 3
CHART_WIDTH, CHART_HEIGHT = 260, 150
MARGIN = 34
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")

#: ``{tag: {run: [(step, value), ...]}}``
Curves = dict[str, dict[str, list[tuple[int, float]]]]


def main_tags(index: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The tags and runs a snapshot draws, from TensorBoard's ``{run: {tag: ...}}``."""
    tags = sorted({tag for run_tags in index.values() for tag in run_tags})
    tags.sort(key=lambda tag: "loss" not in tag.lower())
    chosen = tags[:MAX_CHARTS]
    runs = sorted(run for run, run_tags in index.items() if any(t in run_tags for t in chosen))
    return chosen, runs[:MAX_LINES]


def thin(points: Sequence[tuple[int, float]], limit: int = MAX_POINTS) -> list[tuple[int, float]]:
    """At most ``limit`` of ``points``, evenly spread; the first and last kept."""
    if len(points) <= limit:
        return list(points)
    return [points[round(i * (len(points) - 1) / (limit - 1))] for i in range(limit)]


def _label(number: float) -> str:
    return f"{number:.4g}"


def _chart(tag: str, lines: dict[str, list[tuple[int, float]]], colours: dict[str, str]) -> str:
    """One chart's SVG group, drawn in a box of CHART_WIDTH x CHART_HEIGHT at the origin."""
    finite = [(s, v) for points in lines.values() for s, v in points if math.isfinite(v)]
    parts = [
        f'<rect width="{CHART_WIDTH - 10}" height="{CHART_HEIGHT - 10}" fill="none" '
        'stroke="#ccc"/>',
        f'<text x="6" y="14" font-weight="bold">{html.escape(tag)}</text>',
    ]
    if not finite:
        parts.append('<text x="6" y="40" fill="#666">no finite values</text>')
        return "".join(parts)
    steps = [s for s, _ in finite]
    values = [v for _, v in finite]
    x0, x1 = min(steps), max(steps)
    y0, y1 = min(values), max(values)
    width, height = CHART_WIDTH - 10 - MARGIN - 6, CHART_HEIGHT - 10 - 22 - 18

    def x(step: int) -> float:
        return MARGIN + (width * (step - x0) / (x1 - x0) if x1 > x0 else width / 2)

    def y(value: float) -> float:
        return 22 + (height * (y1 - value) / (y1 - y0) if y1 > y0 else height / 2)

    parts += [
        f'<text x="{MARGIN - 3}" y="26" text-anchor="end" fill="#666">{_label(y1)}</text>',
        f'<text x="{MARGIN - 3}" y="{22 + height}" text-anchor="end" fill="#666">'
        f"{_label(y0)}</text>",
        f'<text x="{MARGIN}" y="{CHART_HEIGHT - 14}" fill="#666">{x0}</text>',
        f'<text x="{MARGIN + width}" y="{CHART_HEIGHT - 14}" text-anchor="end" fill="#666">'
        f"{x1}</text>",
    ]
    for run, points in lines.items():
        segments: list[list[str]] = [[]]
        for step, value in points:
            if math.isfinite(value):
                segments[-1].append(f"{x(step):.1f},{y(value):.1f}")
            elif segments[-1]:
                segments.append([])  # a gap where the value is not finite
        for segment in segments:
            if len(segment) == 1:
                cx, cy = segment[0].split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="2" fill="{colours[run]}"/>')
            elif segment:
                parts.append(
                    f'<polyline fill="none" stroke="{colours[run]}" stroke-width="1.5" '
                    f'points="{" ".join(segment)}"><title>{html.escape(run)}</title></polyline>'
                )
    return "".join(parts)


def snapshot_svg(curves: Curves, caption: str) -> str:
    """The SVG of ``curves``: one small chart per tag, runs as coloured lines, a legend
    and ``caption`` under them."""
    runs = sorted({run for lines in curves.values() for run in lines})
    colours = {run: PALETTE[i % len(PALETTE)] for i, run in enumerate(runs)}
    rows = max(1, math.ceil(len(curves) / COLUMNS))
    width = CHART_WIDTH * min(COLUMNS, max(1, len(curves)))
    legend_top = rows * CHART_HEIGHT + 4
    total = legend_top + 18 * len(runs) + 24
    body = []
    for number, tag in enumerate(curves):
        left, top = (number % COLUMNS) * CHART_WIDTH, (number // COLUMNS) * CHART_HEIGHT
        body.append(
            f'<g transform="translate({left},{top})">'
            f"{_chart(tag, {r: thin(p) for r, p in curves[tag].items()}, colours)}</g>"
        )
    if not curves:
        body.append('<text x="6" y="40" fill="#666">no scalars yet</text>')
    for number, run in enumerate(runs):
        top = legend_top + 18 * number
        body.append(
            f'<rect x="4" y="{top + 4}" width="14" height="4" fill="{colours[run]}"/>'
            f'<text x="24" y="{top + 11}">{html.escape(run)}</text>'
        )
    body.append(f'<text x="4" y="{total - 8}" fill="#666">{html.escape(caption)}</text>')
    width = max(width, 8 * len(caption) + 8)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{total}" '
        f'viewBox="0 0 {width} {total}" font-family="sans-serif" font-size="11" '
        f'role="img"><title>{html.escape(caption)}</title>{"".join(body)}</svg>'
    )


def caption_text(job: dict[str, Any], now: datetime.datetime | None = None) -> str:
    """``Scalars of <logdir> at <time UTC> (TensorBoard <label>)``."""
    when = (now or datetime.datetime.now(datetime.UTC)).strftime("%Y-%m-%d %H:%M UTC")
    options = job.get("options") or {}
    logdirs = options.get("logdirs")
    where = (
        ", ".join(f"{name}: {path}" for name, path in logdirs.items())
        if isinstance(logdirs, dict)
        else options.get("logdir", "")
    )
    return f"Scalars of {where} at {when} (TensorBoard {job.get('label', job.get('id'))})"


def job_curves(client: Client, job: dict[str, Any]) -> Curves:
    """The main tags' curves of a running job, read through the server's export."""
    if job["status"] != "running":
        raise ClientError(
            f"TensorBoard job {job['id']} is {job['status']}: only a running job's scalars "
            "can be drawn"
        )
    tags, runs = main_tags(tag_index(client, job))
    if not tags:
        return {}
    body = io.BytesIO()
    write_export(client, job["id"], "json", body, runs, tags)
    curves: Curves = {tag: {} for tag in tags}
    for series in json.loads(body.getvalue()):
        values = [float(v) for v in series["value"]]
        curves[series["tag"]][series["run"]] = list(zip(series["step"], values, strict=True))
    return curves


def job_snapshot(client: Client, job: dict[str, Any]) -> str:
    """The snapshot SVG of a running job, now."""
    return snapshot_svg(job_curves(client, job), caption_text(job))


def snapshot_bundle(svg: str, caption: str) -> dict[str, str]:
    """A display bundle of the picture alone."""
    return {"image/svg+xml": svg, "text/plain": caption}


def with_snapshot(bundle: dict[str, str], svg: str) -> dict[str, str]:
    """The live view's bundle with the picture under its HTML, and as SVG for the rest."""
    figure = (
        '<figure style="margin:0.5em 0 0 0">'
        f"{svg}<figcaption>Snapshot for when TensorBoard is not reachable</figcaption></figure>"
    )
    return {**bundle, "text/html": bundle["text/html"] + figure, "image/svg+xml": svg}


def add_snapshot(handle: Any, bundle: dict[str, str], client: Client, job: dict[str, Any]) -> None:
    """Update a shown live view with the job's snapshot, once its TensorBoard has read its
    runs (a few seconds at most); left as it is when the snapshot cannot be made."""
    try:
        wait_loaded(client, job, timeout=SNAPSHOT_WAIT)
        svg = job_snapshot(client, job)
    except (ClientError, ValueError, KeyError, TypeError):
        return
    handle.update(with_snapshot(bundle, svg), raw=True)
