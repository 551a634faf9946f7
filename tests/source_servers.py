"""Real servers for remote sources, on loopback: a GCS emulator, Azurite, a private sshd.

And a token endpoint that refuses a Google service-account key, as Google's does.

(moto's S3 server is in ``s3_helpers.py``.) Each ``start_*`` returns a handle with
``stop()``; the tests' fixtures and the benchmark share them.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

# Installed by `make install` into the venv's node folder, beside the interpreter.
AZURITE = Path(sys.prefix) / "node" / "node_modules" / ".bin" / "azurite-blob"
SSHD = "/usr/sbin/sshd"
#: Azurite's documented development account (public, in Microsoft's docs), never a real one.
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen, what: str, log: Path) -> None:
    """Poll until something accepts on 127.0.0.1:port; fail with the log if ``proc`` dies."""
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"{what} exited: {log.read_text()}") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} never listened: {log.read_text()}") from None
            time.sleep(0.05)


@dataclass
class Server:
    """A server process of a test's own, and what a client needs to reach it."""

    proc: subprocess.Popen
    port: int
    extra: dict[str, object] = field(default_factory=dict)

    def stop(self) -> None:
        """Stop the process (it is ours: started by ``start_*``)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def _start(argv: list[str], port: int, what: str, log: Path, **extra: object) -> Server:
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=out, stdin=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc, what, log)
    except BaseException:
        Server(proc, port).stop()
        raise
    return Server(proc, port, dict(extra))


def start_gcs(workdir: Path) -> Server:
    """gcp-storage-emulator, in memory; ``extra["endpoint"]`` is its URL."""
    port = free_port()
    emulator = Path(sys.executable).with_name("gcp-storage-emulator")
    argv = [str(emulator), "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory"]
    endpoint = f"http://127.0.0.1:{port}"
    return _start(argv, port, "GCS emulator", workdir / "gcs.log", endpoint=endpoint)


def azurite_available() -> bool:
    """True when Azurite is installed (``make install`` puts it in the venv's node folder)."""
    return AZURITE.exists() and shutil.which("node") is not None


def start_azurite(workdir: Path) -> Server:
    """Azurite's blob service in memory; ``extra["connection_string"]`` reaches it."""
    port = free_port()
    argv = [str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", str(port)]
    argv += ["--inMemoryPersistence", "--skipApiVersionCheck", "--disableTelemetry", "--silent"]
    connection_string = (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{port}/{AZURITE_ACCOUNT};"
    )
    return _start(
        argv, port, "Azurite", workdir / "azurite.log", connection_string=connection_string
    )


def sshd_available() -> bool:
    """True when OpenSSH's server and ssh-keygen are installed."""
    return os.access(SSHD, os.X_OK) and shutil.which("ssh-keygen") is not None


def start_sshd(workdir: Path, more_config: str = "") -> Server:
    """A private sshd on loopback with SFTP; ``more_config`` goes at the end of its config.

    ``extra``: ``client_key`` (a key it accepts for root), ``known_hosts`` (a file
    that trusts its host key), ``other_known_hosts`` (one that trusts another key
    for the same address: a changed host key).
    """
    keygen = ["ssh-keygen", "-q", "-t", "ed25519", "-N", ""]
    for name in ("host_key", "client_key", "other_host_key"):
        subprocess.run([*keygen, "-f", str(workdir / name)], check=True)
    shutil.copy(workdir / "client_key.pub", workdir / "authorized_keys")
    port = free_port()
    (workdir / "sshd_config").write_text(
        f"Port {port}\n"
        "ListenAddress 127.0.0.1\n"
        f"HostKey {workdir / 'host_key'}\n"
        f"AuthorizedKeysFile {workdir / 'authorized_keys'}\n"
        f"PidFile {workdir / 'sshd.pid'}\n"
        "PermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "UsePAM no\n"
        "StrictModes no\n"
        "Subsystem sftp internal-sftp\n" + more_config
    )
    for name, key in (("known_hosts", "host_key"), ("other_known_hosts", "other_host_key")):
        public = (workdir / f"{key}.pub").read_text().split()[:2]
        (workdir / name).write_text(f"[127.0.0.1]:{port} {' '.join(public)}\n")
    os.makedirs("/run/sshd", exist_ok=True)  # its privilege-separation directory
    argv = [SSHD, "-D", "-e", "-f", str(workdir / "sshd_config")]
    return _start(
        argv,
        port,
        "sshd",
        workdir / "sshd.log",
        client_key=str(workdir / "client_key"),
        known_hosts=str(workdir / "known_hosts"),
        other_known_hosts=str(workdir / "other_known_hosts"),
    )


def ssh_connection(server: Server) -> dict[str, object]:
    """A named connection's settings for the private sshd: its port, key and known_hosts."""
    return {
        "protocol": "ssh",
        "port": server.port,
        "username": "root",
        "client_keys": [server.extra["client_key"]],
        "known_hosts": server.extra["known_hosts"],
    }


class _RefusingTokenEndpoint(http.server.BaseHTTPRequestHandler):
    """Google's OAuth token endpoint as it answers a key it does not know."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps(
            {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        ).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def unknown_google_key(workdir: Path) -> tuple[Path, http.server.ThreadingHTTPServer]:
    """A service-account key file Google's token endpoint refuses, and that endpoint.

    The key is a fresh RSA key; the file's ``token_uri`` names a token endpoint on loopback
    that answers ``invalid_grant`` as Google's does, so a client signs, asks, and is refused
    (the GCS emulator itself checks no credentials). Call ``shutdown()`` on the server.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RefusingTokenEndpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    path = workdir / "service-account.json"
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "test-project",
                "private_key_id": "0" * 40,
                "private_key": pem,
                "client_email": "runs-reader@test-project.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": f"http://127.0.0.1:{server.server_port}/token",
            }
        )
    )
    return path, server
