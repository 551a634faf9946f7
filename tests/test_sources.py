"""Remote source URLs and named connections: the pure parts every process shares."""

from __future__ import annotations

import pytest

from jupyter_forgather_tb.common.connections import (
    Connection,
    check_connection_for,
    parse_connections,
    public_view,
)
from jupyter_forgather_tb.common.sources import SourceURL, is_remote, parse_source_url, url_scheme


@pytest.mark.parametrize(
    ("url", "parsed", "canonical"),
    [
        ("s3://bucket/runs/", SourceURL("s3", "bucket", "runs"), "s3://bucket/runs"),
        ("GS://bucket", SourceURL("gs", "bucket", ""), "gs://bucket"),
        ("abfs://logs/a/b", SourceURL("az", "logs", "a/b"), "az://logs/a/b"),
        (
            "ssh://me@login1.example:2222/data/runs",
            SourceURL("ssh", "login1.example", "data/runs", user="me", port=2222),
            "ssh://me@login1.example:2222/data/runs",
        ),
        ("ssh://[::1]/~/runs", SourceURL("ssh", "::1", "~/runs"), "ssh://[::1]/~/runs"),
    ],
)
def test_source_urls_parse_into_their_parts_and_print_canonically(url, parsed, canonical):
    assert parse_source_url(url) == parsed
    assert str(parsed) == canonical
    assert is_remote(url)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://host/runs", "are accepted"),
        ("s3://Bad_Bucket/x", "not a valid S3 bucket name"),
        ("az://a--b/x", "not a valid Azure container name"),
        ("az://logs@account/x", "in a connection"),
        ("s3://bucket/a/../b", "'..'"),
        ("ssh://host:99999/x", "not a port number"),
        ("ssh://bad user@host/x", "not a valid user name"),
        ("gs://bucket/x?y=1", "query"),
    ],
)
def test_bad_source_urls_are_refused_in_words(url, words):
    with pytest.raises(ValueError, match=words.replace(".", r"\.")):
        parse_source_url(url)


def test_a_local_path_has_no_scheme():
    assert url_scheme("runs/exp1") is None
    assert not is_remote("/data/runs")


CONFIG = {
    "minio": {"protocol": "s3", "endpoint_url": "http://127.0.0.1:9000", "secret": "s3cr3t"},
    "store": {"protocol": "abfs", "connection_string": "AccountKey=k3y;", "account_name": "a"},
    "cluster": {"protocol": "ssh", "host": "login1", "port": 2222, "client_keys": ["/k"]},
}


def test_connections_parse_and_show_no_secret():
    connections = parse_connections(CONFIG)
    assert connections["store"].protocol == "az"
    views = [public_view(conn) for conn in connections.values()]
    assert views[0] == {
        "name": "minio",
        "protocol": "s3",
        "settings": {"endpoint_url": "http://127.0.0.1:9000"},
    }
    assert "s3cr3t" not in repr(connections) and "k3y" not in str(views)


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"m": {"protocol": "ftp"}}, "'m': 'protocol' must be one of"),
        ({"m": {"protocol": "s3", "account_key": "x"}}, "'m': unknown setting 'account_key'"),
        ({"m": {"protocol": "ssh", "port": "22"}}, "'m': 'port' must be a port number"),
        ({"m": {"protocol": "gs", "anon": "yes"}}, "'m': 'anon' must be true or false"),
        ({"bad name": {"protocol": "s3"}}, "connection name 'bad name'"),
        ({"m": "s3"}, "'m' must be a dict"),
    ],
)
def test_bad_connections_name_the_entry_and_the_key(config, words):
    with pytest.raises(ValueError, match=words):
        parse_connections(config)


def test_a_connection_must_match_the_url_scheme():
    url = parse_source_url("gs://bucket/runs")
    check_connection_for(url, None)
    check_connection_for(url, Connection("g", "gs", {}))
    with pytest.raises(ValueError, match="'minio' is for s3:// sources, not gs://"):
        check_connection_for(url, Connection("minio", "s3", {}))


def test_a_bad_connections_setting_stops_the_extension_with_its_reason():
    from traitlets import TraitError

    from jupyter_forgather_tb.server.app import ForgatherTB

    with pytest.raises(TraitError, match=r"c\.ForgatherTB\.connections: connection 'm': unknown"):
        ForgatherTB(connections={"m": {"protocol": "s3", "bogus": 1}})


def test_an_unchanged_source_is_polled_less_and_less_often_up_to_the_bound():
    from jupyter_forgather_tb.job.mirror import MAX_IDLE_INTERVAL, idle_wait

    waits = [idle_wait(0.5, unchanged) for unchanged in range(10)]
    assert waits[:4] == [0.5, 1.0, 2.0, 4.0]
    assert waits == sorted(waits) and waits[-1] == MAX_IDLE_INTERVAL
    # A sync interval above the bound is kept as it is; a change starts again from it.
    assert idle_wait(120.0, 5) == 120.0
    assert idle_wait(0.5, 0) == 0.5


def test_the_first_copy_reports_its_progress_and_time_left(monkeypatch):
    from jupyter_forgather_tb.job import mirror

    clock = iter([100.0, 110.0, 130.0])
    monkeypatch.setattr(mirror.time, "monotonic", lambda: next(clock))
    progress = mirror.Progress()  # started at 100
    progress.files_total, progress.bytes_total = 4, 1000
    progress.files, progress.bytes = 1, 250
    assert progress.to_json() == {
        "files": 1,
        "files_total": 4,
        "bytes": 250,
        "bytes_total": 1000,
        "eta_seconds": 30.0,  # 250 bytes took 10 s: 750 more take 30 s
        "done": False,
    }
    progress.done = True
    assert progress.to_json()["eta_seconds"] == 0.0


@pytest.mark.parametrize(
    ("scheme", "extra"), [("s3", "s3"), ("gs", "gcs"), ("az", "azure"), ("ssh", "ssh")]
)
def test_a_missing_extra_says_which_pip_install_fixes_it(scheme, extra, monkeypatch):
    import sys

    from jupyter_forgather_tb.common.remotefs import SourceError, open_source

    package = {"s3": "s3fs", "gs": "gcsfs", "az": "adlfs", "ssh": "sshfs"}[scheme]
    monkeypatch.setitem(sys.modules, package, None)  # as if it were not installed
    monkeypatch.setitem(sys.modules, f"{package}.core", None)
    with pytest.raises(SourceError) as caught:
        open_source(parse_source_url(f"{scheme}://bucket/runs"), None)
    assert caught.value.fatal
    assert f'pip install "jupyter-forgather-tb[{extra}]"' in caught.value.message
