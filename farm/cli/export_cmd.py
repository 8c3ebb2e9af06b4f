"""``farm export``: a model's winners as a ready-to-serve Triton model repository (farm/triton.py)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import click
from sqlalchemy import select

from farm.cli.dialect import format_option, one_device
from farm.cli.output import to_json
from farm.cli.results_cmd import _best, _constraint_options
from farm.db import Device, Job, Model, Sweep, session_scope
from farm.errors import ArtifactMissingError, NotFoundError, StoreIntegrityError, UserError
from farm.store import open_store
from farm.terminal import say
from farm.triton import ClassWinner, model_name, write_repository

# The Triton Python backend model of a torch winner: a file of its own (it imports torch, which the
# coordinator never does; here it is only text written into the repository).
_TORCH_MODEL_PY = Path(__file__).resolve().parent.parent / "templates" / "triton_torch_model.py.tmpl"


@click.command("export")
@_constraint_options("Device class or GPU/CPU name, as for best (default: every device class with a winner).")
@click.option("--triton", "triton_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Write a Triton model repository here (one model per workload).")
@click.option("--name", help="The Triton model's name (default: the model's name; -<profile> per workload "
                             "where there are several).")
@format_option()
def export_cmd(model, sweep_id, device, triton_dir, name, fmt, **constraints):
    """The winners of 'farm best' (one per device class) as a Triton model repository.

    Each device class's winning artifact goes into the model's version 1,
    with configs/<class>.pbtxt for that class and a config.pbtxt that picks a
    TensorRT plan per GPU by compute capability (cc_model_filenames). Server
    settings come from the winner: max_batch_size its batch, dynamic
    batching its queue delay, instance_group its instance count
    (docs/scenarios.md). Every config is parsed against Triton's own
    model_config protobuf before anything is written.
    """
    best = _best(model, sweep_id, one_device(device), **constraints)
    winners = best[best["role"] == "winner"] if not best.empty else best
    if winners.empty:
        raise NotFoundError("no finished configuration meets the constraints")
    groups = list(winners.groupby("workload", sort=True))
    store = open_store()
    manifests = []
    for workload, rows in groups:
        profile = str(rows.iloc[0]["profile"])
        base = name or str(rows.iloc[0]["model"])
        target = model_name(base, profile if len(groups) > 1 else None)
        if (triton_dir / target).exists() and any((triton_dir / target).iterdir()):
            raise UserError(f"{triton_dir / target} exists and is not empty; remove it or choose another --triton")
        manifests.append(_export_one(store, triton_dir, target, rows.to_dict("records"), constraints))
    if fmt == "json":
        click.echo(to_json(manifests))
        return
    for manifest in manifests:
        for device_class, c in sorted(manifest["classes"].items()):
            say(f"{manifest['model']}: {device_class} <- job {c['job_id']} ({c['backend']} {c['precision']} "
                f"batch {c['batch_size']}, queue delay {c['queue_delay_us']} us, {c['instances']} instance(s)) "
                f"-> {c['file']}, {c['config']}")
        if manifest["shared_compute_capability"]:
            say(f"{manifest['model']}: compute capability {', '.join(manifest['shared_compute_capability'])} is "
                "shared by several classes: config.pbtxt maps it to the first; start tritonserver with "
                "--model-config-name=<class> on each of them")
    say(f"wrote {len(manifests)} Triton model(s) under {triton_dir}")


def _export_one(store, root: Path, target: str, rows: list[dict], constraints: dict) -> dict:
    with session_scope() as session:
        jobs = {r["job_id"]: session.get(Job, r["job_id"]) for r in rows}
        sweep = session.get(Sweep, jobs[rows[0]["job_id"]].sweep_id)
        model = session.get(Model, sweep.model_id)
        inputs, model_key = list(model.inputs or []), model.artifact_sha256 or model.sha256
        capabilities = dict(session.execute(select(Device.device_class, Device.compute_capability)
                                            .where(Device.compute_capability.is_not(None))).all())
        configs = {job_id: dict(job.config or {}) for job_id, job in jobs.items()}
    winners = []
    for row in rows:
        config = configs[row["job_id"]]
        serving = config.get("serving") or {}
        build_info = _runs_on(row)
        winners.append(ClassWinner(
            device_class=row["device_class"], job_id=row["job_id"], backend=row["backend"],
            precision=row["precision"], batch_size=int(row["batch_size"]), artifact_sha256=row["artifact_sha256"],
            compute_capability=capabilities.get(row["device_class"]) or build_info,
            kind="gpu" if str(row["device_class"]).startswith("gpu") else "cpu",
            queue_delay_us=int(serving.get("queue_delay_us", 0)), instances=int(serving.get("instances", 1)),
            objective=row.get("objective", ""), objective_value=row.get("objective_value"),
            profile_ranges=(config.get("profile") or {}).get("inputs") or {}))
    with tempfile.TemporaryDirectory(prefix="farm-export-") as tmp:
        source = Path(tmp) / "model.onnx"
        _get(store, model_key, source)
        outputs = _outputs(source)
        extra = {}
        if winners[0].backend == "torch":
            first = winners[0]
            extra = {"model.onnx": source.read_bytes(), "model.py": _TORCH_MODEL_PY.read_bytes(),
                     "farm-job.json": json.dumps({"shapes": first.profile_ranges, "precision": first.precision,
                                                  "inputs": [i["name"] for i in inputs],
                                                  "outputs": [o["name"] for o in outputs]}).encode()}
        return write_repository(root, target, winners, inputs, outputs, lambda key, path: _get(store, key, path),
                                extra)


def _runs_on(row: dict) -> str | None:
    from farm.reports.artifacts import engine

    runs_on = (engine(row["job_id"])["build_info"].get("runs_on") or {}).get("compute_capabilities") or []
    return runs_on[0] if len(runs_on) == 1 else None


def _get(store, key: str, path: Path) -> None:
    try:
        store.get_file(key, path)
    except (StoreIntegrityError, ArtifactMissingError) as exc:
        raise UserError(f"{exc}; nothing usable was written") from None


def _outputs(path: Path) -> list[dict]:
    """Output names, element types and declared dims (-1 where unknown) from the ONNX graph."""
    import onnx

    from farm.model_info import ONNX_DTYPES

    graph = onnx.load(str(path), load_external_data=False).graph
    out = []
    for value in graph.output:
        tensor = value.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else -1
                for d in tensor.shape.dim] if tensor.HasField("shape") else []
        out.append({"name": value.name, "dtype": ONNX_DTYPES.get(tensor.elem_type, "float32"), "rank": len(dims),
                    "dims": dims})
    return out
