"""Headless Chromium for the rendering tests (Debian package ``chromium``)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.skip("chromium is not installed (Debian package 'chromium': apt-get install -y chromium)")
    return path


def render(url: str, tmp: Path, name: str, budget_ms: int = 5000) -> tuple[str, Path]:
    """(DOM after load and ``budget_ms`` of virtual time, screenshot path);
    a fresh profile per call."""
    exe = chromium()
    common = FLAGS + ["--window-size=1300,2600", f"--virtual-time-budget={budget_ms}"]
    shot = tmp / f"{name}.png"
    subprocess.run([exe, *common, f"--user-data-dir={tmp / (name + '-shot')}", f"--screenshot={shot}", url],
                   check=True, capture_output=True, timeout=90)
    dom = subprocess.run([exe, *common, f"--user-data-dir={tmp / (name + '-dom')}", "--dump-dom", url],
                         check=True, capture_output=True, text=True, timeout=90).stdout
    return dom, shot
