"""Statistics a reader can trust: selection on validation, seeds aggregated, verdicts computed.

The rules, one place:

* **Selection on validation.** A run's reported score is its test accuracy at the evaluation where
  its *validation* accuracy was best (ties: the earliest). The best *test* evaluation is never
  reported: that would be selecting on test.
* **Seeds.** A setting's score is the mean over its seeds with the sample standard deviation
  (``ddof=1``) as its spread; fewer than ``MIN_SEEDS`` seeds give no verdict. A side's spread never
  counts below the sampling error of its test set, ``sqrt(p(1-p)/n)`` for ``n`` test examples
  (``Summary.spread``; ``p`` shrunk towards 1/2 by one success and one failure, so that 100% on
  500 examples is not an exact number).
* **Differences.** The 95% Welch t interval of the difference of the two means decides: wholly
  above zero, the first side is higher; wholly below, lower; else no clear difference.
* **Equality.** A "matches" (``~``) claim names its margin (``Claim.margin``, e.g. 2 points): it is
  "equal within 2 points" only when the whole interval lies inside that margin; an interval that
  excludes zero says which side is higher; anything else is "not shown equal".
* **Baselines.** A side whose mean is at or below a trivial baseline (chance, the majority class,
  copying the visible bits) or a fitted one (a pixel logistic regression), within ``FLOOR_MARGIN``,
  is named in the sentence; both sides there give no verdict ("both at or below a baseline").
* **Collapse.** A side whose seeds all give the same accuracy, at or below a trivial baseline, has
  collapsed to a constant output (its seeds predict one class): "a side collapsed to a constant
  output", no comparison.

Verdict words say which way the numbers go, never whether FPT "wins": "FPT higher", "FPT lower",
"equal within 2 points", "not shown equal", "no clear difference", "both at or below a baseline",
"a side collapsed to a constant output", "not run here" (``KINDS``: the same, without the labels).
Everything takes plain results records (dicts, see ``fptlib.results``); nothing here trains.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

MIN_SEEDS = 3
# two-sided 97.5% quantiles of Student's t for 1..30 degrees of freedom (above: the normal's 1.96)
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
         2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
         2.052, 2.048, 2.045, 2.042)
# what a verdict found, without the settings' labels (``Verdict.kind``); its ``word`` names the side
KINDS = ("higher", "lower", "equal", "not shown equal", "no clear difference", "both at or below a baseline",
         "collapsed", "not run here")
COLLAPSED = "a side collapsed to a constant output"
AT_BASELINE = "both at or below a baseline"
# a side whose mean is at most this far above a baseline (trivial or fitted) has not beaten it
FLOOR_MARGIN = 0.02
# the margin of a "matches" claim unless the claim names its own
EQUAL_MARGIN = 0.02
# seeds whose accuracies differ by no more than this give "one constant output" (with the baseline check)
CONSTANT_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Selection:
    """The evaluation a run is judged by: chosen on ``select``, reported on ``report``."""

    step: int
    selected: float          # accuracy (fraction) on the selection split at that step
    reported: float          # accuracy (fraction) on the reported split at that step
    how: str                 # e.g. "test at the best-val evaluation (step 1200)"
    examples: int | None = None   # examples in the reported split (its sampling error), when recorded


def selected(record: Mapping, select: str = "val", report: str = "test") -> Selection:
    """Test accuracy at the best-validation evaluation of one record (never the best test)."""
    evals = [e for e in record.get("evals", []) if select in e and report in e]
    if not evals:
        raise ValueError(f"run {record.get('key')!r} has no evaluation with both {select!r} and {report!r}: "
                         f"train with eval_every > 0 on a task with a {select} split")
    best = max(evals, key=lambda e: (e[select]["accuracy"], -e["step"]))   # ties: the earliest step
    return Selection(best["step"], best[select]["accuracy"], best[report]["accuracy"],
                     f"{report} at the best-{select} evaluation (step {best['step']})",
                     best[report].get("examples"))


def t975(df: float) -> float:
    """Student's t 97.5% quantile; a fractional df (Welch) rounds down, the conservative side."""
    df = int(math.floor(df))
    return _T975[df - 1] if 1 <= df <= len(_T975) else (12.706 if df < 1 else 1.96)


@dataclass(frozen=True)
class Summary:
    """Accuracies (fractions) of one setting over its seeds; ``n_test``: examples in the test set
    each was scored on (None when not recorded: no sampling-error floor then)."""

    values: tuple[float, ...]
    seeds: tuple = ()
    n_test: int | None = None

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
    def sampling_error(self) -> float:
        """The binomial standard error of one accuracy on ``n_test`` examples (0 when unknown)."""
        if not self.n_test or self.n == 0:
            return 0.0
        p = (self.mean * self.n_test + 1) / (self.n_test + 2)
        return math.sqrt(p * (1 - p) / self.n_test)

    @property
    def spread(self) -> float:
        """The spread a comparison uses: the seeds' std, never below the test set's sampling error."""
        return max(self.std, self.sampling_error)

    @property
    def constant(self) -> bool:
        """Every seed gave the same accuracy (two seeds or more)."""
        return self.n > 1 and max(self.values) - min(self.values) <= CONSTANT_TOLERANCE

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
    chosen = [selected(r, select, report) for r in records]
    sizes = [c.examples for c in chosen]
    n_test = min(sizes) if sizes and all(isinstance(x, int) and x > 0 for x in sizes) else None
    return Summary(tuple(c.reported for c in chosen), tuple(seeds), n_test)


@dataclass(frozen=True)
class Interval:
    """The 95% Welch t interval of ``mean(a) - mean(b)`` (fractions)."""

    gap: float
    low: float
    high: float
    df: float

    def text(self) -> str:
        return (f"difference {100 * self.gap:+.1f} points, 95% interval [{100 * self.low:+.1f}, "
                f"{100 * self.high:+.1f}]")


def interval(a: Summary, b: Summary) -> Interval:
    """Welch's t interval of the difference of the means, each side's spread at least its test
    set's sampling error (``Summary.spread``)."""
    va, vb = a.spread ** 2 / a.n, b.spread ** 2 / b.n
    se = math.sqrt(va + vb)
    gap = a.mean - b.mean
    if se == 0:
        return Interval(gap, gap, gap, math.inf)
    df = (va + vb) ** 2 / ((va ** 2 / (a.n - 1) if va else 0) + (vb ** 2 / (b.n - 1) if vb else 0))
    half = t975(df) * se
    return Interval(gap, gap - half, gap + half, df)


def difference(a: Summary, b: Summary) -> str:
    """``"higher"``, ``"lower"`` (a against b: the 95% Welch interval of the difference excludes
    zero), ``"no clear difference"`` or ``"too few seeds"``."""
    if min(a.n, b.n) < MIN_SEEDS:
        return "too few seeds"
    iv = interval(a, b)
    return "higher" if iv.low > 0 else "lower" if iv.high < 0 else "no clear difference"


@dataclass(frozen=True)
class Claim:
    """One claim of the paper about two settings: ``first`` beats ``second`` (``relation=">"``) or
    the two are about equal (``relation="~"``, within ``margin``, a fraction: 0.02 is 2 points)."""

    text: str                # the paper's claim, in words
    first: str               # label of the first setting
    second: str              # label of the second setting
    relation: str = ">"
    paper: str = ""          # the paper's numbers behind the claim, labelled as the paper's
    margin: float = EQUAL_MARGIN

    def __post_init__(self):
        if self.relation not in (">", "~"):
            raise ValueError(f"relation must be '>' or '~', got {self.relation!r}")
        if not 0 < self.margin < 1:
            raise ValueError(f"margin is a fraction of accuracy (0.02 for 2 points), got {self.margin!r}")


@dataclass(frozen=True)
class Verdict:
    claim: Claim
    word: str                # what the numbers show, e.g. "FPT higher" (``kind`` with the side's label)
    sentence: str
    kind: str = "not run here"       # one of KINDS

    @property
    def agrees(self) -> bool | None:
        """Whether the numbers go the paper's way (None: no comparison was made)."""
        if self.kind in ("higher", "lower", "equal", "not shown equal", "no clear difference"):
            return self.kind == ("higher" if self.claim.relation == ">" else "equal")
        return None


def at_or_below(s: Summary, baselines: Sequence[tuple]) -> tuple | None:
    """The highest baseline ``s`` does not beat by more than ``FLOOR_MARGIN`` (None: it beats them all)."""
    under = [b for b in baselines if b[1] is not None and s.mean <= b[1] + FLOOR_MARGIN]
    return max(under, key=lambda b: b[1]) if under else None


def _fitted(b: tuple) -> bool:
    return len(b) > 2 and bool(b[2])


def collapsed(s: Summary, baselines: Sequence[tuple]) -> bool:
    """Every seed gave the same accuracy, at or below a trivial (not fitted) baseline: one constant
    prediction, whatever the input."""
    return s.constant and at_or_below(s, [b for b in baselines if not _fitted(b)]) is not None


def verdict(claim: Claim, first: Summary | None, second: Summary | None, *, where: str = "",
            baselines: Sequence[tuple] = ()) -> Verdict:
    """The verdict on ``claim`` from the two settings' seeds, as a word and a sentence.

    ``where`` says what produced the numbers (backbone, data, steps), so the sentence never reads
    as a result on the paper's own setting when it is not. ``baselines``: the task's baselines as
    ``(name, accuracy)`` or ``(name, accuracy, fitted)`` (fitted: a model fitted to the data, like a
    pixel logistic regression; else trivial: chance, majority class, copying). See the module doc
    for the rule.
    """
    context = f" ({where})" if where else ""
    if first is None or second is None or first.n == 0 or second.n == 0:
        missing = [lbl for lbl, s in ((claim.first, first), (claim.second, second)) if s is None or s.n == 0]
        return Verdict(claim, "not run here", f"{claim.text}: not run here (no runs of {' and '.join(missing)}){context}.")
    numbers = f"{claim.first} {first.text()} vs {claim.second} {second.text()}"
    if min(first.n, second.n) < MIN_SEEDS:
        return Verdict(claim, "not run here",
                       f"{claim.text}: no verdict, fewer than {MIN_SEEDS} seeds ({numbers}){context}.")
    iv = interval(first, second)
    detail = f"{numbers}; {iv.text()}{context}"
    sides = ((claim.first, first), (claim.second, second))
    flat = [label for label, s in sides if collapsed(s, baselines)]
    if flat:
        return Verdict(claim, COLLAPSED, f"{claim.text}: no comparison: {' and '.join(flat)} gave the same accuracy "
                       f"on every seed, at or below a trivial baseline: a constant output: {detail}.", "collapsed")
    under = [(label, s, b) for label, s in sides if (b := at_or_below(s, baselines))]
    named = "; ".join(f"{label} {100 * s.mean:.1f}% is at or below the {'fitted' if _fitted(b) else 'trivial'} "
                      f"baseline ({b[0]} {100 * b[1]:.1f}%)" for label, s, b in under)
    if len(under) == 2:
        return Verdict(claim, AT_BASELINE, f"{claim.text}: no verdict: both sides are at or below a baseline "
                       f"(within {100 * FLOOR_MARGIN:.0f} points), so neither beat it: {named}; {detail}.",
                       "both at or below a baseline")
    if claim.relation == "~" and -claim.margin <= iv.low and iv.high <= claim.margin:
        kind = "equal"
    else:
        kind = difference(first, second)
        if claim.relation == "~" and kind == "no clear difference":
            kind = "not shown equal"
    word = {"higher": f"{claim.first} higher", "lower": f"{claim.first} lower",
            "equal": f"equal within {100 * claim.margin:g} points"}.get(kind, kind)
    way = "as the paper" if kind == ("higher" if claim.relation == ">" else "equal") else "not as the paper"
    margin = f" (margin {100 * claim.margin:g} points)" if claim.relation == "~" else ""
    note = f" Note: {named}." if under else ""
    return Verdict(claim, word, f"{claim.text}: {word}{margin}, {way}: {detail}.{note}", kind)
