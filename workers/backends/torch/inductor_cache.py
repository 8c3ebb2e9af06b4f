"""Inductor's compile caches, shared through the artifact store by every
build of one model on one kind of GPU with the same torch, Triton and
compile options (as the TensorRT timing cache is shared per GPU and version).

What is kept (``KEPT``), from ``torch.compiler.save_cache_artifacts()``:
- ``inductor``: FX-graph cache entries (the generated code with its compiled
  Triton kernels): a build of the same graph skips Inductor's codegen and
  the kernel compiles, most of ``trace_and_compile_s``;
- ``aot_autograd``: AOTAutograd cache entries: skips re-tracing the joint graph;
- ``autotune``: the chosen kernel configs (max-autotune benchmarks), a few
  bytes each: a graph that misses still skips benchmarking known kernels.
Dropped: ``pgo`` (dynamic-shape profiles; the farm's shapes are static) and
``precompile`` (Dynamo packages the backend does not use). The job's own
artifact is the same selection for that one compile.

Identity (``CacheIdentity``): device class and compute capability, torch,
Triton and CUDA versions, the model's sha256, the precision and the input
shapes, and a hash of the compile mode, options and TF32 switch. Inductor's
own entry keys hash the graph, its dtypes, shapes and config, so an entry
of another precision or batch never hits (nor do its kernels' autotune
entries): one cache per built graph means a build downloads only what it
can use (the panel's job artifacts: 0.3-4.4 MB at zlib level 6), shared by every
job that builds that graph (the streams axis, forced re-runs, finals,
other workers), capped at ``MAX_BYTES`` with the oldest entries dropped. Every blob starts with its identity, checked on
load; the store is content-addressed and downloads are hash-verified, and
a blob that does not decode is refused (the build compiles cold and says so).
"""

from __future__ import annotations

import json
import zlib
from dataclasses import asdict, dataclass
from typing import Any

from workers import artifact_index

KIND = "inductor-cache"
SUFFIX = ".bin"
KEPT = ("inductor", "aot_autograd", "autotune")
MAX_BYTES = 256 * 2**20  # uncompressed entry bytes of one shared cache
_MAGIC = b"EFIC1\n"
_PACKED = b"EFZ1"  # the job artifact's packing (backend.pack_artifact)


class CacheRejected(ValueError):
    """A cache blob that cannot be used: undecodable, or of another identity."""


@dataclass(frozen=True)
class CacheIdentity:
    device_class: str
    compute_capability: str
    torch: str
    triton: str
    cuda: str
    model_sha256: str
    precision: str
    shapes: str  # "input=1x3x320x320;..." in input order
    options: str  # sha256 of mode, Inductor options and tf32

    def parts(self) -> dict:
        return asdict(self)

    @property
    def key(self) -> str:
        return artifact_index.index_key({"inductor_cache": self.parts()})


def options_digest(mode: str, options: dict, tf32: bool) -> str:
    return artifact_index.index_key({"mode": mode, "options": options, "tf32": tf32})


def shapes_text(shapes: dict[str, tuple[int, ...]]) -> str:
    return ";".join(f"{name}={'x'.join(str(d) for d in dims)}" for name, dims in shapes.items())


def identity_for(device_class: str, device_index: int, model_sha256: str, precision: str,
                 shapes: dict[str, tuple[int, ...]], mode: str, options: dict, tf32: bool) -> CacheIdentity:
    import torch

    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = "none"
    major, minor = torch.cuda.get_device_capability(device_index)
    return CacheIdentity(device_class, f"{major}.{minor}", torch.__version__, triton_version,
                         str(torch.version.cuda), model_sha256, precision, shapes_text(shapes),
                         options_digest(mode, options, tf32))


# --- the blob: identity header + torch's serialized artifacts, zlib ------------------------------

def decode_artifacts(raw: bytes) -> dict[str, list]:
    """torch's serialized cache artifacts -> {type: [CacheArtifact]}."""
    from torch.compiler._cache import CacheArtifactManager

    artifacts = CacheArtifactManager.deserialize(raw)
    if artifacts is None:
        raise CacheRejected("torch could not read the cache artifacts")
    return artifacts


def encode_artifacts(artifacts: dict[str, list]) -> bytes:
    from torch.compiler._cache import _serialize_single_cache
    from torch.utils._appending_byte_serializer import AppendingByteSerializer

    serializer = AppendingByteSerializer(serialize_fn=_serialize_single_cache)
    serializer.extend([(kind, entries) for kind, entries in artifacts.items() if entries])
    return serializer.to_bytes()


def kept(artifacts: dict[str, list]) -> tuple[dict[str, list], dict[str, int]]:
    """(the KEPT types, bytes dropped per other type)."""
    dropped = {k: sum(len(a.content) for a in v) for k, v in artifacts.items() if k not in KEPT and v}
    return {k: v for k, v in artifacts.items() if k in KEPT}, dropped


def sizes(artifacts: dict[str, list]) -> dict[str, dict[str, int]]:
    return {k: {"entries": len(v), "bytes": sum(len(a.content) for a in v)} for k, v in artifacts.items()}


def pack(identity: CacheIdentity, raw: bytes) -> bytes:
    header = json.dumps(identity.parts(), sort_keys=True).encode()
    return _MAGIC + len(header).to_bytes(4, "big") + header + zlib.compress(raw, 1)


def unpack(identity: CacheIdentity, blob: bytes) -> bytes:
    if not blob.startswith(_MAGIC):
        raise CacheRejected("not an Inductor cache blob")
    start = len(_MAGIC) + 4
    size = int.from_bytes(blob[len(_MAGIC):start], "big")
    try:
        header = json.loads(blob[start:start + size])
        raw = zlib.decompress(blob[start + size:])
    except (ValueError, zlib.error) as exc:
        raise CacheRejected(f"damaged cache blob ({type(exc).__name__})") from None
    if header != identity.parts():
        different = sorted(k for k in identity.parts() if header.get(k) != identity.parts()[k])
        raise CacheRejected(f"cache of another identity (differs in {', '.join(different) or 'fields'})")
    return raw


def merge(current: dict[str, list], learned: dict[str, list], limit: int = MAX_BYTES) -> dict[str, list]:
    """Entries of both, one per (type, key), the learned ones newest; the
    oldest dropped while the total exceeds ``limit``."""
    order: dict[tuple[str, str], Any] = {}
    for artifacts in (current, learned):
        for kind in KEPT:
            for artifact in artifacts.get(kind, []):
                order.pop((kind, artifact.key), None)
                order[(kind, artifact.key)] = artifact
    entries = list(order.items())
    total = sum(len(a.content) for _, a in entries)
    while entries and total > limit:
        total -= len(entries.pop(0)[1].content)
    merged: dict[str, list] = {}
    for (kind, _key), artifact in entries:
        merged.setdefault(kind, []).append(artifact)
    return merged


# --- store round trip ------------------------------------------------------------------------------

def locked(identity: CacheIdentity):
    return artifact_index.locked(KIND, identity.key)


def fetch(store: Any, identity: CacheIdentity) -> tuple[dict[str, list], dict]:
    """(the shared artifacts, what happened); empty where none is published
    or the published one is refused."""
    from farm.errors import StoreIntegrityError

    try:
        path = artifact_index.fetch(store, KIND, identity.key, SUFFIX)
    except StoreIntegrityError as exc:
        return {}, {"status": f"refused: {exc}"}
    if path is None:
        return {}, {"status": "none published"}
    try:
        artifacts = decode_artifacts(unpack(identity, path.read_bytes()))
    except CacheRejected as exc:
        return {}, {"status": f"refused: {exc}"}
    return artifacts, {"status": "loaded", "sha256": artifact_index.lookup(KIND, identity.key),
                       "sizes": sizes(artifacts)}


def load(store: Any, identity: CacheIdentity) -> dict:
    """Put the shared cache into Inductor's local caches before a compile."""
    from torch.compiler._cache import CacheArtifactManager

    artifacts, info = fetch(store, identity)
    if artifacts:
        CacheArtifactManager.populate_caches(artifacts)
    return {"key": identity.key, **info}


def publish(store: Any, identity: CacheIdentity, learned: dict[str, list]) -> dict:
    """Merge this build's artifacts into the shared cache and publish it."""
    with locked(identity):
        current, _info = fetch(store, identity)
        merged = merge(current, learned)
        if merged and sizes(merged) == sizes(current) and _same(merged, current):
            return {"key": identity.key, "status": "unchanged", "sizes": sizes(merged)}
        blob = pack(identity, encode_artifacts(merged))
        path = artifact_index.write_local(KIND, identity.key, SUFFIX, blob)
        sha = artifact_index.publish(store, KIND, identity.key, path, identity.parts(), "application/octet-stream")
    return {"key": identity.key, "status": "published", "sha256": sha, "stored_bytes": len(blob),
            "sizes": sizes(merged)}


def _same(a: dict[str, list], b: dict[str, list]) -> bool:
    return {(k, x.key) for k, v in a.items() for x in v} == {(k, x.key) for k, v in b.items() for x in v}
