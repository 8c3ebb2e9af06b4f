"""Which artifact to hand out, checked and written: the one fetch module
``farm fetch`` and the dashboard's download use (nothing here prints).

Every selection path honours the same constraints (farm/reports/eligibility.py):

- ``MODEL`` / ``--sweep``: the winner of ``farm best`` for the device (the
  named one, else this host's devices in turn);
- ``--target sm_89`` (with MODEL or --sweep): the newest engine built for
  that compute capability whose result meets the constraints;
- ``--job ID``: that job's artifact, if its result meets the constraints.

An engine that was never measured (``built``, or ``unsupported`` with an
artifact: e.g. TensorRT-RTX built on a CPU worker) has no figures and no
accuracy verdict: it is ``unchecked``, fetched only with
``--allow-unchecked`` and never when a bound is given. Several workloads
(profiles) in what a path would choose from: it asks for ``--profile``, the
same way on every path. A refusal ends with a command that runs.
"""

from __future__ import annotations

import re
from collections import Counter
import shlex
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator

from sqlalchemy import select

from farm.compat import incompatibility, parse_target, runs_on_cc, sm
from farm.db import Artifact, Device, Job, Model, Sweep, session_scope
from farm.devices import device_classes_matching
from farm.errors import ArtifactMissingError, NotFoundError, StoreIntegrityError, UserError
from farm.output_files import written_by
from farm.reports.artifacts import engine as job_engine, newest_engines
from farm.reports.best import admitting_flags
from farm.reports.candidates import find_best
from farm.reports.eligibility import Constraints
from farm.reports.rows import _rows_query, finish_frame
from farm.store import open_store

NEVER_MEASURED = ("built", "unsupported")  # statuses whose artifact has no figures


@dataclass
class Request:
    """What the user asked for (``farm fetch``'s arguments)."""
    model: str | None = None
    sweep_id: str | None = None
    job_id: str | None = None
    target: str | None = None
    device: str | None = None
    constraints: Constraints = field(default_factory=Constraints)
    output: str = "OUT"  # for the commands a refusal suggests

    def selection_args(self) -> list[str]:
        if self.job_id:
            return ["--job", self.job_id]
        return [self.model] if self.model else ["--sweep", str(self.sweep_id)]

    def command(self, *more: str, allow_unchecked: bool = False) -> str:
        """``farm fetch`` with this request's selection and constraints plus ``more`` (runnable)."""
        args = ["farm", "fetch", *self.selection_args(), *constraint_args(self.constraints, allow_unchecked),
                *more, "-o", self.output]
        return " ".join(shlex.quote(a) for a in args)


@dataclass
class Picked:
    engine: dict  # farm.reports.artifacts.engine(): job_id, status, backend, ..., artifact_sha256, build_info
    against: dict  # the device it is checked against (compat.py's shape)


def constraint_args(c: Constraints, allow_unchecked: bool = False) -> list[str]:
    """The CLI flags that say ``c`` (so a suggested command keeps the user's constraints)."""
    out: list[str] = []
    if c.objective != "latency":
        out += ["--objective", c.objective]
    for flag, value in (("--max-latency-ms", c.max_latency_ms), ("--min-throughput", c.min_throughput),
                        ("--max-memory-mb", c.max_memory_mb), ("--max-rel-error", c.max_rel_error),
                        ("--profile", c.profile)):
        if value is not None:
            out += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    if c.max_latency_ms is not None and c.latency_stat != "p99":
        out += ["--latency-stat", c.latency_stat]
    if c.allow_unchecked or allow_unchecked:
        out.append("--allow-unchecked")
    if c.allow_host_bound:
        out.append("--allow-host-bound")
    return out


# -- selection -------------------------------------------------------------
def select_artifact(request: Request, host_devices) -> Picked:
    """The artifact for ``request`` and the device to check it against.
    ``host_devices``: a callable giving this host's devices (GPUs first)."""
    if request.device and request.target:
        raise UserError("give --device or --target, not both")
    if request.job_id:
        picked = job_engine(request.job_id)  # its constraints are checked after the device (fetch())
        against = (target_device(request.target) if request.target
                   else named_device(request.device) if request.device else host_devices()[0])
        return Picked(picked, against)
    if bool(request.model) == bool(request.sweep_id):
        raise UserError("give a MODEL or --sweep ID (one of them)" + (" with --target" if request.target else ""))
    if request.target:
        return _newest_for_target(request)
    return _best_for_device(request, host_devices)


def _best_for_device(request: Request, host_devices) -> Picked:
    """The winner for the named device class, or for this host's devices in turn."""
    device = request.device
    candidates = [(device, None)] if device else [(d["device_class"], d) for d in host_devices()]
    left_out: list[dict] = []
    for selector, host_device in candidates:
        best = find_best(sweep_id=request.sweep_id, model=request.model,
                         constraints=replace(request.constraints, device=selector))
        left_out += best.attrs.get("excluded", [])
        best = best[best["role"] == "winner"] if not best.empty else best
        if best.empty:
            continue
        if best["device_class"].nunique() > 1:
            raise UserError(f"--device {device!r} matches several device classes "
                            f"({', '.join(sorted(best['device_class'].unique()))}); give one of them")
        ask_profile(sorted(best["profile"].astype(str).unique()), best["workload"].nunique(), request)
        winner = best.iloc[0]
        return Picked(job_engine(winner["job_id"]), host_device or class_device(winner["device_class"]))
    where = device or " or ".join(dict.fromkeys(d for d, _ in candidates)) or "this host"
    raise NotFoundError(f"no finished result for {where} meets the constraints" + _kept_out(left_out, request))


def _kept_out(left_out: list[dict], request: Request) -> str:
    """Why the candidates were kept out (the reasons ``farm best`` gives) and the command that admits them."""
    if not left_out:
        return ""
    counts = Counter(row["reason"] for row in left_out)
    reasons = "; ".join(f"{n} not ranked, {reason}" for reason, n in counts.items())
    return (f" ({reasons}); to fetch one anyway: "
            f"{request.command(*_where_args(request), *admitting_flags(left_out))}")


def _newest_for_target(request: Request) -> Picked:
    against = target_device(request.target)
    built_for = [e for e in newest_engines(request.model, request.sweep_id, request.constraints.profile)
                 if (e["build_info"].get("runs_on") or {}).get("compute_capabilities")
                 and runs_on_cc(e["build_info"]["runs_on"], against["compute_capability"])]
    if not built_for:
        raise NotFoundError(f"no engine built for {sm(against['compute_capability'])}"
                            + (f" with profile {request.constraints.profile!r}" if request.constraints.profile
                               else "") + "; build one for a GPU of that compute capability (farm sweep submit "
                            "with devices: gpu.<its name>; for tensorrt-rtx, build.tensorrt-rtx.compute_capabilities "
                            "names the targets)")
    fit, why = [], {}
    for candidate in built_for:
        reason = unfit_reason(candidate, request)
        if reason is None:
            fit.append(candidate)
        else:
            why.setdefault(candidate["job_id"], reason)
    if not fit:
        newest = built_for[0]
        raise NotFoundError(f"no engine built for {sm(against['compute_capability'])} meets the constraints: the "
                            f"newest, job {newest['job_id']}, {why[newest['job_id']]}")
    ask_profile(sorted({str(e["profile"]) for e in fit}), len({e["profile"] for e in fit}), request)
    return Picked(fit[0], against)


def ask_profile(profiles: list[str], workloads: int, request: Request) -> None:
    """One question on every path: several workloads, no --profile."""
    if workloads > 1 and not request.constraints.profile:
        raise UserError(f"the results hold several workloads (profiles {', '.join(profiles)}); choose one with "
                        f"--profile, e.g. {request.command('--profile', profiles[0], *_where_args(request))}")


# -- the constraints on one artifact --------------------------------------
def result_row(job_id: str) -> dict | None:
    """The job's report row (its newest measurement; a reused job its source's), NaN as None."""
    import pandas as pd

    with session_scope() as session:
        result = session.execute(_rows_query(with_samples=False).where(Job.id == job_id))
        frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    if frame.empty:
        return None
    record = finish_frame(frame).iloc[0].to_dict()
    return {k: (None if isinstance(v, float) and v != v else v) for k, v in record.items()}


def unfit_reason(engine: dict, request: Request) -> str | None:
    """Why this artifact's result does not meet the request's constraints
    (the eligibility rule; a never-measured engine is unchecked), or None."""
    c = request.constraints
    if engine["status"] in NEVER_MEASURED:
        row = result_row(engine["job_id"])
        if row is None or row.get("latency_p50_ms") is None:
            names = [f"--{column.replace('_', '-')}" for column in _bound_flags(c)]
            if names:
                return (f"was never measured (status {engine['status']}), so {', '.join(names)} cannot be met; "
                        f"fetch a measured engine (farm best {request.model or '--sweep ' + str(request.sweep_id)}"
                        f" lists them)" if not request.job_id else
                        f"was never measured (status {engine['status']}), so {', '.join(names)} cannot be met")
            if not c.allow_unchecked:
                return (f"was never measured (status {engine['status']}): its accuracy is unchecked; to fetch it "
                        f"anyway: {request.command(*_where_args(request), allow_unchecked=True)}")
            return None
    row = result_row(engine["job_id"]) or {"status": engine["status"]}
    reason = c.violation(row)
    if reason and row.get("accuracy_status") == "unchecked" and not c.allow_unchecked and not c.bounds():
        reason += f"; to fetch it anyway: {request.command(*_where_args(request), allow_unchecked=True)}"
    return reason


def refuse_unfit(engine: dict, request: Request) -> None:
    reason = unfit_reason(engine, request)
    if reason:
        raise UserError(f"refusing to fetch job {engine['job_id']}: it {reason}")


def _bound_flags(c: Constraints) -> list[str]:
    names = {"max_latency_ms": c.max_latency_ms, "min_throughput": c.min_throughput,
             "max_memory_mb": c.max_memory_mb, "max_rel_error": c.max_rel_error}
    return [name for name, value in names.items() if value is not None]


def _where_args(request: Request) -> list[str]:
    if request.target:
        return ["--target", request.target]
    return ["--device", request.device] if request.device else []


# -- the device an artifact is checked against ----------------------------
def target_device(target: str) -> dict:
    try:
        cc = parse_target(target)
    except ValueError:
        raise UserError(f"--target {target!r} is not a compute capability (e.g. sm_89 or 8.9)") from None
    return {"kind": "gpu", "name": f"target {sm(cc)}", "device_class": None, "compute_capability": cc,
            "versions": {}}


def device_dict(row: Device) -> dict:
    return {"device_class": row.device_class, "kind": row.kind, "name": row.name, "host": row.host,
            "compute_capability": row.compute_capability, "versions": row.versions or {}}


def class_device(device_class: str) -> dict:
    with session_scope() as session:
        row = session.scalar(select(Device).where(Device.device_class == device_class)
                             .order_by(Device.last_heartbeat.desc()).limit(1))
        if row is None:
            return {"device_class": device_class, "kind": device_class.split(".", 1)[0], "name": device_class}
        return device_dict(row)


def named_device(device: str) -> dict:
    with session_scope() as session:
        pairs = session.execute(select(Device.device_class, Device.name)).all()
    classes = sorted(device_classes_matching([tuple(p) for p in pairs], device))
    if len(classes) > 1:
        raise UserError(f"--device {device!r} matches several device classes ({', '.join(classes)}); give one")
    if classes:
        return class_device(classes[0])
    if device.lower().startswith(("gpu.", "cpu.")):
        return class_device(device.lower())
    raise UserError(f"--device {device!r} matches no registered device; name a device class such as gpu.nvidia-l4")


def check(picked: Picked, request: Request) -> None:
    """Refuse an engine that would not load on the device it is fetched for."""
    reason = incompatibility(picked.engine["build_info"], picked.against, rebuild_hint(picked, request))
    if reason:
        raise UserError(f"refusing to fetch job {picked.engine['job_id']}: {reason}")


def rebuild_hint(picked: Picked, request: Request) -> str:
    """Commands that run: fetch it for what it was built for; rebuild it for this device class."""
    runs_on = picked.engine["build_info"].get("runs_on") or {}
    hints = []
    if not (request.target or request.device):
        built_for = (runs_on.get("compute_capabilities") or [])[:1]
        named = ["--target", sm(built_for[0])] if built_for else ["--device", picked.engine["device_class"]]
        unmeasured = picked.engine["status"] in NEVER_MEASURED  # else that command would refuse it as unchecked
        hints.append(f"to fetch it for the GPU it was built for: {request.command(*named, allow_unchecked=unmeasured)}")
    device_class = picked.against.get("device_class")
    rebuild = rebuild_command(picked.engine["job_id"], device_class) if device_class else None
    if rebuild:
        hints.append(f"to build one for {device_class}: {rebuild}")
    elif not device_class:
        hints.append(f"build one on a GPU of {sm(picked.against.get('compute_capability'))} "
                     f"(farm sweep submit with devices: gpu.<its name>)")
    return "; ".join(hints) or "rebuild it for this device"


def rebuild_command(job_id: str, device_class: str) -> str | None:
    """``farm sweep submit`` for the job's configuration on ``device_class`` (flags only: runnable as is)."""
    with session_scope() as session:
        job = session.get(Job, job_id)
        model = session.get(Model, session.get(Sweep, job.sweep_id).model_id) if job else None
        if job is None or model is None:
            return None
        inputs = ((job.config or {}).get("profile") or {}).get("inputs") or {}
        profile = ";".join(f"{name}={'/'.join('x'.join(map(str, r[k])) for k in ('min', 'opt', 'max'))}"
                           for name, r in sorted(inputs.items()))
        args = ["farm", "sweep", "submit", "--model", model.path, "--backend", job.backend, "--precision",
                job.precision, "--batch", str(job.batch_size)]
        if profile:
            args += ["--profile", f"{job.profile}:{profile}"]
        args += ["--device", device_class]
    return " ".join(shlex.quote(a) for a in args)


# -- the bytes --------------------------------------------------------------
def write(picked: Picked, output: Path) -> None:
    """The artifact into ``output``, verified by its sha256 (a regular file, atomically)."""
    key = picked.engine["artifact_sha256"]
    store = open_store()
    try:
        written_by(output, lambda tmp: store.get_file(key, tmp))
    except (StoreIntegrityError, ArtifactMissingError) as exc:
        raise UserError(f"{exc}; nothing was written. Re-run job {picked.engine['job_id']} (farm run/sweep "
                        f"submit --force) to rebuild it") from None
    except OSError as exc:
        raise UserError(f"cannot write {output}: {exc.strerror or exc}") from None


def fetch(request: Request, output: Path, host_devices) -> Picked:
    """Select, check against the device, write verified: ``farm fetch``."""
    picked = select_artifact(request, host_devices)
    check(picked, request)
    if request.job_id:  # the paths that choose have applied the constraints already
        refuse_unfit(picked.engine, request)
    write(picked, output)
    return picked


def known_artifact(key: str) -> bool:
    """Is ``key`` an artifact the farm recorded (a job's or the artifacts table's)?"""
    with session_scope() as session:
        return bool(session.get(Artifact, key) or session.scalar(
            select(Job.id).where(Job.artifact_sha256 == key).limit(1)))


def download_name(key: str) -> str:
    """What the browser saves: the job's artifact named as the winner sentence names it (.onnx, .engine, ...)."""
    from farm.reports.summary import file_name

    with session_scope() as session:
        job = session.execute(select(Job.backend, Job.precision, Job.batch_size)
                              .where(Job.artifact_sha256 == key).limit(1)).first()
        row = session.get(Artifact, key) if job is None else None
        media_type = row.media_type if row is not None else ""
    if job is not None:
        return re.sub(r"[^A-Za-z0-9._-]", "_", file_name(*job))  # a header value: nothing that could end it
    return f"{key[:16]}{'.json' if media_type == 'application/json' else '.bin'}"


@contextmanager
def verified_file(key: str) -> Iterator[Path]:
    """A recorded artifact as a temporary file, verified by its sha256 (the
    dashboard's download); NotFoundError when the farm never recorded it."""
    if not known_artifact(key):
        raise NotFoundError(f"no artifact {key}")
    with tempfile.TemporaryDirectory() as tmp:
        yield open_store().get_file(key, Path(tmp) / "artifact")
