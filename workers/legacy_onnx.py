"""Models of ONNX IR version < 4 list every initializer as a graph input too.

Such an input has a default (its initializer) and may be fed to override
it. The farm feeds only a model's real inputs (farm.model_info leaves the
initializers out), but tools do not all read those inputs the same way:
ONNX Runtime's optimiser folds an initializer away (ConstantOfShape of a
shape initializer, say) yet keeps the input, and the model it saves then
demands that input as a feed; its quantizer's calibration does the same.
Every backend therefore gets a copy without those inputs (IR version 4,
where initializers need not be inputs), made once per worker cache.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

SUFFIX = ".ir4.onnx"
CHECKED = ".no-initializer-inputs"


def without_initializer_inputs(path: Path) -> Path:
    """``path``, or a copy of it whose graph inputs are its real inputs only."""
    copy, checked = path.with_name(path.stem + SUFFIX), path.with_name(path.name + CHECKED)
    if copy.exists():
        return copy
    if checked.exists():
        return path
    import onnx

    model = onnx.load(str(path))
    initialized = {init.name for init in model.graph.initializer}
    if not any(i.name in initialized for i in model.graph.input):
        checked.touch()
        return path
    inputs = [i for i in model.graph.input if i.name not in initialized]
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    model.ir_version = max(model.ir_version, 4)
    # Workers of one host share the cache: write whole, then rename.
    handle, temp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(handle)
    try:
        onnx.save(model, temp)
        os.replace(temp, copy)
    finally:
        Path(temp).unlink(missing_ok=True)
    return copy
