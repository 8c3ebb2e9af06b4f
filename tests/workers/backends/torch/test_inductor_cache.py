"""The shared Inductor cache through the store (CPU: the plumbing; the GPU
panel measures a warm rebuild). Entries are torch's own CacheArtifact
objects with made-up contents: what is tested is what the farm does with
them (kept types, merge, identity, verification)."""

from __future__ import annotations

import dataclasses

import pytest

from workers import artifact_index
from workers.backends.torch import inductor_cache as ic

A = ic.CacheIdentity("gpu.nvidia-h200", "9.0", "2.11.0+cu130", "3.5.0", "13.0", "ab" * 32, "fp16",
                     ic.shapes_text({"images": (8, 3, 320, 320)}), ic.options_digest("default", {}, False))


def _artifacts(**entries: list[str]) -> dict[str, list]:
    from torch.compiler._cache import CacheArtifactFactory, CacheArtifactManager

    CacheArtifactManager._ensure_cache_artifacts_registered()
    return {kind: [CacheArtifactFactory.create(kind, key, f"{kind}:{key}".encode() * 10) for key in keys]
            for kind, keys in entries.items()}


def _keys(artifacts: dict[str, list]) -> dict[str, list[str]]:
    return {kind: [a.key for a in entries] for kind, entries in artifacts.items()}


def test_publish_merge_and_fetch_round_trip(farm_home):
    from farm.store import open_store

    store = open_store()
    assert ic.fetch(store, A) == ({}, {"status": "none published"})
    learned, dropped = ic.kept(_artifacts(inductor=["g1"], autotune=["t1"], pgo=["p1"]))
    assert _keys(learned) == {"inductor": ["g1"], "autotune": ["t1"]} and dropped == {"pgo": len(b"pgo:p1") * 10}
    first = ic.publish(store, A, learned)
    assert first["status"] == "published"
    ic.publish(store, A, ic.kept(_artifacts(inductor=["g2"], aot_autograd=["a1"], autotune=["t1"]))[0])
    shared, info = ic.fetch(store, A)
    assert info["status"] == "loaded" and info["sha256"] != first["sha256"]
    assert _keys(shared) == {"inductor": ["g1", "g2"], "aot_autograd": ["a1"], "autotune": ["t1"]}
    assert shared["inductor"][1].content == b"inductor:g2" * 10
    assert ic.publish(store, A, ic.kept(_artifacts(inductor=["g2"]))[0])["status"] == "unchanged"


def test_another_identity_is_not_reused(farm_home):
    from farm.store import open_store

    store = open_store()
    ic.publish(store, A, _artifacts(inductor=["g1"]))
    for change in ({"torch": "2.12.0"}, {"compute_capability": "8.9"}, {"device_class": "gpu.nvidia-h100"},
                   {"model_sha256": "cd" * 32}, {"precision": "bf16"}, {"shapes": "images=1x3x320x320"},
                   {"options": ic.options_digest("max-autotune", {}, False)}):
        other = dataclasses.replace(A, **change)
        assert other.key != A.key
        assert ic.fetch(store, other) == ({}, {"status": "none published"})
    # A blob of another identity published under A's key (a mislabelled row) is refused by its header.
    other = dataclasses.replace(A, triton="3.6.0")
    path = artifact_index.write_local(ic.KIND, A.key, ic.SUFFIX,
                                      ic.pack(other, ic.encode_artifacts(_artifacts(inductor=["x"]))))
    artifact_index.publish(store, ic.KIND, A.key, path, A.parts(), "application/octet-stream")
    shared, info = ic.fetch(store, A)
    assert shared == {} and info["status"] == "refused: cache of another identity (differs in triton)"


def test_corrupt_cache_is_refused(farm_home):
    from farm.store import open_store

    store = open_store()
    sha = ic.publish(store, A, _artifacts(inductor=["g1"]))["sha256"]
    local = artifact_index.local_path(ic.KIND, A.key, ic.SUFFIX)
    for path in (local, store.local_path(sha)):  # the worker's copy and the store's object both damaged
        path.chmod(0o644)
        path.write_bytes(path.read_bytes()[:-7] + b"garbage")
    shared, info = ic.fetch(store, A)
    assert shared == {} and info["status"].startswith("refused: artifact ") and "corrupt" in info["status"]
    # Bytes that hash right but are not a cache (published as such): refused, not loaded.
    path = artifact_index.write_local(ic.KIND, A.key, ic.SUFFIX, b"not a cache")
    artifact_index.publish(store, ic.KIND, A.key, path, A.parts(), "application/octet-stream")
    assert ic.fetch(store, A) == ({}, {"status": "refused: not an Inductor cache blob"})
    damaged = ic.pack(A, b"x")[:-3]
    with pytest.raises(ic.CacheRejected, match="damaged"):
        ic.unpack(A, damaged)


def test_merge_keeps_newest_within_the_cap():
    old = _artifacts(inductor=["g1", "g2"])
    new = _artifacts(inductor=["g3", "g1"])
    merged = ic.merge(old, new, limit=10**9)
    assert _keys(merged) == {"inductor": ["g2", "g3", "g1"]}  # g1 refreshed: newest
    size = len(new["inductor"][0].content)
    assert _keys(ic.merge(old, new, limit=2 * size)) == {"inductor": ["g3", "g1"]}  # the oldest dropped


def test_job_artifact_keeps_the_needed_types_and_falls_back_to_the_shared_entries():
    from types import SimpleNamespace

    from workers.backends.torch.backend import _SharedCache

    shared = _SharedCache(SimpleNamespace(store=None), {}, {})  # no store: nothing to fetch or publish
    assert shared.info == {"status": "off (no store)"}
    compiled = _artifacts(inductor=["g1"], aot_autograd=["a1"], pgo=["p1"], precompile=["c1"])
    raw, record = shared.job_artifact((ic.encode_artifacts(compiled), None))
    assert _keys(ic.decode_artifacts(raw)) == {"inductor": ["g1"], "aot_autograd": ["a1"]}
    assert set(record["cache_artifacts_dropped"]) == {"pgo", "precompile"}
    # A warm compile that recorded only autotune entries: the job keeps the shared FX-graph entry it used.
    shared.shared = _artifacts(inductor=["g1"])
    raw, record = shared.job_artifact((ic.encode_artifacts(_artifacts(autotune=["t1"])), None))
    assert record["job_cache_from_shared"] and _keys(ic.decode_artifacts(raw)) == {"inductor": ["g1"],
                                                                                   "autotune": ["t1"]}
    # Bytes torch cannot take apart are kept whole, and nothing of them is shared.
    assert shared.job_artifact((b"not torch's format", None)) == (b"not torch's format", {
        "cache_artifacts": "kept whole (CacheRejected: torch could not read the cache artifacts)"})
    assert shared.learned == {}
