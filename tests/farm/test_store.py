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


@pytest.mark.parametrize("damage", [b"evil", None])  # other bytes of another size; same size, flipped bytes
def test_a_corrupt_object_is_replaced_on_the_next_put(tmp_path, damage):
    store = LocalStore(tmp_path / "store")
    source = tmp_path / "engine.bin"
    source.write_bytes(b"engine bytes " * 100)
    key = store.put_file(source)
    stored = store.local_path(key)
    stored.write_bytes(damage if damage is not None else bytes(b ^ 1 for b in source.read_bytes()))
    with pytest.raises(StoreIntegrityError):
        store.get_file(key, tmp_path / "out.bin")
    assert store.put_file(source) == key  # write-if-exists verifies, and repairs
    assert stored.read_bytes() == source.read_bytes()
    assert store.get_bytes(key) == source.read_bytes()
    assert sorted(p.name for p in stored.parent.iterdir()) == [stored.name]  # no temp file left


def test_resubmitting_a_model_repairs_its_corrupt_blob(farm_home, tiny_cnn):
    """The issue's case: a corrupt stored model stayed corrupt however often
    the model was submitted, because only existence was checked."""
    from farm.service import submit
    from farm.spec import parse_spec
    from farm.store import open_store

    spec = parse_spec({"model": str(tiny_cnn), "profiles": [{"name": "p", "inputs": {
        "images": {"min": [1, 3, 32, 32], "opt": [1, 3, 32, 32], "max": [1, 3, 32, 32]}}}]})
    submit(spec, enqueue=False)
    key = hashlib.sha256(tiny_cnn.read_bytes()).hexdigest()
    blob = open_store().local_path(key)
    blob.write_bytes(b"corrupt" + blob.read_bytes()[7:])
    submit(spec, enqueue=False)
    assert blob.read_bytes() == tiny_cnn.read_bytes()
