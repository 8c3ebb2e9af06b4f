"""Timing-cache identity: one cache per (GPU model, TensorRT version, CUDA
version), never shared across any of them. (Combining caches needs full
TensorRT and a GPU; ``combine`` is type-checked by test_mypy.)"""

from __future__ import annotations

from workers import artifact_index
from workers.backends.tensorrt_family.timing_cache import KIND, CacheIdentity, load, locked

BASE = CacheIdentity("NVIDIA H100 80GB HBM3", "tensorrt", "10.13.0.35", "12.9")


def test_key_is_stable_and_ignores_name_spelling():
    assert BASE.key == CacheIdentity("nvidia h100 80gb hbm3 ", "tensorrt", "10.13.0.35", "12.9").key
    assert len(BASE.key) == 64


def test_any_difference_is_another_cache():
    others = [
        CacheIdentity("NVIDIA L4", "tensorrt", "10.13.0.35", "12.9"),
        CacheIdentity("NVIDIA H100 80GB HBM3", "tensorrt", "10.13.3.9", "12.9"),
        CacheIdentity("NVIDIA H100 80GB HBM3", "tensorrt", "10.13.0.35", "13.0"),
        CacheIdentity("NVIDIA H100 80GB HBM3", "tensorrt-rtx", "10.13.0.35", "12.9"),
    ]
    keys = {BASE.key, *(o.key for o in others)}
    assert len(keys) == 5


def test_load_without_a_cache_starts_empty_and_finds_a_published_one(farm_home, tmp_path):
    from farm.store import open_store

    store = open_store()
    assert load(store, BASE) == b""
    with locked(BASE):  # the merge lock is a file under FARM_HOME/cache
        assert artifact_index.local_path(KIND, BASE.key, ".lock").exists()
    blob = tmp_path / "cache.bin"
    blob.write_bytes(b"timing-cache-bytes")
    artifact_index.publish(store, KIND, BASE.key, blob, BASE.parts(), "application/octet-stream")
    assert load(store, BASE) == b"timing-cache-bytes"
    other = CacheIdentity("NVIDIA L4", "tensorrt", "10.13.0.35", "12.9")
    assert load(store, other) == b""
