"""Command line: ``python -m fptlib COMMAND``.

Each command lives next to the code it drives; a module contributes its commands through a
``register(subparsers)`` function that adds parsers and sets ``func`` (called with the parsed
arguments, returning an exit code or None).
"""
from __future__ import annotations

import argparse
import importlib
import sys

# modules that contribute commands, in the order they appear in --help
COMMAND_MODULES = (
    "fptlib.backbones.cli",   # backbones, describe
    "fptlib.tasks.cli",       # tasks
    "fptlib.commands",        # demo, train, reproduce, sweep, results
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fptlib",
        description="Frozen Pretrained Transformers: train, reproduce and inspect.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        code = args.func(args)
    except (ValueError, TypeError, FileNotFoundError, RuntimeError) as err:
        # user-facing errors carry their own explanation; no traceback for those
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        _leave_process_group()
    return int(code or 0)


def _leave_process_group() -> None:
    """Under torchrun, a training command joined a process group: leave it cleanly."""
    if "torch.distributed" in sys.modules:
        from fptlib.train.distributed import cleanup
        cleanup()
