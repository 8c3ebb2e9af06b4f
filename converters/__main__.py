"""``python -m converters --format F --source S --out OUT.onnx --record R.json
[--data D.npz] [--shapes JSON]``: convert, check parity, write the record.

The record is JSON: ``{"ok": true, converter, versions, opset, inputs,
parity, convert_s}`` or ``{"ok": false, "kind": "conversion" | "missing",
"error": one line}``. Anything else (a bug) exits non-zero with its
traceback on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from converters import CONVERTERS, ConversionFailed, MissingFramework, versions

def opset_of(path: Path) -> int | None:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)


def run(fmt: str, source: Path, out: Path, data: Path | None, shapes: dict | None,
        parity_only: bool = False) -> dict:
    import importlib

    converter = CONVERTERS[fmt]
    start = time.perf_counter()
    module = importlib.import_module(converter.module)
    if parity_only:  # an existing conversion, checked on other inputs (the spec's data)
        try:
            return {"ok": True, "parity": getattr(module, converter.parity)(source, out, data, shapes)}
        except MissingFramework as exc:
            return {"ok": False, "kind": "missing", "error": str(exc)}
        except ConversionFailed as exc:
            return {"ok": False, "kind": "conversion", "error": str(exc)}
    try:
        details = getattr(module, converter.function)(source, out, data, shapes)
    except MissingFramework as exc:
        return {"ok": False, "kind": "missing", "error": str(exc)}
    except ConversionFailed as exc:
        return {"ok": False, "kind": "conversion", "error": str(exc)}
    return {"ok": True, "format": fmt, "converter": converter.name, "versions": versions(converter.versioned),
            "opset": opset_of(out), "convert_s": round(time.perf_counter() - start, 3), **details}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m converters")
    parser.add_argument("--format", required=True, choices=sorted(CONVERTERS))
    parser.add_argument("--source", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--record", required=True, type=Path)
    parser.add_argument("--data", type=Path)
    parser.add_argument("--shapes", help="JSON: input -> shape for the parity inputs")
    parser.add_argument("--parity-only", action="store_true", help="check --out (already converted) only")
    args = parser.parse_args(argv)
    record = run(args.format, args.source, args.out, args.data, json.loads(args.shapes) if args.shapes else None,
                 args.parity_only)
    args.record.write_text(json.dumps(record, default=_plain))
    return 0


def _plain(value):
    if hasattr(value, "item"):
        return value.item()
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
