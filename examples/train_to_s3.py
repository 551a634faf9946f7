"""A stand-in training loop that streams its TensorBoard events to S3 as it runs.

Usage: python examples/train_to_s3.py LOCAL_LOGDIR s3://bucket/prefix [--steps N]

It writes a loss curve with tensorboard's own writer into LOCAL_LOGDIR while
``Uploader`` sends new bytes to S3 every few seconds in a background thread, and
once more when training ends, so the S3 copy is complete when the script exits.
Open ``s3://bucket/prefix`` in Jupyter (``%forgather_tb --logdir s3://...``) to
watch it live. Credentials and endpoint are boto3's (``AWS_ENDPOINT_URL`` for MinIO).
"""

from __future__ import annotations

import argparse
import math
import time

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from jupyter_forgather_tb.clients.upload import Uploader


def train(logdir: str, steps: int, seconds_per_step: float) -> None:
    """Write one scalar per step, as a training loop would."""
    writer = EventFileWriter(logdir)
    for step in range(steps):
        loss = 2.3 * math.exp(-step / (steps / 4)) + 0.1
        value = summary_pb2.Summary.Value(tag="train/loss", simple_value=loss)
        summary = summary_pb2.Summary(value=[value])
        writer.add_event(event_pb2.Event(wall_time=time.time(), step=step, summary=summary))
        writer.flush()
        time.sleep(seconds_per_step)
    writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logdir", help="local log directory the training writes")
    parser.add_argument("url", help="s3://bucket/prefix to stream it to")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--seconds-per-step", type=float, default=0.1)
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between uploads")
    args = parser.parse_args()
    uploader = Uploader(args.logdir, args.url)
    with uploader.running(interval=args.interval):
        train(args.logdir, args.steps, args.seconds_per_step)
    total = uploader.total
    print(f"{total.files} uploads, {total.bytes_sent} bytes sent to {args.url}")


if __name__ == "__main__":
    main()
