"""The S3 artifact store against a real SeaweedFS on 127.0.0.1 (started by
the s3_server fixture, with access keys), and key checks shared by every
store."""

from __future__ import annotations

import pytest

from farm.errors import StoreIntegrityError
from farm.store import LocalStore, open_store
from farm.store.base import hash_file


@pytest.fixture
def s3_store(s3_env, monkeypatch):
    for key, value in s3_env.items():
        monkeypatch.setenv(key, value)
    return open_store()


def test_round_trip_is_content_addressed(s3_store, tmp_path):
    source = tmp_path / "engine.bin"
    source.write_bytes(b"\x00engine" * 1000)
    key = s3_store.put_file(source)
    assert key == hash_file(source)
    assert s3_store.exists(key) and s3_store.put_file(source) == key
    assert s3_store.get_file(key, tmp_path / "copy.bin").read_bytes() == source.read_bytes()
    assert s3_store.get_bytes(s3_store.put_bytes(b"meta")) == b"meta"
    listed = s3_store.client.list_objects_v2(Bucket=s3_store.bucket)["Contents"]
    assert {o["Key"] for o in listed} >= {f"artifacts/{key[:2]}/{key[2:]}"}


def test_corrupt_object_is_detected(s3_store, tmp_path):
    key = s3_store.put_bytes(b"good bytes")
    s3_store.client.put_object(Bucket=s3_store.bucket, Key=s3_store._key(key), Body=b"evil bytes")
    with pytest.raises(StoreIntegrityError, match="corrupt"):
        s3_store.get_file(key, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unsigned_and_wrong_key_requests_are_refused(s3_server, s3_store):
    from botocore import UNSIGNED
    from botocore.exceptions import ClientError

    key = s3_store.put_bytes(b"private engine")
    unsigned = s3_server.client(signature_version=UNSIGNED)
    wrong_key = s3_server.client(secret_key="not-the-secret")
    for client in (unsigned, wrong_key):
        for request in (lambda: client.get_object(Bucket=s3_store.bucket, Key=s3_store._key(key)),
                        lambda: client.put_object(Bucket=s3_store.bucket, Key="intruder", Body=b"x"),
                        lambda: client.list_objects_v2(Bucket=s3_store.bucket)):
            with pytest.raises(ClientError) as refused:
                request()
            assert refused.value.response["Error"]["Code"] in ("AccessDenied", "SignatureDoesNotMatch")
    assert s3_store.get_bytes(key) == b"private engine"


def test_missing_object(s3_store, tmp_path):
    key = "ab" * 32
    assert not s3_store.exists(key)
    with pytest.raises(FileNotFoundError):
        s3_store.get_file(key, tmp_path / "out")


@pytest.mark.parametrize("bad", ["../../etc/passwd", "AB" * 32, "ab" * 31, "ab" * 32 + "/x", "", "a/../" * 16])
def test_keys_that_are_not_content_hashes_are_refused(bad, s3_store, tmp_path):
    for store in (s3_store, LocalStore(tmp_path / "local")):
        with pytest.raises(ValueError, match="sha256 hex digests"):
            store.exists(bad)
        with pytest.raises(ValueError, match="sha256 hex digests"):
            store.get_file(bad, tmp_path / "out")


@pytest.mark.parametrize("evil", [b"evil bytes", b"good bytez"])  # another size; the same size
def test_a_corrupt_object_is_replaced_on_the_next_put(s3_store, tmp_path, evil):
    source = tmp_path / "engine.bin"
    source.write_bytes(b"good bytes")
    key = s3_store.put_file(source)
    # Overwritten out of band, without a checksum (as a plain client would).
    s3_store.client.put_object(Bucket=s3_store.bucket, Key=s3_store._key(key), Body=evil)
    with pytest.raises(StoreIntegrityError):
        s3_store.get_file(key, tmp_path / "out")
    assert s3_store.put_file(source) == key
    assert s3_store.get_bytes(key) == b"good bytes"


def test_an_intact_object_is_not_uploaded_again(s3_store, tmp_path):
    source = tmp_path / "engine.bin"
    source.write_bytes(b"\x01engine" * 1000)
    key = s3_store.put_file(source)
    etag = s3_store.client.head_object(Bucket=s3_store.bucket, Key=s3_store._key(key))["ETag"]
    modified = s3_store.client.head_object(Bucket=s3_store.bucket, Key=s3_store._key(key))["LastModified"]
    assert s3_store.put_file(source) == key
    head = s3_store.client.head_object(Bucket=s3_store.bucket, Key=s3_store._key(key))
    assert (head["ETag"], head["LastModified"]) == (etag, modified)


def _farm(args, env, tmp_path):
    import os
    import subprocess
    import sys

    full = {**os.environ, "FARM_HOME": str(tmp_path / "home"), **env}
    return subprocess.run([sys.executable, "-m", "farm", *args], env=full, cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)


def _one_error_line(result) -> str:
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    [line] = result.stderr.strip().splitlines()
    return line


def test_missing_bucket_is_one_line_and_create_bucket_makes_it(s3_server, tiny_model, tmp_path):
    env = {**s3_server.env(), "FARM_STORE_URL": "s3://missing-bucket/x"}
    submit = ["sweep", "submit", "--model", str(tiny_model), "--device", "cpu"]
    line = _one_error_line(_farm(submit, env, tmp_path))
    assert line == (f"Error: the bucket 'missing-bucket' of FARM_STORE_URL does not exist on {s3_server.endpoint}; "
                    f"create it with 'farm store create-bucket'")
    assert _one_error_line(_farm(["store", "check"], env, tmp_path)) == line
    env["FARM_STORE_URL"] = f"s3://made-{tmp_path.name[-8:].lower().replace('_', '-')}/x"
    created = _farm(["store", "create-bucket"], env, tmp_path)
    assert created.returncode == 0 and created.stdout.endswith(f"created on {s3_server.endpoint}\n")
    again = _farm(["store", "create-bucket"], env, tmp_path)
    assert again.returncode == 0 and "already exists" in again.stdout
    assert _farm(["store", "check"], env, tmp_path).returncode == 0


def test_wrong_secret_and_unreachable_server_are_one_line(s3_server, s3_env, tmp_path):
    wrong = _one_error_line(_farm(["store", "check"], {**s3_env, "AWS_SECRET_ACCESS_KEY": "not-it"}, tmp_path))
    assert wrong.startswith(f"Error: the S3 server {s3_server.endpoint} refused the credentials")
    assert "not-it" not in wrong
    down = _one_error_line(_farm(["store", "check"], {**s3_env, "FARM_S3_ENDPOINT_URL": "http://127.0.0.1:9"},
                                 tmp_path))
    assert down == "Error: cannot reach the S3 endpoint http://127.0.0.1:9 for FARM_STORE_URL: EndpointConnectionError"
