"""Problems found before any work: one ``Error:`` line, exit 1, nothing
written."""

from __future__ import annotations

import subprocess
import sys

TABLES = ("models", "sweeps", "jobs", "measurements", "artifacts", "devices")


def snapshot(home) -> dict:
    """Rows per table (a table not created yet holds none) and store files."""
    import sqlite3

    state = dict.fromkeys(TABLES, 0)
    if (home / "farm.db").exists():
        with sqlite3.connect(home / "farm.db") as connection:
            present = {r[0] for r in connection.execute("select name from sqlite_master where type='table'")}
            for table in present & set(TABLES):
                state[table] = connection.execute(f"select count(*) from {table}").fetchone()[0]
    store = home / "artifacts"
    state["store"] = sorted(str(p) for p in store.rglob("*")) if store.exists() else []
    return state


def farm(args, env, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "farm", *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_tensorrt_missing_stops_before_any_work(tmp_path, cli_env, farm_home, models_dir):
    # tensorrt-stubs (a bare tensorrt/__init__.pyi) installed for mypy must
    # not pass for TensorRT itself.
    before = snapshot(farm_home)
    result = farm(["run", "--model", str(models_dir / "det.onnx"), "--backend", "tensorrt"], cli_env, tmp_path)
    assert result.returncode == 1
    assert result.stderr == ("Error: backend 'tensorrt' needs the Python package tensorrt, "
                             "which is not installed here: pip install 'engine-farm[tensorrt]'\n")
    assert snapshot(farm_home) == before


def test_profile_outside_the_models_shapes_is_rejected_at_submit(rtx, tmp_path, cli_env, farm_home, det_model):
    before = snapshot(farm_home)
    result = farm(["sweep", "submit", "--model", str(det_model), "--backend", "tensorrt-rtx", "--device", "cpu",
                   "--profile", "p:x=1x1x64x64/1x1x64x64/1x1x96x96"], cli_env, tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: spec field 'profiles[0].inputs.x': dimension 1 is fixed to 3 in the "
                                    "model"), result.stderr
    assert result.stderr.count("\n") == 1
    assert snapshot(farm_home) == before


def test_unknown_rtx_target_is_rejected_at_submit(rtx, tmp_path, cli_env, farm_home, det_model):
    spec = tmp_path / "bad.yaml"
    spec.write_text(f"model: {det_model}\nbackends: [tensorrt-rtx]\ndevices: cpu\n"
                    "profiles: [{name: p, inputs: {x: {min: [1,3,32,32], opt: [1,3,32,32], max: [1,3,32,32]}}}]\n"
                    "build: {tensorrt-rtx: {compute_capabilities: ['9.0']}}\n")
    result = farm(["sweep", "submit", str(spec)], cli_env, tmp_path)
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("Error: spec field 'build.tensorrt-rtx.compute_capabilities[0]': '9.0' is not "
                                    "allowed"), result.stderr


def test_a_class_rtx_cannot_target_is_refused_at_submit_naming_what_it_can(rtx, tmp_path, cli_env, farm_home,
                                                                         det_model):
    """An H100 class (compute capability 9.0) would build on any worker and
    then wait 'awaiting devices' for ever: the capabilities object refuses it
    at submit, naming the capabilities TensorRT-RTX can target."""
    before = snapshot(farm_home)
    for search in ([], ["--search", "brute"]):
        result = farm(["sweep", "submit", "--model", str(det_model), "--backend", "tensorrt-rtx", "--device",
                       "gpu.nvidia-h100-80gb-hbm3", "--profile", "p:x=1x3x32x32/1x3x32x32/1x3x32x32", *search],
                      cli_env, tmp_path)
        assert result.returncode == 1
        assert result.stderr == (
            "Error: the sweep has no runnable job: tensorrt-rtx on gpu.nvidia-h100-80gb-hbm3 (tensorrt-rtx cannot "
            "target gpu.nvidia-h100-80gb-hbm3 (compute capability 9.0); it targets compute capabilities 7.5, 8.0, "
            "8.6, 8.9, 12.x)\n"), result.stderr
        assert snapshot(farm_home) == before
