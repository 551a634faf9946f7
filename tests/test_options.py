"""Launch options: validation, normalization and the TensorBoard command line (pure)."""

from __future__ import annotations

import pytest

from jupyter_forgather_tb.options import (
    MAX_RELOAD_INTERVAL,
    LaunchOptions,
    OptionError,
    build_argv,
    parse_launch,
)


def parse(**body):
    return parse_launch({"logdir": "runs", **body})[0]


def field_of(body) -> str:
    with pytest.raises(OptionError) as error:
        parse_launch(body)
    return error.value.field


def test_defaults():
    options, force_new = parse_launch({"logdir": "runs"})
    assert options == LaunchOptions(logdir="runs", window_title="")
    assert options.priority == 0 and options.bind_all is False and options.port is None
    assert options.host is None and not options.uses_tcp
    assert force_new is False


def test_host_is_kept_only_with_a_tcp_port():
    assert parse(host="127.0.0.2").host is None
    assert parse(port=7000).host == "127.0.0.1"
    assert parse(port=7000, host="::1").host == "::1"
    assert parse(port=7000, host="localhost").host == "localhost"


def test_bind_all_wins_over_host():
    options = parse(bind_all=True, port=7000, host="127.0.0.1")
    assert options.bind_all and options.host is None and options.uses_tcp


def test_title_is_derived_from_the_resolved_directory_unless_given():
    assert parse().resolved("/data/exp-7").window_title == "exp-7"
    assert parse().resolved("/data/exp-7/").logdir == "/data/exp-7/"
    assert parse(window_title="Mine").resolved("/data/exp-7").window_title == "Mine"
    assert parse(window_title="  ").resolved("/data/x").window_title == "x"


def test_reload_interval_is_stored_as_float():
    assert parse(reload_interval=5).reload_interval == 5.0
    assert parse(reload_interval=0.5).reload_interval == 0.5


def test_samples_per_plugin_tolerates_spaces():
    assert parse(samples_per_plugin="scalars=500, images=0").samples_per_plugin == (
        "scalars=500,images=0"
    )


@pytest.mark.parametrize("title", ["--bind_all", "<script>alert(1)</script>", "ünïcode ✓"])
def test_titles_are_accepted_verbatim(title):
    assert parse(window_title=title).window_title == title


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "body"),
        ("runs", "body"),
        ({"logdir": "runs", "extra": 1}, "extra"),
        ({}, "logdir"),
        ({"logdir": None}, "logdir"),
        ({"logdir": 3}, "logdir"),
        ({"logdir": ""}, "logdir"),
        ({"logdir": "   "}, "logdir"),
        ({"logdir": "x" * 4097}, "logdir"),
        ({"logdir": "a\0b"}, "logdir"),
        ({"logdir": "a\nb"}, "logdir"),
        ({"logdir": "s3://bucket/prefix"}, "logdir"),
        ({"logdir": "http://x/"}, "logdir"),
        ({"logdir": "file:///etc"}, "logdir"),
        ({"logdir": "simplecache::s3://b"}, "logdir"),
        ({"logdir": "runs", "port": True}, "port"),
        ({"logdir": "runs", "port": "6006"}, "port"),
        ({"logdir": "runs", "port": 6006.0}, "port"),
        ({"logdir": "runs", "port": 1023}, "port"),
        ({"logdir": "runs", "port": 65536}, "port"),
        ({"logdir": "runs", "port": -1}, "port"),
        ({"logdir": "runs", "priority": True}, "priority"),
        ({"logdir": "runs", "priority": 1.5}, "priority"),
        ({"logdir": "runs", "priority": "1"}, "priority"),
        ({"logdir": "runs", "priority": 10**7}, "priority"),
        ({"logdir": "runs", "host": "10.0.0.1"}, "host"),
        ({"logdir": "runs", "host": "0.0.0.0"}, "host"),
        ({"logdir": "runs", "host": "example.com"}, "host"),
        ({"logdir": "runs", "host": "not a host!"}, "host"),
        ({"logdir": "runs", "host": "a" * 300}, "host"),
        ({"logdir": "runs", "host": 127}, "host"),
        ({"logdir": "runs", "bind_all": 1}, "bind_all"),
        ({"logdir": "runs", "reload_interval": "5"}, "reload_interval"),
        ({"logdir": "runs", "reload_interval": True}, "reload_interval"),
        ({"logdir": "runs", "reload_interval": float("nan")}, "reload_interval"),
        ({"logdir": "runs", "reload_interval": float("inf")}, "reload_interval"),
        ({"logdir": "runs", "reload_interval": 0}, "reload_interval"),
        ({"logdir": "runs", "reload_interval": -1}, "reload_interval"),
        ({"logdir": "runs", "reload_interval": MAX_RELOAD_INTERVAL + 1}, "reload_interval"),
        ({"logdir": "runs", "reload_multifile": "yes"}, "reload_multifile"),
        ({"logdir": "runs", "samples_per_plugin": "scalars"}, "samples_per_plugin"),
        ({"logdir": "runs", "samples_per_plugin": "scalars=-1"}, "samples_per_plugin"),
        ({"logdir": "runs", "samples_per_plugin": "scalars=1,--bind_all"}, "samples_per_plugin"),
        ({"logdir": "runs", "samples_per_plugin": "scalars=1 --logdir=/"}, "samples_per_plugin"),
        ({"logdir": "runs", "samples_per_plugin": "=5"}, "samples_per_plugin"),
        ({"logdir": "runs", "samples_per_plugin": "a=1,,b=2"}, "samples_per_plugin"),
        ({"logdir": "runs", "samples_per_plugin": 5}, "samples_per_plugin"),
        ({"logdir": "runs", "window_title": "a\x07b"}, "window_title"),
        ({"logdir": "runs", "window_title": "a\nb"}, "window_title"),
        ({"logdir": "runs", "window_title": "t" * 201}, "window_title"),
        ({"logdir": "runs", "window_title": 5}, "window_title"),
        ({"logdir": "runs", "force_new": "true"}, "force_new"),
    ],
)
def test_invalid_field_is_named(body, field):
    assert field_of(body) == field


def test_empty_port_means_none():
    assert parse(port=None).port is None
    assert parse(port="").port is None


def test_force_new_is_returned_apart_from_options():
    options, force_new = parse_launch({"logdir": "runs", "force_new": True})
    assert force_new is True and "force_new" not in options.to_json()


def test_reuse_key_ignores_priority_only():
    base = parse().resolved("/r")
    assert base.reuse_key() == parse(priority=9).resolved("/r").reuse_key()
    assert base.reuse_key() != parse(window_title="x").resolved("/r").reuse_key()
    assert base.reuse_key() != parse(reload_interval=2).resolved("/r").reuse_key()
    assert base.reuse_key() != parse().resolved("/other/r").reuse_key()


def argv_for(options, **where):
    return build_argv(options, python="/py", path_prefix="/base/tb/ID/", **where)


def test_unix_socket_argv_has_no_network_flags():
    argv = argv_for(parse().resolved("/r"), unix_socket="/s/ID.sock")
    assert argv[:5] == ["/py", "-m", "jupyter_forgather_tb.runner", "--unix-socket", "/s/ID.sock"]
    assert not {"--port", "--host", "--bind_all"} & set(argv)
    assert argv[argv.index("--path_prefix") + 1] == "/base/tb/ID"
    assert argv[argv.index("--logdir") + 1] == "/r"
    assert all(isinstance(arg, str) for arg in argv)


def test_tcp_argv_binds_loopback_or_everything():
    argv = argv_for(parse(port=7000).resolved("/r"), port=7000)
    assert argv[argv.index("--port") + 1] == "7000"
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    assert "--bind_all" not in argv and "--unix-socket" not in argv
    exposed = argv_for(parse(port=7000, bind_all=True).resolved("/r"), port=7000)
    assert "--bind_all" in exposed and "--host" not in exposed


@pytest.mark.parametrize("title", ["--bind_all", 'a "quoted" title', "two words"])
def test_title_is_one_argument(title):
    argv = argv_for(parse(window_title=title).resolved("/r"), unix_socket="/s")
    assert f"--window_title={title}" in argv
    assert argv.count("--bind_all") == 0


def test_optional_flags_appear_only_when_set():
    plain = argv_for(parse().resolved("/r"), unix_socket="/s")
    assert not any(a.startswith(("--reload", "--samples")) for a in plain)
    full = argv_for(
        parse(reload_interval=2, reload_multifile=False, samples_per_plugin="images=3").resolved(
            "/r"
        ),
        unix_socket="/s",
    )
    assert full[full.index("--reload_interval") + 1] == "2.0"
    assert "--reload_multifile=false" in full
    assert full[full.index("--samples_per_plugin") + 1] == "images=3"


def test_python_loader_is_always_chosen():
    assert "--load_fast=false" in argv_for(parse().resolved("/r"), unix_socket="/s")


@pytest.mark.parametrize("where", [{}, {"unix_socket": "/s", "port": 7000}])
def test_exactly_one_transport_is_required(where):
    with pytest.raises(ValueError):
        argv_for(parse().resolved("/r"), **where)
