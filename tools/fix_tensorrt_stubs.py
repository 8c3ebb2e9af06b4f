"""Make the installed ``tensorrt-stubs`` readable by mypy.

tensorrt-stubs 10.x ships ``tensorrt/__init__.pyi`` + ``tensorrt_bindings/
tensorrt.pyi`` as plain packages (no ``-stubs`` suffix, no py.typed) and a
few plugin methods with a parameter named ``in`` (a keyword), which stops
mypy with syntax errors (as does one signature with a required parameter
after defaulted ones). This copies the stubs to ``typings/`` (the
``mypy_path`` in pyproject.toml), renaming those parameters. Run it once
after installing the stubs: ``python tools/fix_tensorrt_stubs.py``.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
from pathlib import Path

PACKAGES = ("tensorrt", "tensorrt_bindings")
KEYWORD_PARAM = re.compile(r"([(,]\s*)in(\s*:)")
DEFAULT = re.compile(r"\s*=\s*[^,)]+")


def _fix_line(line: str) -> str:
    """Rename keyword parameters; where a required parameter follows
    defaulted ones (one binding does that), drop those defaults."""
    line = KEYWORD_PARAM.sub(r"\1in_\2", line)
    if not line.lstrip().startswith("def "):
        return line
    try:
        ast.parse(line.strip() + " ...")
    except SyntaxError:
        head, _, rest = line.partition("(")
        params, _, tail = rest.rpartition(")")
        line = f"{head}({DEFAULT.sub('', params)}){tail}"
    return line


def stub_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    for location in (spec.submodule_search_locations or []) if spec else []:
        if (Path(location) / "__init__.pyi").exists():
            return Path(location)
    return None


def fix(target: Path) -> list[Path]:
    written = []
    for package in PACKAGES:
        source = stub_dir(package)
        if source is None:
            raise SystemExit(f"{package} stubs not found; pip install --no-deps tensorrt-stubs")
        for stub in sorted(source.glob("*.pyi")):
            out = target / package / stub.name
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text("\n".join(_fix_line(line) for line in stub.read_text().splitlines()) + "\n")
            written.append(out)
    return written


if __name__ == "__main__":
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "typings"
    for path in fix(root):
        print(path)
