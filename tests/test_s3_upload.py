"""`jupyter forgather-tb upload` and the Uploader on s3:// against a real S3 API (moto's server)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import write_scalars
from s3_helpers import scalar_records

from jupyter_forgather_tb.clients import upload
from jupyter_forgather_tb.clients.cli import main
from jupyter_forgather_tb.clients.upload import MIN_PART_BYTES, Uploader, _ranges

MIB = 1024 * 1024


def body(s3, key: str) -> bytes:
    return s3.client.get_object(Bucket=s3.bucket, Key=key)["Body"].read()


def keys(s3, prefix: str = "") -> list[str]:
    listing = s3.client.list_objects_v2(Bucket=s3.bucket, Prefix=prefix)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def uploader_on(s3, local, url: str) -> Uploader:
    """An uploader to moto, with the test credentials of ``aws_env``."""
    return Uploader(str(local), url, endpoint_url=s3.endpoint)


def record_calls(uploader: Uploader, monkeypatch, fail_on: str | None = None) -> list[str]:
    """The S3 operations the uploader calls from now on; ``fail_on`` one raises Ctrl-C."""
    calls: list[str] = []
    real = uploader.fs.call_s3

    def call(method, *args, **kwargs):
        calls.append(method)
        if method == fail_on:
            raise KeyboardInterrupt  # a signal cannot be timed to land there
        return real(method, *args, **kwargs)

    monkeypatch.setattr(uploader.fs, "call_s3", call)
    return calls


def event_file(directory) -> str:
    (name,) = [n for n in os.listdir(directory) if "tfevents" in n]
    return os.path.join(directory, name)


def test_upload_once_copies_event_files_and_plugin_assets(s3, tmp_path, capsys):
    local = tmp_path / "logs"
    write_scalars(local / "run1", "loss", [1.0, 0.5])
    (local / "run1" / "plugins" / "profile").mkdir(parents=True)
    (local / "run1" / "plugins" / "profile" / "trace.json").write_text("{}")
    (local / "run1" / "model.ckpt").write_bytes(b"weights")
    url = f"s3://{s3.bucket}/exp"

    assert main(["upload", str(local), url, "--endpoint-url", s3.endpoint]) == 0
    name = os.path.basename(event_file(local / "run1"))
    assert keys(s3) == [f"exp/run1/{name}", "exp/run1/plugins/profile/trace.json"]
    assert body(s3, f"exp/run1/{name}") == (local / "run1" / name).read_bytes()
    assert "Uploaded 2 file(s)" in capsys.readouterr().err

    assert main(["upload", str(local), url, "--endpoint-url", s3.endpoint]) == 0
    assert "Uploaded 0 file(s)" in capsys.readouterr().err  # nothing new: nothing sent


def test_upload_errors_are_clear(s3, tmp_path, capsys):
    local = tmp_path / "logs"
    local.mkdir()
    assert (
        main(["upload", str(local), "s3://no-such-bucket-x/p", "--endpoint-url", s3.endpoint]) == 1
    )
    assert "bucket 'no-such-bucket-x' does not exist" in capsys.readouterr().err
    for argv in (
        [str(local), "http://bucket/p"],
        [str(local), "/local/path"],
        [str(tmp_path / "missing"), f"s3://{s3.bucket}/p"],
        [str(local), f"s3://{s3.bucket}/p", "--interval", "0"],
    ):
        with pytest.raises(SystemExit) as caught:
            main(["upload", *argv])
        assert caught.value.code == 2


def test_a_grown_event_file_is_appended_with_a_server_side_copy(s3, tmp_path, monkeypatch):
    local = tmp_path / "logs" / "run"
    local.mkdir(parents=True)
    path = local / "events.out.tfevents.1.host"
    path.write_bytes(os.urandom(MIN_PART_BYTES + 1000))
    uploader = uploader_on(s3, tmp_path / "logs", f"s3://{s3.bucket}/x")
    first = uploader.sync()
    assert first.bytes_sent == MIN_PART_BYTES + 1000

    calls = record_calls(uploader, monkeypatch)
    new = os.urandom(300_000)
    with open(path, "ab") as out:
        out.write(new)
    grown = uploader.sync()
    assert (grown.bytes_sent, grown.bytes_copied) == (len(new), MIN_PART_BYTES + 1000)
    assert calls == [
        "create_multipart_upload",
        "upload_part_copy",
        "upload_part",
        "complete_multipart_upload",
    ]
    assert body(s3, "x/run/events.out.tfevents.1.host") == path.read_bytes()


def test_a_small_grown_file_is_put_whole(s3, tmp_path):
    write_scalars(tmp_path / "logs" / "run", "loss", [1.0])
    path = event_file(tmp_path / "logs" / "run")
    uploader = uploader_on(s3, tmp_path / "logs", f"s3://{s3.bucket}")
    uploader.sync()
    with open(path, "ab") as out:
        out.write(scalar_records("loss", [2.0], start_step=1, header=False))
    assert uploader.sync().bytes_sent == os.path.getsize(path)
    with open(path, "rb") as source:
        assert body(s3, "run/" + os.path.basename(path)) == source.read()


def test_an_interrupted_append_leaves_the_old_object_and_no_parts(s3, tmp_path, monkeypatch):
    local = tmp_path / "logs"
    local.mkdir()
    path = local / "events.out.tfevents.1.host"
    old = os.urandom(MIN_PART_BYTES + 10)
    path.write_bytes(old)
    uploader = uploader_on(s3, local, f"s3://{s3.bucket}")
    uploader.sync()
    with open(path, "ab") as out:
        out.write(os.urandom(1000))

    # Ctrl-C arriving while the new bytes go up.
    record_calls(uploader, monkeypatch, fail_on="upload_part")
    with pytest.raises(KeyboardInterrupt):
        uploader.sync()
    assert s3.client.list_multipart_uploads(Bucket=s3.bucket).get("Uploads", []) == []
    assert body(s3, "events.out.tfevents.1.host") == old


def test_the_helper_syncs_in_the_background_and_once_more_when_stopped(s3, tmp_path):
    local = tmp_path / "logs"
    write_scalars(local / "run", "loss", [1.0])
    uploader = uploader_on(s3, local, f"s3://{s3.bucket}/bg")
    with uploader.running(interval=3600):
        deadline = time.monotonic() + 30
        while uploader.total.files < 1:  # the first sync, started at once, has sent "run"
            assert time.monotonic() < deadline, "the background sync never ran"
            time.sleep(0.05)
        write_scalars(local / "late", "loss", [2.0])  # only the final sync can see this one
    assert [key.split("/")[1] for key in keys(s3)] == ["late", "run"]
    assert uploader.total.files == 2


def test_follow_uploads_everything_written_before_sigterm(s3, tmp_path):
    local = tmp_path / "logs" / "run"
    local.mkdir(parents=True)
    path = local / "events.out.tfevents.1.host"
    path.write_bytes(scalar_records("loss", [0.0]))
    command = [sys.executable, "-m", "jupyter_forgather_tb.clients.cli", "upload"]
    command += [str(tmp_path / "logs"), f"s3://{s3.bucket}/live", "--follow", "--interval", "0.2"]
    proc = subprocess.Popen(
        [*command, "--endpoint-url", s3.endpoint],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not keys(s3, "live/"):  # its first pass is done: it handles signals now
            assert proc.poll() is None and time.monotonic() < deadline, "no first pass"
            time.sleep(0.02)
        for step in range(1, 40):
            with open(path, "ab") as out:
                out.write(scalar_records("loss", [float(step)], start_step=step, header=False))
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)  # right after the last write
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert body(s3, "live/run/events.out.tfevents.1.host") == path.read_bytes()


async def test_round_trip_upload_then_an_s3_job_serves_the_same_scalars(s3, api, jp_root_dir):
    local = jp_root_dir / "logs"
    write_scalars(local / "a", "loss", [3.0, 2.0, 1.0])
    write_scalars(local / "b", "acc", [0.1, 0.9])
    uploader_on(s3, local, f"s3://{s3.bucket}/trip").sync()

    local_job = await api.launch(logdir="logs")
    s3_job = await api.launch(logdir=f"s3://{s3.bucket}/trip")
    for job in (local_job, s3_job):
        await api.wait_status(job["id"], "running")
    for run, tag in (("a", "loss"), ("b", "acc")):
        answers = []
        for job in (local_job, s3_job):
            response = await api.proxied(
                job["id"], "data/plugin/scalars/scalars", params={"run": run, "tag": tag}
            )
            answers.append(json.loads(response.body))
        assert answers[0] == answers[1] and len(answers[0]) in (2, 3)


@pytest.mark.parametrize(
    ("start", "end", "most", "expected"),
    [
        (0, 0, 10, []),
        (0, 10, 10, [(0, 10)]),
        (0, 11, 10, [(0, 6), (6, 11)]),
        (5, 35, 10, [(5, 15), (15, 25), (25, 35)]),
    ],
)
def test_ranges_are_cut_evenly_within_the_limit(start, end, most, expected):
    assert _ranges(start, end, most) == expected


def test_a_large_new_file_goes_up_in_parts(s3, tmp_path, monkeypatch):
    # Smaller thresholds than S3's real ones keep the test fast; S3's 5 MiB part minimum stays.
    monkeypatch.setattr(upload, "PUT_MAX_BYTES", MIN_PART_BYTES)
    monkeypatch.setattr(upload, "NEW_PART_BYTES", 2 * MIN_PART_BYTES)
    local = tmp_path / "logs"
    local.mkdir()
    content = os.urandom(3 * MIN_PART_BYTES + 123)
    (local / "events.out.tfevents.2.host").write_bytes(content)
    uploader = uploader_on(s3, local, f"s3://{s3.bucket}")
    calls = record_calls(uploader, monkeypatch)
    stats = uploader.sync()
    assert calls.count("upload_part") == 2 and "put_object" not in calls
    assert (stats.bytes_sent, stats.bytes_copied) == (len(content), 0)
    assert body(s3, "events.out.tfevents.2.host") == content


def test_the_example_training_script_streams_its_run_to_s3(s3, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    script = Path(__file__).parent.parent / "examples" / "train_to_s3.py"
    local = tmp_path / "run"
    options = ["--steps", "20", "--seconds-per-step", "0.01", "--interval", "0.05"]
    result = subprocess.run(
        [sys.executable, str(script), str(local), f"s3://{s3.bucket}/ex", *options],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    name = os.path.basename(event_file(local))
    assert body(s3, f"ex/{name}") == (local / name).read_bytes()


def test_ctrl_c_during_a_multipart_upload_aborts_it(s3, tmp_path):
    local = tmp_path / "logs"
    local.mkdir()
    # Past the single-PUT size, so it goes up in parts; the signal lands while they do.
    (local / "events.out.tfevents.3.host").write_bytes(os.urandom(upload.PUT_MAX_BYTES + MIB))
    command = [sys.executable, "-m", "jupyter_forgather_tb.clients.cli", "upload", str(local)]
    proc = subprocess.Popen(
        [*command, f"s3://{s3.bucket}/big", "--endpoint-url", s3.endpoint],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not s3.client.list_multipart_uploads(Bucket=s3.bucket).get("Uploads"):
            assert proc.poll() is None and time.monotonic() < deadline, "no multipart upload"
            time.sleep(0.005)
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert s3.client.list_multipart_uploads(Bucket=s3.bucket).get("Uploads", []) == []
    assert keys(s3, "big/") == []  # no half object either


def test_the_upload_shows_its_progress_on_a_terminal(s3, tmp_path):
    import pty

    local = tmp_path / "logs"
    for run in ("a", "b"):
        write_scalars(local / run, "loss", [1.0, 2.0])
    sizes = sum(os.path.getsize(event_file(local / run)) for run in ("a", "b"))
    primary, secondary = pty.openpty()
    command = [sys.executable, "-m", "jupyter_forgather_tb.clients.cli", "upload", str(local)]
    try:
        proc = subprocess.run(
            [*command, f"s3://{s3.bucket}/tty", "--endpoint-url", s3.endpoint],
            stderr=secondary,
            timeout=120,
        )
        os.close(secondary)
        shown = b""
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # the terminal's other end is closed: all read
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(primary)
    assert proc.returncode == 0
    text = shown.decode()
    assert "Uploading: 0/2 file(s), 0 B of " in text
    assert f"Uploading: 2/2 file(s), {sizes} B of {sizes} B" in text
