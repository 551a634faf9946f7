"""Launch options: validation, normalization and the TensorBoard command line (pure)."""

from __future__ import annotations

import pytest

from jupyter_forgather_tb.common.options import (
    DEFAULT_HOST,
    MAX_LOGDIR_LENGTH,
    MAX_PRIORITY,
    MAX_RELOAD_INTERVAL,
    MAX_TITLE_LENGTH,
    LaunchOptions,
    OptionError,
    build_argv,
    member_names,
    parse_launch,
)


def parse(**body) -> LaunchOptions:
    """The options of a launch body with a valid logdir and these extra fields."""
    return parse_launch({"logdir": "runs", **body})[0]


def rejected(body) -> OptionError:
    with pytest.raises(OptionError) as error:
        parse_launch(body)
    return error.value


def rejected_field(**fields) -> str:
    """The field named by the error for a body with a valid logdir and these fields."""
    return rejected({"logdir": "runs", **fields}).field


# --- defaults and the error type -------------------------------------------------------------


def test_defaults():
    options, force_new = parse_launch({"logdir": "runs"})
    assert options == LaunchOptions(logdir="runs", window_title="")
    assert options.priority == 0
    assert options.bind_all is False
    assert options.port is None and options.host is None
    assert options.reload_interval is None and options.reload_multifile is None
    assert options.samples_per_plugin is None
    assert not options.uses_tcp
    assert force_new is False


def test_explicit_nulls_mean_defaults():
    body = {
        "logdir": "runs",
        "window_title": None,
        "port": None,
        "priority": None,
        "bind_all": None,
        "host": None,
        "reload_interval": None,
        "reload_multifile": None,
        "samples_per_plugin": None,
        "load_fast": None,
        "force_new": None,
    }
    assert parse_launch(body) == (LaunchOptions(logdir="runs", window_title=""), False)


def test_option_error_carries_field_and_message():
    error = rejected({"logdir": "runs", "port": 1})
    assert isinstance(error, ValueError)
    assert error.field == "port"
    assert error.message and str(error) == f"port: {error.message}"


def test_to_json_lists_every_option():
    options = parse(port=7000, priority=3, reload_interval=2, samples_per_plugin="images=1")
    assert options.to_json() == {
        "logdir": "runs",
        "window_title": "",
        "port": 7000,
        "priority": 3,
        "bind_all": False,
        "host": "127.0.0.1",
        "reload_interval": 2.0,
        "reload_multifile": None,
        "samples_per_plugin": "images=1",
        "sync_interval": None,
        "load_fast": "auto",
        "memory_limit": None,
        "connection": None,
    }


# --- body ------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [[], [{"logdir": "runs"}], "runs", "", None, 5, True])
def test_body_must_be_an_object(body):
    assert rejected(body).field == "body"


def test_unknown_field_is_named():
    assert rejected_field(extra=1) == "extra"


def test_first_unknown_field_in_sorted_order_is_named():
    assert rejected({"logdir": "runs", "zeta": 1, "alpha": 2}).field == "alpha"


def test_unknown_field_is_reported_before_a_missing_logdir():
    assert rejected({"logdir_path": "runs"}).field == "logdir_path"


def test_field_names_are_case_sensitive():
    assert rejected({"Logdir": "runs"}).field == "Logdir"


def test_force_new_is_returned_apart_from_options():
    options, force_new = parse_launch({"logdir": "runs", "force_new": True})
    assert force_new is True
    assert "force_new" not in options.to_json()
    assert parse_launch({"logdir": "runs", "force_new": False})[1] is False


@pytest.mark.parametrize("value", ["true", 1, 0, "", [True]])
def test_force_new_must_be_a_bool(value):
    assert rejected_field(force_new=value) == "force_new"


# --- logdir ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "logdir",
    [
        "runs",
        "/abs/path/runs",
        "runs/exp 1",
        " padded ",
        "~/runs",
        "../outside",  # shape only: confinement is logdirs.resolve_logdir's job
        "x" * MAX_LOGDIR_LENGTH,
        "ünïcode/ラン",
        "a:b",
    ],
)
def test_logdir_is_kept_as_given(logdir):
    assert parse_launch({"logdir": logdir})[0].logdir == logdir


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"logdir": None},
        {"logdir": 3},
        {"logdir": ["runs"]},
        {"logdir": True},
        {"logdir": ""},
        {"logdir": "   "},
        {"logdir": "\t"},
        {"logdir": "x" * (MAX_LOGDIR_LENGTH + 1)},
        {"logdir": "a\0b"},
        {"logdir": "a\nb"},
        {"logdir": "runs\n"},
        {"logdir": "a\rb"},
        {"logdir": "s3://Bad_Bucket/p"},
        {"logdir": "http://x/"},
        {"logdir": "file:///etc"},
        {"logdir": "gs://"},
        {"logdir": "simplecache::s3://b"},
        {"logdir": "runs::v2"},
    ],
)
def test_bad_logdir_is_refused(body):
    assert rejected(body).field == "logdir"


# --- port ------------------------------------------------------------------------------------


@pytest.mark.parametrize("port", [1024, 6006, 65535])
def test_port_in_range_is_kept(port):
    options = parse(port=port)
    assert options.port == port
    assert options.uses_tcp


@pytest.mark.parametrize("port", [None, ""])
def test_empty_port_means_none(port):
    options = parse(port=port)
    assert options.port is None
    assert not options.uses_tcp


@pytest.mark.parametrize(
    "port", [True, False, "6006", 6006.0, 6006.5, 0, 1023, 65536, -1, -6006, 10**20, [6006]]
)
def test_bad_port_is_refused(port):
    assert rejected_field(port=port) == "port"


# --- priority --------------------------------------------------------------------------------


@pytest.mark.parametrize("priority", [0, 1, -1, 42, MAX_PRIORITY, -MAX_PRIORITY])
def test_priority_in_range_is_kept(priority):
    assert parse(priority=priority).priority == priority


@pytest.mark.parametrize(
    "priority",
    [True, False, 1.5, 1.0, "1", "", [1], MAX_PRIORITY + 1, -MAX_PRIORITY - 1, 10**100],
)
def test_bad_priority_is_refused(priority):
    assert rejected_field(priority=priority) == "priority"


# --- host and bind_all -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "kept"),
    [
        ("localhost", "localhost"),
        ("127.0.0.1", "127.0.0.1"),
        ("127.0.0.2", "127.0.0.2"),
        ("127.255.255.254", "127.255.255.254"),
        ("::1", "::1"),
        ("0:0:0:0:0:0:0:1", "::1"),  # normalized to the short form
        (None, DEFAULT_HOST),
        ("", DEFAULT_HOST),
    ],
)
def test_loopback_host_is_kept_with_a_tcp_port(host, kept):
    assert parse(port=7000, host=host).host == kept


@pytest.mark.parametrize("host", ["localhost", "127.0.0.2", "::1", None])
def test_host_is_dropped_without_a_tcp_port(host):
    options = parse(host=host)
    assert options.host is None
    assert not options.uses_tcp


@pytest.mark.parametrize(
    "host",
    [
        "10.0.0.1",
        "0.0.0.0",
        "192.168.1.10",
        "::",
        "fe80::1",
        "example.com",
        "localhost.localdomain",
        "not a host!",
        "[::1]",
        "127.0.0.1:80",
        "a" * 254,
        "a." * 150,
        127,
        True,
        ["127.0.0.1"],
    ],
)
def test_bad_host_is_refused(host):
    assert rejected_field(port=7000, host=host) == "host"


def test_host_is_checked_even_without_a_port():
    assert rejected_field(host="10.0.0.1") == "host"


@pytest.mark.parametrize("bind_all", [True, False, None])
def test_bind_all_accepts_booleans(bind_all):
    assert parse(bind_all=bind_all).bind_all is bool(bind_all)


@pytest.mark.parametrize("bind_all", [1, 0, "true", "", [True]])
def test_bind_all_must_be_a_bool(bind_all):
    assert rejected_field(bind_all=bind_all) == "bind_all"


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", None])
def test_bind_all_wins_over_host(host):
    options = parse(bind_all=True, port=7000, host=host)
    assert options.bind_all is True
    assert options.host is None
    assert options.port == 7000
    assert options.uses_tcp


def test_bind_all_without_a_port_still_uses_tcp():
    options = parse(bind_all=True)
    assert options.port is None and options.host is None
    assert options.uses_tcp


# --- reload_interval -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "stored"),
    [(5, 5.0), (1, 1.0), (0.5, 0.5), (0.001, 0.001), (MAX_RELOAD_INTERVAL, MAX_RELOAD_INTERVAL)],
)
def test_reload_interval_is_stored_as_float(value, stored):
    interval = parse(reload_interval=value).reload_interval
    assert type(interval) is float
    assert interval == stored


@pytest.mark.parametrize(
    "value",
    [
        "5",
        "",
        True,
        False,
        [5],
        float("nan"),
        float("inf"),
        float("-inf"),
        0,
        0.0,
        -1,
        -0.5,
        MAX_RELOAD_INTERVAL + 1,
        MAX_RELOAD_INTERVAL + 0.5,
        1e300,
    ],
)
def test_bad_reload_interval_is_refused(value):
    assert rejected_field(reload_interval=value) == "reload_interval"


def test_huge_integer_reload_interval_is_refused_as_an_option_error():
    assert rejected_field(reload_interval=10**400) == "reload_interval"


# --- reload_multifile ------------------------------------------------------------------------


@pytest.mark.parametrize("value", [True, False, None])
def test_reload_multifile_keeps_booleans_and_none(value):
    assert parse(reload_multifile=value).reload_multifile is value


@pytest.mark.parametrize("value", ["yes", "true", 1, 0, "", [False]])
def test_reload_multifile_must_be_a_bool(value):
    assert rejected_field(reload_multifile=value) == "reload_multifile"


# --- samples_per_plugin ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("scalars=500,images=0", "scalars=500,images=0"),
        ("scalars=500, images=0", "scalars=500,images=0"),
        (" scalars = 500 , images = 0 ", "scalars=500,images=0"),
        ("scalars=0", "scalars=0"),
        ("my_plugin2=999999999", "my_plugin2=999999999"),
        ("", None),
        (None, None),
    ],
)
def test_samples_per_plugin_is_normalized(value, stored):
    assert parse(samples_per_plugin=value).samples_per_plugin == stored


@pytest.mark.parametrize(
    "value",
    [
        "scalars",
        "scalars=",
        "scalars=-1",
        "scalars=1.5",
        "scalars=1234567890",
        "scalars=1,--bind_all",
        "scalars=1 --logdir=/",
        "scalars=1;images=2",
        "=5",
        "1scalars=5",
        "_x=5",
        "a=1,,b=2",
        "a=1,",
        ",a=1",
        "scalars=1\n",
        "scalars=\u0663",  # ARABIC-INDIC DIGIT THREE: a digit to \d, not to TensorBoard
        "scalars=1\tb=2",
        "   ",
        5,
        True,
        ["scalars=1"],
        {"scalars": 1},
    ],
)
def test_bad_samples_per_plugin_is_refused(value):
    assert rejected_field(samples_per_plugin=value) == "samples_per_plugin"


# --- window_title ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "title",
    [
        "My runs",
        "--bind_all",
        "<script>alert(1)</script>",
        "say \"hi\" & 'bye'",
        "ünïcode ✓ 実験",
        "t" * MAX_TITLE_LENGTH,
    ],
)
def test_window_title_is_accepted_verbatim(title):
    assert parse(window_title=title).window_title == title


@pytest.mark.parametrize("title", [None, "", "   "])
def test_empty_window_title_waits_for_the_directory_name(title):
    assert parse(window_title=title).window_title == ""


def test_surrounding_whitespace_is_stripped_from_the_title():
    assert parse(window_title="  Mine  ").window_title == "Mine"
    # strip() takes a trailing line break with it, so what is kept has no control character.
    assert parse(window_title="Mine\n").window_title == "Mine"


def test_title_length_is_counted_after_stripping():
    title = "t" * MAX_TITLE_LENGTH
    assert parse(window_title=f"  {title}  ").window_title == title


@pytest.mark.parametrize(
    "title",
    [
        "a\x07b",
        "a\nb",
        "a\rb",
        "a\tb",
        "a\x00b",
        "a\x1b[31mb",
        "a\x7fb",
        "t" * (MAX_TITLE_LENGTH + 1),
        5,
        True,
        ["title"],
    ],
)
def test_bad_window_title_is_refused(title):
    assert rejected_field(window_title=title) == "window_title"


@pytest.mark.parametrize("title", ["a\x9b2Jb", "a\x85b"])
def test_c1_control_characters_are_refused_in_titles(title):
    assert rejected_field(window_title=title) == "window_title"


# --- resolved ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("real", "title"),
    [
        ("/data/exp-7", "exp-7"),
        ("/data/exp-7/", "exp-7"),
        ("/data/runs with spaces", "runs with spaces"),
        ("/", "TensorBoard"),
    ],
)
def test_title_is_derived_from_the_resolved_directory(real, title):
    resolved = parse().resolved(real)
    assert resolved.window_title == title
    assert resolved.logdir == real


def test_resolved_keeps_an_explicit_title():
    assert parse(window_title="Mine").resolved("/data/exp-7").window_title == "Mine"
    assert parse(window_title="  ").resolved("/data/x").window_title == "x"


def test_derived_title_is_cut_to_the_title_limit():
    name = "d" * 255
    assert parse().resolved(f"/data/{name}").window_title == "d" * MAX_TITLE_LENGTH


def test_resolved_changes_only_logdir_and_title():
    options = parse(port=7000, priority=4, reload_interval=3, samples_per_plugin="images=2")
    resolved = options.resolved("/data/r")
    assert options.logdir == "runs" and options.window_title == ""  # frozen original
    assert {k: v for k, v in resolved.to_json().items() if k not in ("logdir", "window_title")} == {
        k: v for k, v in options.to_json().items() if k not in ("logdir", "window_title")
    }


def test_derived_title_has_no_control_characters():
    title = parse().resolved("/data/evil\x1b[2J\x07").window_title
    assert not any(ord(c) < 32 or ord(c) == 127 for c in title)


# --- reuse_key -------------------------------------------------------------------------------


def test_reuse_key_ignores_priority():
    base = parse().resolved("/r")
    assert base.reuse_key() == parse(priority=9).resolved("/r").reuse_key()
    assert base.reuse_key() == parse(priority=-5).resolved("/r").reuse_key()
    assert hash(base.reuse_key()) == hash(parse(priority=1).resolved("/r").reuse_key())


@pytest.mark.parametrize(
    ("changes", "real"),
    [
        ({}, "/other/r"),
        ({"window_title": "x"}, "/r"),
        ({"port": 7000}, "/r"),
        ({"bind_all": True}, "/r"),
        ({"reload_interval": 2}, "/r"),
        ({"reload_multifile": False}, "/r"),
        ({"samples_per_plugin": "images=1"}, "/r"),
    ],
)
def test_reuse_key_tells_other_options_apart(changes, real):
    assert parse().resolved("/r").reuse_key() != parse(**changes).resolved(real).reuse_key()


def test_reuse_key_tells_hosts_apart():
    assert (
        parse(port=7000, host="127.0.0.1").reuse_key()
        != parse(port=7000, host="127.0.0.2").reuse_key()
    )


# --- build_argv ------------------------------------------------------------------------------


def argv_for(options, path_prefix="/base/tb/ID/", **where):
    return build_argv(options, python="/py", path_prefix=path_prefix, **where)


def value_after(argv, flag):
    assert argv.count(flag) == 1, argv
    return argv[argv.index(flag) + 1]


@pytest.mark.parametrize("where", [{}, {"unix_socket": "/s", "port": 7000}])
def test_exactly_one_transport_is_required(where):
    with pytest.raises(ValueError):
        argv_for(parse().resolved("/r"), **where)


def test_unix_socket_argv_has_no_network_flags():
    argv = argv_for(parse().resolved("/r"), unix_socket="/s/ID.sock")
    assert argv[:5] == ["/py", "-m", "jupyter_forgather_tb.runner", "--unix-socket", "/s/ID.sock"]
    assert argv[5:8] == ["--fast-loader-above", "0", "--"]
    assert not {"--port", "--host", "--bind_all"} & set(argv)
    assert not any(arg.startswith(("--port=", "--host=", "--bind_all=")) for arg in argv)
    assert value_after(argv, "--logdir") == "/r"


def test_unix_socket_argv_ignores_network_options():
    # A TCP-looking option set still gets no network flag when a socket is chosen.
    argv = argv_for(parse(port=7000, host="::1").resolved("/r"), unix_socket="/s")
    assert not {"--port", "--host", "--bind_all"} & set(argv)


def test_tcp_argv_has_port_and_loopback_host():
    argv = argv_for(parse(port=7000).resolved("/r"), port=7000)
    assert value_after(argv, "--port") == "7000"
    assert value_after(argv, "--host") == "127.0.0.1"
    assert "--bind_all" not in argv and "--unix-socket" not in argv
    assert argv[:3] == ["/py", "-m", "jupyter_forgather_tb.runner"]
    assert argv[3:6] == ["--fast-loader-above", "0", "--"]


def test_tcp_argv_keeps_the_chosen_host():
    argv = argv_for(parse(port=7000, host="::1").resolved("/r"), port=7000)
    assert value_after(argv, "--host") == "::1"


def test_tcp_argv_defaults_the_host_when_options_have_none():
    # e.g. a TCP job whose port the manager picked: options.port and options.host are None
    argv = argv_for(parse().resolved("/r"), port=7001)
    assert value_after(argv, "--port") == "7001"
    assert value_after(argv, "--host") == DEFAULT_HOST


def test_bind_all_argv_has_bind_all_and_no_host():
    argv = argv_for(parse(port=7000, bind_all=True, host="127.0.0.1").resolved("/r"), port=7000)
    assert argv.count("--bind_all") == 1
    assert "--host" not in argv
    assert value_after(argv, "--port") == "7000"


@pytest.mark.parametrize(
    ("prefix", "passed"),
    [
        ("/base/tb/ID/", "/base/tb/ID"),
        ("/base/tb/ID", "/base/tb/ID"),
        ("/base/tb/ID//", "/base/tb/ID"),
        ("/", ""),
    ],
)
def test_path_prefix_trailing_slash_is_stripped(prefix, passed):
    argv = argv_for(parse().resolved("/r"), path_prefix=prefix, unix_socket="/s")
    assert value_after(argv, "--path_prefix") == passed


@pytest.mark.parametrize(
    "title",
    [
        "--bind_all",
        "two words",
        'a "quoted" title',
        "it's",
        "--logdir=/etc --host 0.0.0.0",
        "<script>alert(1)</script>",
        "$(touch /tmp/x); `id`",
    ],
)
def test_title_is_one_argument(title):
    argv = argv_for(parse(window_title=title).resolved("/r"), unix_socket="/s")
    titles = [arg for arg in argv if arg.startswith("--window_title")]
    assert titles == [f"--window_title={title}"]
    assert "--bind_all" not in argv
    assert argv.count("--logdir") == 1 and "--host" not in argv


def test_derived_title_is_passed():
    argv = argv_for(parse().resolved("/data/exp-7"), unix_socket="/s")
    assert "--window_title=exp-7" in argv


def test_optional_flags_appear_only_when_set():
    plain = argv_for(parse().resolved("/r"), unix_socket="/s")
    assert not any(a.startswith(("--reload", "--samples")) for a in plain)
    full = argv_for(
        parse(reload_interval=2, reload_multifile=False, samples_per_plugin="images=3").resolved(
            "/r"
        ),
        unix_socket="/s",
    )
    assert value_after(full, "--reload_interval") == "2.0"
    assert "--reload_multifile=false" in full
    assert value_after(full, "--samples_per_plugin") == "images=3"


@pytest.mark.parametrize(
    ("value", "flag"), [(True, "--reload_multifile=true"), (False, "--reload_multifile=false")]
)
def test_reload_multifile_is_spelled_for_tensorboard(value, flag):
    argv = argv_for(parse(reload_multifile=value).resolved("/r"), unix_socket="/s")
    assert [a for a in argv if a.startswith("--reload_multifile")] == [flag]


@pytest.mark.parametrize(("value", "passed"), [(0.5, "0.5"), (30, "30.0"), (0.001, "0.001")])
def test_reload_interval_is_passed_as_a_float(value, passed):
    argv = argv_for(parse(reload_interval=value).resolved("/r"), unix_socket="/s")
    assert float(value_after(argv, "--reload_interval")) == value
    assert value_after(argv, "--reload_interval") == passed


# --- load_fast ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "stored"),
    [(None, "auto"), ("auto", "auto"), ("true", "true"), ("false", "false"), (True, "true"),
     (False, "false")],
)  # fmt: skip
def test_load_fast_is_normalized(value, stored):
    assert parse(load_fast=value).load_fast == stored


@pytest.mark.parametrize("value", ["", "yes", "TRUE", "rust", 1, 0, [], {}, 1.5])
def test_load_fast_must_be_auto_true_or_false(value):
    error = rejected({"logdir": "runs", "load_fast": value})
    assert error.field == "load_fast"
    assert error.message == "must be 'auto', 'true' or 'false'"


@pytest.mark.parametrize(
    ("value", "threshold", "flag"),
    [("true", 0, "--load_fast=true"), ("true", 10, "--load_fast=true"),
     ("false", 10, "--load_fast=false")],
)  # fmt: skip
def test_load_fast_is_spelled_for_tensorboard(value, threshold, flag):
    argv = argv_for(
        parse(load_fast=value).resolved("/r"), unix_socket="/s", fast_loader_above=threshold
    )
    assert [a for a in argv if a.startswith("--load_fast")] == [flag]
    assert "--fast-loader-above" not in argv


@pytest.mark.parametrize("threshold", [0, 1000])
def test_auto_leaves_the_choice_to_the_runner(threshold):
    argv = argv_for(parse().resolved("/r"), unix_socket="/s", fast_loader_above=threshold)
    assert not any(a.startswith("--load_fast") for a in argv)
    # A runner flag, before the "--" that starts TensorBoard's own flags.
    assert argv.index("--fast-loader-above") < argv.index("--")
    assert value_after(argv, "--fast-loader-above") == str(threshold)


@pytest.mark.parametrize("load_fast", ["auto", "true"])
def test_a_local_socket_job_that_may_use_rust_asks_for_a_private_network(load_fast):
    options = parse(load_fast=load_fast).resolved("/r")
    argv = argv_for(options, unix_socket="/s", private_network=True)
    assert argv.index("--private-network") < argv.index("--")
    assert "--private-network" not in argv_for(options, unix_socket="/s")


@pytest.mark.parametrize(
    ("body", "where"),
    [({"load_fast": "false"}, {"unix_socket": "/s"}),  # the Python loader opens no port
     ({"port": 7000}, {"port": 7000}),  # must stay reachable on the host
     ({"bind_all": True}, {"port": 7000})],
)  # fmt: skip
def test_no_private_network_where_it_would_hide_nothing_or_break_the_job(body, where):
    argv = argv_for(parse(**body).resolved("/r"), private_network=True, **where)
    assert "--private-network" not in argv


@pytest.mark.parametrize("logdir", ["s3://bucket/runs", "gs://bucket/runs"])
def test_remote_log_directories_keep_the_network(logdir):
    options, _ = parse_launch({"logdir": logdir})
    argv = build_argv(
        options, python="/py", path_prefix="/tb/x", unix_socket="/s", private_network=True
    )
    assert "--private-network" not in argv


def test_load_fast_is_part_of_the_reuse_key():
    assert parse(load_fast="true").reuse_key() != parse().reuse_key()


@pytest.mark.parametrize(
    "where",
    [{"unix_socket": "/s"}, {"port": 7000}],
)
def test_argv_is_a_list_of_str(where):
    options = parse(
        port=7000, reload_interval=2, reload_multifile=True, samples_per_plugin="a=1"
    ).resolved("/r")
    argv = argv_for(options, **where)
    assert isinstance(argv, list)
    assert argv and all(type(arg) is str for arg in argv)


# --- limits: the runner's own flags -----------------------------------------------------------


def test_limits_add_runner_flags_before_everything_else():
    files = ["/sys/fs/cgroup/memory/a/job-x/cgroup.procs", "/sys/fs/cgroup/cpu/job-x/cgroup.procs"]
    argv = argv_for(parse().resolved("/r"), unix_socket="/s", join_cgroups=files, nice=-5)
    assert argv[3:6] == [f"--join-cgroup={files[0]}", f"--join-cgroup={files[1]}", "--nice=-5"]
    assert argv.index("--nice=-5") < argv.index("--")
    assert argv[6:8] == ["--unix-socket", "/s"]


def test_no_limits_add_nothing():
    options = parse().resolved("/r")
    assert argv_for(options, unix_socket="/s", join_cgroups=[], nice=None) == argv_for(
        options, unix_socket="/s"
    )


@pytest.mark.parametrize("nice", [-21, 20, True, 1.5, "10"])
def test_a_niceness_out_of_range_is_refused(nice):
    with pytest.raises(ValueError, match="-20 to 19"):
        argv_for(parse().resolved("/r"), unix_socket="/s", nice=nice)


# --- logdirs: comparing several folders --------------------------------------------------------


def test_logdirs_as_an_object_keep_their_names():
    options = parse_launch({"logdirs": {"b": "runs/b", "a": "/data/a"}})[0]
    assert options.logdir == ""
    assert options.logdirs == (("b", "runs/b"), ("a", "/data/a"))


def test_logdirs_as_a_list_wait_for_names():
    assert parse_launch({"logdirs": ["x", "y/"]})[0].logdirs == (("", "x"), ("", "y/"))


def test_compared_sorts_the_folders_and_titles_the_job_after_them():
    options = parse_launch({"logdirs": ["x", "y"]})[0].compared([("b", "/r/y"), ("a", "/r/x")])
    assert options.logdirs == (("a", "/r/x"), ("b", "/r/y"))
    assert options.window_title == "compare: a, b"
    titled = parse_launch({"logdirs": ["x"], "window_title": "mine"})[0].compared([("a", "/r")])
    assert titled.window_title == "mine"


def test_a_compare_job_shows_its_folders_and_round_trips_through_its_body():
    options = parse_launch({"logdirs": ["x", "y"]})[0].compared([("a", "/r/x"), ("b", "/r/y")])
    shown = options.to_json()
    assert shown["logdir"] == "a=/r/x, b=/r/y"
    assert shown["logdirs"] == {"a": "/r/x", "b": "/r/y"}
    assert "logdir" not in options.to_body()
    assert parse_launch(options.to_body())[0] == options
    assert "logdirs" not in parse().to_json()  # a job on one folder shows no logdirs
    assert parse_launch(parse().resolved("/r").to_body())[0] == parse().resolved("/r")


def test_the_same_folders_in_any_order_are_the_same_launch():
    def key(body):
        return parse_launch({"logdirs": body})[0].compared(list(body.items())).reuse_key()

    assert key({"a": "/x", "b": "/y"}) == key({"b": "/y", "a": "/x"})
    assert key({"a": "/x", "b": "/y"}) != key({"a": "/y", "b": "/x"})
    assert hash(key({"a": "/x"}))


@pytest.mark.parametrize(
    ("logdirs", "words"),
    [
        ({}, "at least one"),
        ([], "at least one"),
        ("runs", "object"),
        (3, "object"),
        ({"a": "x,y"}, "comma or colon"),
        ({"a": "x:y"}, "comma or colon"),
        (["x:y"], "comma or colon"),
        ({"a": "s3://bucket/p"}, "cannot be compared"),
        ({"a": "gs://bucket/p"}, "cannot be compared"),
        ({"a": "http://x/"}, "cannot be compared"),
        ({"a": "simplecache::x"}, "cannot be compared"),
        ({"a": ""}, "is required"),
        ({"a": None}, "string path"),
        ({"a": "x\ny"}, "line breaks"),
        ({"": "x"}, "not blank"),
        ({" a": "x"}, "surrounding spaces"),
        ({".a": "x"}, "start with '.'"),
        ({"a\x1b": "x"}, "control characters"),
        ({"a,b": "x"}, "comma, colon"),
        ({"a:b": "x"}, "comma, colon"),
        ({"a=b": "x"}, "comma, colon"),
        ({"a/b": "x"}, "comma, colon"),
        ({"a\\b": "x"}, "comma, colon"),
        ({"n" * 101: "x"}, "longer than 100"),
        ({f"n{i}": "x" for i in range(33)}, "at most 32"),
    ],
)
def test_bad_logdirs_are_refused(logdirs, words):
    error = rejected({"logdirs": logdirs})
    assert error.field == "logdirs"
    assert words in error.message, error.message
    assert len(error.message) < 300  # a long path or name is cut short in the message


def test_logdir_and_logdirs_exclude_each_other():
    assert rejected({"logdir": "runs", "logdirs": ["x"]}).field == "logdirs"
    assert "logdirs" in rejected({}).message  # a missing logdir says there is another way


def test_long_paths_are_cut_short_in_messages():
    assert len(rejected({"logdirs": {"a": "x" * 4000 + ":"}}).message) < 300


@pytest.mark.parametrize(
    ("paths", "names"),
    [
        ([("runs/a", "/r/runs/a"), ("b/a/", "/r/b/a")], ["a", "a-2"]),
        ([("a", "/r/a"), ("a", "/s/a"), ("a-2", "/t/a-2")], ["a", "a-2", "a-2-2"]),
        ([(".", "/r/proj"), ("..", "/r"), ("~", "/home/me")], ["proj", "r", "me"]),
    ],
)
def test_member_names_come_from_the_folders_made_unique(paths, names):
    assert member_names(paths) == names
