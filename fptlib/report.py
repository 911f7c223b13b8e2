"""Tables for a reader: every "ours beside the paper's" table, the results summary and what this
machine has, all drawn by ONE renderer (:class:`Table`, markdown in Jupyter and in ``print``).

The layer above ``experiments``: it reads configurations (which runs make a paper table) and
records (``fptlib.results``), and never trains.
"""
from __future__ import annotations

import functools
import math
import os
import textwrap
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from fptlib import experiments, paper, results, stats, sweeps, tasks
from fptlib.backbones import KNOWN, hub_reachable, pretrained_available
from fptlib.files import short_paths
from fptlib.tasks import baselines as trivial


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None,
                   digits: int = 1) -> str:
    """A markdown table of ``rows`` (dicts); ``columns`` picks and orders the keys."""
    if not rows:
        return "(no rows)"
    if columns is None:
        columns = []
        for row in rows:
            columns += [k for k in row if k not in columns]
    head = "| " + " | ".join(columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(_fmt(row.get(c), digits) for c in columns) + " |" for row in rows]
    return "\n".join([head, rule, *body])


TERMINAL_WIDTH = 100          # the terminal `python -m fptlib results` fits by default
COLUMN_GAP = "  "


def _fit_widths(natural: Sequence[int], room: int) -> list[int]:
    """Column widths that sum to at most ``room`` (each at least 4): every column keeps its natural
    width when all fit, else the narrow ones keep theirs and the wide ones share what is left."""
    widths = list(natural)
    order = sorted(range(len(widths)), key=widths.__getitem__)
    left = room
    for done, i in enumerate(order):
        share = max(4, left // (len(order) - done))
        widths[i] = min(widths[i], share)
        left -= widths[i]
    return widths


def _wrap_row(cells: Sequence[str], widths: Sequence[int]) -> list[str]:
    """One table row as lines: each cell wrapped to its column's width, the columns side by side."""
    wrapped = [textwrap.wrap(c, w, break_on_hyphens=False) or [""] for c, w in zip(cells, widths)]
    height = max(map(len, wrapped))
    return [COLUMN_GAP.join(col[i].ljust(w) if i < len(col) else " " * w for col, w in zip(wrapped, widths)).rstrip()
            for i in range(height)]


class Table:
    """A table that shows as markdown in Jupyter and as aligned text in ``print`` / nbval.

    Its ``text/plain`` form is the same markdown, so nbval compares something readable.
    ``notes``: lines printed under the table (sources, captions).
    """

    def __init__(self, rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None,
                 title: str | None = None, digits: int = 1, notes: Sequence[str] = ()):
        self.rows = [dict(r) for r in rows]
        self.columns = list(columns) if columns else None
        self.title = title
        self.digits = digits
        self.notes = list(notes)

    def markdown(self) -> str:
        text = markdown_table(self.rows, self.columns, self.digits)
        text = f"**{self.title}**\n\n{text}" if self.title else text
        return "\n".join([text, "", *self.notes]) if self.notes else text

    def text(self, width: int = TERMINAL_WIDTH) -> str:
        """The table as plain text for a terminal of ``width`` columns: each cell wrapped
        (``textwrap``) so that no line is longer than ``width``; the title and notes wrapped too."""
        columns = self.columns or list(dict.fromkeys(k for row in self.rows for k in row))
        cells = [[_fmt(row.get(c), self.digits) for c in columns] for row in self.rows]
        widths = _fit_widths([max([*map(len, c.split()), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)],
                             width - len(COLUMN_GAP) * (len(columns) - 1))
        lines = [*_wrap_row(columns, widths), COLUMN_GAP.join("-" * w for w in widths)]
        for row in cells:
            lines += _wrap_row(row, widths)
        out = [*textwrap.wrap(self.title.replace("**", ""), width), ""] if self.title else []
        out += lines if self.rows else ["(no rows)"]
        if self.notes:
            out.append("")
            out += [wrapped for note in self.notes
                    for wrapped in textwrap.wrap(note.replace("**", ""), width, subsequent_indent="  ")]
        return "\n".join(out)

    def _repr_markdown_(self) -> str:
        return self.markdown()

    def __repr__(self) -> str:
        return self.markdown()

    __str__ = __repr__


def as_percent(x: float | None) -> float | None:
    """Accuracy as a percentage (the paper's unit); fractions in [0, 1] are scaled by 100."""
    if x is None:
        return None
    x = float(x)
    return x * 100.0 if x <= 1.0 else x


# ---------------------------------------------------------------------------------------------
# ours beside the paper's


QUICK_NOTE = "quick profile: a check that the code runs, not evidence"


def _selected_test(record: Mapping[str, Any], split: str | None = None) -> float | None:
    """A run's reported accuracy: ``split`` (default test) at its best-validation evaluation
    (``stats.selected``); the final accuracy where the run has no validation evaluations."""
    try:
        return stats.selected(record, "val", split or "test").reported
    except ValueError:
        return results.accuracy(record, split)


def results_table(runs: Mapping[str, Mapping[str, Any]], paper: Mapping[str, Any] | None = None, *,
                  target: float | None = None, title: str | None = None, split: str | None = None) -> Table:
    """One row per labelled run: the paper's number for that setting (labelled as the paper's),
    this run's final accuracy and its test accuracy at the best-validation evaluation (selection on
    validation, never the best test), optionally the steps to ``target``, and what produced it.

    ``paper``: ``{label: value}`` or ``{label: (value, "the paper's model or setting")}``; missing labels show '-'.
    """
    paper = paper or {}
    rows = []
    for label, rec in runs.items():
        p = paper.get(label)
        p_val, p_model = (p if isinstance(p, tuple) else (p, "GPT-2"))
        row = {"setting": label, "paper (%)": as_percent(p_val),
               "paper's setting": p_model if p_val is not None else "-",
               "this run, final (%)": as_percent(results.accuracy(rec, split)),
               "this run, at best val (%)": as_percent(_selected_test(rec, split))}
        if target is not None:
            s = results.steps_to(rec, target, split)
            row[f"steps to {target * 100:g}%"] = int(s) if s is not None else f"> {rec.get('steps')}"
        row["this run: produced by"] = results.provenance(rec)
        rows.append(row)
    notes = [QUICK_NOTE] if any(r.get("profile") == "quick" for r in runs.values()) else []
    return Table(rows, title=title, notes=notes)


# ---------------------------------------------------------------------------------------------
# one setting of a table: its seeds (and learning rates) aggregated


@dataclass
class Cell:
    """One (row, column) of an experiment table at a profile: its configurations (seeds, maybe
    learning rates), the stored records among them, and their statistics."""

    row: str
    column: str
    configs: list
    records: list = field(default_factory=list)
    summary: stats.Summary | None = None
    lr: float | None = None          # the learning rate chosen on validation (a sweep), else None
    how: str = "test at the best-validation evaluation"

    @property
    def sweep(self) -> bool:
        return len({c.lr for c in self.configs}) > 1

    def chosen(self) -> list:
        """The records the cell reports: its seeds, a sweep's at the lr chosen on validation."""
        return [r for r in self.records if self.lr is None or sweeps.record_lr(r) == self.lr]

    def grid(self) -> list[float]:
        """The learning rates a sweep runs (one entry without a sweep)."""
        return sorted({c.lr for c in self.configs})

    def at_grid_edge(self) -> bool:
        """A sweep whose lr chosen on validation is its grid's smallest or largest."""
        return self.sweep and self.lr is not None and self.lr in (self.grid()[0], self.grid()[-1])

    def unswept(self) -> list[float]:
        """The learning rates of a sweep with no stored run yet: its choice on validation is not made
        among the whole grid until they are run (empty for a complete sweep or a single lr)."""
        return sorted({c.lr for c in self.configs} - set(map(sweeps.record_lr, self.records))) if self.sweep else []

    @property
    def task(self) -> str:
        return self.configs[0].task

    @property
    def paper_task(self) -> str | None:
        """The task the paper ran in this cell (``paper.task_of``)."""
        cfg = self.configs[0]
        return paper.task_of(cfg.table, self.row, self.column)

    @property
    def stand_in(self) -> bool:
        """Another task ran than the paper's in this cell (``experiments.STAND_INS``)."""
        return self.paper_task is not None and self.task != self.paper_task

    def ran_on(self) -> str:
        """Which task and data really ran: the paper's task, or the stand-in that replaced it."""
        data = next((r.get("data_source") for r in self.records if r.get("data_source")), None)
        if not self.stand_in:
            whose = "the paper's task" if self.paper_task or self.task in paper.TASK_TITLES else "a task beyond the paper"
            return whose + (f" ({data})" if data else "")
        return f"stand-in: {self.task}" + (f" ({data})" if data else "") + \
            f", not {paper.TASK_TITLES[self.paper_task]}"

    def produced(self, data: bool = True) -> str:
        """What produced the numbers: backbone, freeze, lr, steps, the seeds, the data (``data``)."""
        if not self.records:
            return "-"
        chosen = self.chosen()
        text = results.provenance(chosen[0], data=data)
        seeds = sorted({r.get("seed") for r in chosen}, key=lambda s: (s is None, s or 0))
        if len(seeds) > 1:
            text = text.replace(f"seed {chosen[0].get('seed')}", "seeds " + ", ".join(map(str, seeds)), 1)
        if self.sweep:
            text = text.replace(f"lr {(chosen[0].get('hyperparameters') or {}).get('lr'):g}",
                                f"lr {self.lr:g} chosen on validation among "
                                + ", ".join(f"{lr:g}" for lr in sorted({c.lr for c in self.configs})), 1)
        found = len(self.records)
        if found < len(self.configs):
            text += f" ({found} of {len(self.configs)} runs stored)"
        return text


def _summarize(cell: Cell) -> None:
    recs = cell.records
    if not recs:
        return
    try:
        if cell.sweep:
            cell.lr, cell.summary = sweeps.select_by_validation(recs)
        else:
            cell.summary = stats.summarize(recs)
    except ValueError:       # runs without validation evaluations: their final test accuracy, said so
        cell.summary = stats.Summary(tuple(results.accuracy(r) or math.nan for r in recs),
                                     tuple(r.get("seed") for r in recs))
        cell.how = "final test accuracy (no validation evaluations to select on)"


def cells(name: str, profile: str, records: Sequence[Mapping] | Mapping[str, Mapping],
          backbone: str | None = None, **changes: Any) -> dict[tuple[str, str], Cell]:
    """The table's configurations grouped by (row, column), in the table's order, each with its
    stored records (``records``: a list, or a ``{key: record}`` mapping) and statistics: configs
    that differ only in ``seed`` are one setting's seeds (``stats.summarize``); differing in ``lr``
    as well, a sweep whose lr is chosen on validation (``sweeps.select_by_validation``)."""
    by_key = records if isinstance(records, Mapping) else {r["key"]: r for r in records}
    out: dict[tuple[str, str], Cell] = {}
    for cfg in experiments.table(name, profile, backbone, **changes):
        cell = out.setdefault((cfg.row, cfg.column), Cell(cfg.row, cfg.column, []))
        cell.configs.append(cfg)
        if cfg.key in by_key and all(r["key"] != cfg.key for r in cell.records):
            cell.records.append(by_key[cfg.key])
    for cell in out.values():
        _summarize(cell)
    return out


def _cell_row(cell: Cell, any_sweep: bool, *, paper_value: tuple[str, Any] | None = None, steps_unit: bool = False,
              steps_trained: bool = False) -> dict:
    """One line of a rendered table: the cell's labels, the paper's number (``paper_value``: its
    column and value), what ran, our mean ± spread, the lr chosen on validation (tables with a sweep),
    the steps each reported run trained (``steps_trained``) and what produced it."""
    row = {"setting": cell.row, "column": paper.TASK_TITLES.get(cell.column, cell.column)}
    if paper_value is not None:
        row[paper_value[0]] = paper_value[1]
    row["ran on"] = cell.ran_on()
    row["this run (steps)" if steps_unit else "this run (%)"] = _ours(cell, steps_unit)
    row["seeds"] = cell.summary.n if cell.summary else 0
    if any_sweep:
        row["lr chosen on val"] = f"{cell.lr:g}" if cell.lr is not None else "-"
    if steps_trained:
        row["steps trained"] = ", ".join(str(r.get("steps")) for r in cell.chosen()) or "-"
    row["what produced it"] = cell.produced()
    return row


def _ours(cell: Cell, steps_unit: bool) -> str:
    if not cell.records:
        return "not run"
    if steps_unit:
        cfg = cell.configs[0]
        reached = [results.steps_to(r, cfg.target) if cfg.target is not None else r.get("steps_to_target")
                   for r in cell.records]
        got = [s for s in reached if s]
        if not got:
            return f"not reached in {max(r.get('steps') or 0 for r in cell.records)}"
        steps = stats.Summary(tuple(float(s) for s in got))
        text = f"{steps.mean:.0f}" if steps.n == 1 else f"{steps.mean:.0f} ± {steps.std:.0f}"
        missed = len(reached) - len(got)
        return text if not missed else f"{text} ({missed} of {len(reached)} seeds never reached it)"
    s = cell.summary
    return f"{100 * s.mean:.1f}" if s.n == 1 else f"{100 * s.mean:.1f} ± {100 * s.std:.1f}"


@functools.lru_cache(maxsize=64)
def task_baselines(task: str, options: tuple, limit: int | None) -> tuple[tuple[str, float | None, str], ...]:
    """(name, accuracy, how) of every trivial baseline of a task's reported split, cached per
    (task, options, limit): the pixel logistic regression takes seconds."""
    try:
        t = tasks.get(task, **dict(options))
        split = "test" if "test" in t.eval_splits else t.eval_splits[-1]
        found = trivial.baselines(t, split, limit=limit)
        source = getattr(t, "data_source", task)
        return tuple((b.name, b.accuracy, f"{b.how}; {b.split} split of {source}") for b in found)
    except Exception as err:      # data or scikit-learn missing here: the row says so
        return (("trivial baselines", None, f"not computed here: {str(err).splitlines()[0] if str(err) else err!r}"),)


def baseline_rows(table_cells: Sequence[Cell]) -> list[dict]:
    """Rows of the trivial baselines for each task that has stored runs in the table."""
    seen: dict[tuple, list[str]] = {}
    for cell in table_cells:
        if cell.records:
            cfg = cell.configs[0]
            cols = seen.setdefault((cfg.task, cfg.task_options, cfg.eval_limit), [])
            title = paper.TASK_TITLES.get(cell.paper_task or cell.task, cell.task)
            if title not in cols:
                cols.append(title)
    rows = []
    for (task, options, limit), cols in seen.items():
        for name, acc, how in task_baselines(task, options, limit):
            rows.append({"setting": f"trivial baseline: {name}", "column": ", ".join(cols),
                         "this run (%)": as_percent(acc) if acc is not None else "-", "ran on": task,
                         "what produced it": how})
    return rows


def paper_table(name: str, profile: str | None = None, directory: str | os.PathLike | None = None,
                records: list[dict] | None = None, backbone: str | None = None, *, baselines: bool = True,
                **changes: Any) -> Table:
    """Our runs of an experiment table beside the paper's numbers, one line per cell of the paper's
    table (``changes`` as for ``experiments.table``): the test accuracy at each run's
    best-validation evaluation, mean ± sample std over the seeds and their number, the learning
    rate chosen on validation for a sweep, which task really ran where a profile substitutes one,
    and the task's trivial baselines (``baselines=False`` leaves them out). Runs the store lacks
    show 'not run'. A quick-profile table says it is a check that the code runs, not evidence."""
    profile = experiments.check_profile(profile or experiments.choose_profile()[0])
    ptable = paper.get(experiments.canonical(name))
    recs = records if records is not None else results.load(directory)
    steps_unit = ptable.unit.startswith("steps")
    table_cells = list(cells(name, profile, recs, backbone, **changes).values())
    any_sweep = any(c.sweep for c in table_cells)
    rows = [_cell_row(cell, any_sweep, paper_value=(ptable.paper_label, ptable.cell(cell.row, cell.column)),
                      steps_unit=steps_unit) for cell in table_cells]
    how = ("steps to the target accuracy, per seed" if steps_unit else
           next((c.how for c in table_cells if c.records and not c.how.startswith("test at")),
                "test accuracy at each run's best-validation evaluation"))
    notes = [f"Paper values: {ptable.source}. 'this run': {how}, mean ± sample std over the seeds "
             f"(records in the results store); a gap smaller than the spread is no difference."]
    if any(c.stand_in for c in table_cells):
        notes.append("'ran on' names a stand-in where this profile substitutes another task for the paper's: "
                     "its number is not comparable with the paper's number for the paper's task.")
    if ptable.caption:
        notes.append(ptable.caption)
    left_out = experiments.not_run(name, profile)
    if left_out:
        notes.append(f"Left out at the {profile} profile: " + "; ".join(
            f"{paper.TASK_TITLES.get(label, label)}: {why}" for label, why in left_out.items()) + ".")
    if profile == "quick":
        notes.insert(0, f"**{QUICK_NOTE}.**")
    if ptable.name == "model_size":
        for row, cell in zip(rows, table_cells):
            row["setting"] = _size_row(cell)
    if baselines and not steps_unit:
        rows += baseline_rows(table_cells)
    columns = list(rows[0]) if rows else None
    ran = ran_with(table_cells)
    title = (f"{ptable.title} ({ptable.unit}; profile `{profile}`" + (f": {QUICK_NOTE}" if profile == "quick" else "")
             + (f"; this course's rows: {ran})" if ran else ")"))
    return Table(rows, columns=columns, title=title, notes=notes)


def _backbone_text(record: Mapping) -> str:
    """A record's backbone with the layers it ran, e.g. ``minilm (2 layers)``."""
    bb = record.get("backbone") or {}
    layers = (record.get("run_config") or {}).get("layers") or bb.get("num_layers")
    return f"{bb.get('name', '?')}" + (f" ({layers} layer{'s' if layers != 1 else ''})" if layers else "")


def ran_with(table_cells: Sequence[Cell]) -> str:
    """The backbones (with their layers) that produced a table's stored rows, from the records:
    what a title says instead of the paper's backbone."""
    seen: dict[str, None] = {}
    for cell in table_cells:
        for r in cell.records:
            seen.setdefault(_backbone_text(r))
    return ", ".join(seen)


def _size_row(cell: Cell) -> str:
    """A model-size row labelled for what ran: the paper's size where GPT-2 ran, else the depth of
    the backbone that stood in for it (its first k layers), never 'small' or 'large' alone."""
    if not cell.records or all((r.get("backbone") or {}).get("family") == "gpt2" for r in cell.records):
        return cell.row
    return f"{cell.row} (here: {_backbone_text(cell.records[0])}, depth standing in for size)"


SUMMARY_COLUMNS = ("task", "backbone (init)", "freeze", "lr", "steps", "seed", "profile", "final acc %",
                   "acc % at best val", "key")        # the default view; ``wide``: every column


def summary(records: list[dict], wide: bool = False) -> Table | str:
    """Every stored record, one row each: its learning rate and seed, final test accuracy and the
    test accuracy at the best-validation evaluation (never the best test evaluation). The columns
    of :data:`SUMMARY_COLUMNS`; ``wide``: the data source and hardware as well."""
    if not records:
        return "No results yet: run `python -m fptlib reproduce TABLE --profile quick` or `python -m fptlib train`."
    rows = [{"task": r.get("task"), "data source": r.get("data_source"),
             "backbone (init)": f"{(r.get('backbone') or {}).get('name')} ({(r.get('backbone') or {}).get('init')})",
             "freeze": r.get("freeze"), "lr": _lr_text(r), "steps": r.get("steps"), "seed": r.get("seed"),
             "profile": r.get("profile"), "final acc %": as_percent(results.accuracy(r)),
             "acc % at best val": as_percent(_selected_test(r)), "hardware": r.get("hardware"),
             "key": r.get("key")} for r in records]
    notes = [f"Records of the quick profile are {QUICK_NOTE.removeprefix('quick profile: ')}."] \
        if any(r.get("profile") == "quick" for r in records) else []
    return Table(rows, columns=None if wide else SUMMARY_COLUMNS, notes=notes)


def _lr_text(record: Mapping[str, Any]) -> str | None:
    lr = (record.get("hyperparameters") or {}).get("lr")
    return None if lr is None else f"{lr:g}"


# ---------------------------------------------------------------------------------------------
# the paper's claims, with verdicts computed from the records


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


def progress(profile: str | None = None, directory: str | os.PathLike | None = None,
             backbone: str | None = None) -> Table:
    """How far a profile's tables and run sets are in a store: per table (``experiments.EVIDENCE_ORDER``,
    the order ``reproduce`` should take them in), its distinct runs, how many are stored, and an
    estimate of the CPU-hours left on a 2-core CPU like the one that measured
    ``experiments.STEP_SECONDS``; the last line counts a run shared between tables once."""
    profile = experiments.check_profile(profile or experiments.choose_profile()[0])
    stored = {r["key"] for r in results.load(directory)}
    done = lambda c: c.key in stored        # noqa: E731
    rows, every = [], {}
    for name in experiments.EVIDENCE_ORDER:
        configs = {c.key: c for c in experiments.table(name, profile, backbone)}
        every.update(configs)
        have = sum(map(done, configs.values()))
        rows.append({"table": name, "runs": len(configs), "stored": have, "left": len(configs) - have,
                     "CPU-hours left (estimate)": round(experiments.seconds_for(configs.values(), done) / 3600, 2),
                     "left out at this profile": ", ".join(experiments.not_run(name, profile)) or "-"})
    have = sum(map(done, every.values()))
    rows.append({"table": "all (a shared run once)", "runs": len(every), "stored": have, "left": len(every) - have,
                 "CPU-hours left (estimate)": round(experiments.seconds_for(every.values(), done) / 3600, 2),
                 "left out at this profile": "-"})
    return Table(rows, title=f"Progress of the `{profile}` profile ({len(stored)} records in the store)", notes=[
        "Estimates from experiments.STEP_SECONDS (measured on a 2-core CPU, one process per core), not a "
        "promise; `python -m fptlib reproduce TABLE --profile " + profile + "` trains what is left (resumable)."])


def table(name: str | None = None, profile: str | None = None, directory: str | os.PathLike | None = None,
          records: list[dict] | None = None, backbone: str | None = None, **changes: Any) -> str:
    """Markdown: with a table name, :func:`paper_table`; without, the :func:`summary` of every record."""
    if name is None:
        return str(summary(records if records is not None else results.load(directory)))
    return named_table(name, profile, directory, records, backbone, **changes).markdown()


def named_table(name: str, profile: str | None = None, directory: str | os.PathLike | None = None,
                records: list[dict] | None = None, backbone: str | None = None, **changes: Any) -> Table:
    """A paper table (:func:`paper_table`) or a run set (:func:`run_set_table`) by its name."""
    if experiments.canonical(name) in experiments.RUN_SETS:
        return run_set_table(name, profile, directory, records, backbone, **changes)
    return paper_table(name, profile, directory, records, backbone, **changes)


def run_set_table(name: str, profile: str | None = None, directory: str | os.PathLike | None = None,
                  records: list[dict] | None = None, backbone: str | None = None, **changes: Any) -> Table:
    """A run set that is no table of the paper (``experiments.RUN_SETS``, e.g. the explorer's Bit XOR
    models): per setting, the test accuracy at the best-validation evaluation (mean ± sample std over
    the seeds), the steps each seed trained, and what produced it; no paper column (there is none)."""
    profile = experiments.check_profile(profile or experiments.choose_profile()[0])
    recs = records if records is not None else results.load(directory)
    table_cells = list(cells(name, profile, recs, backbone, **changes).values())
    any_sweep = any(c.sweep for c in table_cells)
    rows = [_cell_row(c, any_sweep, steps_trained=True) for c in table_cells]
    for cell, row in zip(table_cells, rows):     # a run set with a target: steps to reach it beside accuracy
        target = cell.configs[0].target if cell.configs else None
        if target is not None:
            row[f"steps to {100 * target:g}% (mean ± sd)"] = _ours(cell, steps_unit=True)
    rows += baseline_rows(table_cells)
    notes = ["'this run': test accuracy at each run's best-validation evaluation, mean ± sample std over the "
             "seeds. The paper reports no table for these runs."]
    if profile == "quick":
        notes.insert(0, f"**{QUICK_NOTE}.**")
    return Table(rows, columns=list(rows[0]) if rows else None, title=f"Run set `{name}` (profile `{profile}`)",
                 notes=notes)


# ---------------------------------------------------------------------------------------------
# what this machine has: backbones and data (notebook 00)


def task_available(name: str) -> tuple[bool, str]:
    """``(ready, how)`` for a task's data on this machine now (``fptlib.tasks.available``)."""
    info = tasks.available().get(name, {})
    return bool(info.get("ready")), short_paths(info.get("source") if info.get("ready") else info.get("how", ""))


def backbone_table() -> Table:
    """Every known backbone: family, what it is, and whether its pretrained weights load here now."""
    online = hub_reachable()
    rows = []
    for known in KNOWN.values():
        ok, how = pretrained_available(known.name, check_hub=online)
        rows.append({"backbone": known.name, "family": known.family, "what it is": known.description,
                     "pretrained weights here": "yes" if ok else "no",
                     "how / why not": short_paths(how)})
    return Table(rows, title=f"Backbones (Hugging Face hub reachable: {'yes' if online else 'no'})")


def task_table() -> Table:
    """The paper's seven tasks and the offline image sets: ready or not, and from which source."""
    rows = []
    for name, info in tasks.available().items():
        rows.append({"task": name, "ready here": "yes" if info["ready"] else "no",
                     "data it would use now": short_paths(info["source"]),
                     "how to get it": short_paths(info["how"]) or "-"})
    return Table(rows, title="Tasks and their data on this machine")


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
