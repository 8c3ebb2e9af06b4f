"""TensorRT-RTX builds need no GPU, so a job for a GPU device class is built
by any worker with the backend (here a CPU worker, over the embedded
broker) and then waits, engine stored and status ``built``, for a worker of
its GPU class; meanwhile ``farm fetch`` hands the engine out by job id or
by target, checked against that target (or refused on this CPU host)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import shlex
import subprocess
import sys
import time

import yaml

from farm.store import open_store

TARGET = "gpu.nvidia-geforce-rtx-4090"


def farm(args, env, cwd, code=0) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "farm", *args], env=env, cwd=cwd, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == code, result.stderr
    return result


def run_hint(stderr: str, after: str, env, cwd) -> subprocess.CompletedProcess:
    """Run the command a refusal suggests (it starts with 'farm ' and ends the line or a ';')."""
    command = stderr.split(after, 1)[1].split(";")[0].strip()
    argv = shlex.split(command)
    assert argv[0] == "farm", command
    return farm(argv[1:], env, cwd)


def built(home) -> dict | None:
    with sqlite3.connect(home / "farm.db") as connection:
        (build,) = connection.execute("select build from jobs").fetchone()
    return json.loads(build) if build else None


def attempts(home) -> int:
    with sqlite3.connect(home / "farm.db") as connection:
        return connection.execute("select attempts from jobs").fetchone()[0]


def test_cpu_worker_builds_for_a_gpu_class_and_hands_over(rtx, det_model, tmp_path, cli_env, farm_home):
    spec = {"name": "rtx-routing", "model": str(det_model), "backends": ["tensorrt-rtx"], "precisions": ["fp32"],
            "batch_sizes": [1], "devices": [TARGET],
            "profiles": [{"name": "p", "inputs": {"x": {"min": [1, 3, 32, 32], "opt": [1, 3, 64, 64],
                                                        "max": [1, 3, 64, 64]}}}]}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    sweep_id = farm(["sweep", "submit", "spec.yaml"], cli_env, tmp_path).stdout.strip()
    worker = subprocess.Popen([sys.executable, "-m", "farm", "worker", "start", "--device", "cpu"], env=cli_env,
                              cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and built(farm_home) is None:
            time.sleep(0.5)
        status = farm(["sweep", "status", sweep_id], cli_env, tmp_path).stdout
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=40)
    assert f"waiting: no live worker serves {TARGET} with backend tensorrt-rtx" in status
    assert "awaiting devices" in status
    build = built(farm_home)
    (row,) = json.loads(farm(["report", sweep_id, "--format", "json"], cli_env, tmp_path).stdout)
    assert row["status"] == "built" and row["artifact_sha256"] == build["artifact_sha256"]
    assert build["worker"].startswith("farm-cpu") and build["build_s"] > 0
    assert attempts(farm_home) == 0  # the build attempt does not count against the measurement's
    assert build["info"]["runs_on"]["compute_capabilities"] == ["8.0", "8.6", "8.9", "12.0", "12.1"]
    assert open_store().exists(build["artifact_sha256"])
    engine = open_store().get_bytes(build["artifact_sha256"])

    # By job id: this host is a CPU (its device row, written by the worker above, says so): refused, with
    # the command that fetches it for what it was built for (and that command runs).
    out = tmp_path / "rtx.engine"
    refused = farm(["fetch", "--job", row["job_id"], "-o", str(out)], cli_env, tmp_path, code=1)
    assert refused.stderr.startswith(f"Error: refusing to fetch job {row['job_id']}: the engine was built with "
                                     "tensorrt-rtx 1.7.") and "is not a GPU" in refused.stderr
    assert "--target sm_80" in refused.stderr and not out.exists()
    run_hint(refused.stderr, "to fetch it for the GPU it was built for: ", cli_env, tmp_path)
    assert out.read_bytes() == engine
    out.unlink()
    # Never measured: its accuracy is unchecked, so every path refuses it without --allow-unchecked.
    for named in (["--target", "sm_89"], ["--device", TARGET]):
        refused = farm(["fetch", "--job", row["job_id"], *named, "-o", str(out)], cli_env, tmp_path, code=1)
        assert "was never measured (status built): its accuracy is unchecked" in refused.stderr, refused.stderr
        assert not out.exists()
        wrote = run_hint(refused.stderr, "to fetch it anyway: ", cli_env, tmp_path)
        assert wrote.stdout.startswith(f"wrote {out} (sha256 {build['artifact_sha256']}): job {row['job_id']} (built)")
        assert out.read_bytes() == engine
        out.unlink()
    # A bound on a figure never measured is not met, --allow-unchecked or not.
    refused = farm(["fetch", str(det_model), "--target", "sm_89", "--max-rel-error", "0.01", "--allow-unchecked",
                    "-o", str(out)], cli_env, tmp_path, code=1)
    assert "was never measured (status built), so --max-rel-error cannot be met" in refused.stderr, refused.stderr
    # A target the engine was not built for: refused, saying what it was built for.
    refused = farm(["fetch", "--job", row["job_id"], "--target", "7.5", "--allow-unchecked", "-o", str(out)],
                   cli_env, tmp_path, code=1)
    assert "for sm_80, sm_86, sm_89, sm_120, sm_121; target sm_75 has tensorrt-rtx (not installed) on sm_75" \
        in refused.stderr
    # By target: the newest engine of the model built for it that meets the constraints.
    refused = farm(["fetch", str(det_model), "--target", "sm_120", "-o", str(out)], cli_env, tmp_path, code=1)
    assert refused.stderr.startswith("Error: no engine built for sm_120 meets the constraints: the newest, job ")
    run_hint(refused.stderr, "to fetch it anyway: ", cli_env, tmp_path)
    assert out.read_bytes() == engine
    missing = farm(["fetch", str(det_model), "--target", "sm_75", "-o", str(out)], cli_env, tmp_path, code=1)
    assert missing.stderr.startswith("Error: no engine built for sm_75")
