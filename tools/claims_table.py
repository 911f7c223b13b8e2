#!/usr/bin/env python
"""The README's "What holds up" table: the output of ``python -m fptlib results --claims --markdown``
on the committed records (one short row per claim; what produced each setting's numbers, once per
setting, in the notes under it), then One Fits All's and Tan et al.'s claims on the time-series run
set (``report.timeseries_claims``), copied between two markers so that the README never states a
finding by hand.

    .venv/bin/python tools/claims_table.py            # check: exit 1 when the README block is stale
    .venv/bin/python tools/claims_table.py --write    # rewrite the block from the live command output
"""
from __future__ import annotations

import argparse
import contextlib
import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fptlib.cli import main as fptlib_main  # noqa: E402
from fptlib import experiments  # noqa: E402
from fptlib.files import committed_evidence_dir  # noqa: E402
from fptlib.report import evidence_profile, timeseries_claims  # noqa: E402

BEGIN, END = "<!-- claims:begin -->", "<!-- claims:end -->"
PROFILE = evidence_profile()      # the profile whose records are committed
BACKBONE = experiments.EVIDENCE_BACKBONE      # the committed evidence's backbone


def command(profile: str = PROFILE) -> list[str]:
    return ["results", "--claims", "--profile", profile, "--backbone", BACKBONE, "--markdown",
            "--results-dir", str(ROOT / "results")]


def live(profile: str = PROFILE) -> str:
    """The block as the command prints it now."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = fptlib_main(command(profile))
    if rc:
        raise SystemExit(f"`python -m fptlib {' '.join(command(profile)[:-2])}` failed (exit {rc})")
    shown = " ".join(command(profile)[:-2])
    beyond = timeseries_claims(committed_evidence_dir()).markdown()     # One Fits All's and Tan et al.'s
    return (f"{BEGIN}\nProduced by `python -m fptlib {shown}` on the committed records, and for the claims "
            f"beyond the paper by `fptlib.report.timeseries_claims()` (notebook 13) "
            f"(regenerate: `python tools/claims_table.py --write`):\n\n{out.getvalue().strip()}\n\n"
            f"{beyond.strip()}\n{END}")


def current(readme: Path = ROOT / "README.md") -> str:
    text = readme.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        raise ValueError(f"{readme} has no {BEGIN} ... {END} block: add the two markers where the table goes")
    return text[text.index(BEGIN): text.index(END) + len(END)]


def write(readme: Path = ROOT / "README.md") -> bool:
    old = current(readme)
    new = live()
    if new != old:
        readme.write_text(readme.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
    return new != old


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="rewrite the README block from the command's output")
    args = ap.parse_args(argv)
    if args.write:
        print("README.md updated" if write() else "README.md already up to date")
        return 0
    if current() != live():
        print("README.md's claims table differs from `python -m fptlib results --claims`: "
              "run tools/claims_table.py --write")
        return 1
    print("README.md's claims table matches the command's output")
    return 0


if __name__ == "__main__":
    sys.exit(main())
