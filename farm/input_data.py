"""The user's input samples (spec ``data``: an .npz file, one array per
model input, first axis = samples), checked at submit time against the
model and every job's shapes."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from farm.errors import SpecError
from farm.model_info import ModelInfo


def read_data(path: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """input name -> (shape, dtype) of the samples in ``path``."""
    if not Path(path).is_file():
        raise SpecError(f"spec field 'data': file not found: {path}")
    not_npz = SpecError(f"spec field 'data': {path} is not an .npz file of arrays (numpy.savez)")
    try:
        loaded = np.load(path, allow_pickle=False, mmap_mode="r")
    except (ValueError, OSError, EOFError, zipfile.BadZipFile):
        raise not_npz from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):  # a bare .npy array: no input names
        raise SpecError(f"spec field 'data': {path} holds one array (.npy); give an .npz with one array per "
                        f"model input, named after it (numpy.savez(path, input_name=array, ...))")
    try:
        with loaded as archive:
            return {name: _header(archive, name) for name in archive.files}
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile):
        raise not_npz from None


def _header(archive, name: str) -> tuple[tuple[int, ...], str]:
    """Shape and dtype of one member, read from its .npy header (the
    samples themselves are not loaded: a data file may be gigabytes)."""
    from numpy.lib import format as npy_format

    with archive.zip.open(f"{name}.npy") as member:
        version = npy_format.read_magic(member)
        read = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
        shape, _, dtype = read(member)
    return tuple(shape), str(dtype)


def check_data(model: ModelInfo, data: dict[str, tuple[tuple[int, ...], str]],
               job_shapes: list[dict[str, dict]]) -> None:
    for info in model.inputs:
        if info.name not in data:
            have = ", ".join(sorted(data)) or "none"
            raise SpecError(f"spec field 'data': no array for model input '{info.name}' (arrays: {have})")
        shape, dtype = data[info.name]
        if dtype == "object":
            raise SpecError(f"spec field 'data': array '{info.name}' holds Python objects (dtype object); "
                            f"give numeric arrays")
        if shape and shape[0] == 0:
            raise SpecError(f"spec field 'data': array '{info.name}' holds no samples (shape {list(shape)}); "
                            f"its first axis counts samples and must be at least 1")
        if _kind(dtype) != _kind(info.dtype):
            raise SpecError(f"spec field 'data': array '{info.name}' is {dtype}, the model input is {info.dtype}")
        for shapes in job_shapes:
            opt = tuple(shapes[info.name]["opt"])
            if len(shape) != len(opt) or (len(opt) and shape[1:] != opt[1:]) or (not opt and shape):
                raise SpecError(
                    f"spec field 'data': array '{info.name}' has samples of shape {list(shape[1:])}, "
                    f"a job needs {list(opt[1:])} (shape {list(opt)}); give samples of the profile's opt shape"
                )


def _kind(dtype: str) -> str:
    if dtype == "bool":
        return "bool"
    if dtype == "string" or dtype.startswith(("<U", ">U", "|S", "<S", "str")):
        return "string"
    if dtype.startswith(("int", "uint")):
        return "int"
    return "float"
