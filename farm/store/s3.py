"""Artifact store in an S3 bucket (AWS, SeaweedFS, MinIO, or any S3-compatible server).

``FARM_STORE_URL=s3://bucket/prefix``. The endpoint comes from
FARM_S3_ENDPOINT_URL or AWS_ENDPOINT_URL (unset: AWS itself); credentials
and region from the usual AWS variables / config files, through boto3.

Objects live at ``prefix/ab/cdef...`` like the local store. Uploads carry
the SHA-256 as an S3 checksum, so the server refuses bytes that changed in
flight, and every upload is read back and hashed before its key is
returned: a result row never points at an object that is not whole.

A patient store (``open_store(patient=True)``, what workers use) waits for
an unreachable server, up to FARM_STORE_WAIT_S, logging what it waits for;
the CLI's store fails at once with one line.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import logging
import os
import re
import time
from pathlib import Path
from urllib.parse import urlsplit

from farm.config import network_timeout_s, store_wait_s
from farm.errors import ArtifactMissingError, EnvironmentFault, StoreIntegrityError, UserError
from farm.optional import require
from farm.redact import mask
from farm.store.base import ArtifactStore, check_key, hash_file

log = logging.getLogger("farm.store")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_MISSING = ("404", "NoSuchKey", "NotFound")
_REFUSED = ("AccessDenied", "SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidToken", "403")
_SERVER_TROUBLE = ("500", "502", "503", "504", "InternalError", "ServiceUnavailable", "SlowDown")


def _client(endpoint: str | None):
    boto3 = require("boto3", "FARM_STORE_URL=s3://...")
    from botocore.config import Config

    # Bounded waits (FARM_NETWORK_TIMEOUT_S): a server that accepts and never
    # answers ends each try after 3 x the timeout of silence (a read is one chunk).
    timeout = network_timeout_s()
    config = Config(retries={"max_attempts": 3, "mode": "standard"}, s3={"addressing_style": "path"},
                    connect_timeout=timeout, read_timeout=3 * timeout)
    return boto3.client("s3", endpoint_url=endpoint, config=config)


def _check_endpoint(endpoint: str | None) -> None:
    """An S3 endpoint is http(s)://host[:port][/path]; anything else is one
    line naming the setting (botocore raised ValueError or
    EndpointResolutionError tracebacks on every command)."""
    if endpoint is None:
        return
    setting = "FARM_S3_ENDPOINT_URL" if os.environ.get("FARM_S3_ENDPOINT_URL") else "AWS_ENDPOINT_URL"
    try:
        parts = urlsplit(endpoint)
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError as exc:
        raise UserError(mask(f"{setting} {endpoint!r} is not an http(s)://host[:port] URL ({exc})")) from None
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise UserError(mask(f"{setting} {endpoint!r} is not an http(s)://host[:port] URL"))


def _code(exc) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def _unreachable(exc) -> bool:
    """The server is down or sick (worth waiting for), not refusing us."""
    from botocore.exceptions import ClientError, ConnectionError as BotoConnectionError, HTTPClientError
    from s3transfer.exceptions import RetriesExceededError  # a download whose stream kept breaking

    if isinstance(exc, (BotoConnectionError, HTTPClientError, RetriesExceededError)):
        return True
    return isinstance(exc, ClientError) and _code(exc) in _SERVER_TROUBLE


def _user_errors(method):
    """Missing credentials, refused keys, a missing bucket or an unreachable
    endpoint are the user's to fix: one line naming the setting, not a
    botocore traceback. A patient store waits out an unreachable server."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        from botocore.exceptions import ClientError, NoCredentialsError, PartialCredentialsError

        waited_since = None
        while True:
            try:
                result = method(self, *args, **kwargs)
                if waited_since is not None:
                    log.warning("artifact store %s is back after %.0f s", self.where, time.monotonic() - waited_since)
                return result
            except (NoCredentialsError, PartialCredentialsError):
                raise EnvironmentFault(f"FARM_STORE_URL is {self.url} but no AWS credentials were found "
                                f"(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or an AWS profile)") from None
            except ClientError as exc:
                if _code(exc) == "NoSuchBucket":
                    raise self.missing_bucket() from None
                if _code(exc) in _REFUSED:
                    raise EnvironmentFault(f"the S3 server {self.where} refused the credentials ({_code(exc)}); "
                                    f"check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY") from None
                if not _unreachable(exc):
                    raise
                waited_since = self._wait(exc, waited_since)
            except Exception as exc:
                if not _unreachable(exc):
                    raise
                waited_since = self._wait(exc, waited_since)
    return wrapper


class S3Store(ArtifactStore):
    def __init__(self, bucket: str, prefix: str = "", endpoint: str | None = None, client=None,
                 wait_s: float = 0.0):
        if not bucket:
            raise UserError("FARM_STORE_URL s3://BUCKET/prefix names no bucket")
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.endpoint, self.wait_s = endpoint, wait_s
        self.client = client or _client(endpoint)

    @classmethod
    def from_url(cls, url: str, patient: bool = False) -> "S3Store":
        try:
            parts = urlsplit(url)
        except ValueError as exc:
            raise UserError(mask(f"FARM_STORE_URL {url!r} is not s3://bucket/prefix ({exc})")) from None
        if "@" in parts.netloc:
            raise UserError(mask(f"FARM_STORE_URL {url!r} carries credentials; give s3://bucket/prefix and the "
                                 f"credentials in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"))
        if parts.netloc and not _BUCKET.match(parts.netloc):
            raise UserError(f"FARM_STORE_URL names the bucket {parts.netloc[:80]!r}, which is not an S3 bucket name "
                            f"(3-63 characters: a-z, 0-9, '.', '-')")
        endpoint = os.environ.get("FARM_S3_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL") or None
        _check_endpoint(endpoint)
        return cls(parts.netloc, parts.path, endpoint, wait_s=store_wait_s() if patient else 0.0)

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    @property
    def where(self) -> str:
        """The endpoint without any user:password in it."""
        if not self.endpoint:
            return f"{self.url} (AWS)"
        parts = urlsplit(self.endpoint)
        return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"

    def missing_bucket(self) -> UserError:
        return EnvironmentFault(f"the bucket {self.bucket!r} of FARM_STORE_URL does not exist on {self.where}; "
                         f"create it with 'farm store create-bucket'")

    def _wait(self, exc, since: float | None) -> float:
        now = time.monotonic()
        since = now if since is None else since
        if now - since >= self.wait_s:
            waited = f" after waiting {now - since:.0f} s (FARM_STORE_WAIT_S)" if self.wait_s else ""
            raise EnvironmentFault(mask(f"cannot reach the S3 endpoint {self.where} for FARM_STORE_URL{waited}: "
                                 f"{type(exc).__name__}")) from None
        log.warning("waiting for the artifact store %s: %s; retrying for up to %.0f s more (FARM_STORE_WAIT_S)",
                    self.where, type(exc).__name__, self.wait_s - (now - since))
        time.sleep(min(5.0, max(0.5, (now - since) / 4), self.wait_s - (now - since)))
        return since

    def _key(self, key: str) -> str:
        check_key(key)
        name = f"{key[:2]}/{key[2:]}"
        return f"{self.prefix}/{name}" if self.prefix else name

    @_user_errors
    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except ClientError as exc:
            if _code(exc) in _MISSING:
                return False
            raise

    @_user_errors
    def put_file(self, path: Path) -> str:
        """Upload unless an intact object is there already (one that exists
        is verified, a corrupt one overwritten); a new upload is read back
        and hashed before its key is returned, and removed if it is not whole."""
        key = hash_file(Path(path))
        checksum = base64.b64encode(bytes.fromhex(key)).decode()
        if self._intact(key, checksum, Path(path).stat().st_size):
            return key
        with open(path, "rb") as handle:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=handle, ChecksumSHA256=checksum)
        stored = self._stored_hash(key)
        if stored != key:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
            raise StoreIntegrityError(f"upload of artifact {key} to {self.url} read back as {stored}; removed it")
        return key

    def _intact(self, key: str, checksum: str, size: int) -> bool:
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(key), ChecksumMode="ENABLED")
        except ClientError as exc:
            if _code(exc) in _MISSING:
                return False
            raise
        if head.get("ContentLength") != size:
            return False
        if head.get("ChecksumSHA256") == checksum:
            return True  # the server checked these bytes against this SHA-256 when they were written
        return self._stored_hash(key) == key  # written without a checksum (or multipart): hash its bytes

    def _stored_hash(self, key: str) -> str | None:
        """The SHA-256 of the bytes the server returns for ``key`` now (None
        when there is no such object)."""
        from botocore.exceptions import ClientError

        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        except ClientError as exc:
            if _code(exc) in _MISSING:
                return None
            raise
        digest = hashlib.sha256()
        for chunk in iter(lambda: body.read(1 << 20), b""):
            digest.update(chunk)
        return digest.hexdigest()

    @_user_errors
    def _fetch_to(self, key: str, dest: Path) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.download_file(self.bucket, self._key(key), str(dest))
        except ClientError as exc:
            if _code(exc) in _MISSING:
                raise ArtifactMissingError(f"artifact {key} is not in {self.url}") from None
            raise

    @_user_errors
    def check(self) -> None:
        """One line if the bucket is missing, refused or unreachable."""
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if _code(exc) in _MISSING:
                raise self.missing_bucket() from None
            raise

    @_user_errors
    def create_bucket(self) -> bool:
        """Create the bucket unless it exists; True when it was created."""
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
            return False
        except ClientError as exc:
            if _code(exc) not in _MISSING:
                raise
        self.client.create_bucket(Bucket=self.bucket)
        return True


def configured_store() -> "S3Store":
    """The S3 store FARM_STORE_URL names (``farm store create-bucket``)."""
    from farm.config import settings
    from farm.errors import UserError

    url = settings().store_url
    if not url.startswith("s3://"):
        raise UserError(f"FARM_STORE_URL is {url!r}, not s3://bucket/prefix (a directory store needs no bucket)")
    return S3Store.from_url(url)


def main(argv: list[str] | None = None) -> int:
    """``python -m farm.store.s3 create-bucket``: kept for deployments that
    call it; the command is ``farm store create-bucket``. The store does not
    import the CLI (the CLI is the top layer): the same library call, the
    same one line."""
    import sys

    from farm.errors import UserError

    args = sys.argv[1:] if argv is None else argv
    if args != ["create-bucket"]:
        print("usage: python -m farm.store.s3 create-bucket (or: farm store create-bucket)", file=sys.stderr)
        return 2
    try:
        store = configured_store()
        created = store.create_bucket()
    except UserError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    print(f"bucket {store.bucket} {'created' if created else 'already exists'} on {store.where}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
