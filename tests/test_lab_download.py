"""Download a running job's scalars from its card in the JupyterLab sidebar (headless Chromium)."""

from __future__ import annotations

import csv
import io
import time

import pyarrow.parquet as pq
from test_lab_ui import (  # noqa: F401 (fixtures)
    browser,
    job_item,
    jp_asyncio_loop,
    jp_server_cleanup,
    lab,
    open_sidebar,
    page,
)


def test_a_running_jobs_card_downloads_its_scalars_as_csv_and_parquet(lab, page):  # noqa: F811
    open_sidebar(page)
    job = lab.call("POST", "jobs", {"logdir": "logs"})
    job = lab.wait_status(job["id"], "running")
    deadline = time.monotonic() + 60
    while len(lab.call("GET", f"jobs/{job['id']}/preview")["runs"]) < 2:
        assert time.monotonic() < deadline, "TensorBoard did not read both runs"
        time.sleep(0.2)  # TensorBoard reads the runs after it first answers
    item = job_item(page, job["id"])
    with page.expect_download() as download:
        item.get_by_role("link", name="Download CSV").click()
    assert download.value.suggested_filename == f"{job['id']}-scalars.csv"
    with open(download.value.path(), encoding="utf-8") as saved:
        rows = list(csv.reader(saved))
    assert rows[0] == ["run", "tag", "step", "wall_time", "value"]
    assert [(run, tag, step) for run, tag, step, _, _ in rows[1:]] == [
        *(("run1", "loss", str(step)) for step in range(5)),
        *(("run2", "loss", str(step)) for step in range(3)),
    ]
    with page.expect_download() as download:
        item.get_by_role("link", name="Download Parquet").click()
    with open(download.value.path(), "rb") as saved:
        table = pq.read_table(io.BytesIO(saved.read()))
    assert table.column("value").to_pylist()[:2] == [1.0, 0.6000000238418579]
