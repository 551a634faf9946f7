"""Remote sources opened through fsspec (s3fs, gcsfs, adlfs, sshfs), and their errors in words.

Used by a job's mirror, the uploader and the run listing's subprocess; the Jupyter
server never imports this module (an import contract says so), and fsspec's
packages are imported only when a source is opened, so a missing extra is an
error in words rather than an import failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import posixpath
import threading
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .connections import Connection
from .sources import SourceURL
from .tbfiles import tensorboard_path

#: What each scheme is called in messages, and the extra that installs its filesystem.
LABELS = {"s3": "S3", "gs": "GCS", "az": "Azure", "ssh": "SSH"}
EXTRAS = {
    "s3": ("s3fs", "s3"),
    "gs": ("gcsfs", "gcs"),
    "az": ("adlfs", "azure"),
    "ssh": ("sshfs", "ssh"),
}
#: Bytes one read request asks for at most (a bigger file takes several ranged reads).
READ_CHUNK = 8 * 1024 * 1024
#: Folders of an SSH source read at once while listing it.
SSH_LIST_CONCURRENCY = 16
#: asyncssh prefers ChaCha20-Poly1305, which it pays for per packet in Python; AES-GCM,
#: as strong and done whole by OpenSSL, costs a first copy about a third less CPU. Put
#: first unless the SSH configuration chooses ciphers itself (see ``_ciphers_configured``).
SSH_PREFERRED_CIPHERS = "^aes128-gcm@openssh.com,aes256-gcm@openssh.com"
# Keys a listing of each scheme puts in one page, to count the requests a listing took.
_PAGE = {"s3": 1000, "gs": 1000, "az": 5000}
# What a listing's entries carry that changes whenever an object's content does.
_VERSION_KEYS = ("ETag", "etag", "generation", "md5Hash", "mtime", "LastModified")
_MODIFIED_KEYS = ("LastModified", "last_modified", "mtime", "updated")

# S3 error codes that no retry will fix (s3fs keeps botocore's error as the cause).
_S3_FATAL = {
    "NoSuchBucket": "bucket {location!r} does not exist",
    "AccessDenied": "access to {url} is denied",
    "AllAccessDisabled": "access to {url} is denied",
    "InvalidAccessKeyId": "the AWS access key is not valid for this endpoint",
    "SignatureDoesNotMatch": "the AWS secret key does not match the access key",
    "InvalidToken": "the AWS session token is not valid",
    "ExpiredToken": "the AWS session token has expired",
    "InvalidBucketName": "{location!r} is not a valid bucket name",
}
# Errors of the local disk the mirror writes to, not of the source.
_LOCAL_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EMFILE}


class SourceError(Exception):
    """A problem reading a remote source, in words; ``fatal`` when retrying cannot help."""

    def __init__(self, message: str, fatal: bool):
        super().__init__(message)
        self.message = message
        self.fatal = fatal


@dataclass(frozen=True)
class RemoteFile:
    """One TensorBoard file of a source: its path below the source, size, version, write time."""

    path: str
    size: int
    version: str
    modified: datetime | None


class RemoteSource:
    """One remote log directory opened with fsspec: list its TensorBoard files, read them.

    ``requests`` counts the requests made (a listing counts its pages, or for SSH
    the folders it read); ``bytes_read`` the bytes received. Files may be read from
    several threads at once (fsspec's filesystems run their requests on one loop).
    """

    def __init__(self, url: SourceURL, fs: Any, root: str):
        self.url = url
        self.fs = fs
        self.root = root.rstrip("/") if root not in ("/", "") else root
        self.requests = 0
        self.bytes_read = 0
        self._lock = threading.Lock()

    def _count(self, requests: int, size: int = 0) -> None:
        with self._lock:
            self.requests += requests
            self.bytes_read += size

    @property
    def label(self) -> str:
        """The scheme's name in messages: ``S3``, ``GCS``, ``Azure``, ``SSH``."""
        return LABELS[self.url.scheme]

    def full_path(self, path: str) -> str:
        """The filesystem path of a file given below the source."""
        return posixpath.join(self.root, path) if self.root else path

    def key(self, path: str) -> str:
        """A file's name as its store shows it: the key in its bucket, the path on its host."""
        if self.url.scheme == "ssh":
            return self.full_path(path)
        return posixpath.join(self.url.path, path) if self.url.path else path

    def check(self) -> None:
        """Say in words why a listing found nothing, when that is an error.

        Called when a first listing came back empty or not found: the bucket or
        container does not exist, the path does not (over SSH), or it is a file.
        An empty prefix of a bucket that exists is no error: runs may come later.
        """
        scheme = self.url.scheme
        if scheme != "ssh":
            self.requests += 1
            if not self.fs.exists(self.url.location):
                what = "container" if scheme == "az" else "bucket"
                raise SourceError(f"{what} {self.url.location!r} does not exist", fatal=True)
            if not self.url.path:
                return
        self.requests += 1
        try:
            info = self.fs.info(self.root or ".")
        except FileNotFoundError:
            if scheme == "ssh":
                raise SourceError(f"{self.url} does not exist", fatal=True) from None
            return
        if info.get("type") == "file":
            raise SourceError(f"{self.url} is a file, not a folder of runs", fatal=True)

    def list(self) -> Iterator[RemoteFile]:
        """Each TensorBoard file below the source (a fresh listing: caches are dropped first)."""
        with contextlib.suppress(Exception):
            self.fs.invalidate_cache()
        if self.url.scheme == "ssh":
            found, read = self._find_ssh()
            self._count(read)
        else:
            found = self.fs.find(self.root or ".", detail=True)
        if not isinstance(found, dict):  # adlfs answers a file's path with a list of names
            found = {}  # nothing below it: check() says what it is
        prefix = (self.root.rstrip("/") + "/") if self.root else ""
        for name, item in found.items():
            if item.get("type") != "file" or not name.startswith(prefix):
                continue
            relative = name[len(prefix) :] if prefix else name.removeprefix("./")
            path = tensorboard_path(relative)
            if path is not None:
                yield RemoteFile(path, int(item.get("size") or 0), _version(item), _modified(item))
        if self.url.scheme != "ssh":
            self._count(1 + len(found) // _PAGE[self.url.scheme])

    def _find_ssh(self) -> tuple[dict[str, dict[str, Any]], int]:
        """``({path: details} of the files below the root, folders read)`` over SFTP.

        fsspec's ``find`` reads one folder after another, a round trip each: this
        reads each level's folders at once. Like ``find``, a folder that went away
        or cannot be read is left out; a root that is missing or a file lists empty.
        """
        walk = _walk_sftp(self.fs, self.root or ".")
        return asyncio.run_coroutine_threadsafe(walk, self.fs.loop).result()

    def read(self, path: str, start: int, end: int) -> Generator[bytes, None, None]:
        """The bytes ``[start, end)`` of a file, in chunks of at most :data:`READ_CHUNK`."""
        full = self.full_path(path)
        if self.url.scheme == "ssh":
            # sshfs's cat_file ignores ranges: read from an open file instead.
            self._count(1)
            with self.fs.open(full, "rb", block_size=READ_CHUNK) as remote:
                remote.seek(start)
                position = start
                while position < end:
                    chunk = remote.read(min(READ_CHUNK, end - position))
                    if not chunk:
                        return
                    position += len(chunk)
                    self._count(0, len(chunk))
                    yield chunk
            return
        position = start
        while position < end:
            chunk = self.fs.cat_file(full, start=position, end=min(end, position + READ_CHUNK))
            self._count(1, len(chunk))
            if not chunk:
                return
            position += len(chunk)
            yield chunk


async def _walk_sftp(fs: Any, root: str) -> tuple[dict[str, dict[str, Any]], int]:
    gate = asyncio.Semaphore(SSH_LIST_CONCURRENCY)

    async def read(folder: str) -> list[dict[str, Any]]:
        async with gate:
            try:
                listing: list[dict[str, Any]] = await fs._ls(folder, detail=True)
            except (ConnectionError, TimeoutError):
                raise
            except OSError:  # gone, or not readable: left out, as fsspec's find does
                return []
            return listing

    files: dict[str, dict[str, Any]] = {}
    level, read_count = [root], 0
    while level:
        listings = await asyncio.gather(*(read(folder) for folder in level))
        read_count += len(level)
        level = []
        for listing in listings:
            for item in listing:
                name = item["name"].rstrip("/")
                if item.get("type") == "directory":
                    level.append(name)
                else:
                    files[name] = item
    return dict(sorted(files.items())), read_count


def _version(item: dict[str, Any]) -> str:
    for key in _VERSION_KEYS:
        if item.get(key) is not None:
            return str(item[key])
    return ""


def _modified(item: dict[str, Any]) -> datetime | None:
    for key in _MODIFIED_KEYS:
        value = item.get(key)
        if isinstance(value, datetime):
            return value
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return None


def missing_extra(scheme: str) -> SourceError:
    """The error for a scheme whose fsspec package is not installed, saying what installs it."""
    package, extra = EXTRAS[scheme]
    return SourceError(
        f"{package} is not installed, which {scheme}:// sources need: "
        f'pip install "jupyter-forgather-tb[{extra}]"',
        fatal=True,
    )


def open_source(
    url: SourceURL, conn: Connection | None, s3_endpoint_url: str | None = None
) -> RemoteSource:
    """Open ``url`` with ``conn``'s settings, or the standard credential chains without one.

    ``s3_endpoint_url`` is the server's default S3 endpoint (a connection's own wins).
    Raises :class:`SourceError` (a missing extra, an unreachable host, a refused key...).
    """
    settings = dict(conn.settings) if conn else {}
    opener = {"s3": _open_s3, "gs": _open_gs, "az": _open_az, "ssh": _open_ssh}[url.scheme]
    try:
        if url.scheme == "s3" and s3_endpoint_url and "endpoint_url" not in settings:
            settings["endpoint_url"] = s3_endpoint_url
        return opener(url, settings)
    except ImportError:
        raise missing_extra(url.scheme) from None
    except SourceError:
        raise
    except Exception as error:
        raise describe_error(error, url) from error


def _open_s3(url: SourceURL, settings: dict[str, Any]) -> RemoteSource:
    import s3fs

    client_kwargs: dict[str, Any] = {}
    if "region" in settings:
        client_kwargs["region_name"] = settings["region"]
    if "ca_bundle" in settings:
        client_kwargs["verify"] = settings["ca_bundle"]
    fs = s3fs.S3FileSystem(
        key=settings.get("key"),
        secret=settings.get("secret"),
        anon=settings.get("anon", False),
        profile=settings.get("profile"),
        endpoint_url=settings.get("endpoint_url"),
        client_kwargs=client_kwargs,
        config_kwargs={
            "retries": {"mode": "standard", "max_attempts": 1},
            "connect_timeout": 10,
            "read_timeout": 60,
        },
        skip_instance_cache=True,
        use_listings_cache=False,
    )
    # s3fs retries (quickly) itself: botocore's retries on top would multiply the waits.
    fs.retries = 3
    return RemoteSource(url, fs, _bucket_path(url))


def _open_gs(url: SourceURL, settings: dict[str, Any]) -> RemoteSource:
    # gcsfs's default class first makes a gRPC call that hangs on anything but Google.
    os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
    from gcsfs.core import GCSFileSystem

    token: Any = "anon" if settings.get("anon") else settings.get("token")
    kwargs: dict[str, Any] = {"token": token, "skip_instance_cache": True}
    if "endpoint_url" in settings:
        kwargs["endpoint_url"] = settings["endpoint_url"]
    if "project" in settings:
        kwargs["project"] = settings["project"]
    return RemoteSource(url, GCSFileSystem(**kwargs), _bucket_path(url))


def _open_az(url: SourceURL, settings: dict[str, Any]) -> RemoteSource:
    import adlfs

    kwargs = {key: settings[key] for key in settings if key != "anon"}
    if "anon" in settings:
        kwargs["anon"] = settings["anon"]
    fs = adlfs.AzureBlobFileSystem(skip_instance_cache=True, **kwargs)
    return RemoteSource(url, fs, _bucket_path(url))


def _known_hosts(settings: dict[str, Any]) -> Any:
    """What asyncssh checks host keys against: never None, which would accept any key."""
    if "known_hosts" in settings:
        return os.path.expanduser(settings["known_hosts"])
    default = os.path.expanduser("~/.ssh/known_hosts")
    return default if os.path.exists(default) else ()


def _open_ssh(url: SourceURL, settings: dict[str, Any]) -> RemoteSource:
    import sshfs

    kwargs: dict[str, Any] = {"known_hosts": _known_hosts(settings), "skip_instance_cache": True}
    port = url.port or settings.get("port")
    if port:
        kwargs["port"] = port
    user = url.user or settings.get("username")
    if user:
        kwargs["username"] = user
    if "client_keys" in settings:
        keys = settings["client_keys"]
        keys = [keys] if isinstance(keys, str) else keys
        kwargs["client_keys"] = [os.path.expanduser(key) for key in keys]
    if "config" in settings:
        kwargs["config"] = [os.path.expanduser(settings["config"])]
    kwargs["connect_timeout"] = 20
    if not _ciphers_configured(kwargs.get("config", ["~/.ssh/config"])):
        kwargs["encryption_algs"] = SSH_PREFERRED_CIPHERS
    fs = sshfs.SSHFileSystem(settings.get("host", url.location), **kwargs)
    path = url.path
    root = path[2:] if path.startswith("~/") else ("" if path == "~" else "/" + path)
    return RemoteSource(url, fs, root)


def _ciphers_configured(config_files: list[str]) -> bool:
    """True if an SSH configuration file may choose ciphers (a ``Ciphers`` or ``Include`` line)."""
    for name in config_files:
        try:
            with open(os.path.expanduser(name), encoding="utf-8", errors="replace") as lines:
                for line in lines:
                    words = line.replace("=", " ").split()
                    if words and words[0].lower() in ("ciphers", "include"):
                        return True
        except OSError:
            continue
    return False


def _bucket_path(url: SourceURL) -> str:
    return f"{url.location}/{url.path}" if url.path else url.location


def describe_error(error: BaseException, url: SourceURL) -> SourceError:
    """A user-facing message for an error from a source, and whether retrying can help."""
    if isinstance(error, SourceError):
        return error
    where = str(url)
    for cause in _chain(error):
        code = _s3_code(cause)
        if code in _S3_FATAL:
            return SourceError(_S3_FATAL[code].format(location=url.location, url=where), True)
        name = type(cause).__name__
        if name == "HostKeyNotVerifiable":
            return SourceError(
                f"the SSH host key of {url.location} is unknown or has changed, so the "
                "connection was refused: check the key and add it to known_hosts (or the "
                "connection's known_hosts file), e.g. with ssh-keyscan",
                fatal=True,
            )
        if name == "PermissionDenied" and "asyncssh" in type(cause).__module__:
            return SourceError(
                f"the SSH server {url.location} refused the login (check the user name, "
                "the keys or the agent)",
                fatal=True,
            )
        if name in ("NoCredentialsError", "PartialCredentialsError"):
            return SourceError(
                "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                "a profile (AWS_PROFILE), or give the machine a role",
                fatal=True,
            )
        if name == "DefaultCredentialsError":
            return SourceError(
                "no Google credentials found: set GOOGLE_APPLICATION_CREDENTIALS, run "
                "`gcloud auth application-default login`, or give a connection a token",
                fatal=True,
            )
        if url.scheme == "gs" and (
            name == "RefreshError" or (name == "HttpError" and getattr(cause, "code", 0) == 401)
        ):
            return SourceError(
                f"Google refused the credentials for {where} (check the connection's token "
                "file, or the Application Default Credentials)",
                fatal=True,
            )
        az_code = str(getattr(cause, "error_code", "") or "")
        if az_code.startswith("Authorization"):
            return SourceError(f"access to {where} is denied ({az_code})", fatal=True)
        if (
            name == "ClientAuthenticationError"
            or az_code == "AuthenticationFailed"
            or "failed to authenticate" in str(cause)
        ):
            return SourceError(
                f"Azure refused the credentials for {where} (check the account key, SAS "
                "token or connection string)",
                fatal=True,
            )
        if name == "ResourceNotFoundError" and "ContainerNotFound" in str(cause):
            return SourceError(f"container {url.location!r} does not exist", fatal=True)
    if isinstance(error, (FileExistsError, IsADirectoryError, NotADirectoryError)) or (
        isinstance(error, OSError) and error.errno in _LOCAL_ERRNOS
    ):
        return SourceError(f"a local file could not be read or written: {error}", fatal=False)
    if isinstance(error, FileNotFoundError):
        return SourceError(f"{where} was not found", fatal=True)
    if isinstance(error, PermissionError):
        return SourceError(f"access to {where} is denied: {_first_line(error)}", fatal=True)
    if isinstance(error, (ConnectionError, TimeoutError)) or type(error).__name__ in (
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ClientConnectorError",
        "ServerDisconnectedError",
        "ConnectionLost",
        "ServiceRequestError",
    ):
        if url.scheme == "ssh":
            return SourceError(f"cannot reach {url.location}: {_first_line(error)}", fatal=False)
        return SourceError(f"{LABELS[url.scheme]} request failed: {_first_line(error)}", False)
    return SourceError(
        f"{LABELS[url.scheme]} request failed: {type(error).__name__}: {_first_line(error)}",
        fatal=False,
    )


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _s3_code(error: BaseException) -> str | None:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code else None
    return None


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:300]
