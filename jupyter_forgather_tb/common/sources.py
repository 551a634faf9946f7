"""Remote log directories as URLs: ``s3://``, ``gs://``, ``az://`` (or ``abfs://``), ``ssh://``.

Pure parsing shared by the launch options, the server, the job's mirror and the
uploader; nothing here imports fsspec.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Schemes a log directory may use; anything else with ``://`` is refused.
REMOTE_SCHEMES = ("s3", "gs", "az", "ssh")
#: Other spellings of a scheme, and the one they stand for.
SCHEME_ALIASES = {"abfs": "az", "abfss": "az", "gcs": "gs", "sftp": "ssh"}

_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
# Bucket and container naming rules: S3's, GCS's (also "_" and longer dotted names), Azure's.
_LOCATION_RE = {
    "s3": re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"),
    "gs": re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]"),
    "az": re.compile(r"[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]"),
}
_LOCATION_WORD = {"s3": "S3 bucket", "gs": "GCS bucket", "az": "Azure container"}
_HOST_RE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9_-]{0,62}))*")
_IPV6_RE = re.compile(r"[0-9A-Fa-f:.]+")
_USER_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")
_EXAMPLES = (
    "s3://bucket/prefix, gs://bucket/prefix, az://container/prefix or ssh://[user@]host[:port]/path"
)


@dataclass(frozen=True)
class SourceURL:
    """A parsed remote log directory.

    ``location`` is the bucket, the container or the SSH host; ``path`` has no
    outer slashes (for ``ssh`` it is absolute on the host, or below the home
    folder when it starts with ``~``). ``str()`` gives the canonical URL.
    """

    scheme: str
    location: str
    path: str
    user: str | None = None
    port: int | None = None

    def __str__(self) -> str:
        host = f"[{self.location}]" if ":" in self.location else self.location
        netloc = f"{self.user}@{host}" if self.user else host
        netloc += f":{self.port}" if self.port is not None else ""
        return f"{self.scheme}://{netloc}/{self.path}" if self.path else f"{self.scheme}://{netloc}"


def url_scheme(value: str) -> str | None:
    """The lower-cased scheme of a URL-like string (``"s3"``, aliases normalised); None: a path."""
    match = _SCHEME_RE.match(value)
    if not match:
        return None
    scheme = match.group(1).lower()
    return SCHEME_ALIASES.get(scheme, scheme)


def is_remote(value: str) -> bool:
    """True for a log directory in one of :data:`REMOTE_SCHEMES` (one a job mirrors)."""
    return url_scheme(value) in REMOTE_SCHEMES


def parse_source_url(value: str) -> SourceURL:
    """Parse a remote log directory; ``ValueError`` with a message for the user if it is not one."""
    scheme = url_scheme(value)
    if scheme not in REMOTE_SCHEMES:
        raise ValueError(f"only {_EXAMPLES} URLs are accepted")
    if "?" in value or "#" in value:
        raise ValueError("the URL must not carry a query or a fragment")
    netloc, _, path = value[value.index("://") + 3 :].partition("/")
    path = path.strip("/")
    parts = path.split("/") if path else []
    if scheme == "ssh" and parts[:1] == ["~"]:
        parts = parts[1:]  # below the home folder
    if any(part in ("", ".", "..") for part in parts):
        raise ValueError("the path must not contain empty, '.' or '..' parts")
    if scheme == "ssh":
        return _ssh_url(netloc, path)
    if not _LOCATION_RE[scheme].fullmatch(netloc):
        what = _LOCATION_WORD[scheme]
        if "@" in netloc and scheme == "az":
            raise ValueError(
                "give the Azure storage account in a connection, not in the URL: "
                "az://container/prefix"
            )
        raise ValueError(f"{netloc!r} is not a valid {what} name")
    return SourceURL(scheme, netloc, path)


def _ssh_url(netloc: str, path: str) -> SourceURL:
    user, at, host = netloc.rpartition("@")
    if at and not _USER_RE.fullmatch(user):
        raise ValueError(f"{user!r} is not a valid user name")
    port: int | None = None
    if host.startswith("["):
        address, bracket, rest = host[1:].partition("]")
        if not bracket or not _IPV6_RE.fullmatch(address) or (rest and not rest.startswith(":")):
            raise ValueError(f"{host!r} is not a valid host")
        host, port_text = address, rest[1:] if rest else ""
    else:
        host, _, port_text = host.partition(":")
        if not _HOST_RE.fullmatch(host) or len(host) > 253:
            raise ValueError(f"{host!r} is not a valid host name")
    if port_text:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise ValueError(f"{port_text!r} is not a port number (1-65535)")
        port = int(port_text)
    return SourceURL("ssh", host, path, user=user or None, port=port)
