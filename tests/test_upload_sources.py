"""The uploader, the CLI's --connection and the picker's remote listing on GCS, Azure and SSH.

Each against a real server on loopback (conftest's session fixtures): the GCS emulator,
Azurite and a private sshd; S3 is ``test_s3_upload.py``'s (moto).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import uuid
from dataclasses import dataclass

import pytest
from conftest import write_scalars
from s3_helpers import scalar_records

from jupyter_forgather_tb.clients.cli import main
from jupyter_forgather_tb.clients.upload import PARTS_FOLDER, Uploader
from jupyter_forgather_tb.common.connections import parse_connection

SCHEMES = ("gs", "az", "ssh")
# Every test here starts (or reuses) an emulator or an sshd, which the kinds' static
# look at fixtures cannot see through ``servers``.
pytestmark = pytest.mark.server


@dataclass
class Store:
    """A fresh place in one store: its URL, the connection that opens it, and its settings."""

    scheme: str
    url: str
    name: str
    entry: dict

    @property
    def connection(self):
        return parse_connection(self.name, self.entry)


@pytest.fixture
def servers(request):
    """The session's server for a scheme (conftest's fixtures), started on first use."""
    names = {"gs": "gcs_server", "az": "azurite_server", "ssh": "sshd_server"}
    return lambda scheme: request.getfixturevalue(names[scheme])


@pytest.fixture(params=SCHEMES)
def store(request, servers, tmp_path) -> Store:
    """A fresh bucket, container or folder in the parametrized scheme's server."""
    scheme = request.param
    server = servers(scheme)
    name = f"{scheme}-test"
    if scheme == "gs":
        entry = {"protocol": "gs", "endpoint_url": server.extra["endpoint"], "anon": True}
        bucket = f"tb-{uuid.uuid4().hex[:12]}"
        fs = parse_and_open(name, entry, f"gs://{bucket}")
        fs.mkdir(bucket)
        return Store(scheme, f"gs://{bucket}/exp", name, entry)
    if scheme == "az":
        entry = {"protocol": "az", "connection_string": server.extra["connection_string"]}
        container = f"tb-{uuid.uuid4().hex[:12]}"
        fs = parse_and_open(name, entry, f"az://{container}")
        fs.mkdir(container)
        return Store(scheme, f"az://{container}/exp", name, entry)
    entry = {
        "protocol": "ssh",
        "client_keys": server.extra["client_key"],
        "known_hosts": server.extra["known_hosts"],
        "username": "root",
    }
    return Store(scheme, f"ssh://127.0.0.1:{server.port}{tmp_path}/remote/exp", name, entry)


def parse_and_open(name: str, entry: dict, url: str):
    from jupyter_forgather_tb.common.remotefs import open_source
    from jupyter_forgather_tb.common.sources import parse_source_url

    return open_source(parse_source_url(url), parse_connection(name, entry)).fs


def remote_bytes(store: Store, path: str) -> bytes:
    """A file's bytes in the store, read back with a fresh filesystem."""
    uploader = Uploader(os.devnull, store.url, connection=store.connection)
    with uploader.fs.open(uploader.remote.full_path(path), "rb") as remote:
        return remote.read()


def test_a_grown_event_file_sends_only_its_new_bytes(store, tmp_path):
    local = tmp_path / "logs"
    write_scalars(local / "run", "loss", [1.0, 0.5])
    (name,) = os.listdir(local / "run")
    path = local / "run" / name
    uploader = Uploader(str(local), store.url, connection=store.connection)
    first = uploader.sync()
    assert (first.files, first.bytes_sent) == (1, path.stat().st_size)

    old_size = path.stat().st_size
    new = scalar_records("loss", [0.25, 0.125], start_step=2, header=False)
    with open(path, "ab") as out:
        out.write(new)
    grown = uploader.sync()
    assert (grown.files, grown.bytes_sent) == (1, len(new))
    assert grown.bytes_copied == (old_size if store.scheme == "gs" else 0)
    assert remote_bytes(store, f"run/{name}") == path.read_bytes()
    assert uploader.sync().files == 0  # nothing new: nothing sent

    # A second uploader (a restarted script) finds what is there and appends too.
    with open(path, "ab") as out:
        out.write(new)
    again = Uploader(str(local), store.url, connection=store.connection).sync()
    assert (again.files, again.bytes_sent) == (1, len(new))
    assert remote_bytes(store, f"run/{name}") == path.read_bytes()
    listed = uploader.fs.find(uploader.remote.root)
    assert not [p for p in listed if PARTS_FOLDER in p]  # GCS's temporary parts are gone


def test_the_cli_uploads_with_a_connection_of_the_jupyter_config(
    store, tmp_path, monkeypatch, capsys
):
    config_dir = tmp_path / "jupyter-config"
    config_dir.mkdir()
    (config_dir / "jupyter_server_config.json").write_text(
        json.dumps({"ForgatherTB": {"connections": {store.name: store.entry}}})
    )
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(config_dir))
    local = tmp_path / "logs"
    write_scalars(local / "a", "loss", [1.0])
    (name,) = os.listdir(local / "a")

    assert main(["upload", str(local), store.url, "--connection", store.name]) == 0
    assert "Uploaded 1 file(s)" in capsys.readouterr().err
    assert remote_bytes(store, f"a/{name}") == (local / "a" / name).read_bytes()

    with pytest.raises(SystemExit) as caught:
        main(["upload", str(local), store.url, "--connection", "nope"])
    assert caught.value.code == 2
    assert "no connection named 'nope'" in capsys.readouterr().err


def test_an_unknown_ssh_host_key_is_refused_with_a_clear_message(servers, tmp_path):
    server = servers("ssh")
    entry = {
        "protocol": "ssh",
        "client_keys": server.extra["client_key"],
        "known_hosts": server.extra["other_known_hosts"],  # another key for this address
        "username": "root",
    }
    local = tmp_path / "logs"
    write_scalars(local / "a", "loss", [1.0])
    url = f"ssh://127.0.0.1:{server.port}{tmp_path}/remote"
    from jupyter_forgather_tb.common.remotefs import SourceError

    with pytest.raises(SourceError, match=r"host key of 127\.0\.0\.1 is unknown or has changed"):
        Uploader(str(local), url, connection=parse_connection("c", entry)).sync()
    assert not (tmp_path / "remote").exists()


# -- the picker: GET logdirs on a remote source -----------------------------------------------


@pytest.fixture
def listed_store(store, tb_config):
    """A store with three runs in two folders, and a server (``api``) that knows its connection."""
    tb_config["connections"] = {store.name: store.entry}
    tb_config["tensorboard_python"] = sys.executable
    return store


async def test_runs_of_a_remote_source_are_listed_for_the_picker(listed_store, api, tmp_path):
    store = listed_store
    local = tmp_path / "logs"
    for run in ("a/lr1", "a/lr2", "b/x"):
        write_scalars(local / run, "loss", [1.0])
    (local / "a" / "notes").mkdir()
    Uploader(str(local), store.url, connection=store.connection).sync()

    answer = await api.json(
        "GET", "logdirs", params={"path": store.url, "connection": store.name}, expect=200
    )
    assert answer["path"] == store.url and answer["truncated"] is False
    shown = {entry["path"]: entry["runs"] for entry in answer["logdirs"]}
    url = store.url
    assert shown == {
        url: 3,
        f"{url}/a": 2,
        f"{url}/a/lr1": 1,
        f"{url}/a/lr2": 1,
        f"{url}/b": 1,
        f"{url}/b/x": 1,
    }
    assert all(entry["last_modified"] >= 0 for entry in answer["logdirs"])


@pytest.mark.parametrize("store", ["gs"], indirect=True)
async def test_a_missing_bucket_is_a_listing_error_in_words(listed_store, api):
    url = "gs://no-such-bucket-here-x/runs"
    response = await api.call(
        "GET", "logdirs", params={"path": url, "connection": listed_store.name}
    )
    assert response.code == 400
    answer = json.loads(response.body)
    assert answer == {"message": "bucket 'no-such-bucket-here-x' does not exist", "field": "path"}


@pytest.mark.tb_config(remote_list_timeout=1.0)
async def test_a_listing_that_hangs_is_stopped_and_says_so(api, tb_config):
    with socket.socket() as silent:  # accepts, and never says a word: an SSH host that hangs
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"ssh://127.0.0.1:{silent.getsockname()[1]}/runs"
        response = await api.call("GET", "logdirs", params={"path": url})
    assert response.code == 504
    assert json.loads(response.body)["message"].startswith(f"listing {url} took longer than 1 s")


async def test_a_listing_names_the_connection_it_does_not_know(api):
    response = await api.call(
        "GET", "logdirs", params={"path": "s3://bucket/runs", "connection": "nope"}
    )
    assert response.code == 400
    assert json.loads(response.body) == {
        "message": "connection: no connection named 'nope' on this server (none are configured)",
        "field": "connection",
    }


@pytest.mark.parametrize("store", ["az", "ssh"], indirect=True)
def test_an_append_cut_short_is_completed_not_repeated_by_the_next_sync(
    store, tmp_path, monkeypatch
):
    from jupyter_forgather_tb.clients import upload
    from jupyter_forgather_tb.common.remotefs import SourceError

    local = tmp_path / "logs"
    write_scalars(local / "run", "loss", [1.0])
    (name,) = os.listdir(local / "run")
    path = local / "run" / name
    uploader = Uploader(str(local), store.url, connection=store.connection)
    uploader.sync()
    with open(path, "ab") as out:
        out.write(scalar_records("loss", [0.5, 0.25, 0.125], start_step=1, header=False))

    # The connection drops halfway through the append (a drop cannot be timed for real).
    real_copy = upload._copy

    def half_then_drop(source, out, length):
        real_copy(source, out, length // 2)
        out.flush()
        raise ConnectionResetError("connection lost")

    monkeypatch.setattr(upload, "_copy", half_then_drop)
    with pytest.raises(SourceError):
        uploader.sync()
    monkeypatch.setattr(upload, "_copy", real_copy)
    uploader.sync()
    assert remote_bytes(store, f"run/{name}") == path.read_bytes()
