"""Write a small demo TensorBoard log directory: four training runs of scalar curves.

Usage: python examples/make_demo_logdir.py DIR

Uses tensorboard's own event writer, so what TensorBoard shows is exactly what
a real training run would have written. Leaves DIR alone if it already holds
event files.
"""

from __future__ import annotations

import argparse
import math
import random
import time
from pathlib import Path

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter

RUNS = {"lr=0.1": 0.1, "lr=0.03": 0.03, "lr=0.01": 0.01, "lr=0.003": 0.003}
STEPS = 200


def write_run(run_dir: Path, learning_rate: float, seed: int) -> None:
    """One run: loss, accuracy and learning rate over STEPS steps, with plausible noise."""
    rng = random.Random(seed)
    writer = EventFileWriter(str(run_dir))
    start = time.time() - STEPS * 30
    speed = 40 * learning_rate
    for step in range(STEPS):
        progress = 1 - math.exp(-speed * step / 10)
        loss = 2.3 * (1 - progress) + 0.05 + rng.gauss(0, 0.03)
        accuracy = min(1.0, 0.1 + 0.85 * progress + rng.gauss(0, 0.01))
        lr = learning_rate * 0.5 ** (step // 80)
        values = [
            summary_pb2.Summary.Value(tag="train/loss", simple_value=loss),
            summary_pb2.Summary.Value(tag="train/accuracy", simple_value=accuracy),
            summary_pb2.Summary.Value(tag="learning_rate", simple_value=lr),
        ]
        event = event_pb2.Event(
            wall_time=start + step * 30, step=step, summary=summary_pb2.Summary(value=values)
        )
        writer.add_event(event)
    writer.close()


def main() -> None:
    """Create the demo log directory named on the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logdir", type=Path, help="directory to create (e.g. demo-logs)")
    args = parser.parse_args()
    if args.logdir.exists() and any(args.logdir.rglob("*tfevents*")):
        print(f"{args.logdir} already holds event files; leaving it as it is")
        return
    for seed, (name, learning_rate) in enumerate(RUNS.items()):
        write_run(args.logdir / name, learning_rate, seed)
    print(f"wrote {len(RUNS)} demo runs of {STEPS} steps to {args.logdir}")


if __name__ == "__main__":
    main()
