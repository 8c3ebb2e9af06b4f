"""How TensorRT-family engines are timed when the spec leaves a knob unset:
trtexec 11's defaults, so a farm figure compares with the trtexec figure
users already have. TensorRT 11.0's trtexec captures a CUDA graph, spin-waits,
times compute without data transfers and profiles layers in a separate run;
the farm adds an end-to-end figure (with the H2D/D2H copies) from a second,
shorter pass so the compute-only samples stay transfer-free.

Every knob the spec sets wins; what was used is recorded with the
measurement (``timing_settings``)."""

from __future__ import annotations

from dataclasses import replace

from farm.spec import MeasureConfig
from workers.timing.cuda import DEFAULT_SYNC

DEFAULTS_NAME = "trtexec 11"
E2E_PASS_MS = 1000.0  # wall time of the separate end-to-end pass (at least ``iterations`` too)


def trtexec_defaults(config: MeasureConfig, capture: bool, no_graph_reason: str | None) -> tuple[MeasureConfig, dict]:
    """(config for the compute-only timed run, notes to record). ``capture``
    and its reason come from ``io_plan.graph_plan``."""
    timed = replace(config, cuda_graph=capture, sync=config.sync or DEFAULT_SYNC,
                    end_to_end=bool(config.end_to_end))
    notes = {
        "defaults": DEFAULTS_NAME,
        "defaulted": [k for k in ("cuda_graph", "sync", "end_to_end") if getattr(config, k) is None],
        "end_to_end_pass": config.end_to_end is None,
    }
    if no_graph_reason:
        notes["cuda_graph_off_because"] = no_graph_reason
    return timed, notes


def end_to_end_pass(timed: MeasureConfig) -> MeasureConfig:
    """The separate pass that times copies + compute (trtexec 11 no longer
    includes transfers in its timed loop; the farm reports both)."""
    return replace(timed, end_to_end=True, duration_ms=min(timed.duration_ms, E2E_PASS_MS),
                   warmup_ms=min(timed.warmup_ms, E2E_PASS_MS / 4))
