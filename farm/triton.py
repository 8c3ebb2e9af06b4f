"""A Triton Inference Server model repository from a model's winners.

One Triton model per workload, holding each device class's winning
artifact and its configuration:

    DIR/<name>/config.pbtxt              every class; TensorRT plans chosen per GPU by cc_model_filenames
    DIR/<name>/configs/<class>.pbtxt     one class's own winner (tritonserver --model-config-name=<class>)
    DIR/<name>/1/model_<class>.<ext>     the artifacts
    DIR/<name>/farm-export.json          what was exported from which job, and why

Per class: ``max_batch_size`` is the winner's batch (its engine's profile
batch; 0 where the model has no batch axis, the dims then carry it);
inputs and outputs with Triton's data types and the dims after the batch
(-1 where the profile leaves a dimension free); TensorRT: the engine's one
optimization profile ("0") in the instance group; ``dynamic_batching`` with
the winner's batch as preferred size and its served queue delay (spec
``scenarios.queue_delay_us``; 0 where it ran no scenarios); ``instance_group``
count from the winner (``scenarios.instances``, else 1), KIND_GPU or KIND_CPU.

``config.pbtxt`` serves every class from one file where Triton can tell the
classes apart, i.e. by compute capability for TensorRT plans; classes that
share a compute capability (an H100 and an H200 are both 9.0) cannot be told
apart there: ``config.pbtxt`` maps that capability to the first of them
(sorted) and each class's own file is in ``configs/``. Its shared settings
are the smallest of the winners' (a max batch every plan accepts).

Every generated file is parsed with protobuf's text_format against
Triton's own ``ModelConfig`` (tritonclient's model_config_pb2).
"""

from __future__ import annotations

import importlib.util
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from farm.errors import UserError

PLATFORMS = {"tensorrt": ("platform", "tensorrt_plan", "plan"), "tensorrt-rtx": ("platform", "tensorrt_plan", "plan"),
             "torch-tensorrt": ("platform", "tensorrt_plan", "plan"),
             "onnxruntime": ("platform", "onnxruntime_onnx", "onnx"), "torch": ("backend", "python", "cache")}
DATA_TYPES = {"float32": "TYPE_FP32", "float16": "TYPE_FP16", "bfloat16": "TYPE_BF16", "float64": "TYPE_FP64",
              "int8": "TYPE_INT8", "int16": "TYPE_INT16", "int32": "TYPE_INT32", "int64": "TYPE_INT64",
              "uint8": "TYPE_UINT8", "uint16": "TYPE_UINT16", "uint32": "TYPE_UINT32", "uint64": "TYPE_UINT64",
              "bool": "TYPE_BOOL", "string": "TYPE_STRING"}


@dataclass
class Tensor:
    name: str
    dtype: str  # numpy-style name (farm.model_info)
    dims: list[int]  # after the batch axis where batched; -1 = free


@dataclass
class ClassWinner:
    """What one device class's winner contributes (from report rows + job config)."""

    device_class: str
    job_id: str
    backend: str
    precision: str
    batch_size: int
    artifact_sha256: str
    compute_capability: str | None
    kind: str  # gpu | cpu
    queue_delay_us: int = 0
    instances: int = 1
    objective: str = ""
    objective_value: float | None = None
    profile_ranges: dict = field(default_factory=dict)  # input -> {min, opt, max} (the job's shapes)

    @property
    def filename(self) -> str:
        return f"model_{_safe(self.device_class)}.{PLATFORMS[self.backend][2]}"


def _is_plan(backend: str) -> bool:
    """A TensorRT engine (plan): one profile per instance, one file per compute capability."""
    return PLATFORMS[backend][1] == "tensorrt_plan"


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


MODEL_SUFFIXES = (".onnx", ".pt2", ".pt", ".keras", ".h5", ".pb", ".savedmodel", ".plan", ".engine")


def model_name(name: str, qualifier: str | None = None) -> str:
    """A Triton model (directory) name: the model file's stem (``cls.onnx`` -> ``cls``), with only
    letters, digits, ``_`` and ``-`` (no dots: a name must not look like a file or a path); ``qualifier``
    (a profile) appended after ``-``."""
    stem = name.rsplit("/", 1)[-1]
    for suffix in MODEL_SUFFIXES:
        if stem.lower().endswith(suffix) and len(stem) > len(suffix):
            stem = stem[:-len(suffix)]
            break
    if qualifier:
        stem = f"{stem}-{qualifier}"
    return re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_-") or "model"


def tensors(inputs: list[dict], outputs: list[dict], ranges: dict, batched: bool) -> tuple[list, list]:
    """Triton dims: each input's profile range after the batch axis (-1 where min != max); each output's
    declared dims after the batch axis (-1 where unknown; ``[-1]`` where the model declares no shape)."""
    ins = []
    for info in inputs:
        rng = ranges.get(info["name"])
        if rng:
            dims = [lo if lo == hi else -1 for lo, hi in zip(rng["min"], rng["max"])]
        else:
            dims = [d if isinstance(d, int) and d > 0 else -1 for d in (info.get("dims") or [])]
        ins.append(Tensor(info["name"], info["dtype"], dims[1:] if batched and dims else dims))
    outs = [Tensor(o["name"], o["dtype"], _output_dims(o, batched)) for o in outputs]
    return ins, outs


def _output_dims(output: dict, batched: bool) -> list[int]:
    declared = output.get("dims")
    if declared is None:  # only a rank known
        declared = [-1] * int(output.get("rank") or 0)
    dims = [d if isinstance(d, int) and d > 0 else -1 for d in declared]
    dims = dims[1:] if batched and dims else dims
    return dims or [-1]


def _tensor_text(kind: str, t: Tensor) -> str:
    if t.dtype not in DATA_TYPES:
        raise UserError(f"{kind} {t.name!r} has type {t.dtype}, which Triton has no data type for")
    dims = ", ".join(str(d) for d in t.dims) if t.dims else ""
    return f'{kind} {{\n  name: "{t.name}"\n  data_type: {DATA_TYPES[t.dtype]}\n  dims: [ {dims} ]\n}}\n'


def config_text(name: str, winners: list[ClassWinner], ins: list[Tensor], outs: list[Tensor], batched: bool,
                own: ClassWinner | None = None) -> str:
    """One config.pbtxt: ``own`` given, that class's file; else the shared one for ``winners``."""
    picked = [own] if own else winners
    backend = picked[0].backend
    key, value, _ = PLATFORMS[backend]
    lines = [f'name: "{name}"', f'{key}: "{value}"']
    max_batch = min(w.batch_size for w in picked) if batched else 0
    lines.append(f"max_batch_size: {max_batch}")
    text = "\n".join(lines) + "\n"
    text += "".join(_tensor_text("input", t) for t in ins) + "".join(_tensor_text("output", t) for t in outs)
    if own or len(picked) == 1:
        text += f'default_model_filename: "{picked[0].filename}"\n'
    if _is_plan(backend) and not own:
        for cc, winner in sorted(by_capability(picked).items()):
            text += f'cc_model_filenames {{ key: "{cc}" value: "{winner.filename}" }}\n'
    if batched:
        delay = min(w.queue_delay_us for w in picked)
        text += (f"dynamic_batching {{\n  preferred_batch_size: [ {max_batch} ]\n"
                 f"  max_queue_delay_microseconds: {delay}\n}}\n")
    kind = "KIND_GPU" if picked[0].kind == "gpu" else "KIND_CPU"
    count = min(w.instances for w in picked)
    profile = '\n  profile: [ "0" ]' if _is_plan(backend) else ""
    text += f"instance_group [\n {{\n  count: {count}\n  kind: {kind}{profile}\n }}\n]\n"
    if backend == "torch":
        text += ('parameters { key: "farm_artifact" value: { string_value: "'
                 f'{picked[0].filename}" }} }}\n')
    return text


def by_capability(winners: list[ClassWinner]) -> dict[str, ClassWinner]:
    """compute capability -> the class whose plan serves it (the first, sorted, where several share one)."""
    out: dict[str, ClassWinner] = {}
    for winner in sorted(winners, key=lambda w: w.device_class):
        if winner.compute_capability and winner.compute_capability not in out:
            out[winner.compute_capability] = winner
    return out


def model_config_pb2():
    """Triton's ModelConfig message module, from tritonclient (without its gRPC client)."""
    spec = importlib.util.find_spec("tritonclient")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the Triton export validates against Triton's model_config protobuf: "
                        "pip install tritonclient (or engine-farm[triton])")
    path = Path(list(spec.submodule_search_locations)[0]) / "grpc" / "model_config_pb2.py"
    loader = importlib.util.spec_from_file_location("farm_triton_model_config_pb2", path)
    module = importlib.util.module_from_spec(loader)  # type: ignore[arg-type]
    loader.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def parse(text: str):
    """The config as Triton's ModelConfig message (raises UserError naming the fault)."""
    from google.protobuf import text_format

    try:
        return text_format.Parse(text, model_config_pb2().ModelConfig())
    except text_format.ParseError as exc:
        raise UserError(f"the generated Triton config does not parse against model_config.proto: {exc}") from None


def write_repository(root: Path, name: str, winners: list[ClassWinner], inputs: list[dict], outputs: list[dict],
                     fetch, extra_files: dict[str, bytes] | None = None) -> dict:
    """Write the model directory; ``fetch(sha256, path)`` puts an artifact's bytes at path. Returns the manifest."""
    if len({w.backend for w in winners}) > 1:
        raise UserError("the winners use different backends (" + ", ".join(sorted({w.backend for w in winners}))
                        + "); one Triton model serves one backend: narrow the winners with --device (e.g. --device gpu)")
    batched = all(bool(ins.get("dims")) and not (isinstance(ins["dims"][0], int) and ins["dims"][0] > 0)
                  for ins in inputs)
    first = sorted(winners, key=lambda w: w.device_class)[0]
    ins, outs = tensors(inputs, outputs, first.profile_ranges, batched)
    texts = {"config.pbtxt": config_text(name, winners, ins, outs, batched)}
    for winner in winners:
        own_ins, _ = tensors(inputs, outputs, winner.profile_ranges, batched)
        texts[f"configs/{_safe(winner.device_class)}.pbtxt"] = config_text(name, winners, own_ins, outs, batched,
                                                                           own=winner)
    parsed = {path: parse(text) for path, text in texts.items()}  # nothing is written unless all parse
    model_dir = root / name
    (model_dir / "1").mkdir(parents=True, exist_ok=True)
    (model_dir / "configs").mkdir(exist_ok=True)
    for winner in winners:
        fetch(winner.artifact_sha256, model_dir / "1" / winner.filename)
    for path, data in (extra_files or {}).items():
        (model_dir / "1" / path).write_bytes(data)
    for path, text in texts.items():
        (model_dir / path).write_text(text)
    shared = [cc for cc in {w.compute_capability for w in winners if w.compute_capability}
              if sum(w.compute_capability == cc for w in winners) > 1]
    manifest = {"model": name, "backend": first.backend, "batched": batched,
                "classes": {w.device_class: {k: v for k, v in vars(w).items() if k != "profile_ranges"} | {
                    "config": f"configs/{_safe(w.device_class)}.pbtxt", "file": f"1/{w.filename}"}
                    for w in winners},
                "shared_compute_capability": sorted(shared),
                "configs": {path: {"max_batch_size": msg.max_batch_size,
                                   "instances": msg.instance_group[0].count} for path, msg in parsed.items()}}
    (model_dir / "farm-export.json").write_text(json.dumps(manifest, indent=1, default=str))
    return manifest
