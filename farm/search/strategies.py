"""Search strategies, as pure functions of what is known so far.

Each strategy looks at one group (device class x workload): its candidates,
the observations of those built, the pruned ones and those in flight, and
says which to build next. Nothing is kept between calls, so a search whose
coordinator died carries on from the database alone, to the same decisions.

- ``brute``: every configuration, one series (all axes but batch/streams) at
  a time in ascending batch order, so pruning still saves builds.
- ``quick``: ordered-axis hill climbing (in the spirit of Triton Model
  Analyzer). It starts where the objective expects its best on the ordered
  axes (batch, streams): the smallest value for latency (latency grows along
  them, the premise pruning rule 1 rests on), the top for throughput (or the
  largest value that meets a latency or memory bound, by bisection), at the
  fastest expected precision and the first knob values (or, where this model
  was built on this device class for other input shapes, the precision and
  knob values that did best there). From there it moves
  to the first better one-axis neighbour (other precisions, other knob
  values, for throughput one batch step down or up) until no neighbour is
  better. When a start fails (the accuracy gate, a crash), the next start
  changes the values that only failed so far; a precision that failed the
  gate everywhere it was built is the last neighbour tried. So a small
  budget is not spent on a precision that fails everywhere.
- ``bayes``: quick's walk first (its start and moves, the most informative
  builds there are), then Optuna's TPE sampler over all axes, seeded with
  that walk and with earlier results of the same model on the same device
  class; stops when the budget is spent or ``patience`` builds in a row
  bring nothing better.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

from farm.reports.eligibility import Constraints
from farm.search.observe import Observation, better, constraints_of, feasible, score
from farm.search.pruning import pruned_by_bound
from farm.search.space import ORDERED_AXES, Candidate, axis_names, axis_values, lookup, point_key

BAYES_STARTUP = 3  # trials before TPE models the space (quick's walk comes first: usually more)


class Need(Exception):
    """The walk needs this candidate measured before it can go on."""

    def __init__(self, idx: int):
        super().__init__(idx)
        self.idx = idx


@dataclass
class GroupView:
    members: list[Candidate]
    observations: dict[int, Observation]
    pruned: dict[int, str]
    pending: set[int]
    order: list[int]  # idx in the order the search decided to build them
    constraints: Constraints  # farm/reports/eligibility.py
    objective: str
    budget_left: int  # builds this group may still start
    seed: int = 0
    priors: list[tuple[dict, float]] = field(default_factory=list)  # (axes, score) from earlier sweeps
    # (axes, score) of the same model on the same device class at other workloads (input shapes): their
    # scores are on another scale, so they only order what quick tries first, never seed TPE
    hints: list[tuple[dict, float]] = field(default_factory=list)
    stop_reason: str | None = None

    def hinted(self, point: dict, axes: list[str]) -> float:
        """The best score an earlier result of this model reached with the
        point's values on ``axes`` (-inf when none did)."""
        return max((s for values, s in self.priors + self.hints if all(values.get(a) == point[a] for a in axes)),
                   default=-math.inf)

    def value(self, candidate: Candidate | None) -> Observation | None:
        """A feasible observation, None when ruled out, Need when unknown."""
        if candidate is None or candidate.idx in self.pruned:
            return None
        obs = self.observations.get(candidate.idx)
        if obs is not None:
            return obs if feasible(obs, self.constraints) else None
        if candidate.idx in self.pending or self.budget_left > 0:
            raise Need(candidate.idx)
        self.stop_reason = "budget spent"
        return None


def brute(view: GroupView) -> list[int]:
    """Next unbuilt configuration of each series whose earlier ones are in."""
    series: dict[tuple, list[Candidate]] = {}
    for c in view.members:
        series.setdefault(c.series(), []).append(c)
    out = []
    for members in series.values():
        for c in sorted(members, key=lambda c: tuple(c.axes.get(k, 0) for k in ORDERED_AXES)):
            if c.idx in view.observations or c.idx in view.pruned:
                continue
            if c.idx not in view.pending and len(out) < view.budget_left:
                out.append(c.idx)
            break
    return out


def _failed_precisions(view: GroupView) -> set:
    """Precisions every built configuration of which failed the accuracy gate
    (or ``max_rel_error``): the numerics are the precision's, so such a
    precision is tried last. Bounds and knobs blame no precision."""
    seen: dict[str, bool] = {}
    by_idx = {c.idx: c for c in view.members}
    for idx, obs in view.observations.items():
        precision = by_idx[idx].axes.get("precision")
        seen[precision] = seen.get(precision, False) or not _accuracy_failed(obs, view.constraints)
    return {p for p, ok in seen.items() if not ok}


def _failed_values(view: GroupView, axes: list[str]) -> set:
    """(axis, value) pairs every built configuration of which failed (the
    accuracy gate, a crash; a broken latency or memory bound is the batch's
    doing): where a start failed, the next start changes them."""
    seen: dict[tuple, bool] = {}
    by_idx = {c.idx: c for c in view.members}
    for idx, obs in view.observations.items():
        ok = obs.status == "done" and not _accuracy_failed(obs, view.constraints)
        for axis in axes:
            key = (axis, point_key({"v": by_idx[idx].axes.get(axis)}))
            seen[key] = seen.get(key, False) or ok
    return {key for key, ok in seen.items() if not ok}


def _accuracy_failed(obs: Observation, constraints) -> bool:
    limit = constraints_of(constraints).max_rel_error
    return obs.status == "done" and (obs.accuracy_pass is False
                                     or (limit is not None and (obs.rel_l2_error or 0.0) > limit))


def _best_end(view: GroupView, axis: str, values: list):
    """Where an ordered axis starts: latency grows along batch and streams, so
    the smallest value for latency; throughput usually peaks at the top."""
    return values[0] if view.objective == "latency" else values[-1]


def _largest_feasible(view: GroupView, table, point: dict, axis: str, values: list):
    """From the top of an ordered axis down: the top, else (when the top broke
    a latency or memory bound, or crashed, as out of memory does: broken from
    some batch on) the largest value that meets the constraints, by
    bisection. None when the top failed otherwise (accuracy)."""
    candidate = table.get(point_key(point))
    top = view.value(candidate)
    if top is not None:
        return point, top
    if not _broken_from_some_batch(view, candidate):
        return None
    found, lo, hi = None, 0, values.index(point[axis]) - 1
    while lo <= hi:
        mid = (lo + hi + 1) // 2
        step = {**point, axis: values[mid]}
        obs = view.value(table.get(point_key(step)))
        if obs is not None:
            found, lo = (step, obs), mid + 1
        else:
            hi = mid - 1
    return found


def _broken_from_some_batch(view: GroupView, candidate: Candidate) -> bool:
    if candidate.idx in view.pruned:
        return pruned_by_bound(view.pruned[candidate.idx])
    obs = view.observations.get(candidate.idx)
    return obs is not None and (obs.status == "failed" or not _accuracy_failed(obs, view.constraints))


def _start(view: GroupView, table, axes: list[str], values: dict) -> tuple[dict, Observation] | None:
    """The first combination of precision and knobs that meets the
    constraints with its ordered axes at their best end: the fewest values
    that only failed so far, then the best hinted, then the fastest expected
    precision and the first knob values."""
    ordered = [a for a in axes if a in ORDERED_AXES]
    categorical = [a for a in axes if a not in ORDERED_AXES]
    base = {a: _best_end(view, a, values[a]) for a in ordered}
    tried: set[str] = set()
    while True:
        failed = _failed_values(view, categorical)
        combos = [{**base, **dict(zip(categorical, combo))} for combo in
                  itertools.product(*(values[a] for a in categorical))]
        combos = [p for p in combos if table.get(point_key(p)) is not None and point_key(p) not in tried]
        if not combos:
            return None
        point = min(combos, key=lambda p: (sum((a, point_key({"v": p[a]})) in failed for a in categorical),
                                           -view.hinted(p, categorical)))
        tried.add(point_key(point))
        if view.objective == "throughput" and ordered:
            found = _largest_feasible(view, table, point, ordered[0], values[ordered[0]])
        else:
            obs = view.value(table.get(point_key(point)))
            found = (point, obs) if obs is not None else None
        if found is not None:
            return found


def _neighbours(view: GroupView, point: dict, axes: list[str], values: dict) -> list[dict]:
    """One-axis moves from the point: every other value of each categorical
    axis (precision first), then one step along each ordered axis (for
    throughput only: latency grows along them); values that only failed so
    far come last."""
    moves = []
    for axis in (a for a in axes if a not in ORDERED_AXES):
        moves += [{**point, axis: v} for v in values[axis] if v != point[axis]]
    if view.objective == "throughput":
        for axis in (a for a in axes if a in ORDERED_AXES):
            i = values[axis].index(point[axis])
            moves += [{**point, axis: values[axis][j]} for j in (i - 1, i + 1) if 0 <= j < len(values[axis])]
    failed = _failed_precisions(view)
    categorical = [a for a in axes if a not in ORDERED_AXES]

    def hint(move: dict) -> float:  # a batch step is judged at its batch, another value at any batch
        along = any(move[a] != point[a] for a in axes if a in ORDERED_AXES)
        return view.hinted(move, axes if along else categorical)

    def worse_precision(move: dict) -> bool:
        return move.get("precision") in failed and point.get("precision") not in failed

    return sorted(moves, key=lambda p: (worse_precision(p), -hint(p)))


def quick(view: GroupView) -> list[int]:
    table = lookup(view.members)
    axes = axis_names(view.members)
    values = {a: axis_values(view.members, a) for a in axes}
    try:
        start = _start(view, table, axes, values)
        if start is None:
            return []
        point, best = start
        moved = True
        while moved:  # first improvement: move to the first better neighbour, look again from there
            moved = False
            for step in _neighbours(view, point, axes, values):
                obs = view.value(table.get(point_key(step)))
                if obs is not None and better(obs, best, view.objective):
                    point, best, moved = step, obs, True
                    break
    except Need as need:
        return [] if need.idx in view.pending else [need.idx]
    return []


def _penalty(view: GroupView) -> float:
    scores = [score(o, view.objective) for o in view.observations.values() if feasible(o, view.constraints)]
    if not scores:
        return -1e12
    return min(scores) - (max(scores) - min(scores)) - abs(min(scores)) - 1.0


def bayes_patience(size: int) -> int:
    return max(4, math.ceil(0.15 * size))


def _converged(view: GroupView) -> bool:
    """``patience`` builds in a row with no point improvement on the best before them."""
    seen = [view.observations[i] for i in view.order if i in view.observations]
    best, since = None, 0
    for obs in seen:
        if not feasible(obs, view.constraints):
            since += 1
        elif best is None or better(obs, best, view.objective):
            best, since = obs, 0
        else:
            since += 1
    return best is not None and since >= bayes_patience(len(view.members))


def _distributions(members: list[Candidate]):
    """TPE's view of the axes: ordered ones as an integer index (neighbours
    are alike, which TPE's Parzen estimator can use), the others categorical."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    out, values = {}, {}
    for axis in axis_names(members):
        values[axis] = axis_values(members, axis)
        out[axis] = (IntDistribution(0, len(values[axis]) - 1) if axis in ORDERED_AXES
                     else CategoricalDistribution(values[axis]))
    return out, values


def _params(axes_values: dict, values: dict) -> dict | None:
    """Candidate axes -> TPE parameters (None if a value is outside the space)."""
    params = {}
    for axis, choices in values.items():
        if axis not in axes_values or axes_values[axis] not in choices:
            return None
        params[axis] = choices.index(axes_values[axis]) if axis in ORDERED_AXES else axes_values[axis]
    return params


def _replay_history(study, view: GroupView, dists: dict, values: dict, penalty: float) -> None:
    """Earlier sweeps' results, then this search's in decision order, then
    the pruned (as the worst value): the same history gives the same study."""
    from optuna.trial import create_trial

    by_idx = {c.idx: c for c in view.members}

    def add(axes_values: dict, value: float) -> None:
        params = _params(axes_values, values)
        if params is not None:
            study.add_trial(create_trial(params=params, distributions=dists, value=value))

    for prior_axes, prior_score in view.priors:
        add(prior_axes, prior_score)
    for idx in view.order:
        obs = view.observations.get(idx)
        if obs is not None:
            add(by_idx[idx].axes, score(obs, view.objective) if feasible(obs, view.constraints) else penalty)
    for idx in view.pruned:
        add(by_idx[idx].axes, penalty)


def bayes(view: GroupView) -> list[int]:
    import warnings

    import optuna

    if view.pending:
        return []  # one trial at a time per group: TPE learns from each
    if view.budget_left <= 0:
        view.stop_reason = "budget spent"
        return []
    walk = quick(view)
    if walk:
        return walk
    if _converged(view):
        view.stop_reason = f"no better configuration in the last {bayes_patience(len(view.members))} builds"
        return []
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dists, values = _distributions(view.members)
    table = lookup(view.members)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(seed=view.seed, n_startup_trials=BAYES_STARTUP, multivariate=True)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    penalty = _penalty(view)

    _replay_history(study, view, dists, values, penalty)
    for _ in range(64):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            trial = study.ask(dists)
        axes_values = {a: values[a][v] if a in ORDERED_AXES else v for a, v in trial.params.items()}
        candidate = table.get(point_key(axes_values))
        if candidate is None or candidate.idx in view.pruned:
            study.tell(trial, penalty)
        elif candidate.idx in view.observations:
            obs = view.observations[candidate.idx]
            study.tell(trial, score(obs, view.objective) if feasible(obs, view.constraints) else penalty)
        else:
            return [candidate.idx]
    view.stop_reason = "TPE keeps proposing configurations already built"
    return []


STRATEGY_FUNCTIONS = {"brute": brute, "quick": quick, "bayes": bayes}
