from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
# kind -> (what the farm is given, inside the built folder; its format)
SOURCES = {
    "torch-cnn": ("model.pt2", "torch.export"),
    "torch-encoder": ("model.pt2", "torch.export"),
    "torch-qr": ("model.pt2", "torch.export"),
    "keras-cnn": ("model.keras", "keras"),
    "keras-encoder": ("model.keras", "keras"),
    "keras-hashing": ("model.keras", "keras"),
    "tf-saved-model": ("saved_model", "tf-saved-model"),
    "tf-frozen": ("model.pb", "tf-frozen-graph"),
    "tf-qr": ("saved_model", "tf-saved-model"),
}


def env_for(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FARM_")}
    env["FARM_HOME"] = str(home)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return env


class Built:
    """A source model the test code built (tests/converters/build_models.py),
    with the inputs it is checked on and its framework's outputs for them."""

    def __init__(self, kind: str, folder: Path):
        self.kind, self.folder = kind, folder
        name, self.format = SOURCES[kind]
        self.path = folder / name

    def inputs(self) -> dict[str, np.ndarray]:
        with np.load(self.folder / "inputs.npz") as archive:
            return {k: archive[k] for k in archive.files}

    def expected(self) -> list[np.ndarray]:
        with np.load(self.folder / "expected.npz") as archive:
            return [archive[f"out{i}"] for i in range(len(archive.files))]


@pytest.fixture(scope="session")
def shared_conversions(tmp_path_factory) -> Path:
    """One FARM_HOME/converted for the session: each source is converted once
    for all the tests (a conversion is a subprocess importing torch or
    TensorFlow), as a host converts it once for all its sweeps."""
    return tmp_path_factory.mktemp("converted")


def home_with(shared: Path, home: Path) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    (home / "converted").symlink_to(shared, target_is_directory=True)
    return home


@pytest.fixture
def conversion_home(tmp_path, monkeypatch, shared_conversions):
    """farm_home (tests/conftest.py) whose conversions are the session's."""
    from farm.db.session import dispose_engines

    home = home_with(shared_conversions, tmp_path / "farm-home")
    monkeypatch.setenv("FARM_HOME", str(home))
    for name in ("FARM_DB_URL", "FARM_BROKER_URL", "FARM_STORE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    dispose_engines()
    yield home
    dispose_engines()


@pytest.fixture(scope="session")
def build_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("sources")
    built: dict[str, Built] = {}

    def build(kind: str) -> Built:
        if kind not in built:
            folder = root / kind
            result = subprocess.run([sys.executable, "-m", "tests.converters.build_models", kind, str(folder)],
                                    cwd=REPO, env=env_for(root / "home"), capture_output=True, text=True, timeout=600)
            assert result.returncode == 0, result.stderr[-3000:]
            built[kind] = Built(kind, folder)
        return built[kind]

    return build
