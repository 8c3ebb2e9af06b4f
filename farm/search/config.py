"""The spec's ``search:`` block: which strategy explores the sweep's space,
with what budget, towards which objective, under which constraints.

``brute`` (the default) builds every configuration. ``quick`` and ``bayes``
build a part of it (farm/search/strategies.py); every strategy prunes what
cannot meet the constraints and ends with interleaved finals.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from farm.errors import SpecError

STRATEGIES = ("brute", "quick", "bayes")
OBJECTIVES = ("latency", "throughput")
CONSTRAINT_KEYS = ("max_latency_ms", "latency_stat", "min_throughput", "max_memory_mb", "max_rel_error")

_number = {"type": "number", "exclusiveMinimum": 0}
SEARCH_SCHEMA = {
    "description": "Search strategy over the sweep's configurations (default: brute, build all).",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "strategy": {"enum": list(STRATEGIES)},
        "budget": {"description": "Most configurations to build: a count, or a share of the space like '20%'.",
                   "oneOf": [{"type": "integer"}, {"type": "string", "pattern": r"^\s*[0-9.]+\s*%\s*$"}]},
        "objective": {"enum": list(OBJECTIVES)},
        "constraints": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"max_latency_ms": _number, "latency_stat": {"enum": ["p50", "p99"]},
                           "min_throughput": _number, "max_memory_mb": _number,
                           "max_rel_error": {"type": "number", "minimum": 0},
                           "allow_unchecked": {"type": "boolean"}, "allow_host_bound": {"type": "boolean"}},
        },
        "axes": {"description": "Build knobs searched as axes: {'backend.knob': [values]}.",
                 "type": "object", "additionalProperties": {"type": "array", "minItems": 1}},
        "screen": {"description": "Shorter measurement for candidates; finalists are re-measured in the finals.",
                   "type": "object", "additionalProperties": False,
                   "properties": {"warmup_ms": {"type": "number", "minimum": 0}, "duration_ms": _number,
                                  "iterations": {"type": "integer", "minimum": 1}}},
        "finals": {"type": "object", "additionalProperties": False,
                   "properties": {"enabled": {"type": "boolean"}, "top": {"type": "integer", "minimum": 1},
                                  "tuned": {"description": "Rebuild each finalist with its backend's tuned build "
                                            "(torch max-autotune, TensorRT level 5) and time both.",
                                            "type": "boolean"},
                                  "rounds": {"type": "integer", "minimum": 2}, "warmup_ms": {"type": "number",
                                                                                             "minimum": 0},
                                  "duration_ms": _number}},
        "retry_failed_precisions": {"description": "Build a precision at other batch sizes even after it "
                                    "failed the accuracy gate at one.", "type": "boolean"},
        "alpha": {"description": "Error rate of the screening test (dropping a candidate that could tie).",
                  "type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 0.5},
        "seed": {"type": "integer", "minimum": 0},
    },
}


@dataclass(frozen=True)
class FinalsConfig:
    enabled: bool = True
    top: int = 3  # finalists per device class and workload
    rounds: int = 4  # A B C rounds
    warmup_ms: float = 200.0  # each candidate's warm-up before its window, every round
    duration_ms: float = 500.0  # each candidate's window per round
    tuned: bool = True  # each finalist also rebuilt with its backend's tuned build (farm/tuned.py)


@dataclass(frozen=True)
class SearchConfig:
    strategy: str = "brute"
    budget: int | str | None = None  # None: the whole space
    objective: str = "latency"
    constraints: dict[str, Any] = field(default_factory=dict)
    axes: dict[str, tuple] = field(default_factory=dict)
    screen: dict[str, float] = field(default_factory=dict)
    finals: FinalsConfig = field(default_factory=FinalsConfig)
    retry_failed_precisions: bool = False
    alpha: float = 0.05
    seed: int = 0
    # The CLI's --force (never the spec's: its schema has no such field): every
    # step builds its proposals anew instead of reusing identical finished jobs.
    force: bool = False

    @property
    def eligibility(self):
        """The objective and constraints as farm/reports/eligibility.py's Constraints
        (what ``farm best`` would apply to the same rows)."""
        from farm.reports.eligibility import Constraints

        return Constraints.of_search(self.objective, self.constraints)

    def to_json(self) -> dict:
        data = asdict(self)
        data["axes"] = {k: list(v) for k, v in self.axes.items()}
        return data

    @classmethod
    def from_json(cls, data: dict | None) -> "SearchConfig":
        data = dict(data or {})
        data["finals"] = FinalsConfig(**(data.get("finals") or {}))
        data["axes"] = {k: tuple(v) for k, v in (data.get("axes") or {}).items()}
        return cls(**data)

    def budget_for(self, space_size: int, groups: int = 1) -> int:
        """The most configurations this search may build; refuses a budget
        that cannot work (fewer builds than device classes x workloads, or a
        brute search asked to build less than everything)."""
        budget = resolve_budget(self.budget, space_size)
        if budget < groups:
            raise SpecError(f"spec field 'search.budget': {self.budget!r} allows {budget} builds, but the space "
                            f"has {groups} device class/workload groups and each needs at least one build")
        if self.strategy == "brute" and budget < space_size:
            raise SpecError(f"spec field 'search.budget': strategy 'brute' builds every configuration "
                            f"({space_size}); a budget of {budget} cannot cover it (use quick or bayes)")
        return min(budget, space_size)


def resolve_budget(budget, space_size: int) -> int:
    if budget is None:
        return space_size
    if isinstance(budget, str):
        share = float(re.sub(r"[\s%]", "", budget))
        if not 0 < share <= 100:
            raise SpecError(f"spec field 'search.budget': {budget!r} must be a share in (0 %, 100 %]")
        return max(1, int(space_size * share / 100 + 1e-9))
    if budget < 1:
        raise SpecError(f"spec field 'search.budget': budget must be at least 1 build (got {budget})")
    return int(budget)


def parse_search(raw: dict | None) -> SearchConfig:
    """The validated ``search:`` block (structure already checked by the schema)."""
    raw = dict(raw or {})
    if isinstance(raw.get("budget"), (int, str)):
        resolve_budget(raw["budget"], 1_000_000)  # shape errors now; size errors once the space is known
    for key, values in (raw.get("axes") or {}).items():
        backend, dot, knob = key.partition(".")
        if not dot or not knob:
            raise SpecError(f"spec field 'search.axes.{key}': write BACKEND.KNOB, e.g. onnxruntime.intra_op_num_threads")
        if len(set(map(repr, values))) != len(values):
            raise SpecError(f"spec field 'search.axes.{key}': values listed twice")
    finals = FinalsConfig(**(raw.pop("finals", None) or {}))
    axes = {k: tuple(v) for k, v in (raw.pop("axes", None) or {}).items()}
    return SearchConfig(finals=finals, axes=axes, **raw)


def with_strategy(config: SearchConfig | None, strategy: str | None, budget=None) -> SearchConfig | None:
    """The CLI's --search/--budget over the spec's block."""
    from dataclasses import replace

    if strategy is None and budget is None:
        return config
    if strategy is not None and strategy not in STRATEGIES:
        raise SpecError(f"--search {strategy!r} is not a strategy (allowed: {', '.join(STRATEGIES)})")
    config = config or SearchConfig()
    if budget is not None:
        text = str(budget).strip()
        if not text.endswith("%"):
            try:
                budget = int(text)
            except ValueError:
                raise SpecError(f"--budget {budget!r}: give a number of builds or a share like 20%") from None
        resolve_budget(budget, 1_000_000)
    return replace(config, strategy=strategy or config.strategy,
                   budget=budget if budget is not None else config.budget)
