"""A job's scalars into a pandas DataFrame, against what users pick today (``make bench``).

200 runs x 5,000 points: ``jupyter_forgather_tb.scalars()`` from a job that has
already read the runs (warm) and from nothing (cold: the job's launch included),
against tbparse's ``SummaryReader(...).scalars`` and TensorBoard's own
``EventAccumulator`` (one per run, every point kept), in the same run.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from harness import TOKEN, Jupyter

RUNS = 200
POINTS = 5000


def write_big_logdir(top: Path, runs: int = RUNS) -> None:
    """``runs`` runs of POINTS points: one real event file, copied into each run."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    first = top / "run000"
    writer = EventFileWriter(str(first))
    for step in range(POINTS):
        value = summary_pb2.Summary.Value(tag="loss", simple_value=1.0 / (step + 1))
        summary = summary_pb2.Summary(value=[value])
        writer.add_event(event_pb2.Event(wall_time=time.time(), step=step, summary=summary))
    writer.close()
    (event_file,) = first.iterdir()
    for index in range(1, runs):
        run = top / f"run{index:03}"
        run.mkdir()
        shutil.copy(event_file, run / event_file.name)


def with_tbparse(logdir: Path):
    """tbparse's long DataFrame of every scalar."""
    from tbparse import SummaryReader

    return SummaryReader(str(logdir), extra_columns={"wall_time"}).scalars


def with_event_accumulator(logdir: Path):
    """TensorBoard's EventAccumulator per run, every point kept, into one DataFrame."""
    import pandas as pd
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    rows = []
    for run in sorted(p for p in logdir.iterdir() if p.is_dir()):
        accumulator = EventAccumulator(str(run), size_guidance={"scalars": 0})
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            rows += [
                (run.name, tag, e.step, e.wall_time, e.value) for e in accumulator.Scalars(tag)
            ]
    return pd.DataFrame(rows, columns=["run", "tag", "step", "wall_time", "value"])


def timed(function, *args, **kwargs) -> tuple[float, int]:
    """Seconds one call took, and the rows of the DataFrame it returned."""
    start = time.perf_counter()
    frame = function(*args, **kwargs)
    return time.perf_counter() - start, len(frame)


def run(args, root: Path, runtime: Path, results: dict) -> None:
    """Measure the export part."""
    import jupyter_forgather_tb

    logdir = root / "export"
    write_big_logdir(logdir, args.export_runs)
    server = Jupyter(root, runtime / "export", extension=True)
    found = {"server": server.url, "token": TOKEN}
    try:
        cold, cold_rows = timed(jupyter_forgather_tb.scalars, "export", **found)
        (job,) = [j for j in server.api("GET", "jobs") if j["status"] == "running"]
        warm = [timed(jupyter_forgather_tb.scalars, job["id"], **found) for _ in range(2)]
    finally:
        server.stop()
    tbparse, tbparse_rows = timed(with_tbparse, logdir)
    accumulator, accumulator_rows = timed(with_event_accumulator, logdir)
    results["export_dataframe_s"] = {
        "runs": args.export_runs,
        "points": args.export_runs * POINTS,
        "ours_warm": min(seconds for seconds, _ in warm),
        "ours_cold": cold,
        "tbparse": tbparse,
        "event_accumulator": accumulator,
        "rows": {
            "ours_warm": warm[-1][1],
            "ours_cold": cold_rows,
            "tbparse": tbparse_rows,
            "event_accumulator": accumulator_rows,
        },
    }


def print_ratios(r: dict) -> None:
    """The headline figures of this part."""
    if "export_dataframe_s" not in r:
        return
    e = r["export_dataframe_s"]
    best = min(e["tbparse"], e["event_accumulator"])
    runs = e.get("runs", RUNS)
    print(
        f"  DataFrame of {runs} runs x {POINTS} points: ours warm {e['ours_warm']:.2f} s, "
        f"cold {e['ours_cold']:.2f} s (launch included); tbparse {e['tbparse']:.2f} s, "
        f"EventAccumulator {e['event_accumulator']:.2f} s: warm {best / e['ours_warm']:.1f}x, "
        f"cold {best / e['ours_cold']:.1f}x faster than the faster of the two "
        f"(rows: {e['rows']})"
    )
