"""``python -m workers``: the device-side entry points the CLI spawns.

  start --device SEL     one supervised worker process per selected device
  serve --uuid UUID      one worker process for one device (spawned by start)
  discover [--register]  print this host's devices as JSON
"""

from __future__ import annotations

import argparse
import json
import sys

from farm.errors import UserError
from farm.redact import install_log_masking, mask


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers")
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start")
    start.add_argument("--device", default="all")
    start.add_argument("--loglevel", default="INFO")
    serve = sub.add_parser("serve")
    serve.add_argument("--uuid", required=True)
    serve.add_argument("--loglevel", default="INFO")
    discover = sub.add_parser("discover")
    discover.add_argument("--register", action="store_true")
    args = parser.parse_args(argv)
    install_log_masking()  # every log line of the worker processes (Celery's included) is masked
    try:
        if args.command == "start":
            from workers.launcher import start as start_workers

            return start_workers(args.device, args.loglevel)
        if args.command == "serve":
            from workers.serve import serve as serve_device

            serve_device(args.uuid, args.loglevel)
            return 0
        from workers.discovery import discover as find
        from workers.registry import register

        devices = find()
        if args.register:
            for device in devices:
                register(device)
        print(json.dumps([d.to_json() for d in devices], indent=2))
        return 0
    except UserError as exc:
        print(f"Error: {mask(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
