"""``python -m fptlib tasks [--json]``: every task and the data it would use here, now."""
from __future__ import annotations

import json

from fptlib.tasks.registry import available


def cmd_tasks(args) -> int:
    status = available(data_dir=args.data_dir)
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    width = max(map(len, status))
    for name, entry in status.items():
        mark = "ready  " if entry["ready"] else "MISSING"
        print(f"{name:<{width}}  {mark}  {entry['source']}")
        if entry["how"]:
            print(f"{'':<{width}}           -> {entry['how']}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "tasks", help="list the tasks and the data source each would use on this machine now")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--data-dir", default=None,
                        help="data folder (default: $FPT_DATA_DIR, else <repo>/data)")
    parser.set_defaults(func=cmd_tasks)
