"""Remote log directories of every scheme, each against a real server on loopback.

s3:// on moto's server, gs:// on gcp-storage-emulator, az:// on Azurite, ssh:// on a
private sshd; each job reads its source through a named connection, mirrors it, and
real TensorBoard serves the mirror through /tb/<id>/.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest
from s3_helpers import event_key, scalar_records
from source_servers import ssh_connection, unknown_google_key

os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")  # see remotefs.py

# Each test starts its Jupyter server itself, once its connections are configured.
pytestmark = pytest.mark.server
SCHEMES = ("s3", "gs", "az", "ssh")


class Store:
    """One fresh bucket, container or folder of a source, written from the test's side."""

    def __init__(self, scheme: str, fs, base: str, connection: dict, netloc: str):
        self.scheme = scheme
        self.fs = fs
        self.base = base  # the bucket or container, or the folder on the SSH host
        self.connection = connection
        self.netloc = netloc
        self.name = f"{scheme}-test"

    def url(self, prefix: str) -> str:
        """The log directory URL of ``prefix`` in this store."""
        return f"{self.scheme}://{self.netloc}/{prefix}"

    def path(self, key: str) -> str:
        return f"{self.base}/{key}"

    def put(self, key: str, data: bytes) -> None:
        """Write a whole file (an object store replaces the object)."""
        if self.scheme == "ssh":
            path = Path(self.path(key))
            path.parent.mkdir(parents=True, exist_ok=True)
            part = path.with_name(path.name + ".part")
            part.write_bytes(data)
            part.replace(path)
        else:
            self.fs.pipe_file(self.path(key), data)

    def append(self, key: str, old: bytes, more: bytes) -> None:
        """Append to a file (an object store gets the whole new object, as writers do)."""
        if self.scheme == "ssh":
            with open(self.path(key), "ab") as out:
                out.write(more)
        else:
            self.put(key, old + more)

    def delete(self, key: str) -> None:
        """Delete a file."""
        if self.scheme == "ssh":
            os.unlink(self.path(key))
        else:
            self.fs.rm_file(self.path(key))


def _store(scheme: str, request, tmp_path: Path) -> Store:
    name = f"tb-{uuid.uuid4().hex[:12]}"
    if scheme == "s3":
        import s3fs

        endpoint = request.getfixturevalue("moto_endpoint")
        secret = f"s3-secret-{uuid.uuid4().hex}"
        fs = s3fs.S3FileSystem(
            key="testing", secret=secret, endpoint_url=endpoint, skip_instance_cache=True
        )
        fs.mkdir(name)
        conn = {"protocol": "s3", "endpoint_url": endpoint, "key": "testing", "secret": secret}
        return Store(scheme, fs, name, conn, name)
    if scheme == "gs":
        from gcsfs.core import GCSFileSystem

        endpoint = request.getfixturevalue("gcs_server").extra["endpoint"]
        fs = GCSFileSystem(endpoint_url=endpoint, token="anon", skip_instance_cache=True)
        fs.mkdir(name)
        return Store(scheme, fs, name, {"protocol": "gs", "endpoint_url": endpoint}, name)
    if scheme == "az":
        import adlfs

        string = request.getfixturevalue("azurite_server").extra["connection_string"]
        fs = adlfs.AzureBlobFileSystem(connection_string=string, skip_instance_cache=True)
        fs.mkdir(name)
        conn = {"protocol": "az", "connection_string": string}
        return Store(scheme, fs, name, conn, name)
    server = request.getfixturevalue("sshd_server")
    folder = tmp_path / "ssh-host"
    folder.mkdir()
    conn = ssh_connection(server)
    return Store(scheme, None, str(folder), conn, f"127.0.0.1{folder}")


@pytest.fixture(params=SCHEMES)
def store(request, tb_config, tmp_path):
    """A fresh store of each scheme, with the server under test configured to reach it.

    Request it before ``api`` so the server starts with its connection.
    """
    made = _store(request.param, request, tmp_path)
    tb_config.update(
        connections={made.name: made.connection}, mirror_cache_dir=str(tmp_path / "cache")
    )
    return made


async def scalars(api, job_id, run, tag="loss"):
    response = await api.proxied(
        job_id, "data/plugin/scalars/scalars", params={"run": run, "tag": tag}
    )
    if response.code != 200:
        return None
    return [(step, value) for _, step, value in json.loads(response.body)]


async def wait_for(predicate, timeout=60.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not (result := await predicate()):
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.25)
    return result


async def test_a_remote_prefix_is_mirrored_served_and_kept_up_to_date(store, api, tmp_path):
    run_a, run_b = event_key("runs/a"), event_key("runs/b")
    first = scalar_records("loss", [1.0, 2.0])
    store.put(run_a, first)
    store.put(run_b, scalar_records("loss", [5.0]))
    store.put("runs/a/model.ckpt", b"not TensorBoard's: never mirrored")
    job = await api.launch(logdir=store.url("runs"), connection=store.name, sync_interval=0.5)
    job = await api.wait_status(job["id"], "running")
    assert job["options"]["connection"] == store.name
    assert await scalars(api, job["id"], "a") == [(0, 1.0), (1, 2.0)]
    mirror = job["mirror"]
    assert mirror["objects"] == 2 and mirror["last_error"] is None
    assert mirror["requests"] > 0 and mirror["progress"]["done"]
    assert mirror["progress"]["files_total"] == 2 and mirror["progress"]["eta_seconds"] == 0

    # Points appended while it runs appear, fetching only the new bytes (and an overlap).
    before = mirror["bytes_fetched"]
    more = scalar_records("loss", [3.0], start_step=2, header=False)
    store.append(run_a, first, more)

    async def appended():
        return await scalars(api, job["id"], "a") == [(0, 1.0), (1, 2.0), (2, 3.0)]

    await wait_for(appended)
    mirror = (await api.job(job["id"]))["mirror"]
    assert mirror["bytes_fetched"] - before <= len(more) + 64
    assert mirror["next_sync"] is not None

    # A replaced file is fetched again whole; a deleted run leaves the mirror.
    local_b = tmp_path / "cache" / job["id"] / "data" / "b" / Path(run_b).name
    replaced = scalar_records("loss", [7.0, 8.0, 9.0])
    store.put(run_b, replaced)

    async def refetched():
        return local_b.exists() and local_b.read_bytes() == replaced

    await wait_for(refetched)
    store.delete(run_a)

    async def deleted():
        mirror = (await api.job(job["id"]))["mirror"]
        return mirror["objects"] == 1 and not (local_b.parent.parent / "a").exists()

    await wait_for(deleted)
    await api.kill(job["id"])


def _spoil(scheme: str, conn: dict, variant: str, tmp_path: Path, request) -> dict:
    """A connection made wrong in one way: ``bad-key``, ``known:<file>``; else as it is."""
    conn = dict(conn)
    if variant == "bad-key" and scheme == "gs":
        key_file, token_endpoint = unknown_google_key(tmp_path)
        request.addfinalizer(token_endpoint.shutdown)
        conn["token"] = str(key_file)
    elif variant == "bad-key" and scheme == "az":
        key = conn["connection_string"].split("AccountKey=")[1].split(";")[0]
        conn["connection_string"] = conn["connection_string"].replace(key, "d3Jvbmc=" * 11)
    elif variant == "bad-key":
        other = tmp_path / "other_key"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True
        )
        conn["client_keys"] = [str(other)]
    elif variant == "known:empty":
        (tmp_path / "empty_known_hosts").write_text("")
        conn["known_hosts"] = str(tmp_path / "empty_known_hosts")
    elif variant.startswith("known:"):
        conn["known_hosts"] = request.getfixturevalue("sshd_server").extra[variant[6:]]
    return conn


@pytest.fixture
def remote(request, tb_config, tmp_path):
    """``(scheme, variant)``: a fresh store, reached through the connection ``conn``.

    Request it before ``api``. The server keeps its job table in ``tmp_path/state.json``.
    """
    scheme, variant = request.param
    made = _store(scheme, request, tmp_path)
    made.name = "conn"
    conn = _spoil(scheme, made.connection, variant, tmp_path, request)
    tb_config.update(
        connections={"conn": conn},
        mirror_cache_dir=str(tmp_path / "cache"),
        state_file=str(tmp_path / "state.json"),
    )
    return made


@pytest.mark.parametrize(
    ("remote", "words"),
    [
        (("gs", "bad-key"), "GCS mirror: Google refused the credentials"),
        (("az", "bad-key"), "Azure mirror: Azure refused the credentials"),
        (("ssh", "bad-key"), "SSH mirror: the SSH server 127.0.0.1 refused the login"),
    ],
    indirect=["remote"],
)
async def test_wrong_credentials_fail_the_job_with_the_reason(remote, api, words):
    remote.put(event_key("runs/a"), scalar_records("loss", [1.0]))
    job = await api.launch(logdir=remote.url("runs"), connection="conn")
    job = await api.wait_status(job["id"], "failed")
    assert job["error"].startswith(words), job["error"]
    assert job["mirror"]["last_error"] in job["error"]


@pytest.mark.ssh
@pytest.mark.parametrize(
    "remote", [("ssh", "known:other_known_hosts"), ("ssh", "known:empty")], indirect=True
)
async def test_an_unknown_or_changed_ssh_host_key_is_refused(remote, api, tmp_path):
    remote.put(event_key("runs/a"), scalar_records("loss", [1.0]))
    job = await api.launch(logdir=remote.url("runs"), connection="conn")
    job = await api.wait_status(job["id"], "failed")
    assert job["error"].startswith(
        "SSH mirror: the SSH host key of 127.0.0.1 is unknown or has changed, so the "
        "connection was refused"
    ), job["error"]
    assert not list((tmp_path / "cache" / job["id"] / "data").rglob("*tfevents*"))


@pytest.mark.parametrize("remote", [("gs", ""), ("az", "")], indirect=True)
async def test_a_missing_bucket_or_container_fails_the_job_in_words(remote, api):
    job = await api.launch(logdir=f"{remote.scheme}://no-such-place/runs", connection="conn")
    job = await api.wait_status(job["id"], "failed")
    what = "container" if remote.scheme == "az" else "bucket"
    label = {"gs": "GCS", "az": "Azure"}[remote.scheme]
    assert job["error"] == f"{label} mirror: {what} 'no-such-place' does not exist"


def _group(pid: int) -> list[int]:
    """The processes of the job's process group (TensorBoard and its children)."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[2]) == pid:
                members.append(int(entry))
    return members


@pytest.mark.parametrize("remote", [("s3", ""), ("az", "")], indirect=True)
async def test_a_connection_secret_reaches_no_command_line_environment_api_or_state(
    remote, api, tmp_path
):
    conn = remote.connection
    secret = conn["secret"] if remote.scheme == "s3" else conn["connection_string"]
    secret_part = secret.split("AccountKey=")[1].split(";")[0] if remote.scheme == "az" else secret
    state_file = tmp_path / "state.json"
    remote.put(event_key("runs/a"), scalar_records("loss", [1.0]))
    job = await api.launch(logdir=remote.url("runs"), connection="conn")
    job = await api.wait_status(job["id"], "running")
    assert await scalars(api, job["id"], "a") == [(0, 1.0)]  # the connection worked
    members = _group(job["pid"])
    assert job["pid"] in members
    for pid in members:
        for what in ("cmdline", "environ"):
            assert secret_part.encode() not in Path(f"/proc/{pid}/{what}").read_bytes()
    answers = [await api.call("GET", "jobs"), await api.call("GET", "jobs", job["id"])]
    answers.append(await api.call("GET", "jobs", job["id"], "output"))
    for answer in answers:
        assert secret_part not in answer.body.decode()
    assert secret_part not in state_file.read_text()
    # The connection file in the private run directory was read once, then removed.
    manager = api.serverapp.web_app.settings["forgather_tb_manager"]
    assert not os.path.exists(manager.mirrors.connection_file(manager.get(job["id"])))
    await api.kill(job["id"])


@pytest.mark.parametrize(
    ("remote", "what"),
    [(("gs", ""), "file"), (("az", ""), "file"), (("ssh", ""), "file"), (("ssh", ""), "missing")],
    indirect=["remote"],
)
def test_a_source_that_is_a_file_or_missing_fails_in_words(remote, what, tmp_path):
    from jupyter_forgather_tb.common.connections import parse_connection
    from jupyter_forgather_tb.common.remotefs import SourceError, open_source
    from jupyter_forgather_tb.common.sources import parse_source_url
    from jupyter_forgather_tb.job.mirror import Mirror

    if what == "file":
        remote.put("runs", b"a file, not a folder of runs")
    url = parse_source_url(remote.url("runs"))
    source = open_source(url, parse_connection("conn", remote.connection))
    (tmp_path / "d").mkdir()
    mirror = Mirror(source, str(tmp_path / "d"), str(tmp_path), 10**9, 10**6)
    with pytest.raises(SourceError) as caught:
        mirror.sync()
    assert caught.value.fatal
    words = "is a file, not a folder of runs" if what == "file" else "does not exist"
    assert caught.value.message == f"{url} {words}"


@pytest.mark.parametrize("remote", [(scheme, "") for scheme in SCHEMES], indirect=True)
def test_a_hundred_run_prefix_is_mirrored_whole_then_listed_without_fetching(remote, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from jupyter_forgather_tb.common.connections import parse_connection
    from jupyter_forgather_tb.common.remotefs import open_source
    from jupyter_forgather_tb.common.sources import parse_source_url
    from jupyter_forgather_tb.job.mirror import Mirror

    records = scalar_records("loss", [1.0, 2.0])
    keys = [event_key(f"runs/r{i:03d}") for i in range(100)]
    # The GCS emulator answers one request at a time: write to it in turn.
    workers = 1 if remote.scheme == "gs" else 8
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda key: remote.put(key, records), keys))
    source = open_source(
        parse_source_url(remote.url("runs")), parse_connection("c", remote.connection)
    )
    (tmp_path / "d").mkdir()
    mirror = Mirror(source, str(tmp_path / "d"), str(tmp_path), 10**9, 10**6)
    assert mirror.sync() is True
    assert mirror.objects == 100 and mirror.bytes == 100 * len(records)
    assert mirror.progress.to_json()["files"] == 100
    fetched, requests = mirror.bytes_fetched, source.requests
    assert mirror.sync() is False  # nothing changed: a listing, no read
    assert mirror.bytes_fetched == fetched
    assert source.requests - requests <= (101 if remote.scheme == "ssh" else 1)


def test_ssh_sources_prefer_aes_gcm_unless_the_ssh_config_chooses_ciphers(tmp_path):
    import re

    from source_servers import sshd_available, start_sshd

    from jupyter_forgather_tb.common.connections import parse_connection
    from jupyter_forgather_tb.common.remotefs import open_source
    from jupyter_forgather_tb.common.sources import parse_source_url

    if not sshd_available():
        pytest.skip("OpenSSH is not installed (apt-get install openssh-server)")
    (tmp_path / "sshd").mkdir()
    server = start_sshd(tmp_path / "sshd", more_config="LogLevel DEBUG1\n")
    log = tmp_path / "sshd" / "sshd.log"
    config = tmp_path / "ssh_config"
    config.write_text("Host *\n    Ciphers aes256-ctr\n")

    def negotiated(settings: dict) -> list[str]:
        start = log.stat().st_size
        url = parse_source_url(f"ssh://127.0.0.1{tmp_path}")
        source = open_source(url, parse_connection("c", settings))
        source.fs.ls(str(tmp_path))  # the key exchange is over: sshd has logged it
        return re.findall(r"kex: client->server cipher: (\S+)", log.read_text()[start:])

    try:
        assert negotiated(ssh_connection(server)) == ["aes128-gcm@openssh.com"]
        chosen = {**ssh_connection(server), "config": str(config)}
        assert negotiated(chosen) == ["aes256-ctr"]
    finally:
        server.stop()


@pytest.mark.parametrize("remote", [("ssh", "")], indirect=True)
def test_a_deep_ssh_tree_is_mirrored_byte_for_byte_through_appends_replacements_and_deletions(
    remote, tmp_path
):
    from jupyter_forgather_tb.common.connections import parse_connection
    from jupyter_forgather_tb.common.remotefs import open_source
    from jupyter_forgather_tb.common.sources import parse_source_url
    from jupyter_forgather_tb.job.mirror import Mirror

    base = Path(remote.base) / "runs"
    records = {
        f"{group}/r{i:02d}": scalar_records("loss", [float(i)] * (i + 1))
        for group in ("a", "b/c", "b/c/d/e")
        for i in range(12)
    }
    for run, data in records.items():
        remote.put(f"runs/{event_key(run)}", data)
    remote.put("runs/a/r00/plugins/profile/trace.json", b"{}")
    remote.put("runs/a/r00/model.ckpt", b"not read by TensorBoard")
    source = open_source(
        parse_source_url(remote.url("runs")), parse_connection("c", remote.connection)
    )
    dest = tmp_path / "d"
    dest.mkdir()
    mirror = Mirror(source, str(dest), str(tmp_path), 10**9, 10**6)

    def same_as_source() -> None:
        wanted = {
            str(path.relative_to(base)): path.read_bytes()
            for path in base.rglob("*")
            if path.is_file() and path.suffix != ".ckpt"
        }
        held = {str(p.relative_to(dest)): p.read_bytes() for p in dest.rglob("*") if p.is_file()}
        assert held == wanted

    assert mirror.sync() is True
    same_as_source()
    assert mirror.objects == len(records) + 1
    # Half a record, then the rest; a run rewritten whole; one gone; a late one.
    more = scalar_records("loss", [7.0, 8.0], start_step=50, header=False)
    grown = [run for run in records if run.endswith(("1", "5"))]
    for run in grown:
        remote.append(f"runs/{event_key(run)}", records[run], more[:10])
    # Smaller, so fetched whole at once (and SFTP mtimes are whole seconds).
    remote.put(f"runs/{event_key('a/r03')}", scalar_records("loss", [9.0] * 2))
    remote.delete(f"runs/{event_key('b/c/r04')}")
    remote.put(f"runs/{event_key('late/r00')}", scalar_records("loss", [1.0]))
    fetched = mirror.bytes_fetched
    assert mirror.sync() is True
    same_as_source()
    for run in grown:
        remote.append(f"runs/{event_key(run)}", records[run], more[10:])
    assert mirror.sync() is True
    same_as_source()
    # The grown files cost their new bytes (and a short overlap), not whole copies.
    whole = len(scalar_records("loss", [9.0] * 2)) + len(scalar_records("loss", [1.0]))
    overlap = 64 * 2 * len(grown)
    assert mirror.bytes_fetched - fetched <= whole + len(more) * len(grown) + overlap
