"""The paper's claims, with verdicts computed from the records (``stats.verdict``): ``claims`` for
the paper's, ``timeseries_claims`` for One Fits All's and Tan et al.'s on the time-series run set."""
from __future__ import annotations

import os
import dataclasses
from typing import Any, Mapping

from fptlib import experiments, files, paper, results, stats, sweeps, tasks
from fptlib.tasks import baselines as trivial
from fptlib.report.paper_tables import QUICK_NOTE, Cell, cells, ran_with, task_baselines
from fptlib.report.render import Table


def _claim_verdict(c: paper.PaperClaim, profile: str, by_key: Mapping[str, Mapping],
                   backbone: str | None, cache: dict) -> stats.Verdict:
    first, second = c.labels()
    claim = stats.Claim(c.text, first, second, c.relation, paper=c.numbers(), margin=c.margin)
    if profile == "quick":
        return stats.Verdict(claim, "not run here", f"{c.text}: not run here: {QUICK_NOTE}.")
    source = c.run_set or c.table          # a run set: the verdict on its runs, the paper's numbers from c.table
    if source not in cache:
        cache[source] = cells(source, profile, by_key, backbone)
    table_cells = cache[source]
    a, b = table_cells.get(c.first), table_cells.get(c.second)
    if a is None or b is None:
        what = f"run set {source}" if c.run_set else f"{source} table"
        return stats.Verdict(claim, "not run here", f"{c.text}: not run here: the {profile} profile's "
                             f"{what} has no {'setting ' + str(c.first if a is None else c.second)}.")
    other = sorted({(r.get("backbone") or {}).get("family") or "?" for cell in (a, b) for r in cell.records}
                   - {c.backbone}) if c.backbone else []
    if other:
        return stats.Verdict(claim, "not run here", f"{c.text}: not run here: the claim is about {c.backbone} "
                             f"(its model sizes); the {profile} profile ran {', '.join(other)} "
                             f"({', '.join(ran_with([a, b]))}), whose rows compare depth, not size.")
    partial = [(label, lrs) for label, cell in ((first, a), (second, b)) if cell.records and (lrs := cell.unswept())]
    if partial:
        return stats.Verdict(claim, "not run here", f"{c.text}: not run here: the learning-rate sweep is incomplete ("
                             + "; ".join(f"{label}: lr {', '.join(f'{lr:g}' for lr in lrs)} not run yet"
                                         for label, lrs in partial) + ").")
    where = "; ".join(f"{label}: {cell.produced()}" + (f" [{cell.ran_on()}]" if cell.stand_in else "")
                      + ("" if cell.how == Cell.how else f" [{cell.how}]")
                      for label, cell in ((first, a), (second, b)) if cell.records)
    v = stats.verdict(claim, a.summary, b.summary, where=where, baselines=_baselines(a) if a.records else ())
    edges = [f"{label} {cell.lr:g} of {', '.join(f'{lr:g}' for lr in cell.grid())}"
             for label, cell in ((first, a), (second, b)) if cell.at_grid_edge()]
    if not edges:
        return v
    return dataclasses.replace(v, word=f"{v.word} (lr at the grid's edge)", sentence=(
        f"{v.sentence} Learning rate chosen at the edge of its grid ({'; '.join(edges)}): a rate outside "
        f"the grid may do better, so this comparison is not settled by the sweep."))


def _baselines(cell: Cell) -> tuple[tuple[str, float, bool], ...]:
    """Every baseline of a cell's task as (name, accuracy, fitted): trivial (chance, majority class,
    copying) and fitted (pixel logistic regression, ``trivial.FITTED``)."""
    cfg = cell.configs[0]
    return tuple((name, acc, name in trivial.FITTED)
                 for name, acc, _ in task_baselines(cfg.task, cfg.task_options, cfg.eval_limit) if acc is not None)


def evidence_profile() -> str:
    """The profile whose records the course commits and its claims table shows (README, notebook
    00): ``evidence`` (``quick`` on a checkout that predates that profile)."""
    return "evidence" if "evidence" in experiments.PROFILES else "quick"


def claims(profile: str | None = None, directory: str | os.PathLike | None = None,
           records: list[dict] | None = None, backbone: str | None = None, notebook: str | None = None) -> Table:
    """Every claim of the paper the course tests (``paper.CLAIMS``): the paper's numbers, and the
    verdict computed from the stored records of ``profile`` (``stats.verdict``: e.g. "FPT higher",
    "FPT lower", "equal within 2 points", "not shown equal", "no clear difference", "both at or below
    a baseline", "a side collapsed to a constant output", "not run here") with what produced them. A quick profile
    never gives a verdict: its runs check that the code runs. ``notebook`` (e.g. "08_pretraining"):
    only the claims that notebook shows, and the notes describe only their settings."""
    profile = experiments.check_profile(profile or experiments.choose_profile()[0])
    recs = records if records is not None else results.load(directory)
    by_key = {r["key"]: r for r in recs}
    cache: dict = {}
    rows, settings = [], _Settings()
    for c in (c for c in paper.CLAIMS if notebook is None or c.notebook == notebook):
        v = _claim_verdict(c, profile, by_key, backbone, cache)
        pair = [cache.get(c.run_set or c.table, {}).get(sel) for sel in (c.first, c.second)]
        ours = " vs ".join(settings.ours(cell) for cell in pair) if all(pair) and profile != "quick" else v.word
        rows.append({"claim": c.text, "the paper's numbers": c.numbers(), CLAIM_OURS: ours, "verdict": v.word,
                     "why (computed from the records)": v.sentence.removeprefix(f"{c.text}: "),
                     "see": f"notebooks/{c.notebook}.ipynb" if c.notebook else "-"})
    notes = [f"Verdicts are computed by `fptlib.stats.verdict` from the {profile}-profile records: a claim "
             f"needs at least {stats.MIN_SEEDS} seeds per setting, each run scored by its test accuracy at its "
             f"best-validation evaluation. The 95% Welch t interval of the difference of the means decides "
             f"(higher, lower, or no clear difference when it spans zero), each side's spread at least its test "
             f"set's binomial sampling error; a 'matches' claim is equal only when the whole interval lies within "
             f"its margin, else not shown equal. A side at or below a baseline (chance, majority class of the "
             f"training split, copying, or a fitted pixel logistic regression) is named, both there give no "
             f"verdict; a side with the same accuracy on every seed at a trivial baseline collapsed to a constant "
             f"output. (lr at the grid's edge): the learning rate validation chose is the smallest or largest "
             f"of its grid.",
             "The paper's numbers: " + "; ".join(sorted({paper.get(c.table).source for c in paper.CLAIMS})) + "."]
    if profile == "quick":
        notes.insert(0, f"**{QUICK_NOTE}: no verdicts.** Run the evidence profile for verdicts.")
    return Table(rows, columns=CLAIM_COLUMNS, notes=[*settings.notes(), *notes],
                 title=f"What holds up: the paper's claims on this course's records (profile `{profile}`)")


CLAIM_OURS = "ours: mean ± sd % (seeds) [setting]"
CLAIM_COLUMNS = ("claim", "the paper's numbers", CLAIM_OURS, "verdict", "see")   # `wide`: every column


class _Settings:
    """The settings a claims table compares, numbered once each: a row gives a setting's numbers and
    its number; the notes say once per setting what produced it, and once per task its data."""

    def __init__(self):
        self.produced: dict[tuple, tuple[int, dict[str, None]]] = {}     # (what, task) -> (number, its labels)
        self.data: dict[str, None] = {}

    def ours(self, cell: Cell) -> str:
        if not cell.records:
            return "not run"
        produced = cell.produced(data=False) + ("" if cell.how == Cell.how else f" ({cell.how})")
        title = paper.TASK_TITLES.get(cell.column)
        label = f"{cell.row}, {title}" if title else f"{cell.row} / {cell.column}"
        ref, labels = self.produced.setdefault((produced, cell.task), (len(self.produced) + 1, {}))
        labels[label] = None            # the same runs under another name in another table: both names
        data = next((r.get("data_source") for r in cell.records if r.get("data_source")), "?")
        stand_in = f" (stand-in for {paper.TASK_TITLES[cell.paper_task]})" if cell.stand_in else ""
        self.data[f"{cell.task}{stand_in}: {data}"] = None
        s = cell.summary
        spread = "" if s.n == 1 else f" ± {100 * s.std:.1f}"
        return f"{100 * s.mean:.1f}{spread} ({s.n}) [{ref}]"

    def notes(self) -> list[str]:
        if not self.produced:
            return []
        return ["Settings: what produced 'ours' (the test accuracy at each run's best-validation evaluation, "
                "mean ± sample std over the seeds):", "",
                *(f"- [{ref}] {' = '.join(labels)}: {what}" for (what, _), (ref, labels) in self.produced.items()),
                "", "Data of each task:", "", *(f"- {what}" for what in self.data), ""]


# ---- beyond the paper: One Fits All's and Tan et al.'s claims on the time-series run set ----------

TIMESERIES_WHERE = "MiniLM (not GPT-2), UEA JapaneseVowels, 100 steps of 16, 3 seeds, CPU"


def timeseries_claims(directory: str | os.PathLike | None = None, records: list[dict] | None = None,
                      baselines: Mapping[str, Mapping[str, Any]] | None = None,
                      where: str = TIMESERIES_WHERE) -> Table:
    """The verdicts of ``paper.TIMESERIES_CLAIMS`` (One Fits All's and Tan et al.'s, not FPT's) on the
    evidence runs of the ``timeseries`` run set in ``directory`` (or ``records``): each row's lr and
    evaluation chosen on validation (``sweeps.select_each``), judged by ``stats.verdict`` against the
    majority class and the fitted logistic regression (``tasks.timeseries.classical``, computed here
    unless ``baselines`` are given), and, to show which way the sides go where that fitted floor stops
    the rule, against the majority class only."""
    if records is None:
        keys = {c.key for c in experiments.table("timeseries", "evidence", experiments.EVIDENCE_BACKBONE)}
        records = [r for r in results.load(directory) if r.get("key") in keys]
    if baselines is None:
        from fptlib.tasks.timeseries import classical
        baselines = classical(tasks.get(experiments.TIMESERIES_TASK), rocket=False)
    floors = [("majority class", baselines["majority class"]["test"]),
              ("logistic regression", baselines["logistic regression"]["test"], True)]
    ours = sweeps.select_each(records)
    rows = []
    for c in paper.TIMESERIES_CLAIMS:
        sides = [ours.get((row, experiments.TIMESERIES_TASK)) for row in (c.first, c.second)]
        claim = stats.Claim(c.text, c.first, c.second, c.relation, paper=c.theirs, margin=c.margin)
        first, second = (s and s[1] for s in sides)
        v = stats.verdict(claim, first, second, where=where, baselines=floors)
        w = stats.verdict(claim, first, second, where=where, baselines=floors[:1])
        rows.append({"claim (whose)": f"{c.text} ({c.whose})", "their finding": c.theirs,
                     "ours: mean ± sd % (seeds)": " vs ".join(s[1].text() if s else "not run" for s in sides),
                     "verdict": v.word, "against the majority class only": w.word,
                     "see": f"notebooks/{c.notebook}.ipynb"})
    return Table(rows, title="Beyond the paper: One Fits All's and Tan et al.'s claims on this course's records "
                             "(profile `evidence`)", notes=[
        f"Runs: {where}; each row's lr and evaluation chosen on validation. Baselines (ours, fitted on the "
        f"training split): majority class {100 * baselines['majority class']['test']:.1f}%, logistic "
        f"regression {100 * baselines['logistic regression']['test']:.1f}% (test). The verdict is the course's "
        f"rule (`fptlib.stats.verdict`), which gives none where both sides are at or below a baseline, the "
        f"fitted one included; the next column applies it with the majority class only.",
        "Their findings are quoted as theirs: " + paper.ONE_FITS_ALL_SOURCE + "."])


def claim_seeds(compared, profile: str, directory=None, backbone: str | None = None) -> tuple[dict, dict]:
    """The settings the claims ``compared`` (``paper.PaperClaim``s) set side by side, each labelled
    "row · column": ``({label: each seed's test accuracy in %}, {label: (name, %) of its task's best
    baseline, trivial or fitted, as the verdicts count it})`` from the records in ``directory``
    (``viz.plot_seeds``'s groups and baselines)."""
    by_key = {r["key"]: r for r in results.load(directory)}
    tables: dict[str, dict] = {}
    groups: dict[str, list[float]] = {}
    floors: dict[str, tuple[str, float]] = {}
    for c in compared:
        source = c.run_set or c.table
        if source not in tables:
            try:
                tables[source] = cells(source, profile, by_key, backbone)
            except ValueError:           # a table this profile does not define
                tables[source] = {}
        for row, column in (c.first, c.second):
            cell = tables[source].get((row, column))
            label = f"{row} · {paper.TASK_TITLES.get(column, column)}" + (
                f" (ran {cell.task})" if cell is not None and cell.stand_in else "") + (
                " · lr chosen on val" if c.run_set else "")
            if label in groups:
                continue
            groups[label] = [100 * v for v in cell.summary.values] if cell is not None and cell.summary else []
            if cell is not None and cell.records:
                cfg = cell.configs[0]
                found = [(n, 100 * a) for n, a, _ in task_baselines(cfg.task, cfg.task_options, cfg.eval_limit)
                         if a is not None]
                if found:
                    floors[label] = max(found, key=lambda f: f[1])
    return groups, floors


def evidence_claims(notebook: str | None = None) -> Table:
    """:func:`claims` on the committed evidence (``results/evidence/``, backbone
    ``experiments.EVIDENCE_BACKBONE``): what notebook 00, the README and quick-profile notebooks show;
    ``notebook``: only the claims that notebook shows, with the notes of their settings."""
    full = claims(files.EVIDENCE, directory=files.committed_evidence_dir(),
                  backbone=experiments.EVIDENCE_BACKBONE, notebook=notebook)
    note = (f"Verdicts from the committed evidence records (results/evidence/, `python -m fptlib reproduce "
            f"TABLE --profile evidence`, {experiments.EVIDENCE_BACKBONE} on a 2-core CPU), read here, not trained.")
    return Table(full.rows, columns=full.columns, title=full.title, notes=[note, *full.notes])
