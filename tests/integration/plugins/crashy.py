"""A backend whose build kills its worker process every time (os._exit), the
way a segfaulting compiler would: nothing is raised, nothing is recorded,
the process is simply gone. Registered as
FARM_EXTRA_BACKENDS="crashy=tests.integration.plugins.crashy:CrashyConfig"."""

from __future__ import annotations

import os
from dataclasses import dataclass

from farm.backends import BackendConfig


@dataclass(frozen=True)
class CrashyConfig(BackendConfig):
    name = "crashy"
    implementation = "tests.integration.plugins.crashy:CrashyBackend"
    precisions = ("fp32",)
    device_kinds = ("cpu",)


def _backend_class():
    from workers.backends.base import Backend

    class CrashyBackend(Backend):
        def version(self) -> str:
            return "0"

        def build(self, ctx):
            os._exit(3)

        def load(self, artifact, ctx):
            raise AssertionError("unreachable")

    return CrashyBackend


def __getattr__(name):
    # The coordinator imports this module for CrashyConfig only; the worker
    # side (workers.backends.base) is imported when a worker asks for it.
    if name == "CrashyBackend":
        return _backend_class()
    raise AttributeError(name)
