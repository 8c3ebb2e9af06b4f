"""Issue 24 finding 10: every worker setting is validated when the worker
starts, in one line, before any worker process runs.

A bad heartbeat value gave a restart loop that never exited; a bad
reconcile value silently turned off the recovery of dead workers' jobs;
bad restart-delay or shutdown-grace values crashed the launcher and left an
orphaned worker that kept taking jobs; a store-wait typo failed every job."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

BAD = [
    ("FARM_HEARTBEAT_S", "abc", "FARM_HEARTBEAT_S='abc' is not a number"),
    ("FARM_STALE_S", "0", "FARM_STALE_S must be a positive finite number, got 0"),
    ("FARM_RECONCILE_S", "-5", "FARM_RECONCILE_S must be a positive finite number, got -5"),
    ("FARM_MAX_ATTEMPTS", "abc", "FARM_MAX_ATTEMPTS='abc' is not a number"),
    ("FARM_MAX_ATTEMPTS", "2.5", "FARM_MAX_ATTEMPTS must be a whole number of attempts, got 2.5"),
    ("FARM_RESTART_DELAY_S", "soon", "FARM_RESTART_DELAY_S='soon' is not a number"),
    ("FARM_SHUTDOWN_GRACE_S", "nan", "FARM_SHUTDOWN_GRACE_S must be a finite number, 0 or more, got nan"),
    ("FARM_STORE_WAIT_S", "1O", "FARM_STORE_WAIT_S='1O' is not a number"),
    ("FARM_DB_RETRY_S", "inf", "FARM_DB_RETRY_S must be a positive finite number, got inf"),
    ("FARM_BUILD_TIMEOUT_S", "-1", "FARM_BUILD_TIMEOUT_S must be a positive finite number, got -1"),
    ("FARM_HEARTBEAT_S", "60", "FARM_HEARTBEAT_S (60) must be below FARM_STALE_S (45): a live worker would be "
                               "presumed dead between two of its heartbeats"),
]


@pytest.mark.slow
def test_every_bad_worker_setting_is_one_line_at_start_and_no_worker_runs(tmp_path):
    base = {k: v for k, v in os.environ.items() if not k.startswith("FARM_")}
    started = []
    for n, (name, value, _) in enumerate(BAD):
        env = {**base, "FARM_HOME": str(tmp_path / f"home-{n}"), "FARM_LOCK_DIR": str(tmp_path / f"locks-{n}"),
               name: value}
        started.append(subprocess.Popen([sys.executable, "-m", "farm", "worker", "start", "--device", "cpu"],
                                        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True, start_new_session=True))
    for process, (name, value, expected) in zip(started, BAD):
        out, err = process.communicate(timeout=120)  # a restart loop would never return
        assert (process.returncode, out, err) == (1, "", f"Error: {expected}\n"), (name, value)
        assert not (tmp_path / f"home-{started.index(process)}" / "farm.db").exists()  # nothing touched


def test_good_settings_pass_the_check(monkeypatch):
    from farm.config import check_worker_settings

    for name, value in {"FARM_HEARTBEAT_S": "0.3", "FARM_STALE_S": "2", "FARM_RESTART_DELAY_S": "0",
                        "FARM_SHUTDOWN_GRACE_S": "0", "FARM_STORE_WAIT_S": "0", "FARM_MAX_ATTEMPTS": "5"}.items():
        monkeypatch.setenv(name, value)
    check_worker_settings()
