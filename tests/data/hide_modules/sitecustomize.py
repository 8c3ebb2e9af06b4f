"""Put this directory first on PYTHONPATH and name modules in
FARM_TEST_HIDE (comma-separated): they import as if not installed, for the
tests of what a user without an optional extra sees."""

import os
import sys

_HIDDEN = {name for name in os.environ.get("FARM_TEST_HIDE", "").split(",") if name}


class _Hide:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in _HIDDEN:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _Hide())
