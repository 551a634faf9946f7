"""Write a small demo TensorBoard log directory: four training runs of scalar curves.

Usage: python examples/make_demo_logdir.py DIR

Each run is one learning rate (lr=0.1, 0.03, 0.01, 0.003) with three scalar tags over
200 steps: train/loss, train/accuracy and learning_rate (halved every 80 steps). Higher
learning rates learn faster but level off higher and noisier, as real runs tend to.

The event files are written with tensorboard's own writer, so TensorBoard reads them
exactly as it reads a real training run's. Only the standard library and tensorboard
are needed. If DIR already holds event files it is left alone, so this is safe to run
again (``make lab`` runs it every time).
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from pathlib import Path

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter

RUNS = {"lr=0.1": 0.1, "lr=0.03": 0.03, "lr=0.01": 0.01, "lr=0.003": 0.003}
STEPS = 200
SECONDS_PER_STEP = 30  # wall times are spread as if each run took 100 minutes
INITIAL_LOSS = 2.3  # about log(10): a 10-class classifier at chance


def _scalar(tag: str, value: float) -> summary_pb2.Summary.Value:
    return summary_pb2.Summary.Value(tag=tag, simple_value=value)


def write_run(run_dir: Path, learning_rate: float, seed: int) -> float:
    """Write one run of STEPS steps; returns its final loss."""
    rng = random.Random(seed)
    rate = 0.35 * learning_rate  # fraction of the remaining loss learned per step
    floor = 0.05 + 2.0 * learning_rate  # a high learning rate settles higher
    noise = 0.01 + 0.4 * learning_rate  # ... and bounces around more
    start = time.time() - STEPS * SECONDS_PER_STEP
    writer = EventFileWriter(str(run_dir))
    loss = INITIAL_LOSS
    try:
        for step in range(STEPS):
            progress = 1 - math.exp(-rate * step)
            loss = max(0.01, floor + (INITIAL_LOSS - floor) * (1 - progress) + rng.gauss(0, noise))
            best = 0.97 - floor / 2  # the accuracy this run would level off at
            accuracy = 0.1 + (best - 0.1) * progress + rng.gauss(0, noise / 4)
            accuracy = min(1.0, max(0.0, accuracy))
            values = [
                _scalar("train/loss", loss),
                _scalar("train/accuracy", accuracy),
                _scalar("learning_rate", learning_rate * 0.5 ** (step // 80)),
            ]
            writer.add_event(
                event_pb2.Event(
                    wall_time=start + step * SECONDS_PER_STEP,
                    step=step,
                    summary=summary_pb2.Summary(value=values),
                )
            )
    finally:
        writer.close()
    return loss


def main(argv: list[str] | None = None) -> int:
    """Create the demo log directory named on the command line."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Then launch TensorBoard on it, e.g. with the REST API (see README.md).",
    )
    parser.add_argument("logdir", type=Path, metavar="DIR", help="directory to write (demo-logs)")
    args = parser.parse_args(argv)
    top: Path = args.logdir
    if top.exists() and not top.is_dir():
        print(f"error: {top} exists and is not a directory", file=sys.stderr)
        return 1
    if top.is_dir() and any(top.rglob("*tfevents*")):
        print(f"{top} already holds event files; leaving it as it is")
        return 0
    print(f"Writing {len(RUNS)} demo runs of {STEPS} steps to {top}/")
    for seed, (name, learning_rate) in enumerate(RUNS.items()):
        final_loss = write_run(top / name, learning_rate, seed)
        print(f"  {name:<9} train/loss {INITIAL_LOSS:.2f} -> {final_loss:.2f}")
    print(f"Done: tags train/loss, train/accuracy, learning_rate in {top}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
