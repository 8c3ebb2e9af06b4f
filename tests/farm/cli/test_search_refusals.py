"""A search is planned as a sweep is (farm/planner.py): any spec refused
without ``search:`` is refused with it, with the same one line, and writes
nothing. Every bad-input case of a submitting command (``farm sweep
submit``, ``farm run``) runs again with ``--search`` (brute, which would
build the whole space, and quick), and a spec file also with the block
written in the spec."""

from __future__ import annotations

import pytest

from tests.farm.cli.bad_input_cases import ENV_CASES, SPEC_CASES
from tests.farm.cli.test_bad_input import (assert_one_clean_error, materialize, run_in_process,  # noqa: F401
                                           seeded, snapshot)

SUBMITTING = ("run", "sweep")


def _submitting(args: list[str]) -> bool:
    return args[:1] == ["run"] or args[:2] == ["sweep", "submit"]


CASES = {**{k: (v[0], v[1], v[2] if len(v) > 2 else {}) for k, v in SPEC_CASES.items() if _submitting(v[0])},
         **{f"env: {k}": (v[1], v[2], v[0]) for k, v in ENV_CASES.items() if _submitting(v[1])}}
# Cases whose file is not a spec mapping or whose flags click refuses are
# refused before any spec exists; they are in CASES all the same.


def with_search(args: list[str], strategy: str) -> list[str]:
    return [*args, "--search", strategy]


def in_spec_block(args: list[str]) -> list[str] | None:
    """The case with ``search:`` written into its spec file, when it has one."""
    if not any(a.startswith("@spec:") for a in args):
        return None
    return [a + "\nsearch: {strategy: brute}\n" if a.startswith("@spec:") else a for a in args]


def test_every_submitting_case_is_here():
    assert len(CASES) >= 150
    assert "too many jobs" in CASES and "input limit lowered" in CASES and "inner dim 2^31" in CASES


@pytest.mark.parametrize("strategy", ["brute", "quick"])
@pytest.mark.parametrize("name", list(CASES))
def test_refused_without_search_is_refused_with_it(name, strategy, seeded):
    cwd, env, home, job = seeded
    args, expected, extra = CASES[name]
    before = snapshot(cwd, home)
    code, _, stderr = run_in_process(materialize(with_search(args, strategy), cwd, job["sweep_id"]),
                                     {"FARM_HOME": str(home), **extra}, cwd)
    assert_one_clean_error(code, stderr, expected)
    assert snapshot(cwd, home) == before


@pytest.mark.parametrize("name", [n for n, (args, _, _) in CASES.items() if in_spec_block(args)])
def test_refused_with_search_in_the_spec(name, seeded):
    cwd, env, home, job = seeded
    args, expected, extra = CASES[name]
    before = snapshot(cwd, home)
    code, _, stderr = run_in_process(materialize(in_spec_block(args), cwd, job["sweep_id"]),
                                     {"FARM_HOME": str(home), **extra}, cwd)
    assert_one_clean_error(code, stderr, expected)
    assert snapshot(cwd, home) == before
