"""The results store: one JSON record per finished run, and markdown tables beside the paper's.

Records live in ``results/`` at the root of the checkout (or ``$FPT_RESULTS_DIR``), one file
per run named by the run's stable key, written atomically. A record says everything that
produced its numbers: task and data source, backbone and how it was initialised, freeze preset,
hyperparameters, steps, samples, wall time, final and best metrics per split, seed, hardware,
package versions and git commit. That is what lets ``experiments.run`` skip finished runs and
what keeps our numbers from ever being mistaken for the paper's.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path
from typing import Any, Iterable

from fptlib import env, paper
from fptlib.files import atomic_write_text, results_dir

FORMAT = 1


def _count(model) -> tuple[int, int]:
    total = sum(p.numel() for p in model.parameters())
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, trained


def backbone_info(model) -> dict:
    """name / family / init / size of the model's backbone (FPT keeps it at ``model.backbone``)."""
    bb = getattr(model, "backbone", None)
    if bb is None:
        return {"name": type(model).__name__, "family": "custom", "init": "unknown"}
    keys = ("name", "family", "init", "hidden_size", "num_layers", "num_heads", "max_positions", "causal", "notes")
    return {k: getattr(bb, k) for k in keys if hasattr(bb, k)}


def make_record(result, model, task, *, key: str | None = None, freeze: str | None = None,
                profile: str | None = None, label: dict | None = None, notes: Iterable[str] = (),
                extra: dict | None = None) -> dict:
    """A results record for a finished TrainResult (see docs/ARCHITECTURE.md, 'Results record')."""
    total, trained = _count(model)
    if freeze is None:
        cfg = model.config_dict() if hasattr(model, "config_dict") else {}
        freeze = cfg.get("freeze", "unknown") if isinstance(cfg, dict) else "unknown"
    train_cfg = dict(result.config)
    record = {
        "format": FORMAT,
        "key": key,
        "task": getattr(task, "name", type(task).__name__),
        "data_source": getattr(task, "data_source", "unknown"),
        "backbone": backbone_info(model),
        "freeze": freeze if isinstance(freeze, str) else str(freeze),
        "parameters": {"total": total, "trained": trained},
        "hyperparameters": {k: train_cfg.get(k) for k in
                            ("optimizer", "lr", "weight_decay", "batch_size", "grad_accum", "grad_clip",
                             "steps", "eval_every", "time_budget_s", "target_accuracy", "amp")},
        "steps": result.steps,
        "samples": result.samples,
        "wall_time_s": round(result.wall_s, 3),
        "train_time_s": round(result.train_s, 3),
        "samples_per_s": round(result.samples_per_s, 2),
        "final": result.final,
        "best": result.best,
        "stopped": result.stopped,
        "steps_to_target": result.steps_to_target,
        "resumed_from": result.resumed_from,
        "seed": train_cfg.get("seed"),
        "hardware": env.hardware(result.device),
        "device": result.device,
        "amp": result.amp,
        "compile": result.compile,
        "versions": env.package_versions(),
        "git_commit": env.git_commit(),
        "profile": profile,
        "label": label or {},
        "notes": list(notes),
        "history": thin(result.history),
        "evals": result.evals,
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if extra:
        record.update(extra)
    return record


def thin(history: list[dict], keep: int = 1000) -> list[dict]:
    """At most about ``keep`` evenly spaced entries (always the last): long runs log every few
    steps, and a record should stay small enough to read."""
    if len(history) <= keep:
        return list(history)
    stride = -(-len(history) // keep)
    out = history[::stride]
    return out if out[-1] is history[-1] else out + [history[-1]]


def save(record: dict, directory: str | os.PathLike | None = None) -> Path:
    key = record.get("key")
    if not key or any(c in key for c in "/\\") or key.startswith("."):
        raise ValueError(f"a record needs a plain 'key' to be stored (got {key!r}): pass key=... to make_record")
    path = results_dir(directory) / f"{key}.json"
    return atomic_write_text(path, json.dumps(record, indent=1, sort_keys=False, default=_json_default) + "\n")


def _json_default(obj: Any):
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    return str(obj)


def get(key: str, directory: str | os.PathLike | None = None) -> dict | None:
    path = results_dir(directory) / f"{key}.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def load(directory: str | os.PathLike | None = None, **filters: Any) -> list[dict]:
    """All records (oldest first), optionally filtered by top-level fields, e.g. ``load(task="bit-xor")``;
    ``backbone="minilm"`` matches the backbone's name. Unreadable files are skipped with a warning."""
    folder = results_dir(directory)
    records = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            print(f"warning: skipping unreadable result {path}: {err}")
            continue
        if all(_matches(rec, k, v) for k, v in filters.items()):
            records.append(rec)
    return sorted(records, key=lambda r: r.get("created_at", ""))


def _matches(rec: dict, field: str, want: Any) -> bool:
    have = rec.get(field)
    if field == "backbone" and isinstance(have, dict):
        return have.get("name") == want
    return have == want


# -- rendering ------------------------------------------------------------------------------

def metric(record: dict, split: str | None = None, which: str = "final") -> float | None:
    """Accuracy in % of a record on ``split`` (default: 'test' if evaluated, else the last split)."""
    values = record.get(which) or {}
    if not values:
        return None
    split = split if split in values else ("test" if "test" in values else list(values)[-1])
    acc = values[split].get("accuracy")
    return None if acc is None else 100.0 * acc


def describe_source(record: dict) -> str:
    bb = record.get("backbone", {})
    init = bb.get("init", "?")
    name = bb.get("name", "?")
    size = f" ({bb['num_layers']} layers, width {bb['hidden_size']})" if "num_layers" in bb and "hidden_size" in bb else ""
    return f"{name}{'' if init == 'pretrained' else ' ' + init}{size}, {record.get('data_source', '?')}"


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:g}" if unit.startswith("steps") else f"{value:.1f}"


def steps_to(record: dict, accuracy: float, split: str | None = None) -> int | None:
    """The first evaluated step at which ``split`` (default: test if evaluated) reached ``accuracy``."""
    for e in record.get("evals", []):
        name = split or ("test" if "test" in e else next(k for k in e if isinstance(e[k], dict)))
        if name in e and e[name]["accuracy"] >= accuracy:
            return e["step"]
    return None


def table(name: str | None = None, profile: str = "quick", directory: str | os.PathLike | None = None,
          records: list[dict] | None = None, backbone: str | None = None, **changes: Any) -> str:
    """Markdown: with a table name, our runs of that experiment table beside the paper's numbers
    (one line per cell of the paper's table); without, a summary of every stored record."""
    if name is None:
        return summary(records if records is not None else load(directory))
    from fptlib import experiments    # experiments imports results: import here

    ptable = paper.get(experiments.paper_table_for(name))
    configs = experiments.table(name, profile, backbone, **changes)
    by_key = {r["key"]: r for r in (records if records is not None else load(directory))}
    lines = []          # (row, column, paper, ours, source, run details)
    for cfg in configs:
        rec = by_key.get(cfg.key)
        row, col = cfg.row, cfg.column
        source = details = ""
        if rec is None:
            ours = "not run"
        else:
            source = describe_source(rec)
            details = f"{rec['steps']} steps, seed {rec.get('seed')}"
            if ptable.unit.startswith("steps"):
                reached = steps_to(rec, cfg.target) if cfg.target is not None else rec.get("steps_to_target")
                ours = _fmt(reached, ptable.unit) if reached else f"not reached in {rec['steps']}"
                details += f", target {100 * cfg.target:g}%" if cfg.target else ""
            else:
                ours = _fmt(metric(rec, which="final"), ptable.unit)
        lines.append((row, paper.TASK_TITLES.get(col, col), ptable.cell(row, col), ours, source, details))
    sources = {line[4] for line in lines if line[4]}
    if len(sources) == 1:       # one backbone and data source: say it once, in the header
        ours_label = f"this run ({sources.pop()})"
        lines = [(*line[:4], line[5]) for line in lines]
    else:
        ours_label = "this run"
        lines = [(*line[:4], "; ".join(x for x in line[4:] if x)) for line in lines]
    head = [f"**{ptable.title}** ({ptable.unit}; profile `{profile}`)", "",
            f"| setting | column | {ptable.paper_label} | {ours_label} | what produced it |",
            "|---|---|---|---|---|"]
    body = [f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in lines]
    foot = ["", f"Paper values: {ptable.source}. 'this run' values come from the records in the results store."]
    if ptable.caption:
        foot.append(ptable.caption)
    return "\n".join(head + body + foot)


def summary(records: list[dict]) -> str:
    if not records:
        return "No results yet: run `python -m fptlib reproduce TABLE --profile quick` or `python -m fptlib train`."
    lines = ["| task | data source | backbone (init) | freeze | steps | seed | final acc % | best acc % | hardware | key |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        bb = r.get("backbone", {})
        lines.append(f"| {r.get('task')} | {r.get('data_source')} | {bb.get('name')} ({bb.get('init')}) | "
                     f"{r.get('freeze')} | {r.get('steps')} | {r.get('seed')} | {_fmt(metric(r), '%')} | "
                     f"{_fmt(metric(r, which='best'), '%')} | {r.get('hardware')} | {r.get('key')} |")
    return "\n".join(lines)
