"""A real S3 API for tests and benchmarks: moto's server on loopback, and event records."""

from __future__ import annotations

import io
import logging
import socket
import time
import uuid

# Credentials moto accepts; nothing here ever reaches AWS.
TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": "/nonexistent/aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
}
UNSET_ENV = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3")


def start_moto() -> tuple[object, str]:
    """Start moto's S3 server on a free loopback port: ``(server, endpoint URL)``."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server, f"http://127.0.0.1:{port}"


def boto3_client(endpoint: str, service: str = "s3"):
    """A boto3 client on moto (boto3 comes with moto; the package itself uses s3fs)."""
    import boto3

    return boto3.client(service, endpoint_url=endpoint)


def new_bucket(client) -> str:
    """Create a bucket with a fresh name."""
    name = f"tb-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=name)
    return name


def scalar_records(tag: str, values: list[float], start_step: int = 0, header: bool = True):
    """TensorBoard event-file bytes holding one scalar per step, from tensorboard's own writer.

    With ``header`` the bytes start with the file-version event that begins an
    event file; without it they can be appended to an existing file.
    """
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    buffer = io.BytesIO()
    writer = RecordWriter(buffer)
    if header:
        writer.write(
            event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2").SerializeToString()
        )
    for step, value in enumerate(values, start=start_step):
        summary = summary_pb2.Summary(
            value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)]
        )
        event = event_pb2.Event(wall_time=time.time(), step=step, summary=summary)
        writer.write(event.SerializeToString())
    return buffer.getvalue()


def event_key(run: str) -> str:
    """An event file's name in a run, as TensorBoard's writers name them."""
    return f"{run}/events.out.tfevents.1700000000.host.1.0"
