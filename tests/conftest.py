from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

from tests.onnx_models import make_cnn

REPO = Path(__file__).resolve().parent.parent
# The suite runs on a 2-core machine at load 3-8: every CPU figure there is contended, and
# flagged host_contended it could not win farm best. Tests about other things turn the flag
# off (their farm subprocesses inherit it); tests/workers/test_contention.py turns it on.
os.environ.setdefault("ENGINE_FARM_CONTENDED_WAIT_RATIO", "inf")
FAST_MEASURE = {"warmup_ms": 0, "duration_ms": 30, "iterations": 5, "max_remeasure": 0}


def _gpu_present() -> bool:
    try:
        import pynvml

        pynvml.nvmlInit()
        count = pynvml.nvmlDeviceGetCount()
        pynvml.nvmlShutdown()
        return count > 0
    except Exception:
        return False


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def pytest_collection_modifyitems(config, items):
    # Files marked slow first (stable: otherwise in collection order): spread over the xdist
    # processes (README: -n 3 --dist loadfile) they start early and the quick files fill in
    # behind them, instead of one slow file left running alone at the end.
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
    skips = {
        "gpu": (_gpu_present, "needs an NVIDIA GPU"),
        "redis": (lambda: _port_open(6379), "needs Redis on 127.0.0.1:6379"),
        "postgres": (lambda: _port_open(5432), "needs PostgreSQL on 127.0.0.1:5432"),
    }
    cache: dict[str, bool] = {}
    for item in items:
        for marker, (probe, reason) in skips.items():
            if marker in item.keywords:
                if marker not in cache:
                    cache[marker] = probe()
                if not cache[marker]:
                    item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def farm_home(tmp_path, monkeypatch):
    """A fresh FARM_HOME with the embedded defaults; engines disposed after."""
    from farm.db.session import dispose_engines

    home = tmp_path / "farm-home"
    monkeypatch.setenv("FARM_HOME", str(home))
    for name in ("FARM_DB_URL", "FARM_BROKER_URL", "FARM_STORE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    dispose_engines()
    yield home
    dispose_engines()


@pytest.fixture(scope="session")
def tiny_cnn(tmp_path_factory) -> Path:
    return make_cnn(tmp_path_factory.mktemp("models") / "det.onnx")


@pytest.fixture
def models_dir(tmp_path, tiny_cnn) -> Path:
    target = tmp_path / "models"
    target.mkdir(exist_ok=True)
    shutil.copy(tiny_cnn, target / "det.onnx")
    return target


@pytest.fixture
def cli_env(farm_home):
    env = dict(os.environ)
    env["FARM_HOME"] = str(farm_home)
    return env
