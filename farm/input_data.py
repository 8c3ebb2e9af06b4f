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


CHUNK = 1 << 24  # bytes read at a time: a data file may be gigabytes


def _header(archive, name: str) -> tuple[tuple[int, ...], str]:
    """Shape and dtype of one member from its .npy header, checked against
    its bytes: the payload must be exactly as long as the header says (a
    header that lies made the worker fail or read garbage), and float
    samples must be finite (a NaN or inf input makes every accuracy and
    timing figure of the job meaningless). Read in chunks, never whole."""
    from numpy.lib import format as npy_format

    with archive.zip.open(f"{name}.npy") as member:
        version = npy_format.read_magic(member)
        read = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
        shape, _, dtype = read(member)
        if dtype.hasobject:
            return tuple(shape), str(dtype)
        expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        found = _scan(member, dtype, name, int(np.prod(shape[1:], dtype=np.int64)) if shape else 1)
    if found != expected:
        raise SpecError(f"spec field 'data': array '{name}' declares shape {list(shape)} ({expected:,} bytes of "
                        f"{dtype}) but holds {found:,} bytes; the file is damaged or was not written by numpy")
    return tuple(shape), str(dtype)


def _scan(member, dtype, name: str, per_sample: int) -> int:
    """Bytes of the payload; raises on the first non-finite float sample."""
    step = max(dtype.itemsize, CHUNK - CHUNK % dtype.itemsize)
    total, pending, index = 0, b"", 0
    while True:
        chunk = member.read(step)
        if not chunk:
            return total
        total += len(chunk)
        if dtype.kind not in "fc":
            continue
        pending += chunk
        usable = len(pending) - len(pending) % dtype.itemsize
        values, pending = np.frombuffer(pending[:usable], dtype=dtype), pending[usable:]
        bad = ~np.isfinite(values)
        if bad.any():
            first = int(np.argmax(bad))
            flat = index + first
            raise SpecError(f"spec field 'data': array '{name}' holds a non-finite value ({values[first]}) at "
                            f"sample {flat // max(per_sample, 1):,} (flat index {flat:,}); give finite samples "
                            f"(NaN and inf make accuracy and timing meaningless)")
        index += len(values)


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
    if dtype.startswith("complex"):
        return "complex"
    return "float"


# Rows of the user's data (spec ``data``) each role gets, decided once per
# sweep at submit (every job of a sweep is evaluated on the same rows).
DEFAULT_CALIBRATION_ROWS = 256  # at most half the file: evaluation keeps the other half
DEFAULT_EVALUATION_ROWS = 256


def sample_count(data: dict[str, tuple[tuple[int, ...], str]]) -> int:
    """Rows in the data file: the fewest samples over its batched arrays."""
    counts = [shape[0] for shape, _ in data.values() if shape]
    return min(counts) if counts else 1


def split_rows(total: int, calibrated: bool, calibration: dict, evaluation_rows: int | None) -> dict:
    """{"calibration": [start, stop] | None, "evaluation": [start, stop], "overlap": bool}.

    Calibration takes the first rows (``calibration.samples``, default
    min(256, half the file)) and evaluation the rows after them
    (``accuracy.samples``, default every remaining row up to 256): disjoint.
    A file too small for both is an error unless ``calibration.allow_overlap``
    is set; then both use every row, and the figures say so."""
    overlap_ok = bool(calibration.get("allow_overlap"))
    asked_cal = calibration.get("samples")
    if not calibrated:
        stop = min(total, evaluation_rows or DEFAULT_EVALUATION_ROWS)
        return {"calibration": None, "evaluation": [0, stop], "overlap": False}
    cal = asked_cal if asked_cal is not None else min(DEFAULT_CALIBRATION_ROWS, total // 2)
    evaluation = evaluation_rows if evaluation_rows is not None else min(DEFAULT_EVALUATION_ROWS, total - cal)
    if cal >= 1 and evaluation >= 1 and cal + evaluation <= total:
        return {"calibration": [0, cal], "evaluation": [cal, cal + evaluation], "overlap": False}
    if overlap_ok:
        cal = min(asked_cal or total, total)
        return {"calibration": [0, cal], "evaluation": [0, min(evaluation_rows or total, total)], "overlap": True}
    raise SpecError(
        f"spec field 'data': {total} sample row{'s' if total != 1 else ''} cannot give disjoint calibration "
        f"and evaluation rows (calibration {cal}, evaluation {evaluation}): give more samples, lower "
        f"calibration.samples / accuracy.samples, or set calibration.allow_overlap: true to calibrate and "
        f"evaluate on the same rows (recorded on every figure)")


def data_config(data: dict[str, tuple[tuple[int, ...], str]], data_sha256: str, precisions, calibration: dict,
                evaluation_rows: int | None) -> dict:
    """What the data file adds to each job's configuration (and key): its
    digest and the rows each role reads."""
    from farm.accuracy import CALIBRATED

    calibrated = any(p in CALIBRATED for p in precisions)
    return {"data_sha256": data_sha256,
            "rows": split_rows(sample_count(data), calibrated, calibration, evaluation_rows)}
