"""The import layers are a rule checked in CI (tests/contracts/import_layers.py):
``farm`` never imports ``workers``; core modules never import ``farm.cli``;
reports never import the search orchestrator or the service; search sits
below the service and above the planner; no import circles beyond a short
named allow-list. The checker is shown to fail on planted violations."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.contracts.import_layers import ALLOWED_CYCLES, check, cycles, edges

ROOT = Path(__file__).resolve().parents[2]


def test_the_tree_keeps_its_import_layers():
    assert check(ROOT) == []


def test_every_allowed_circle_still_exists():
    """An allow-list entry that no longer matches a circle is removed, so the list stays short and true."""
    found = set(cycles(edges(ROOT)))
    assert set(ALLOWED_CYCLES) <= found
    assert len(ALLOWED_CYCLES) <= 5


@pytest.fixture()
def copy(tmp_path):
    for package in ("farm", "workers", "dashboards"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def plant(root: Path, module: str, line: str, lazy: bool = False) -> None:
    path = root / module
    text = path.read_text()
    if lazy:  # inside a function: a lazy import is a dependency too
        text += f"\n\ndef _planted():\n    {line}\n"
    else:
        text = f"{line}\n" + text
    path.write_text(text)


@pytest.mark.parametrize("module, line, lazy, says", [
    ("farm/store/s3.py", "from farm.cli import main", True,
     "farm.store.s3 imports farm.cli (core modules never import farm.cli"),
    ("farm/reports/html.py", "from farm.search.driver import advance", True,
     "farm.reports.html imports farm.search.driver (reports never import the search orchestrator)"),
    ("farm/reports/best.py", "import farm.service", False,
     "farm.reports.best imports farm.service (reports never import the service)"),
    ("farm/routing.py", "import workers.pipeline", True,
     "farm.routing imports workers.pipeline (farm/ never imports workers/"),
    ("farm/planner.py", "from farm.service import submit", True,
     "farm.planner imports farm.service (the planner sits below the service and the search)"),
    ("workers/executor.py", "from farm.search.driver import advance", True,
     "workers.executor imports farm.search.driver (workers reach a search only through its hook"),
])
def test_a_planted_upward_import_fails_the_check(copy, module, line, lazy, says):
    assert check(copy) == []
    plant(copy, module, line, lazy)
    found = check(copy)
    assert any(says in v for v in found), found


def test_a_planted_circle_fails_the_check(copy):
    # candidates.py imports best.py; best.py importing candidates back closes a circle.
    plant(copy, "farm/reports/best.py", "from farm.reports.candidates import model_candidates", lazy=True)
    found = check(copy)
    assert "import circle: farm.reports.best <-> farm.reports.candidates" in found, found
