from __future__ import annotations

import hashlib

import pytest

from farm.errors import StoreIntegrityError
from farm.store import LocalStore, check_key


def test_put_get_round_trip_is_content_addressed(tmp_path):
    store = LocalStore(tmp_path / "store")
    source = tmp_path / "engine.bin"
    source.write_bytes(b"engine bytes")
    key = store.put_file(source)
    assert key == hashlib.sha256(b"engine bytes").hexdigest()
    assert store.put_file(source) == key  # idempotent
    assert store.exists(key) and store.get_bytes(key) == b"engine bytes"
    assert store.get_file(key, tmp_path / "out.bin").read_bytes() == b"engine bytes"


def test_corruption_is_detected_on_read(tmp_path):
    store = LocalStore(tmp_path / "store")
    key = store.put_bytes(b"good")
    store.local_path(key).write_bytes(b"evil")
    with pytest.raises(StoreIntegrityError, match=f"artifact {key} is corrupt"):
        store.get_file(key, tmp_path / "out.bin")
    assert not (tmp_path / "out.bin").exists()


@pytest.mark.parametrize("key", ["../etc/passwd", "abc", "A" * 64, "/" + "a" * 63, "a" * 63 + "/"])
def test_keys_that_are_not_content_hashes_are_refused(tmp_path, key):
    with pytest.raises(ValueError, match="artifact keys are sha256 hex digests"):
        check_key(key)
    with pytest.raises(ValueError):
        LocalStore(tmp_path).exists(key)


def test_concurrent_fetches_into_one_cache_file_all_succeed(tmp_path):
    """Workers on one host fetch the same model into a shared cache at once."""
    from concurrent.futures import ThreadPoolExecutor

    store = LocalStore(tmp_path / "store")
    data = bytes(range(256)) * (1 << 15)  # 8 MiB
    key = store.put_bytes(data)
    dest = tmp_path / "cache.onnx"
    for _ in range(3):
        dest.unlink(missing_ok=True)
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda _: store.get_file(key, dest), range(4)))
        assert all(r == dest for r in results) and dest.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache.onnx", "store"]  # no temp files left
