"""Tables for a reader: every "ours beside the paper's" table, the results summary and what this
machine has, all drawn by ONE renderer (:class:`Table`, markdown in Jupyter and in ``print``).

The layer above ``experiments``: it reads configurations (which runs make a paper table) and
records (``fptlib.results``), and never trains.
"""
from __future__ import annotations

import math
import os
from typing import Any, Mapping, Sequence

from fptlib import experiments, paper, results, tasks
from fptlib.backbones import KNOWN, hub_reachable, pretrained_available
from fptlib.files import short_paths


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


def results_table(runs: Mapping[str, Mapping[str, Any]], paper: Mapping[str, Any] | None = None, *,
                  target: float | None = None, title: str | None = None, split: str | None = None) -> Table:
    """One row per labelled run: the paper's number for that setting (labelled as the paper's),
    this run's final and best accuracy, optionally the steps to ``target``, and what produced it.

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
               "this run, best (%)": as_percent(results.accuracy(rec, split, "best"))}
        if target is not None:
            s = results.steps_to(rec, target, split)
            row[f"steps to {target * 100:g}%"] = int(s) if s is not None else f"> {rec.get('steps')}"
        row["this run: produced by"] = results.provenance(rec)
        rows.append(row)
    return Table(rows, title=title)


def paper_table(name: str, profile: str | None = None, directory: str | os.PathLike | None = None,
                records: list[dict] | None = None, backbone: str | None = None, **changes: Any) -> Table:
    """Our runs of an experiment table beside the paper's numbers, one line per cell of the paper's
    table (``changes`` as for ``experiments.table``); runs the store lacks show 'not run'."""
    profile = experiments.check_profile(profile or experiments.choose_profile()[0])
    ptable = paper.get(experiments.canonical(name))
    by_key = {r["key"]: r for r in (records if records is not None else results.load(directory))}
    steps_unit = ptable.unit.startswith("steps")
    rows = []
    for cfg in experiments.table(name, profile, backbone, **changes):
        rec = by_key.get(cfg.key)
        produced = None
        if rec is None:
            ours = "not run"
        else:
            produced = results.provenance(rec, data=True)
            if steps_unit:
                reached = results.steps_to(rec, cfg.target) if cfg.target is not None else rec.get("steps_to_target")
                ours = f"{reached:g}" if reached else f"not reached in {rec['steps']}"
                produced += f", target {100 * cfg.target:g}%" if cfg.target else ""
            else:
                ours = as_percent(results.accuracy(rec))
        rows.append({"setting": cfg.row, "column": paper.TASK_TITLES.get(cfg.column, cfg.column),
                     ptable.paper_label: ptable.cell(cfg.row, cfg.column), "this run": ours,
                     "what produced it": produced})
    notes = [f"Paper values: {ptable.source}. 'this run' values come from the records in the results store."]
    if ptable.caption:
        notes.append(ptable.caption)
    return Table(rows, title=f"{ptable.title} ({ptable.unit}; profile `{profile}`)", notes=notes)


def summary(records: list[dict]) -> Table | str:
    """Every stored record, one row each."""
    if not records:
        return "No results yet: run `python -m fptlib reproduce TABLE --profile quick` or `python -m fptlib train`."
    rows = [{"task": r.get("task"), "data source": r.get("data_source"),
             "backbone (init)": f"{(r.get('backbone') or {}).get('name')} ({(r.get('backbone') or {}).get('init')})",
             "freeze": r.get("freeze"), "steps": r.get("steps"), "seed": r.get("seed"),
             "final acc %": as_percent(results.accuracy(r)), "best acc %": as_percent(results.accuracy(r, which="best")),
             "hardware": r.get("hardware"), "key": r.get("key")} for r in records]
    return Table(rows)


def table(name: str | None = None, profile: str | None = None, directory: str | os.PathLike | None = None,
          records: list[dict] | None = None, backbone: str | None = None, **changes: Any) -> str:
    """Markdown: with a table name, :func:`paper_table`; without, the :func:`summary` of every record."""
    if name is None:
        return str(summary(records if records is not None else results.load(directory)))
    return paper_table(name, profile, directory, records, backbone, **changes).markdown()


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
