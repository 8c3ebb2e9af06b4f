"""The README's multi-host sequence, line by line, against the real
PostgreSQL, Redis and SeaweedFS of the test run: the exports name exactly
the settings the farm reads (the test gives them this run's values), the
extras it installs exist, and every farm command runs as written."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.integration import farmdb
from tests.integration.conftest import FAST, TINY_MEASURE, wait_for

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]


def readme_lines() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Multi-host farm", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]


def test_the_readme_sequence_runs(redis_server, pg_url, s3_server, tiny_model, tmp_path, monkeypatch):
    import yaml

    from farm.db.session import dispose_engines

    lines = readme_lines()
    bucket = f"farm-readme-{os.getpid()}"
    values = {"FARM_DB_URL": pg_url, "FARM_BROKER_URL": redis_server.url,
              "FARM_STORE_URL": f"s3://{bucket}/farm", **s3_server.env()}
    monkeypatch.setenv("FARM_DB_URL", pg_url)  # this process reads the job table
    dispose_engines()
    env = {**os.environ, **FAST, **values, "FARM_HOME": str(tmp_path / "home"), "PYTHONPATH": str(REPO)}
    env.pop("FARM_WORKER_INSTANCE", None)
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(
        {"name": "readme", "model": str(tiny_model), "backends": ["onnxruntime"], "precisions": ["fp32"],
         "batch_sizes": [1, 2], "devices": "cpu", "measure": TINY_MEASURE}))
    extras = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    exported, worker, sweep_id, ran = set(), None, None, []

    def farm(argv: list[str]) -> subprocess.CompletedProcess:
        result = subprocess.run([sys.executable, "-m", "farm", *argv[1:]], env=env, cwd=tmp_path,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, (argv, result.stderr)
        assert "Traceback" not in result.stderr
        return result

    try:
        for line in lines:
            argv = shlex.split(line)
            if argv[0] == "pip":
                named = re.findall(r"engine-farm\[([^\]]+)\]", line)
                assert named and all(set(group.split(",")) <= extras for group in named), line
            elif argv[0] == "export":
                exported |= {word.split("=")[0] for word in argv[1:]}
            elif argv[:3] == ["farm", "worker", "start"]:
                worker = subprocess.Popen([sys.executable, "-m", "farm", *argv[1:]], env=env, cwd=tmp_path,
                                          stdout=open(tmp_path / "worker.log", "ab"),
                                          stderr=subprocess.STDOUT, start_new_session=True)
                wait_for(lambda: farmdb.live_devices(), 90, what="the README's worker")
            elif argv[:3] == ["farm", "sweep", "submit"]:
                sweep_id = farm(argv).stdout.split()[0]
            else:
                assert argv[0] == "farm", line
                farm([word.replace("<id>", sweep_id or "<id>") for word in argv])
            ran.append(argv[:3])
        # The exports are the settings this run needed (AWS_* for SeaweedFS's keys;
        # the test's Redis has no TLS, so no CA).
        assert exported == set(values) | {"FARM_BROKER_CA"}
        assert ["farm", "sweep", "status"] in ran and ["farm", "store", "create-bucket"] in ran
        assert farmdb.finished(sweep_id) and set(farmdb.statuses(sweep_id)) == {"done"}
    finally:
        if worker and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=60) == 0
