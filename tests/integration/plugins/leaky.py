"""A backend whose build leaves processes behind: a child it never waits
for and an orphan (double fork), the way a tool that spawns helpers might.
It writes their pids to $FARM_TEST_LEAK_FILE, then refuses the job.
Registered as FARM_EXTRA_BACKENDS="leaky=tests.integration.plugins.leaky:LeakyConfig"."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

from farm.backends import BackendConfig
from farm.errors import BackendUnsupported


@dataclass(frozen=True)
class LeakyConfig(BackendConfig):
    name = "leaky"
    implementation = "tests.integration.plugins.leaky:LeakyBackend"
    precisions = ("fp32",)
    device_kinds = ("cpu",)


class LeakyBackend:
    def __init__(self, config):
        self.config = config

    def version(self) -> str:
        return "0"

    def build(self, ctx):
        child = subprocess.Popen(["sleep", "300"])
        orphan = subprocess.run(["sh", "-c", "sleep 300 >/dev/null 2>&1 & echo $!"], capture_output=True,
                                text=True).stdout.strip()
        with open(os.environ["FARM_TEST_LEAK_FILE"], "a") as handle:
            handle.write(f"{child.pid}\n{orphan}\n")
        raise BackendUnsupported("leaky leaves processes behind and builds nothing")

    def load(self, artifact, ctx):
        raise AssertionError("unreachable")
