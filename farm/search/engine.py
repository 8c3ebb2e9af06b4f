"""One step of a search, and its end: shared by the live driver
(farm/search/driver.py, over the job table) and the replay benchmark
(benchmarks/search_replay.py, over recorded sweeps).

A step is a pure function of the space, the observations, what is in flight
and the decision order: the driver recomputes it from the database after
any crash and reaches the same decisions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from farm.search.config import SearchConfig
from farm.search.observe import Observation, feasible, score, violation
from farm.search.pruning import prune
from farm.search.screening import screen
from farm.search.space import Candidate, groups
from farm.search.strategies import STRATEGY_FUNCTIONS, GroupView


@dataclass
class Step:
    proposals: list[int] = field(default_factory=list)
    pruned: dict[int, str] = field(default_factory=dict)
    finished: dict[str, str] = field(default_factory=dict)  # group -> why it stopped
    builds: int = 0
    pending: int = 0

    @property
    def done(self) -> bool:
        return not self.proposals and self.pending == 0


def group_budgets(candidates: list[Candidate], budget: int) -> dict[str, int]:
    """The budget split over groups in proportion to their size (at least one each)."""
    sizes = {g: len(m) for g, m in groups(candidates).items()}
    total = sum(sizes.values()) or 1
    return {g: max(1, math.floor(budget * n / total + 1e-9)) for g, n in sizes.items()}


def builds(observations: dict[int, Observation], pending: set[int]) -> int:
    """Builds spent: in flight plus built, not counting reused results."""
    return len(pending) + sum(1 for o in observations.values() if not o.reused)


def plan_step(candidates: list[Candidate], config: SearchConfig, budget: int,
              observations: dict[int, Observation], pending: set[int], order: list[int],
              priors: dict[str, list] | None = None, known_pruned: dict[int, str] | None = None,
              hints: dict[str, list] | None = None) -> Step:
    """``known_pruned``: configurations ruled out before any build (a
    precision the backend cannot build), kept with their reasons.
    ``priors`` (same workload) and ``hints`` (other workloads of the model on
    the group's device class): group -> [(axes, score)]."""
    pruned = {**{i: r for i, r in (known_pruned or {}).items() if i not in observations},
              **prune(candidates, observations, config.eligibility, config.retry_failed_precisions)}
    step = Step(pruned=pruned, builds=builds(observations, pending), pending=len(pending))
    strategy = STRATEGY_FUNCTIONS[config.strategy]
    budgets = group_budgets(candidates, budget)
    left_total = budget - step.builds
    for group, members in groups(candidates).items():
        ids = {c.idx for c in members}
        spent = builds({i: o for i, o in observations.items() if i in ids}, pending & ids)
        view = GroupView(members=members, observations={i: o for i, o in observations.items() if i in ids},
                         pruned={i: r for i, r in pruned.items() if i in ids}, pending=pending & ids,
                         order=[i for i in order if i in ids], constraints=config.eligibility,
                         objective=config.objective,
                         budget_left=max(0, min(budgets[group] - spent, left_total - len(step.proposals))),
                         seed=config.seed, priors=(priors or {}).get(group, []),
                         hints=(hints or {}).get(group, []))
        proposals = strategy(view)
        step.proposals += proposals
        if not proposals and not view.pending:
            step.finished[group] = view.stop_reason or _stop_reason(config.strategy)
    return step


def _stop_reason(strategy: str) -> str:
    return {"brute": "every configuration built or pruned",
            "quick": "the hill climb stopped: no one-axis neighbour of the best configuration is better",
            "bayes": "search converged"}[strategy]


@dataclass(frozen=True)
class Finalist:
    idx: int
    score: float
    reason: str
    samples_used: int


def finalists(members: list[Candidate], observations: dict[int, Observation], config: SearchConfig
              ) -> tuple[list[Finalist], dict[int, str]]:
    """Who could still win a group: the leader and every feasible candidate
    the sequential test did not drop (best first, at most finals.top);
    also idx -> why each other built candidate is out."""
    objective = config.objective
    built = [observations[c.idx] for c in members if c.idx in observations]
    rule = config.eligibility
    out = {o.idx: violation(o, rule) for o in built if not feasible(o, rule)}
    ok = sorted((o for o in built if feasible(o, rule)),
                key=lambda o: (-score(o, objective), o.idx))
    if not ok:
        return [], out
    leader, kept = ok[0], [Finalist(ok[0].idx, score(ok[0], objective), "leader", len(ok[0].samples_ms))]
    for obs in ok[1:]:
        verdict = screen(obs.samples_ms, leader.samples_ms, objective, config.alpha,
                         (obs.batch_size, leader.batch_size))
        if not verdict.keep:
            out[obs.idx] = verdict.reason
        elif len(kept) < config.finals.top:
            kept.append(Finalist(obs.idx, score(obs, objective), verdict.reason, verdict.samples_used))
        else:
            out[obs.idx] = f"could still win but ranks below the top {config.finals.top} finalists"
    return kept, out


def skipped_reason(config: SearchConfig, finished: dict[str, str], group: str) -> str:
    return f"not built: {config.strategy} search ended ({finished.get(group, 'finished')})"
