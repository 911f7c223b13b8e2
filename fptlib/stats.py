"""Statistics a reader can trust: selection on validation, seeds aggregated, verdicts computed.

Three rules, one place:

* **Selection on validation.** A run's reported score is its test accuracy at the evaluation where
  its *validation* accuracy was best (ties: the earliest). The best *test* evaluation is never
  reported: that would be selecting on test.
* **Seeds.** A setting's score is the mean over its seeds with the sample standard deviation
  (``ddof=1``) as its spread and a Student-t 95% interval; fewer than ``MIN_SEEDS`` seeds give no
  verdict.
* **Clear differences.** Two settings differ clearly only when the gap between their means is
  larger than the sum of their standard deviations; a smaller gap is "no clear difference".

Everything takes plain results records (dicts, see ``fptlib.results``); nothing here trains.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Iterable, Mapping

MIN_SEEDS = 3
# two-sided 97.5% quantiles of Student's t for 1..30 degrees of freedom (above: the normal's 1.96)
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
         2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
         2.052, 2.048, 2.045, 2.042)
# ">" claims: holds / reversed / no clear difference; "~" claims: holds / does not hold
VERDICTS = ("holds", "reversed", "does not hold", "no clear difference", "at the trivial baseline", "not run here")
# a setting whose mean is at most this far above the task's trivial floor (chance, majority class,
# copying the visible bits) has not learned the task: a comparison between two such settings is
# about noise around the floor, not about the claim
FLOOR_MARGIN = 0.02


@dataclass(frozen=True)
class Selection:
    """The evaluation a run is judged by: chosen on ``select``, reported on ``report``."""

    step: int
    selected: float          # accuracy (fraction) on the selection split at that step
    reported: float          # accuracy (fraction) on the reported split at that step
    how: str                 # e.g. "test at the best-val evaluation (step 1200)"


def selected(record: Mapping, select: str = "val", report: str = "test") -> Selection:
    """Test accuracy at the best-validation evaluation of one record (never the best test)."""
    evals = [e for e in record.get("evals", []) if select in e and report in e]
    if not evals:
        raise ValueError(f"run {record.get('key')!r} has no evaluation with both {select!r} and {report!r}: "
                         f"train with eval_every > 0 on a task with a {select} split")
    best = max(evals, key=lambda e: (e[select]["accuracy"], -e["step"]))   # ties: the earliest step
    return Selection(best["step"], best[select]["accuracy"], best[report]["accuracy"],
                     f"{report} at the best-{select} evaluation (step {best['step']})")


def t975(df: int) -> float:
    return _T975[df - 1] if 1 <= df <= len(_T975) else 1.96


@dataclass(frozen=True)
class Summary:
    """Accuracies (fractions) of one setting over its seeds."""

    values: tuple[float, ...]
    seeds: tuple = ()

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values) if self.values else math.nan

    @property
    def std(self) -> float:
        """Sample standard deviation over seeds (0 for one seed, NaN for none)."""
        if self.n == 0:
            return math.nan
        return statistics.stdev(self.values) if self.n > 1 else 0.0

    @property
    def ci95(self) -> float:
        """Half-width of the Student-t 95% interval of the mean (NaN below two seeds)."""
        return t975(self.n - 1) * self.std / math.sqrt(self.n) if self.n > 1 else math.nan

    def text(self) -> str:
        if self.n == 0:
            return "not run"
        if self.n == 1:
            return f"{100 * self.mean:.1f}% (1 seed)"
        return f"{100 * self.mean:.1f} ± {100 * self.std:.1f}% ({self.n} seeds)"


def summarize(records: Iterable[Mapping], select: str = "val", report: str = "test") -> Summary:
    """One setting's seeds: each record's test accuracy at its best-validation evaluation."""
    records = sorted(records, key=lambda r: (r.get("seed") is None, r.get("seed") or 0))
    seeds = [r.get("seed") for r in records]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"the same seed appears twice among {[r.get('key') for r in records]}: "
                         f"a setting's runs must differ in seed only")
    return Summary(tuple(selected(r, select, report).reported for r in records), tuple(seeds))


def difference(a: Summary, b: Summary) -> str:
    """``"higher"``, ``"lower"`` (a against b), ``"no clear difference"`` or ``"too few seeds"``."""
    if min(a.n, b.n) < MIN_SEEDS:
        return "too few seeds"
    gap = a.mean - b.mean
    if abs(gap) <= a.std + b.std:
        return "no clear difference"
    return "higher" if gap > 0 else "lower"


@dataclass(frozen=True)
class Claim:
    """One claim of the paper about two settings: ``first`` beats ``second`` (``relation=">"``) or
    the two are about equal (``relation="~"``)."""

    text: str                # the paper's claim, in words
    first: str               # label of the first setting
    second: str              # label of the second setting
    relation: str = ">"
    paper: str = ""          # the paper's numbers behind the claim, labelled as the paper's

    def __post_init__(self):
        if self.relation not in (">", "~"):
            raise ValueError(f"relation must be '>' or '~', got {self.relation!r}")


@dataclass(frozen=True)
class Verdict:
    claim: Claim
    word: str                # one of VERDICTS
    sentence: str


def verdict(claim: Claim, first: Summary | None, second: Summary | None, *, where: str = "",
            floor: tuple[str, float] | None = None) -> Verdict:
    """The verdict on ``claim`` from the two settings' seeds, as a word and a sentence.

    ``where`` says what produced the numbers (backbone, data, steps), so the sentence never reads
    as a result on the paper's own setting when it is not. ``floor``: the task's best trivial
    baseline (name, accuracy); when both settings' means are within ``FLOOR_MARGIN`` of it (or
    below), neither learned the task and the verdict is "at the trivial baseline", not a comparison.
    """
    context = f" ({where})" if where else ""
    if first is None or second is None or first.n == 0 or second.n == 0:
        missing = [lbl for lbl, s in ((claim.first, first), (claim.second, second)) if s is None or s.n == 0]
        return Verdict(claim, "not run here", f"{claim.text}: not run here (no runs of {' and '.join(missing)}){context}.")
    numbers = f"{claim.first} {first.text()} vs {claim.second} {second.text()}"
    rel = difference(first, second)
    if rel == "too few seeds":
        return Verdict(claim, "not run here",
                       f"{claim.text}: no verdict, fewer than {MIN_SEEDS} seeds ({numbers}){context}.")
    gap = 100 * (first.mean - second.mean)
    spread = 100 * (first.std + second.std)
    detail = f"{numbers}; gap {gap:+.1f} points against a spread of {spread:.1f}{context}"
    if floor is not None and max(first.mean, second.mean) <= floor[1] + FLOOR_MARGIN:
        return Verdict(claim, "at the trivial baseline",
                       f"{claim.text}: no verdict here: both settings are within {100 * FLOOR_MARGIN:.0f} points "
                       f"of the trivial baseline ({floor[0]} {100 * floor[1]:.1f}%) or below it, so neither learned "
                       f"the task beyond it: {detail}.")
    if claim.relation == ">":
        word = {"higher": "holds", "lower": "reversed", "no clear difference": "no clear difference"}[rel]
    else:
        word = "holds" if rel == "no clear difference" else "does not hold"
    lead = {"holds": "holds here", "reversed": "reversed here", "does not hold": f"does not hold here ({claim.first} "
            f"clearly {rel})", "no clear difference": "no clear difference here"}[word]
    return Verdict(claim, word, f"{claim.text}: {lead}: {detail}.")
