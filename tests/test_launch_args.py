"""Launch options as command-line arguments: same names, values and messages as the API."""

from __future__ import annotations

import argparse

import pytest

from jupyter_forgather_tb.clients.launch_args import add_launch_arguments, launch_body
from jupyter_forgather_tb.common.options import OptionError


def body(*words):
    parser = argparse.ArgumentParser()
    add_launch_arguments(parser, logdir_flag=False)
    return launch_body(parser.parse_args(["runs", *words]))


def test_only_given_options_are_sent():
    assert body() == {"logdir": "runs"}
    assert body("--title", "T", "--port", "7000", "--new") == {
        "logdir": "runs", "window_title": "T", "port": 7000, "force_new": True,
    }  # fmt: skip


@pytest.mark.parametrize(("word", "value"), [("false", False), ("no", False), ("TRUE", True)])
def test_reload_multifile_false_is_kept(word, value):
    assert body("--reload_multifile", word)["reload_multifile"] is value


@pytest.mark.parametrize(
    ("word", "value"), [("auto", "auto"), ("TRUE", "true"), ("no", "false"), ("false", "false")]
)
def test_load_fast_words(word, value):
    assert body("--load_fast", word)["load_fast"] == value


@pytest.mark.parametrize(
    ("words", "field"),
    [
        (("--port", "abc"), "port"),
        (("--priority", "high"), "priority"),
        (("--reload_interval", "soon"), "reload_interval"),
        (("--reload_multifile", "maybe"), "reload_multifile"),
        (("--port", "80"), "port"),
        (("--load_fast", "rust"), "load_fast"),
    ],
)
def test_bad_values_get_the_apis_messages(words, field):
    with pytest.raises(OptionError) as error:
        body(*words)
    assert error.value.field == field


@pytest.mark.parametrize(
    ("word", "value"),
    [("2G", "2G"), ("512M", "512M"), ("1073741824", 1073741824), ("lots", "lots")],
)
def test_memory_limit_goes_to_the_server_as_given(word, value):
    # Its maximum is a server setting, so the server checks it (and explains "lots").
    assert body("--memory_limit", word) == {"logdir": "runs", "memory_limit": value}


def magic_body(*words):
    parser = argparse.ArgumentParser()
    add_launch_arguments(parser, logdir_flag=True)
    return launch_body(parser.parse_args(list(words)))


@pytest.mark.parametrize(
    ("words", "sent"),
    [
        (("runs",), {"logdir": "runs"}),
        (("runs/lr=0.1",), {"logdir": "runs/lr=0.1"}),  # "=" after a "/": a path
        (("./lr=0.1",), {"logdir": "./lr=0.1"}),
        (("a/runs", "b/runs"), {"logdirs": ["a/runs", "b/runs"]}),
        (("base=a/runs", "tuned=/b/runs"), {"logdirs": {"base": "a/runs", "tuned": "/b/runs"}}),
        (("only=a/runs",), {"logdirs": {"only": "a/runs"}}),
    ],
)
def test_several_or_named_log_directories_become_logdirs(words, sent):
    # The CLI takes them as positionals, --logdir, or both; the magic as --logdir.
    flags = [word for logdir in words[1:] for word in ("--logdir", logdir)]
    parser = argparse.ArgumentParser()
    add_launch_arguments(parser, logdir_flag=False)
    assert launch_body(parser.parse_args(list(words))) == sent
    assert launch_body(parser.parse_args([words[0], *flags])) == sent
    assert magic_body("--logdir", words[0], *flags) == sent


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (("a=x", "y"), "give every folder a name (NAME=PATH) or none"),
        (("a=x", "a=y"), "the name 'a' is given twice"),
        (("a=x,y",), "comma or colon"),
        (("a:b=x",), "comma, colon"),
    ],
)
def test_bad_compare_arguments_get_clear_messages(words, message):
    with pytest.raises(OptionError) as error:
        magic_body(*(word for logdir in words for word in ("--logdir", logdir)))
    assert error.value.field == "logdirs"
    assert message in error.value.message


def test_a_launch_needs_a_log_directory():
    parser = argparse.ArgumentParser()
    add_launch_arguments(parser, logdir_flag=False)
    with pytest.raises(OptionError) as error:
        launch_body(parser.parse_args([]))
    assert error.value.field == "logdir"


def test_a_connection_is_sent_by_name_and_a_bad_name_gets_the_apis_message():
    parser = argparse.ArgumentParser()
    add_launch_arguments(parser, logdir_flag=True)
    args = parser.parse_args(["--logdir", "s3://bucket/runs", "--connection", "minio"])
    assert launch_body(args) == {"logdir": "s3://bucket/runs", "connection": "minio"}
    with pytest.raises(OptionError) as caught:
        body("--connection", "not a name")
    assert caught.value.field == "connection"
