"""Ours beside the paper's: the cells of a paper table or run set (the runs of each (row, column),
the lr chosen on validation, the trivial baselines), the tables drawn from them, the results
summary, a profile's progress, and what this machine has (backbones, task data)."""
from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from fptlib import experiments, files, paper, results, stats, sweeps, tasks
from fptlib.backbones import KNOWN, hub_reachable, pretrained_available
from fptlib.files import short_paths
from fptlib.tasks import baselines as trivial
from fptlib.report.render import Table, as_percent


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


def table_markdown(name: str | None = None, profile: str | None = None, directory: str | os.PathLike | None = None,
                   records: list[dict] | None = None, backbone: str | None = None, **changes: Any) -> str:
    """Markdown: with a table name, :func:`paper_table`; without, the :func:`summary` of every record."""
    if name is None:
        return str(summary(records if records is not None else results.load(directory)))
    return named_table(name, profile, directory, records, backbone, **changes).markdown()


table = table_markdown      # the name before; ``experiments.table`` lists a table's configurations


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


# ---------------------------------------------------------------------------------------------
# a named subset of a table's rows or columns (the notebooks show a table cell by cell)


def _subset(configs: list, name: str, rows, columns) -> tuple[set | None, set | None]:
    """``rows``/``columns`` as sets, each checked against the labels of the table's ``configs``."""
    out = []
    for given, field_name in ((rows, "row"), (columns, "column")):
        if given is None:
            out.append(None)
            continue
        given = {given} if isinstance(given, str) else set(given)
        known = {getattr(c, field_name) for c in configs}
        unknown = given - known
        if unknown:
            raise ValueError(f"table {name!r} has no {field_name} {sorted(unknown)} at this profile: "
                             f"its {field_name}s are {sorted(known)}")
        out.append(given)
    return out[0], out[1]


def subset_configs(name: str, profile: str, backbone: str, rows=None, columns=None) -> list:
    """``experiments.table(name, profile, backbone)``, or only the configurations of the named
    ``rows`` / ``columns`` (the paper's labels; a subset of the same definitions, never new ones)."""
    configs = experiments.table(name, profile, backbone)
    keep_rows, keep_columns = _subset(configs, name, rows, columns)
    return [c for c in configs
            if (keep_rows is None or c.row in keep_rows) and (keep_columns is None or c.column in keep_columns)]


def table_subset(name: str, profile: str, backbone: str, rows=None, columns=None, store=None) -> Table:
    """:func:`named_table` of ``name`` from the records in ``store`` (default: the profile's), or
    only the cells of the named ``rows`` / ``columns`` (with their tasks' baselines), saying so."""
    configs = subset_configs(name, profile, backbone, rows, columns)
    store = store or experiments.store_dir(profile)     # evidence: the tracked results/evidence/
    render = run_set_table if experiments.canonical(name) in experiments.RUN_SETS else paper_table
    if rows is None and columns is None:
        return render(name, profile, directory=store, backbone=backbone)
    keys = {c.key for c in configs}
    records = [r for r in results.load(store) if r.get("key") in keys]
    full = render(name, profile, records=records, backbone=backbone)
    shown = {(c.row, paper.TASK_TITLES.get(c.column, c.column)) for c in configs}
    kept = [r for r in full.rows if (r.get("setting"), r.get("column")) in shown
            or str(r.get("setting", "")).startswith("trivial baseline")]
    named = (("rows", rows), ("columns", columns))
    which = "; ".join(f"{what} {', '.join(repr(x) for x in ([v] if isinstance(v, str) else v))}"   # quoted: labels hold commas
                      for what, v in named if v is not None)
    note = (f"Shown here: only {which} of this table (profile `{profile}`), a subset of the same definitions "
            f"as `python -m fptlib reproduce {experiments.canonical(name)} --profile {profile}`, which runs every cell.")
    return Table(kept, columns=full.columns, title=full.title, notes=[note, *full.notes])


def baselines_table(config) -> Table:
    """The trivial baselines (chance, majority class of the split, the copy baseline, a pixel logistic
    regression: ``tasks.baselines``) of a run's task, for a run that is in no paper table here."""
    found = task_baselines(config.task, config.task_options, config.eval_limit)
    return Table([{"trivial baseline": name, "accuracy (%)": as_percent(acc) if acc is not None else "-",
                   "how": how} for name, acc, how in found], title=f"Trivial baselines: {config.task}")


def evidence_table(name: str, rows=None, columns=None) -> Table:
    """:func:`table_subset` at the evidence profile from the committed records (``results/evidence/``,
    backbone ``experiments.EVIDENCE_BACKBONE``): read, never trained; it says how many cells ran."""
    table = table_subset(name, files.EVIDENCE, experiments.EVIDENCE_BACKBONE, rows, columns,
                         store=files.committed_evidence_dir())
    runs = [r for r in table.rows if not str(r.get("setting", "")).startswith("trivial baseline")]
    done = sum(1 for r in runs if r.get("seeds"))
    return Table(table.rows, columns=table.columns, title="Committed evidence: " + table.title, notes=[
        f"Read from the committed records in results/evidence/ ({done} of {len(runs)} cells run), made by "
        f"`python -m fptlib reproduce {experiments.canonical(name)} --profile evidence` on a 2-core "
        f"CPU with {experiments.EVIDENCE_BACKBONE}; nothing is trained by this cell.", *table.notes])
