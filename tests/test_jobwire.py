"""The wire format between server and job: the runner's command line and its report file."""

from __future__ import annotations

import json

import pytest

from jupyter_forgather_tb.common.jobwire import (
    JobArgs,
    JobReport,
    MirrorArgs,
    job_argv,
    parse_job_argv,
    read_report,
    write_report,
)
from jupyter_forgather_tb.common.options import build_argv, parse_launch
from jupyter_forgather_tb.common.processes import RUNNER_MODULE

MIRROR = MirrorArgs(
    url="s3://bucket-one/runs",
    cache_dir="/cache/job",
    sync_interval=0.75,
    max_cache_bytes=1 << 30,
    max_cache_objects=1000,
    endpoint_url="http://127.0.0.1:9000",
    connection_file="/run/job.connection.json",
)


def _argv(body, **where):
    options, _ = parse_launch(body)
    return build_argv(options, python="/py", path_prefix="/tb/x/", **where)


#: What the server builds for representative jobs, and what the runner must read back.
BUILT = {
    "plain": (
        _argv({"logdir": "/runs"}, unix_socket="/s.sock", fast_loader_above=9),
        JobArgs(
            tensorboard_args=("--logdir", "/runs", "--path_prefix", "/tb/x", "--window_title="),
            unix_socket="/s.sock",
            fast_loader_above=9,
        ),
    ),
    "port": (
        _argv({"logdir": "/runs", "port": 6007, "load_fast": "false"}, port=6007),
        JobArgs(
            tensorboard_args=(
                *("--logdir", "/runs", "--path_prefix", "/tb/x", "--window_title="),
                *("--load_fast=false", "--port", "6007", "--host", "127.0.0.1"),
            ),
        ),
    ),
    "s3 mirror": (
        _argv(
            {"logdir": "s3://bucket-one/runs", "load_fast": "true"},
            unix_socket="/s.sock",
            logdir="/cache/job/data",
            mirror=MIRROR,
            report_file="/r.json",
        ),
        JobArgs(
            tensorboard_args=(
                *("--logdir", "/cache/job/data", "--path_prefix", "/tb/x"),
                *("--window_title=", "--load_fast=true"),
            ),
            unix_socket="/s.sock",
            mirror=MIRROR,
            report_file="/r.json",
        ),
    ),
    "cgroups and nice": (
        _argv(
            {"logdir": "/runs", "load_fast": "true"},
            unix_socket="/s.sock",
            join_cgroups=["/g/a/cgroup.procs", "/g/b/cgroup.procs"],
            nice=-5,
        ),
        JobArgs(
            tensorboard_args=(
                *("--logdir", "/runs", "--path_prefix", "/tb/x"),
                *("--window_title=", "--load_fast=true"),
            ),
            join_cgroups=("/g/a/cgroup.procs", "/g/b/cgroup.procs"),
            nice=-5,
            unix_socket="/s.sock",
        ),
    ),
    "private network": (
        _argv(
            {"logdir": "/runs"},
            unix_socket="/s.sock",
            private_network=True,
            report_file="/r.json",
            fast_loader_above=0,
        ),
        JobArgs(
            tensorboard_args=("--logdir", "/runs", "--path_prefix", "/tb/x", "--window_title="),
            unix_socket="/s.sock",
            private_network=True,
            report_file="/r.json",
            fast_loader_above=0,
        ),
    ),
    "compare tree": (
        _argv(
            {"logdirs": {"a": "/runs/a", "b": "/runs/b"}, "load_fast": "false"},
            unix_socket="/s.sock",
            logdir="/run/j.tree",
        ),
        JobArgs(
            tensorboard_args=(
                *("--logdir", "/run/j.tree", "--path_prefix", "/tb/x"),
                *("--window_title=", "--load_fast=false"),
            ),
            unix_socket="/s.sock",
        ),
    ),
}


@pytest.mark.parametrize("case", BUILT)
def test_the_runner_reads_back_what_the_server_built(case):
    argv, expected = BUILT[case]
    assert argv[:3] == ["/py", "-m", RUNNER_MODULE]
    assert parse_job_argv(argv[3:]) == expected
    assert job_argv("/py", expected) == argv


@pytest.mark.parametrize(
    "args",
    [
        JobArgs(),
        JobArgs(tensorboard_args=("--logdir", "/r", "--port", "6006")),
        JobArgs(("--logdir", "/r"), join_cgroups=("/a",), nice=19, mirror=MIRROR),
        JobArgs(("--logdir", "/r"), mirror=MirrorArgs(url="s3://b/p", cache_dir="/c")),
        JobArgs(("--logdir", "/r"), unix_socket="/s", private_network=True, report_file="/j"),
    ],
)
def test_job_arguments_survive_their_command_line(args):
    argv = job_argv("python3", args)
    assert argv[:3] == ["python3", "-m", RUNNER_MODULE]
    assert parse_job_argv(argv[3:]) == args


def test_the_runner_refuses_a_niceness_out_of_range(capsys):
    with pytest.raises(SystemExit) as exit_:
        parse_job_argv(["--nice=20", "--"])
    assert exit_.value.code == 2
    assert "niceness must be an integer from -20 to 19" in capsys.readouterr().err
    with pytest.raises(ValueError, match="niceness"):
        job_argv("python3", JobArgs(nice=-21))


def test_a_mirror_without_its_cache_directory_is_refused(capsys):
    with pytest.raises(SystemExit):
        parse_job_argv(["--mirror", "s3://b/p", "--"])
    assert "--mirror needs --cache-dir" in capsys.readouterr().err


@pytest.mark.parametrize(
    "report",
    [
        JobReport(loader={"name": "rust", "private_network": True}),
        JobReport(loader={"name": "python", "private_network": False}, address=("::1", 6007)),
        JobReport(loader={"name": "python", "private_network": False}, address=("0.0.0.0", 80)),
    ],
)
def test_a_report_reads_back_as_written(tmp_path, report):
    path = str(tmp_path / "job.json")
    write_report(path, report)
    assert read_report(path) == report


def test_the_report_file_keeps_its_shape(tmp_path):
    path = tmp_path / "job.json"
    loader = {"name": "rust", "private_network": False}
    write_report(str(path), JobReport(loader, address=("127.0.0.1", 6006)))
    assert json.loads(path.read_text()) == {
        "name": "rust",
        "private_network": False,
        "address": {"host": "127.0.0.1", "port": 6006},
    }


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", JobReport(None)),  # not JSON
        ("[1, 2]", JobReport(None)),
        ('{"name": "go", "private_network": false}', JobReport(None)),
        ('{"name": "rust", "private_network": 1}', JobReport(None)),
        (
            '{"name": "rust", "private_network": false, "extra": 1}',
            JobReport({"name": "rust", "private_network": False}),
        ),
        # Each part stands alone: a valid address with a malformed loader still counts.
        (
            '{"name": 3, "address": {"host": "127.0.0.1", "port": 6006}}',
            JobReport(None, ("127.0.0.1", 6006)),
        ),
        ('{"address": {"host": "127.0.0.1", "port": true}}', JobReport(None)),
        ('{"address": {"host": "127.0.0.1", "port": "6006"}}', JobReport(None)),
        ('{"address": {"host": "tb.example", "port": 6006}}', JobReport(None)),
        ('{"address": {"host": 127, "port": 6006}}', JobReport(None)),
        ('{"address": "127.0.0.1:6006"}', JobReport(None)),
    ],
)
def test_a_malformed_report_part_reads_as_none(tmp_path, content, expected):
    path = tmp_path / "job.json"
    path.write_text(content)
    assert read_report(str(path)) == expected


def test_a_missing_report_reads_as_nothing(tmp_path):
    assert read_report(str(tmp_path / "gone.json")) == JobReport(None)
