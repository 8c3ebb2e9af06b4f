"""Serving scenarios (MLPerf LoadGen) as a sweep spec's ``scenarios:`` block.

A job with scenarios is measured twice: the fixed-batch timing every job
gets, then LoadGen's scenarios against an in-process batching server
around the job's loaded engine (workers/serving). The server's knobs are
sweep axes: max batch is the job's batch size (the engine's profile),
``queue_delay_us`` and ``instances`` multiply the jobs like ``streams``.

This module is the coordinator's side: the spec block, the job config it
becomes, and the pure readings of a stored result (valid, sustained QPS,
latency) that ranking and reports use. No LoadGen import here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from farm.errors import SpecError

SCENARIOS = ("single_stream", "multi_stream", "server", "offline")
LOADGEN_NAMES = {"single_stream": "SingleStream", "multi_stream": "MultiStream", "server": "Server",
                 "offline": "Offline"}
# What each scenario reports (LoadGen's own metric) and the percentile its latency bound is on.
METRICS = {"single_stream": "p90 latency", "multi_stream": "p99 query latency", "server": "highest valid QPS",
           "offline": "samples per second"}

_number = {"type": "number", "exclusiveMinimum": 0}
SCENARIOS_SCHEMA = {
    "description": "MLPerf LoadGen scenarios over an in-process batching server of each job's engine "
    "(docs/scenarios.md). queue_delay_us and instances are sweep axes.",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "run": {"type": "array", "items": {"enum": list(SCENARIOS)}, "minItems": 1},
        "min_duration_ms": {"type": "number", "minimum": 1, "maximum": 3_600_000},
        "min_query_count": {"type": "integer", "minimum": 1, "maximum": 10_000_000},
        "max_duration_ms": {"type": "number", "minimum": 1, "maximum": 3_600_000},
        "max_query_count": {"type": "integer", "minimum": 1, "maximum": 10_000_000},
        "samples_per_query": {"type": "integer", "minimum": 1, "maximum": 4096},
        "p99_ms": _number,
        "target_qps": {"type": "array", "items": _number, "minItems": 1, "maxItems": 64},
        "search_steps": {"type": "integer", "minimum": 1, "maximum": 32},
        "queue_delay_us": {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 10_000_000},
                           "minItems": 1},
        "instances": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 64}, "minItems": 1},
    },
}


@dataclass(frozen=True)
class ScenarioSpec:
    """LoadGen's library defaults are 10 s and 100 queries; MLPerf's official
    runs use 600 s. Server: ``target_qps`` lists offered loads to run, else
    the farm searches the highest valid QPS in ``search_steps`` runs."""

    run: tuple[str, ...] = ("single_stream", "server", "offline")
    min_duration_ms: float = 10_000.0
    min_query_count: int = 100
    max_duration_ms: float | None = None
    max_query_count: int | None = None  # caps a run (LoadGen then judges what it did within the cap)
    samples_per_query: int = 8  # MultiStream
    p99_ms: float | None = None  # Server's latency bound (required when server runs)
    target_qps: tuple[float, ...] = ()
    search_steps: int = 6
    queue_delay_us: tuple[int, ...] = (0,)
    instances: tuple[int, ...] = (1,)

    def job_configs(self) -> list[dict]:
        """One ``serving`` job config per (queue delay, instances) pair."""
        base = {k: v for k, v in asdict(self).items() if k not in ("queue_delay_us", "instances")}
        base["run"], base["target_qps"] = list(self.run), list(self.target_qps)
        return [{**base, "queue_delay_us": delay, "instances": count}
                for delay in self.queue_delay_us for count in self.instances]


def parse_scenarios(raw: dict) -> ScenarioSpec:
    """The spec's ``scenarios`` block (structure already checked by the schema)."""
    values = dict(raw)
    for key in ("run", "target_qps", "queue_delay_us", "instances"):
        if key in values:
            values[key] = tuple(dict.fromkeys(values[key]))
    spec = ScenarioSpec(**values)
    if "server" in spec.run and spec.p99_ms is None:
        raise SpecError("spec field 'scenarios.p99_ms': the server scenario needs a p99 latency bound in ms "
                        "(the highest QPS is searched under it)")
    if spec.max_duration_ms is not None and spec.max_duration_ms < spec.min_duration_ms:
        raise SpecError("spec field 'scenarios.max_duration_ms': must be at least min_duration_ms "
                        f"({spec.min_duration_ms:g})")
    if spec.max_query_count is not None and spec.max_query_count < spec.min_query_count:
        raise SpecError("spec field 'scenarios.max_query_count': must be at least min_query_count "
                        f"({spec.min_query_count})")
    return spec


# ---- readings of a stored result (measurement telemetry["serving"]) -------------------------------

def scenario_result(serving: dict | None, scenario: str) -> dict | None:
    if not serving:
        return None
    return (serving.get("scenarios") or {}).get(scenario)


def sustained_qps(serving: dict | None) -> float | None:
    """Server: the highest offered load LoadGen judged VALID (None: none was)."""
    server = scenario_result(serving, "server")
    return server.get("best_valid_qps") if server else None


def valid(result: dict | None) -> bool:
    return bool(result) and result.get("validity") == "VALID"


def headline(serving: dict | None, scenario: str) -> float | None:
    """The scenario's metric where the run was VALID, else None: an invalid
    run never ranks (single/multi stream in ms, server in QPS, offline in samples/s)."""
    result = scenario_result(serving, scenario)
    if scenario == "server":
        return sustained_qps(serving)
    if not valid(result):
        return None
    assert result is not None
    return {"single_stream": result.get("p90_ms"), "multi_stream": result.get("p99_ms"),
            "offline": result.get("samples_per_s")}[scenario]


def load_curve(serving: dict | None) -> list[dict]:
    """Server runs as (offered QPS, completed QPS, p99 ms, valid), by offered load."""
    server = scenario_result(serving, "server")
    runs = (server or {}).get("runs") or []
    return sorted(({"target_qps": r.get("target_qps"), "completed_qps": r.get("completed_samples_per_s"),
                    "p99_ms": r.get("p99_ms"), "valid": r.get("validity") == "VALID"} for r in runs),
                  key=lambda r: r["target_qps"] or 0.0)
