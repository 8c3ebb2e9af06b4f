"""Parity of a converted ONNX model with its source: the same inputs through
ONNX Runtime (fp32, CPU) and through the source framework, compared per
output with the farm's own error measures (max abs, relative L2, cosine)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

# A converter may reorder float sums; anything beyond this is a different model.
MAX_REL_L2 = 1e-3
MIN_COSINE = 0.9999


def check_ops(onnx_path: Path, converter: str) -> None:
    """Every node must be an op some ONNX domain defines: tf2onnx, for one,
    keeps a TensorFlow op it cannot translate (LookupTableFindV2, say) in
    the model without saying so."""
    import onnx
    import onnx.defs

    from converters import ConversionFailed

    model = onnx.load(str(onnx_path), load_external_data=False)
    local = {(f.domain, f.name) for f in model.functions}
    for node in list(model.graph.node) + [n for f in model.functions for n in f.node]:
        key = (node.domain or "", node.op_type)
        if key in local or node.domain == "com.microsoft":  # ONNX Runtime's contrib ops
            continue
        if node.domain in ("", "ai.onnx", "ai.onnx.ml") and onnx.defs.has(node.op_type, node.domain or ""):
            continue
        raise ConversionFailed(f"{converter} left op {node.op_type} (node '{node.name}') untranslated in the "
                               f"ONNX model: it has no ONNX translation for it")


def onnx_outputs(onnx_path: Path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    from converters import ConversionFailed

    try:
        session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    except Exception as exc:
        line = next((ln for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)[:300]
        raise ConversionFailed(f"the converted model does not load in ONNX Runtime: {line}") from None
    names = [i.name for i in session.get_inputs()]
    missing = [n for n in names if n not in feeds]
    if missing:
        raise ValueError(f"the converted model has inputs {names}, parity inputs have {sorted(feeds)}")
    return session.run(None, {n: feeds[n] for n in names})


def output_names(onnx_path: Path) -> list[str]:
    import onnx

    return [o.name for o in onnx.load(str(onnx_path), load_external_data=False).graph.output]


def compare(onnx_path: Path, feeds: dict[str, np.ndarray], expected: list[np.ndarray], inputs_from: str) -> dict:
    """The parity record: per output errors, pass when every output is within
    MAX_REL_L2 and MIN_COSINE. ``expected`` is in the ONNX outputs' order."""
    got = onnx_outputs(onnx_path, feeds)
    names = output_names(onnx_path)
    if len(got) != len(expected):
        return {"inputs": inputs_from, "synthetic": inputs_from == "synthetic", "pass": False,
                "reason": f"the converted model has {len(got)} outputs, the source {len(expected)}"}
    outputs = {}
    for name, a, b in zip(names, got, expected):
        outputs[name] = _errors(np.asarray(a), np.asarray(b))
    ok = all(o["pass"] for o in outputs.values())
    worst = max(outputs.values(), key=lambda o: o["rel_l2_error"] if o["rel_l2_error"] is not None else np.inf)
    return {"inputs": inputs_from, "synthetic": inputs_from == "synthetic", "pass": ok,
            "shapes": {k: list(v.shape) for k, v in feeds.items()},
            "max_abs_error": max(o["max_abs_error"] for o in outputs.values()),
            "rel_l2_error": worst["rel_l2_error"], "cosine": min(o["cosine"] for o in outputs.values()),
            "tolerances": {"max_rel_l2": MAX_REL_L2, "min_cosine": MIN_COSINE}, "outputs": outputs}


def _errors(got: np.ndarray, want: np.ndarray) -> dict:
    if got.shape != want.shape:
        return {"pass": False, "max_abs_error": float("inf"), "rel_l2_error": None, "cosine": -1.0,
                "reason": f"shape {list(got.shape)} != source {list(want.shape)}"}
    if got.dtype.kind in "biu" or want.dtype.kind in "biu":
        equal = bool(np.array_equal(got, want))
        largest = float(np.abs(got.astype(np.float64) - want.astype(np.float64)).max()) if got.size else 0.0
        return {"pass": equal, "max_abs_error": largest, "rel_l2_error": 0.0 if equal else 1.0,
                "cosine": 1.0 if equal else 0.0}
    a, b = got.astype(np.float64).ravel(), want.astype(np.float64).ravel()
    diff = a - b
    norm = float(np.linalg.norm(b))
    rel = float(np.linalg.norm(diff) / norm) if norm > 0 else float(np.linalg.norm(diff))
    denom = float(np.linalg.norm(a) * norm)
    cosine = float(a @ b / denom) if denom > 0 else (1.0 if not diff.any() else 0.0)
    max_abs = float(np.abs(diff).max()) if diff.size else 0.0
    finite = bool(np.isfinite(a).all() == np.isfinite(b).all())
    return {"pass": finite and rel <= MAX_REL_L2 and cosine >= MIN_COSINE, "max_abs_error": max_abs,
            "rel_l2_error": rel, "cosine": cosine}


def synthetic_feeds(inputs: list[dict], seed: int = 0) -> dict[str, np.ndarray]:
    """Inputs drawn like the farm's synthetic measurement inputs
    (workers/inputs.py): floats in [-1, 1], integers in [0, 100), bools."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for item in inputs:
        shape, dtype = tuple(item["shape"]), item["dtype"]
        if dtype == "bool":
            feeds[item["name"]] = rng.integers(0, 2, size=shape).astype(bool)
        elif dtype.startswith(("int", "uint")):
            feeds[item["name"]] = rng.integers(0, 100, size=shape).astype(dtype)
        else:
            feeds[item["name"]] = rng.uniform(-1.0, 1.0, size=shape).astype(dtype)
    return feeds


def data_feeds(data_path: Path, names: list[str], batch: int) -> dict[str, np.ndarray] | None:
    """The first ``batch`` samples of the spec's data file, or None when it
    lacks an input (the farm refuses such a spec later, with its reason)."""
    with np.load(data_path, allow_pickle=False) as archive:
        if not all(n in archive.files for n in names):
            return None
        return {n: np.ascontiguousarray(archive[n][:batch]) for n in names}


def concrete_shape(dims: list, hints: dict | None, name: str, batch: int = 2, other: int = 16) -> list[int]:
    """A shape for parity inputs: the spec's opt shape for the input when it
    gives one, else fixed dims as declared, a dynamic batch of ``batch`` and
    other dynamic dims of ``other``."""
    if hints and name in hints:
        return list(hints[name])
    return [d if isinstance(d, int) and d > 0 else (batch if axis == 0 else other) for axis, d in enumerate(dims)]
