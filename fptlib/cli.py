"""Command line: ``python -m fptlib COMMAND``.

Each command lives next to the code it drives; a module contributes its commands through a
``register(subparsers)`` function that adds parsers and sets ``func`` (called with the parsed
arguments, returning an exit code or None).
"""
from __future__ import annotations

import argparse
import importlib
import shlex
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
    for command in sub.choices.values():
        command.formatter_class = DefaultsHelpFormatter
    return parser


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default, unless the help already says it (``default: ...``
    in words, for a default that depends on the task, the profile or the machine)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        shown = " ".join(map(str, action.default)) if isinstance(action.default, (list, tuple)) else "%(default)s"
        return f"{text} (default: {shown})"


def positive_int(text: str) -> int:
    """argparse type: a positive integer (a count such as --steps 0 is an error, not ignored)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer; give a positive integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer (1 or more)")
    return value


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
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
    except KeyboardInterrupt as err:        # Ctrl-C: where it stopped and how to go on, no traceback
        print(f"\n{interrupted_message(err, argv)}", file=sys.stderr)
        return 130
    finally:
        _leave_process_group()
    return int(code or 0)


def interrupted_message(err: KeyboardInterrupt, argv: list[str]) -> str:
    """What a Ctrl-C stopped; the training loop's TrainingInterrupted says its step and checkpoint."""
    step, checkpoint = getattr(err, "step", None), getattr(err, "checkpoint", None)
    command = f"python -m fptlib {shlex.join(argv)}"
    if step is None:
        return "interrupted"
    if checkpoint is None:
        return (f"interrupted at step {step}; this run kept no checkpoint, so it starts afresh when rerun "
                f"(train --checkpoint-dir DIR makes it resumable): {command}")
    return f"interrupted at step {step}; resume with: {command} (checkpoint {checkpoint})"


def _leave_process_group() -> None:
    """Under torchrun, a training command joined a process group: leave it cleanly."""
    if "torch.distributed" in sys.modules:
        from fptlib.train.distributed import cleanup
        cleanup()
