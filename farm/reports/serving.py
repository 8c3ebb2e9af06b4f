"""Report columns and ranking figures of the serving scenarios and energy.

The measurement row keeps LoadGen's results whole (``serving``) and the
fixed-batch window's energy reading (``energy``); the report shows flat
fields derived here (docs/fields.md). The serving objectives rank on a
figure only where LoadGen judged the run VALID: an invalid run has no
figure and so never wins.
"""

from __future__ import annotations

import math

import pandas as pd

from farm.scenarios import headline, scenario_result, valid

SERVING_FIELDS = (
    "inferences_per_joule", "joules_per_inference", "energy_source", "queue_delay_us", "instances",
    "single_stream_p90_ms", "multi_stream_p99_ms", "offline_samples_per_s", "server_qps", "server_p99_ms",
    "server_p99_bound_ms", "scenarios_validity", "server_inferences_per_joule",
)
# objective -> (report column, lower is better, unit)
SERVING_OBJECTIVES = {
    "server-qps": ("server_qps", False, "QPS (Server, valid)"),
    "single-stream": ("single_stream_p90_ms", True, "ms p90 (SingleStream, valid)"),
    "multi-stream": ("multi_stream_p99_ms", True, "ms p99 per query (MultiStream, valid)"),
    "offline": ("offline_samples_per_s", False, "samples/s (Offline, valid)"),
    "efficiency": ("inferences_per_joule", False, "inferences/J"),
}


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(value) else None


def energy_fields(energy: dict | None) -> dict:
    if not energy:
        return {"inferences_per_joule": None, "joules_per_inference": None, "energy_source": None}
    if not energy.get("measured"):
        return {"inferences_per_joule": None, "joules_per_inference": None,
                "energy_source": f"not measured: {energy.get('reason', 'no reading')}"}
    return {"inferences_per_joule": _number(energy.get("inferences_per_joule")),
            "joules_per_inference": _number(energy.get("joules_per_inference")), "energy_source": energy.get("source")}


def serving_fields(serving: dict | None) -> dict:
    out = dict.fromkeys(SERVING_FIELDS[3:])
    if not serving:
        return out
    out["queue_delay_us"], out["instances"] = serving.get("queue_delay_us"), serving.get("instances")
    if serving.get("unsupported") or serving.get("failed"):
        out["scenarios_validity"] = (f"unsupported: {serving['unsupported']}" if serving.get("unsupported")
                                     else f"failed: {serving['failed']}")
        return out
    out["single_stream_p90_ms"] = _number(headline(serving, "single_stream"))
    out["multi_stream_p99_ms"] = _number(headline(serving, "multi_stream"))
    out["offline_samples_per_s"] = _number(headline(serving, "offline"))
    out["server_qps"] = _number(headline(serving, "server"))
    server = scenario_result(serving, "server")
    if server:
        out["server_p99_bound_ms"] = server.get("p99_bound_ms")
        if out["server_qps"] is not None:
            out["server_p99_ms"] = _number(server.get("p99_ms"))
            out["server_inferences_per_joule"] = _number((server.get("energy") or {}).get("inferences_per_joule"))
    runs = serving.get("scenarios") or {}
    out["scenarios_validity"] = " ".join(
        f"{name}:{'VALID' if (r.get('best_valid_qps') is not None if name == 'server' else valid(r)) else 'INVALID'}"
        for name, r in runs.items()) or None
    return out


def add_serving_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """SERVING_FIELDS from the rows' ``energy`` and ``serving`` (kept hidden for curves and export)."""
    energies = frame["energy"] if "energy" in frame else pd.Series([None] * len(frame), index=frame.index)
    servings = frame["serving"] if "serving" in frame else pd.Series([None] * len(frame), index=frame.index)
    derived = [{**energy_fields(e if isinstance(e, dict) else None),
                **serving_fields(s if isinstance(s, dict) else None)} for e, s in zip(energies, servings)]
    for field in SERVING_FIELDS:
        if field not in frame or frame[field].isna().all():
            frame[field] = [d[field] for d in derived] if derived else pd.Series(dtype=object)
    frame["serving"] = [s if isinstance(s, dict) else None for s in servings]
    return frame


def server_qps_under(serving: dict | None, p99_ms: float) -> float | None:
    """The highest VALID Server load whose measured p99 is also within ``p99_ms``."""
    server = scenario_result(serving, "server")
    loads = [r.get("target_qps") for r in (server or {}).get("runs") or []
             if r.get("validity") == "VALID" and _number(r.get("p99_ms")) is not None and r["p99_ms"] <= p99_ms]
    return max(loads) if loads else None


def serving_figure(frame: pd.DataFrame, objective: str, p99_ms: float | None = None) -> pd.Series:
    """The objective's figure per row (NaN where none: invalid or not run)."""
    column = SERVING_OBJECTIVES[objective][0]
    if objective == "server-qps" and p99_ms is not None and "serving" in frame:
        values = [server_qps_under(s if isinstance(s, dict) else None, p99_ms) for s in frame["serving"]]
        return pd.to_numeric(pd.Series(values, index=frame.index, dtype=object), errors="coerce")
    if column not in frame:
        return pd.Series(float("nan"), index=frame.index)
    figure = pd.to_numeric(frame[column], errors="coerce")
    if objective == "server-qps" and p99_ms is not None:  # flat rows: the winning load's own p99 must fit
        figure = figure.where(pd.to_numeric(frame["server_p99_ms"], errors="coerce") <= p99_ms)
    return figure
