"""Issue 24 finding 8: every network call to the broker, the database and
the store has a bounded timeout. `farm sweep submit` and `resume` hung for
over 10 minutes on a broker endpoint that accepts connections and never
answers (`rediss://` pointed at plain Redis is one). Here a local server
accepts every connection and never sends a byte; each command must end
with one line, well within FARM_NETWORK_TIMEOUT_S' bound."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import pytest

TIMEOUT_S = "3"  # FARM_NETWORK_TIMEOUT_S for these commands
pytestmark = [pytest.mark.slow]


class SilentServer:
    """Accepts connections, reads what comes, answers nothing."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def silent():
    server = SilentServer()
    yield server
    server.close()


def _farm(args, env, cwd, limit_s: float = 100) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "farm", *args], env=env, cwd=cwd, capture_output=True,
                            text=True, timeout=limit_s)
    return result, time.monotonic() - started


def _env(tmp_path, **extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FARM_")}
    return {**env, "FARM_HOME": str(tmp_path / "home"), "FARM_NETWORK_TIMEOUT_S": TIMEOUT_S, **extra}


def _one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


@pytest.mark.parametrize("scheme", ["redis", "rediss"])
def test_submit_to_a_broker_that_never_answers_ends_with_one_line(tmp_path, tiny_cnn, silent, scheme):
    env = _env(tmp_path, FARM_BROKER_URL=f"{scheme}://127.0.0.1:{silent.port}/0")
    result, took = _farm(["sweep", "submit", "--model", str(tiny_cnn), "--device", "cpu", "--precision", "fp32",
                          "--batch", "1", "--profile", "p:images=1x3x16x16/1x3x16x16/1x3x16x16"], env, tmp_path)
    line = _one_error_line(result)
    assert "cannot reach the broker" in line, line
    assert took < 90


def test_resume_on_a_broker_that_never_answers_ends_with_one_line(tmp_path, tiny_cnn, silent):
    env = _env(tmp_path)
    submitted, _ = _farm(["sweep", "submit", "--model", str(tiny_cnn), "--device", "cpu", "--precision", "fp32",
                          "--batch", "1", "--profile", "p:images=1x3x16x16/1x3x16x16/1x3x16x16"], env, tmp_path)
    assert submitted.returncode == 0, submitted.stderr
    sweep = submitted.stdout.split()[0]
    result, took = _farm(["sweep", "resume", sweep], {**env, "FARM_BROKER_URL": f"redis://127.0.0.1:{silent.port}/0"},
                         tmp_path)
    assert "cannot reach the broker" in _one_error_line(result)
    assert took < 90


def test_a_database_that_never_answers_ends_with_one_line(tmp_path, silent):
    env = _env(tmp_path, FARM_DB_URL=f"postgresql+psycopg://postgres@127.0.0.1:{silent.port}/farm")
    result, took = _farm(["sweep", "list"], env, tmp_path)
    assert "cannot connect to the database" in _one_error_line(result)
    assert took < 90


def test_a_store_that_never_answers_ends_with_one_line(tmp_path, silent):
    env = _env(tmp_path, FARM_STORE_URL="s3://bucket/prefix", FARM_S3_ENDPOINT_URL=f"http://127.0.0.1:{silent.port}",
               AWS_ACCESS_KEY_ID="k", AWS_SECRET_ACCESS_KEY="s", AWS_DEFAULT_REGION="us-east-1")
    result, took = _farm(["store", "check"], env, tmp_path)
    assert "S3" in _one_error_line(result) or "store" in result.stderr
    assert took < 90
