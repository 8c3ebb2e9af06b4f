"""The spec's ``search:`` block and ``--search``: unknown strategies and
impossible budgets are one 'Error:' line, exit 1, nothing written."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys

import pytest

from farm.errors import SpecError
from farm.search.config import SearchConfig, parse_search
from farm.spec import parse_spec

PROFILES = """profiles:
  - {name: a, inputs: {images: {min: [1, 3, 32, 32], opt: [2, 3, 32, 32], max: [2, 3, 32, 32]}}}
  - {name: b, inputs: {images: {min: [1, 3, 48, 48], opt: [2, 3, 48, 48], max: [2, 3, 48, 48]}}}
"""


def farm(args, env, cwd):
    return subprocess.run([sys.executable, "-m", "farm", *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def farm_in_process(args, env, cwd) -> tuple[int, str]:
    """``farm.cli.main`` (the console script's function) under CliRunner isolation: seconds, not minutes."""
    from click.testing import CliRunner

    from farm.cli import main
    from farm.db.session import dispose_engines

    overrides = {name: None for name in os.environ if name.startswith("FARM_")}
    overrides.update({k: v for k, v in env.items() if k.startswith("FARM_")})
    previous = os.getcwd()
    os.chdir(cwd)
    try:
        with CliRunner().isolation(env=overrides) as (_, err, _):
            try:
                main(args)
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            sys.stderr.flush()
            stderr = err.getvalue().decode()
    finally:
        os.chdir(previous)
        dispose_engines()
    return code, stderr


@pytest.fixture
def home(tmp_path, tiny_cnn):
    (tmp_path / "models").mkdir()
    shutil.copy(tiny_cnn, tmp_path / "models" / "det.onnx")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FARM_")}
    env["FARM_HOME"] = str(tmp_path / "home")
    return tmp_path, env


def write(tmp_path, search: str, profiles: str = PROFILES) -> str:
    path = tmp_path / "spec.yaml"
    path.write_text("model: models/det.onnx\nprecisions: [fp32]\nbatch_sizes: [1, 2]\ndevices: cpu\n"
                    + profiles + search)
    return str(path)


def sweeps(home_dir) -> int:
    db = home_dir / "farm.db"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as connection:
        return connection.execute("select count(*) from sweeps").fetchone()[0]


CASES = {
    "unknown strategy in the spec": ("search: {strategy: annealing}\n",
                                     "Error: spec field 'search.strategy': 'annealing' is not allowed "
                                     "(allowed: brute, quick, bayes)"),
    "zero budget": ("search: {strategy: quick, budget: 0}\n",
                    "Error: spec field 'search.budget': budget must be at least 1 build (got 0)"),
    "share over 100 %": ("search: {strategy: quick, budget: '150%'}\n",
                         "Error: spec field 'search.budget': '150%' must be a share in (0 %, 100 %]"),
    "brute with less than the space": ("search: {strategy: brute, budget: 3}\n",
                                       "Error: spec field 'search.budget': strategy 'brute' builds every "
                                       "configuration (4); a budget of 3 cannot cover it (use quick or bayes)"),
    "fewer builds than groups": ("search: {strategy: bayes, budget: 1}\n",
                                 "Error: spec field 'search.budget': 1 allows 1 builds, but the space has 2 "
                                 "device class/workload groups and each needs at least one build"),
    "unknown search key": ("search: {strategy: quick, patience: 3}\n",
                           "Error: unknown key 'patience' in spec field 'search' (allowed: strategy, budget, "
                           "objective, constraints, axes, screen, finals, retry_failed_precisions, alpha, seed)"),
    "axis of another backend": ("search: {strategy: quick, axes: {tensorrt.builder_optimization_level: [3, 5]}}\n",
                                "Error: spec field 'search.axes.tensorrt.builder_optimization_level': 'tensorrt' "
                                "is not one of the sweep's backends (onnxruntime)"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_search_blocks(home, case):
    cwd, env = home
    body, expected = CASES[case]
    code, stderr = farm_in_process(["sweep", "submit", write(cwd, body)], env, cwd)
    assert (code, stderr.strip()) == (1, expected)
    assert "Traceback" not in stderr and sweeps(cwd / "home") == 0


def test_unknown_strategy_flag(home):
    cwd, env = home
    result = farm(["sweep", "submit", "--model", "models/det.onnx", "--search", "random"], env, cwd)
    assert (result.returncode, result.stderr.strip()) == (
        1, "Error: --search 'random' is not a strategy (allowed: brute, quick, bayes)")


def test_search_flag_overrides_the_spec_and_budget_shares_resolve():
    spec = parse_spec({"model": "m.onnx", "search": {"strategy": "quick", "budget": "20%",
                                                      "constraints": {"max_latency_ms": 5}}})
    assert spec.search.strategy == "quick" and spec.search.budget_for(54) == 10
    assert SearchConfig.from_json(spec.search.to_json()) == spec.search
    assert parse_search({}).strategy == "brute" and parse_search({}).budget_for(7) == 7
    with pytest.raises(SpecError, match="write BACKEND.KNOB"):
        parse_search({"axes": {"threads": [1, 2]}})
