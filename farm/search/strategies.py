"""Search strategies, as pure functions of what is known so far.

Each strategy looks at one group (device class x workload): its candidates,
the observations of those built, the pruned ones and those in flight, and
says which to build next. Nothing is kept between calls, so a search whose
coordinator died carries on from the database alone, to the same decisions.

- ``brute``: every configuration, one series (all axes but batch/streams) at
  a time in ascending batch order, so pruning still saves builds.
- ``quick``: ordered-axis hill climbing (as in Triton Model Analyzer): start
  at the smallest batch of the fastest expected precision, climb the batch
  (and streams) axis while the objective improves, try the other precisions
  and knob values at the best point, repeat until nothing changes. An axis
  stops when a step is worse, two steps in a row gain less than the noise
  (95 % intervals overlap), or a constraint is broken.
- ``bayes``: Optuna's TPE sampler over all axes (categorical), seeded with
  earlier results of the same model on the same device class; stops when
  the budget is spent or ``patience`` builds in a row bring nothing better.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

from farm.search.observe import Observation, better, feasible, score, significantly_better
from farm.search.space import ORDERED_AXES, Candidate, axis_names, axis_values, lookup, point_key

MAX_PASSES = 3
FLAT_STEPS = 2  # steps in a row inside the noise before an ordered axis stops
BAYES_STARTUP = 3  # random trials before TPE models the space


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
    constraints: dict
    objective: str
    budget_left: int  # builds this group may still start
    seed: int = 0
    priors: list[tuple[dict, float]] = field(default_factory=list)  # (axes, score) from earlier sweeps
    stop_reason: str | None = None

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


def _climb(view: GroupView, table, axis: str, values: list, point: dict, best: Observation) -> tuple[dict, Observation]:
    """Walk an ordered axis up from the point (down if up gains nothing),
    moving to every step that improves the point estimate. A step that is
    not better beyond the noise is a strike; FLAT_STEPS strikes in a row
    stop the axis (one noisy dip does not), as does a broken constraint."""
    start = values.index(point[axis])
    for direction in (1, -1):
        strikes, moved, i = 0, False, start
        while 0 <= i + direction < len(values):
            i += direction
            obs = view.value(table.get(point_key({**point, axis: values[i]})))
            if obs is None:
                break
            strikes = 0 if significantly_better(obs, best, view.objective) else strikes + 1
            if better(obs, best, view.objective):
                point, best, moved = {**point, axis: values[i]}, obs, True
            if strikes >= FLAT_STEPS:
                break
        if moved:
            break  # went up: no need to look down
    return point, best


def _try_values(view: GroupView, table, axis: str, values: list, point: dict, best: Observation):
    for value in values:
        if value == point[axis]:
            continue
        step = {**point, axis: value}
        obs = view.value(table.get(point_key(step)))
        if obs is not None and better(obs, best, view.objective):
            point, best = step, obs
    return point, best


def _start(view: GroupView, table, axes: list[str], values: dict) -> tuple[dict, Observation] | None:
    """The smallest batch of the fastest precision (first knob values) that
    meets the constraints; when a series is out (accuracy, latency at its
    smallest batch), the next combination of precision and knobs."""
    ordered = [a for a in axes if a in ORDERED_AXES]
    categorical = [a for a in axes if a not in ORDERED_AXES]
    base = {a: values[a][0] for a in ordered}
    for combo in itertools.product(*(values[a] for a in categorical)):
        point = {**base, **dict(zip(categorical, combo))}
        candidate = table.get(point_key(point))
        if candidate is None:
            continue
        obs = view.value(candidate)
        if obs is not None:
            return point, obs
    return None


def quick(view: GroupView) -> list[int]:
    table = lookup(view.members)
    axes = axis_names(view.members)
    values = {a: axis_values(view.members, a) for a in axes}
    try:
        start = _start(view, table, axes, values)
        if start is None:
            return []
        point, best = start
        for _ in range(MAX_PASSES):
            before = point_key(point)
            # Categorical axes first, at the current batch (cheap builds), then climb.
            for axis in sorted(axes, key=lambda a: a in ORDERED_AXES):
                if len(values[axis]) < 2:
                    continue
                mover = _climb if axis in ORDERED_AXES else _try_values
                point, best = mover(view, table, axis, values[axis], point, best)
            if point_key(point) == before:
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
