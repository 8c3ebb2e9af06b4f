"""A backend whose build never returns (a hung compiler). Registered as
FARM_EXTRA_BACKENDS="sleepy=tests.integration.plugins.sleepy:SleepyConfig"."""

from __future__ import annotations

import time
from dataclasses import dataclass

from farm.backends import BackendConfig


@dataclass(frozen=True)
class SleepyConfig(BackendConfig):
    name = "sleepy"
    implementation = "tests.integration.plugins.sleepy:SleepyBackend"
    precisions = ("fp32",)
    device_kinds = ("cpu",)


class SleepyBackend:
    def __init__(self, config):
        self.config = config

    def version(self) -> str:
        return "0"

    def build(self, ctx):
        time.sleep(3600)

    def load(self, artifact, ctx):
        raise AssertionError("unreachable")
