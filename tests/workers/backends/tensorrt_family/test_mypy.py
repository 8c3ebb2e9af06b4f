"""The TensorRT-family code type-checks against tensorrt-stubs (the only
way to check the full-TensorRT paths, like the timing cache, on machines
without TensorRT). CI installs the stubs: pip install --no-deps tensorrt-stubs."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[4]
TARGETS = ["workers/backends/tensorrt_family", "workers/backends/tensorrt", "workers/backends/tensorrt_rtx",
           "workers/backends/torch_tensorrt",
           "workers/precision/prepared.py", "workers/precision/float16.py", "workers/artifact_index.py",
           "workers/timing/cuda.py", "workers/timing/layers.py"]


@pytest.mark.slow
def test_mypy_passes_against_tensorrt_stubs(tmp_path):
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed")
    sys.path.insert(0, str(REPO / "tools"))
    try:
        import fix_tensorrt_stubs
    finally:
        sys.path.pop(0)
    if fix_tensorrt_stubs.stub_dir("tensorrt_bindings") is None:
        pytest.skip("tensorrt-stubs is not installed (pip install --no-deps tensorrt-stubs)")
    fix_tensorrt_stubs.fix(tmp_path / "typings")
    env = {**os.environ, "MYPYPATH": str(tmp_path / "typings")}
    result = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache"), *TARGETS],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
