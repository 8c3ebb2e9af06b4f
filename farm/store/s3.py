"""Artifact store in an S3 bucket (AWS, MinIO, or any S3-compatible server).

``FARM_STORE_URL=s3://bucket/prefix``. The endpoint comes from
FARM_S3_ENDPOINT_URL or AWS_ENDPOINT_URL (unset: AWS itself); credentials
and region from the usual AWS variables / config files, through boto3.

Objects live at ``prefix/ab/cdef...`` like the local store. Uploads carry
the SHA-256 as an S3 checksum, so the server refuses bytes that changed in
flight; reads are verified against the key by ArtifactStore.get_file.
"""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

from farm.errors import ArtifactMissingError, UserError
from farm.redact import mask
from farm.store.base import ArtifactStore, check_key, hash_file

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")


def _client(endpoint: str | None):
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise UserError("FARM_STORE_URL is s3://... but boto3 is not installed "
                        "(pip install 'engine-farm[s3]')") from None
    config = Config(retries={"max_attempts": 5, "mode": "standard"}, s3={"addressing_style": "path"})
    return boto3.client("s3", endpoint_url=endpoint, config=config)


def _user_errors(method):
    """Missing credentials or an unreachable endpoint are the user's to fix:
    one line naming the setting, not a botocore traceback."""
    import functools

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        from botocore.exceptions import EndpointConnectionError, NoCredentialsError, PartialCredentialsError

        try:
            return method(self, *args, **kwargs)
        except (NoCredentialsError, PartialCredentialsError):
            raise UserError(f"FARM_STORE_URL is s3://{self.bucket}/{self.prefix} but no AWS credentials were "
                            f"found (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or an AWS profile)") from None
        except EndpointConnectionError as exc:
            raise UserError(mask(f"cannot reach the S3 endpoint for FARM_STORE_URL ({exc})")) from None
    return wrapper


class S3Store(ArtifactStore):
    def __init__(self, bucket: str, prefix: str = "", endpoint: str | None = None, client=None):
        if not bucket:
            raise UserError("FARM_STORE_URL s3://BUCKET/prefix names no bucket")
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.endpoint = endpoint
        self.client = client or _client(endpoint)

    @classmethod
    def from_url(cls, url: str) -> "S3Store":
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
        return cls(parts.netloc, parts.path, endpoint)

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
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    @_user_errors
    def put_file(self, path: Path) -> str:
        """Upload unless an intact object is there already: one that exists
        is verified (its server-side SHA-256, else its bytes) and a corrupt
        one is overwritten."""
        key = hash_file(Path(path))
        checksum = base64.b64encode(bytes.fromhex(key)).decode()
        if self._intact(key, checksum, Path(path).stat().st_size):
            return key
        with open(path, "rb") as handle:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=handle,
                                   ChecksumSHA256=checksum)
        return key

    def _intact(self, key: str, checksum: str, size: int) -> bool:
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(key), ChecksumMode="ENABLED")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        if head.get("ContentLength") != size:
            return False
        if head.get("ChecksumSHA256") == checksum:
            return True  # the server checked these bytes against this SHA-256 when they were written
        # Written without a checksum (or multipart): hash the object's bytes.
        import hashlib

        digest = hashlib.sha256()
        body = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        for block in iter(lambda: body.read(1 << 20), b""):
            digest.update(block)
        return digest.hexdigest() == key

    @_user_errors
    def _fetch_to(self, key: str, dest: Path) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.download_file(self.bucket, self._key(key), str(dest))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise ArtifactMissingError(f"artifact {key} is not in s3://{self.bucket}/{self.prefix}") from None
            raise


def main(argv: list[str] | None = None) -> int:
    """``python -m farm.store.s3 create-bucket``: create FARM_STORE_URL's
    bucket if it does not exist (a deployment's one-shot init step)."""
    import argparse

    from farm.config import settings

    parser = argparse.ArgumentParser(prog="python -m farm.store.s3", description=main.__doc__)
    parser.add_argument("action", choices=["create-bucket"])
    parser.parse_args(argv)
    url = settings().store_url
    if not url.startswith("s3://"):
        print(f"Error: FARM_STORE_URL is {url!r}, not s3://bucket/prefix")
        return 1
    store = S3Store.from_url(url)
    from botocore.exceptions import ClientError

    try:
        store.client.head_bucket(Bucket=store.bucket)
    except ClientError:
        store.client.create_bucket(Bucket=store.bucket)
    print(f"bucket {store.bucket} ready")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
