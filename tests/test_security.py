"""Security properties beyond single routes: Host checks, network exposure, job ids."""

from __future__ import annotations

import base64
import json
import logging
import os
import socket

from conftest import group_pids

from jupyter_forgather_tb.common.processes import inherited_env
from jupyter_forgather_tb.server.jobs.job import new_job_id
from jupyter_forgather_tb.server.jobs.launcher import child_env


async def test_foreign_host_header_is_refused(api, logdir):
    job = await api.launch(logdir="logs")
    await api.wait_status(job["id"], "running")
    evil = {"Host": "evil.example"}
    assert (await api.call("GET", "jobs")).code == 200
    response = await api.fetch("forgather-tb", "api", "jobs", headers=evil, raise_error=False)
    assert response.code == 403
    proxied = await api.proxied(job["id"], "data/environment", headers=evil)
    assert proxied.code == 403


def test_no_child_of_the_server_inherits_jupyters_credentials(monkeypatch):
    credentials = ("JUPYTER_TOKEN", "JPY_API_TOKEN", "JUPYTERHUB_API_TOKEN", "JPY_SESSION_NAME")
    for name in credentials:
        monkeypatch.setenv(name, "secret")
    monkeypatch.setenv("AWS_PROFILE", "training")
    # A job's process (and the fork server) and a remote listing's process.
    for env in (child_env(), inherited_env(os.environ)):
        assert not set(credentials) & set(env)
        assert env["AWS_PROFILE"] == "training"


def test_job_ids_carry_128_random_bits():
    ids = {new_job_id() for _ in range(1000)}
    assert len(ids) == 1000
    # Never an option on a command line; 1,000 ids would hold about 16 such otherwise.
    assert not any(job_id.startswith("-") for job_id in ids)
    for job_id in list(ids)[:50]:
        raw = base64.urlsafe_b64decode(job_id + "==")
        assert len(raw) * 8 >= 128
        assert all(c.isalnum() or c in "-_" for c in job_id)


async def test_bind_all_is_logged_and_marked_network_exposed(api, logdir, caplog):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with caplog.at_level(logging.WARNING):
        job = await api.launch(logdir="logs", bind_all=True, port=port, host="127.0.0.1")
    assert job["network_exposed"] is True
    assert job["options"]["host"] is None  # bind_all wins over host
    assert any("all network interfaces" in r.getMessage() for r in caplog.records)
    job = await api.wait_status(job["id"], "running")
    assert job["transport"] == "tcp"
    # It listens on the wildcard address, not only on loopback.
    listening = _listen_addresses(port)
    assert listening & {"0.0.0.0", "::"}, listening
    await api.kill(job["id"])
    assert group_pids(job["pid"]) == []


async def test_default_jobs_are_not_network_exposed(api, logdir):
    job = await api.launch(logdir="logs")
    assert job["network_exposed"] is False and job["transport"] == "unix"
    listed = json.loads((await api.call("GET", "jobs")).body)
    assert listed[0]["network_exposed"] is False


def _listen_addresses(port: int) -> set[str]:
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        with open(table) as f:
            for line in f.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                address, hex_port = local.split(":")
                if state == "0A" and int(hex_port, 16) == port:
                    found.add(
                        "0.0.0.0"
                        if width == 8 and int(address, 16) == 0
                        else "::"
                        if int(address, 16) == 0
                        else address
                    )
    return found
