"""The S3 client our mirror and uploader share, and S3 errors in words for the user.

boto3 is imported only when a client is made: the Jupyter server never does.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from .tbfiles import tensorboard_path

# S3 error codes that no retry will fix: a job reports them and stops, an upload exits.
_FATAL_CODES = {
    "NoSuchBucket": "bucket {bucket!r} does not exist",
    "AccessDenied": "access to {url} is denied",
    "AllAccessDisabled": "access to {url} is denied",
    "InvalidAccessKeyId": "the AWS access key is not valid for this endpoint",
    "SignatureDoesNotMatch": "the AWS secret key does not match the access key",
    "InvalidToken": "the AWS session token is not valid",
    "ExpiredToken": "the AWS session token has expired",
    "InvalidBucketName": "{bucket!r} is not a valid bucket name",
}


class S3Error(Exception):
    """A problem talking to S3, in words for the user; ``fatal`` when retrying cannot help."""

    def __init__(self, message: str, fatal: bool):
        super().__init__(message)
        self.message = message
        self.fatal = fatal


class S3Client(Protocol):
    """The calls this package makes on a boto3 S3 client (boto3 has no type information)."""

    def get_paginator(self, operation_name: str) -> Any: ...
    def get_object(self, **kwargs: Any) -> dict[str, Any]: ...
    def put_object(self, **kwargs: Any) -> dict[str, Any]: ...
    def create_multipart_upload(self, **kwargs: Any) -> dict[str, Any]: ...
    def upload_part(self, **kwargs: Any) -> dict[str, Any]: ...
    def upload_part_copy(self, **kwargs: Any) -> dict[str, Any]: ...
    def complete_multipart_upload(self, **kwargs: Any) -> dict[str, Any]: ...
    def abort_multipart_upload(self, **kwargs: Any) -> dict[str, Any]: ...


def make_client(endpoint_url: str | None = None) -> S3Client:
    """A boto3 S3 client with the standard credential chain and bounded retries.

    Without ``endpoint_url`` boto3 uses ``AWS_ENDPOINT_URL`` when set, else AWS.
    """
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise S3Error(
            "boto3 is not installed: pip install 'jupyter-forgather-tb[s3]'", fatal=True
        ) from None

    config = Config(
        retries={"mode": "standard", "max_attempts": 3}, connect_timeout=10, read_timeout=60
    )
    client: S3Client = boto3.session.Session().client(
        "s3", endpoint_url=endpoint_url or None, config=config
    )
    return client


def describe_error(error: Exception, url: str, bucket: str) -> S3Error:
    """A user-facing message for a boto3 error, and whether it is fatal."""
    from botocore import exceptions

    if isinstance(error, S3Error):
        return error
    if isinstance(error, (exceptions.NoCredentialsError, exceptions.PartialCredentialsError)):
        return S3Error(
            "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "a profile (AWS_PROFILE), or give the machine a role",
            fatal=True,
        )
    if isinstance(error, exceptions.ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        text = error.response.get("Error", {}).get("Message") or code
        if code in _FATAL_CODES:
            return S3Error(_FATAL_CODES[code].format(bucket=bucket, url=url), fatal=True)
        if code in ("403", "404"):
            what = "is denied" if code == "403" else "was not found"
            return S3Error(f"{url} {what} (HTTP {code})", fatal=True)
        return S3Error(f"S3 answered {code}: {text}", fatal=False)
    if isinstance(error, exceptions.BotoCoreError):
        return S3Error(f"S3 request failed: {error}", fatal=False)
    if isinstance(error, OSError):
        return S3Error(f"a local file could not be read or written: {error}", fatal=False)
    return S3Error(f"{type(error).__name__}: {error}", fatal=False)


def list_tensorboard_objects(
    client: S3Client, bucket: str, prefix: str
) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(path below prefix, listed object)`` for each object TensorBoard reads, all pages."""
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            path = tensorboard_path(item["Key"][len(prefix) :])
            if path is not None:
                yield path, item
