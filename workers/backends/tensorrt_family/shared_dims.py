"""Why TensorRT refused a profile: axes that share a dimension name.

TensorRT reads input axes with one ``dim_param`` as one dimension, so a
profile must give them equal sizes; its own error ("Input dimensions with
this name have different constant values or have contradictory
IOptimizationProfile kMIN/kMAX constraints") names neither the axes nor
the sizes. This says which.
"""

from __future__ import annotations

from pathlib import Path

BOUNDS = ("min", "opt", "max")


def named_axes(onnx_path: Path) -> dict[str, list[tuple[str, int]]]:
    """dim_param -> [(input, axis), ...] over the model's graph inputs."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    initialized = {init.name for init in model.graph.initializer}
    axes: dict[str, list[tuple[str, int]]] = {}
    for value in model.graph.input:
        if value.name in initialized or not value.type.tensor_type.HasField("shape"):
            continue
        for axis, dim in enumerate(value.type.tensor_type.shape.dim):
            if dim.dim_param:
                axes.setdefault(dim.dim_param, []).append((value.name, axis))
    return axes


def conflicts(onnx_path: Path, shapes: dict[str, dict]) -> list[str]:
    """One sentence per dimension name whose axes the profile sizes differently."""
    found = []
    for name, axes in sorted(named_axes(onnx_path).items()):
        sized = [(f"{inp}[{axis}]", tuple(shapes[inp][b][axis] for b in BOUNDS)) for inp, axis in axes
                 if inp in shapes and axis < len(shapes[inp]["min"])]
        if len({sizes for _, sizes in sized}) > 1:
            given = ", ".join(f"{where} {'/'.join(map(str, sizes))}" for where, sizes in sized)
            found.append(f"the model names axes {', '.join(w for w, _ in sized)} all {name!r}, so TensorRT "
                         f"needs them equal, but the profile gives {given} (min/opt/max)")
    return found
