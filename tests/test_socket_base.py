"""The socket directory's place: refused where another user could move or replace it."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from tornado.httpclient import HTTPClientError


@pytest.fixture
def socket_base(request, tb_config):
    """``socket_dir`` set before the server starts: a directory of the parameter's mode, or
    with ``(mode, "below")`` a private directory inside one."""
    mode, where = request.param if isinstance(request.param, tuple) else (request.param, "")
    top = Path(tempfile.mkdtemp(prefix="fts-", dir="/tmp"))
    shared = top / "shared"
    shared.mkdir()
    os.chmod(shared, mode)  # explicitly: the umask would take bits away
    tb_config["socket_dir"] = str(shared)
    if where == "below":
        (shared / "mine").mkdir(mode=0o700)
        tb_config["socket_dir"] = str(shared / "mine")
    yield tb_config["socket_dir"]
    shutil.rmtree(top, ignore_errors=True)


async def _refused_in_words(capfd, jp_fetch) -> str:
    """Every route of ours answers 503 with the reason the log gives; that reason."""
    said = _refusal(capfd)
    for path, method, body in (
        (("forgather-tb", "api", "jobs"), "GET", None),
        (("forgather-tb", "api", "jobs"), "POST", '{"logdir": "."}'),
        (("forgather-tb", "api", "logdirs"), "GET", None),
        (("tb", "0123456789abcdef", ""), "GET", None),
    ):
        with pytest.raises(HTTPClientError) as answer:
            await jp_fetch(*path, method=method, body=body)
        assert answer.value.code == 503
        message = json.loads(answer.value.response.body)["message"]
        assert message in said and "is not safe" in message
    return said


def _refusal(capfd) -> str:
    """The server's log line saying why jobs are off (its log goes to stderr)."""
    (line,) = [
        line
        for line in capfd.readouterr().err.splitlines()
        if "TensorBoard jobs are turned off" in line
    ]
    return line


@pytest.mark.parametrize("socket_base", [0o777], indirect=True)
async def test_a_socket_dir_anyone_may_write_without_the_sticky_bit_turns_jobs_off_in_words(
    capfd, socket_base, jp_fetch
):
    said = await _refused_in_words(capfd, jp_fetch)
    assert f"the socket directory {socket_base} is not safe" in said
    assert "writable by others without the sticky bit (mode 0o777)" in said
    assert os.listdir(socket_base) == []


@pytest.mark.parametrize("socket_base", [(0o770, "below")], indirect=True)
async def test_a_socket_dir_below_a_directory_its_group_may_write_turns_jobs_off_in_words(
    capfd, socket_base, jp_fetch
):
    said = await _refused_in_words(capfd, jp_fetch)
    assert f"{os.path.dirname(socket_base)} is writable by its group without the sticky bit" in said
    assert os.listdir(socket_base) == []


@pytest.mark.parametrize("socket_base", [0o1777], indirect=True)
async def test_a_socket_dir_with_the_sticky_bit_like_tmp_is_used(capfd, socket_base, jp_fetch):
    answer = await jp_fetch("forgather-tb", "api", "jobs")
    assert answer.code == 200
    (run_dir,) = os.listdir(socket_base)
    assert run_dir.startswith(f"forgather-tb-{os.getpid()}-")
