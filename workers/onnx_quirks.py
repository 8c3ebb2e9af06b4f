"""Exporter quirks that backends read differently, removed once per model.

1. Models of ONNX IR version < 4 list every initializer as a graph input
   too. Such an input has a default (its initializer) and may be fed to
   override it. The farm feeds only a model's real inputs (farm.model_info
   leaves the initializers out), but ONNX Runtime's optimiser folds such an
   initializer away (ConstantOfShape of a shape initializer, say) yet keeps
   the input, and the model it saves then demands it as a feed; its
   quantizer's calibration does the same. The copy drops those inputs
   (IR version 4, where initializers need not be inputs).
2. Placeholder dimension names: Paddle2ONNX names every unknown axis "?"
   (PP-OCR's classifier: x is [-1, 3, "?", "?"]). TensorRT reads axes that
   share a name as one dimension and refuses a profile with H != W. The
   copy leaves such axes unnamed, which is what "?" means.

Every backend gets the copy (or the model itself when nothing applies),
made once per worker cache and verified before each use.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

SUFFIX = ".normalized.onnx"
CHECKED = ".no-quirks"
PLACEHOLDER_DIM_NAMES = ("?",)
NORMALIZE_VERSION = 1  # bump when the copy changes; older copies are made again


def _drop_initializer_inputs(model) -> bool:
    initialized = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initialized]
    if len(inputs) == len(model.graph.input):
        return False
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    model.ir_version = max(model.ir_version, 4)
    return True


def _clear_placeholder_dim_names(model) -> bool:
    changed = False
    graph = model.graph
    for value in [*graph.input, *graph.output, *graph.value_info]:
        if not value.type.HasField("tensor_type") or not value.type.tensor_type.HasField("shape"):
            continue
        for dim in value.type.tensor_type.shape.dim:
            if dim.HasField("dim_param") and dim.dim_param.strip() in PLACEHOLDER_DIM_NAMES:
                dim.ClearField("dim_param")
                changed = True
    return changed


def normalized_model(path: Path, source_sha256: str | None = None) -> Path:
    """``path``, or a copy of it without the quirks above. A copy made
    earlier is used only while it matches the hash recorded when it was made
    from this very source (workers/verified_files.py); otherwise it is made
    again."""
    from workers.verified_files import hash_file, intact, write_record

    copy, checked = path.with_name(path.stem + SUFFIX), path.with_name(path.name + CHECKED)
    facts = {"source_sha256": source_sha256 or hash_file(path), "version": NORMALIZE_VERSION}
    if checked.exists():
        return path
    if copy.exists() and intact(copy, **facts):
        return copy
    import onnx

    # The graph only: external data stays where it is, and the copy (beside the
    # graph) names the same data files by the same relative locations.
    model = onnx.load(str(path), load_external_data=False)
    changed = _drop_initializer_inputs(model)
    changed = _clear_placeholder_dim_names(model) or changed
    if not changed:
        checked.touch()
        return path
    # Workers of one host share the cache: write whole, record, then rename.
    handle, temp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(handle)
    try:
        onnx.save(model, temp)
        write_record(copy, hash_file(Path(temp)), **facts)
        os.replace(temp, copy)
    finally:
        Path(temp).unlink(missing_ok=True)
    return copy
