"""Progress lines of ``farm run`` when stderr is not a terminal, and Ctrl-C
answering at once."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from farm.cli.progress import SweepProgress

RUNNING = [{"job_id": "j2", "backend": "onnxruntime", "precision": "fp32", "batch_size": 4, "profile": "p32",
            "worker": "farm-cpu-1@h1"}]


def _status(finished: int, total: int = 4) -> dict:
    return {"finished": finished, "total": total, "counts": {}}


def test_plain_progress_lines(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    stream = io.StringIO()
    with SweepProgress(stream) as progress:
        progress.update(_status(1), [])  # one reused at submission: not counted as speed
        for seconds, finished, running in ((10, 1, RUNNING), (20, 2, RUNNING), (30, 4, [])):
            now[0] = 100.0 + seconds
            progress.update(_status(finished), running)
    assert stream.getvalue().splitlines() == [
        "1/4 jobs finished, 0 running; elapsed 0:00:00, ETA -:--:--",
        "1/4 jobs finished, 1 running (onnxruntime fp32 b4 p32 on farm-cpu-1@h1); elapsed 0:00:10, ETA -:--:--",
        "2/4 jobs finished, 1 running (onnxruntime fp32 b4 p32 on farm-cpu-1@h1); elapsed 0:00:20, ETA 0:00:40",
        "4/4 jobs finished, 0 running; elapsed 0:00:30, ETA 0:00:00",
    ]


@pytest.mark.slow
def test_ctrl_c_answers_at_once(farm_home, models_dir, cli_env):
    args = [sys.executable, "-m", "farm", "run", "--model", str(models_dir / "det.onnx"), "--backend", "onnxruntime",
            "--precision", "fp32", "--batch", "1", "--batch", "2", "--profile", "p:images=1x3x32x32/2x3x32x32/2x3x32x32",
            "--warmup-ms", "10", "--duration-ms", "60000", "--iterations", "10"]
    # As a terminal starts it: a suite run in the background (a non-interactive shell's '&') inherits
    # SIGINT ignored, and Python then installs no KeyboardInterrupt handler.
    process = subprocess.Popen(args, env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.time() + 90
        while time.time() < deadline:  # wait until a job is being measured
            listing = subprocess.run([sys.executable, "-m", "farm", "sweep", "list", "--format", "json"],
                                     env=cli_env, capture_output=True, text=True)
            sweeps = json.loads(listing.stdout or "[]") if listing.returncode == 0 else []
            if sweeps and sweeps[0]["counts"].get("running"):
                break
            time.sleep(0.5)
        else:
            pytest.fail("no job started running")
        sent = time.monotonic()
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
    assert process.returncode == 1 and took < 8, (took, err)
    assert "interrupted: stopping the local workers" in err
    assert err.strip().splitlines()[-1].startswith("Error: interrupted; local workers stopped.")
    assert "farm sweep resume" in err and "Traceback" not in err


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_terminal_progress_bar(monkeypatch):
    monkeypatch.setenv("COLUMNS", "150")
    monkeypatch.setenv("NO_COLOR", "1")
    stream = _Tty()
    with SweepProgress(stream) as progress:
        progress.update(_status(0), [])
        progress.update(_status(2), RUNNING)
        progress.update(_status(4), [])
    text = stream.getvalue()
    assert "4/4 jobs finished" in text and "elapsed" in text and "ETA 0:00:00" in text
    assert "running: onnxruntime fp32 b4 p32 on farm-cpu-1@h1" in text
    assert "\x1b[3" not in text  # NO_COLOR: cursor movement only, no colours
