"""Each optional dependency, missing: one `Error:` line naming the exact
`pip install 'engine-farm[extra]'`, exit 1, no traceback, no secret.
(pyarrow: tests/farm/reports/test_export.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
HIDE = REPO / "tests/data/hide_modules"


def farm_without(modules: str, args: list[str], tmp_path: Path, **env) -> subprocess.CompletedProcess:
    full = {**os.environ, "PYTHONPATH": f"{HIDE}{os.pathsep}{REPO}", "FARM_TEST_HIDE": modules,
            "FARM_HOME": str(tmp_path / "home"), **env}
    return subprocess.run([sys.executable, "-m", "farm", *args], env=full, cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("Error: ")
    return line


def test_psycopg(tmp_path):
    url = "postgresql+psycopg://farm:s3cret-pw@127.0.0.1:5432/farm"
    line = one_error_line(farm_without("psycopg", ["db", "upgrade"], tmp_path, FARM_DB_URL=url))
    assert line == ("Error: FARM_DB_URL postgresql+psycopg://farm:***@127.0.0.1:5432/farm needs psycopg, "
                    "which is not installed here: pip install 'engine-farm[postgres]'")


def test_boto3(tmp_path):
    line = one_error_line(farm_without("boto3,botocore", ["store", "check"], tmp_path,
                                       FARM_STORE_URL="s3://farm-bucket/engines"))
    assert line == ("Error: FARM_STORE_URL=s3://... needs boto3, which is not installed here: "
                    "pip install 'engine-farm[s3]'")


def test_flower(tmp_path):
    line = one_error_line(farm_without("flower", ["flower"], tmp_path))
    assert line == "Error: farm flower needs flower, which is not installed here: pip install 'engine-farm[deploy]'"


@pytest.mark.parametrize("backend,extra", [("torch", "torch"), ("tensorrt", "tensorrt")])
def test_backend_packages(backend, extra, tmp_path):
    from tests.onnx_models import make_cnn

    model = make_cnn(tmp_path / "m.onnx", dynamic_hw=False)
    line = one_error_line(farm_without(backend, ["run", "--model", str(model), "--backend", backend], tmp_path))
    assert line == (f"Error: backend {backend!r} needs the Python package {backend}, which is not installed "
                    f"here: pip install 'engine-farm[{extra}]'")


def test_cuda_python_names_its_extra(monkeypatch):
    from workers.timing.cuda_runtime import CudaError, runtime

    monkeypatch.setitem(sys.modules, "cuda", None)
    monkeypatch.setitem(sys.modules, "cuda.bindings", None)
    with pytest.raises(CudaError) as error:
        runtime()
    assert str(error.value) == ("GPU timing needs cuda-python, which is not installed here: "
                                "pip install 'engine-farm[cuda]'")
