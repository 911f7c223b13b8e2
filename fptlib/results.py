"""The results store: one JSON record per finished run, and the queries on a record (its accuracy
as a fraction, the steps it took to reach a target, what produced it). Tables: ``fptlib.report``.

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
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import hashlib

from fptlib import env, files
from fptlib.files import MANIFEST, atomic_write_text, results_dir
from fptlib.train.checkpoint import CHECKPOINT_NAME

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


# -- where every file of a run lives ----------------------------------------------------------
# <store>/<key>.json (the record), <store>/weights/<key>.pt (small trained weights),
# <store>/checkpoints/<key>/ (a run's checkpoint; <key>/cached/ for a run on cached frozen features),
# <store>/checkpoints/pack-<hash>/ (a pack's, with PACK_RUNS naming its runs). <store>: store_dir.
CHECKPOINTS = "checkpoints"
CACHED = "cached"              # the sub-folder of an output-only run trained on cached features
PACK_RUNS = "runs.json"        # in a pack's checkpoint folder: the keys of its runs


def store_dir(profile: str, directory: str | os.PathLike | None = None) -> Path | None:
    """Where a profile's records live: the evidence profile in the tracked ``<results>/evidence/``
    (``files.evidence_dir``), the others in the results store itself (``directory``)."""
    return files.evidence_dir(directory) if profile == files.EVIDENCE else directory


def weights_path(key: str, directory: str | os.PathLike | None = None) -> Path:
    """The trained weights kept beside run ``key``'s record."""
    return results_dir(directory) / "weights" / f"{key}.pt"


def checkpoint_dir(key: str, directory: str | os.PathLike | None = None, *, cached: bool = False) -> Path:
    """Run ``key``'s checkpoint folder (``cached``: the one of its output layer on cached features)."""
    folder = results_dir(directory) / CHECKPOINTS / key
    return folder / CACHED if cached else folder


def pack_name(keys: Sequence[str]) -> str:
    """The name of the pack of runs ``keys`` (in order): ``pack-<hash>``."""
    return "pack-" + hashlib.sha1(" ".join(keys).encode()).hexdigest()[:10]


def pack_checkpoint_dir(keys: Sequence[str], directory: str | os.PathLike | None = None) -> Path:
    """The checkpoint folder of the pack of runs ``keys``; :func:`note_pack` names its runs there."""
    return results_dir(directory) / CHECKPOINTS / pack_name(keys)


def note_pack(folder: str | os.PathLike, keys: Sequence[str]) -> None:
    """Write which runs a pack's checkpoint folder holds (read by :func:`checkpoint_of`)."""
    atomic_write_text(Path(folder) / PACK_RUNS, json.dumps(list(keys)) + "\n")


def _packs(directory) -> list[tuple[Path, list[str]]]:
    """(folder, run keys) of every pack checkpoint folder that names its runs and holds a checkpoint."""
    found = []
    for runs in sorted((results_dir(directory) / CHECKPOINTS).glob(f"pack-*/{PACK_RUNS}")):
        try:
            held = json.loads(runs.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            continue
        if isinstance(held, list) and (runs.parent / CHECKPOINT_NAME).is_file():
            found.append((runs.parent, [str(k) for k in held]))
    return found


def interrupted_packs(keys: Iterable[str], directory: str | os.PathLike | None = None) -> list[list[str]]:
    """The run keys (in their pack's order) of every pack checkpoint that holds one of ``keys``."""
    wanted = set(keys)
    return [held for _, held in _packs(directory) if wanted & set(held)]


def checkpoint_of(key: str, directory: str | os.PathLike | None = None) -> Path | None:
    """The checkpoint file run ``key`` would resume from, alone, on cached features or in a pack
    (any pack whose folder names it); None when there is none."""
    for folder in (checkpoint_dir(key, directory), checkpoint_dir(key, directory, cached=True)):
        if (folder / CHECKPOINT_NAME).is_file():
            return folder / CHECKPOINT_NAME
    for folder, held in _packs(directory):
        if key in held:
            return folder / CHECKPOINT_NAME
    return None


DIVERGED = "diverged"    # <results>/diverged/<key>.json: runs whose loss became NaN (not records)


def mark_diverged(key: str, message: str, directory: str | os.PathLike | None = None) -> Path:
    """Note that run ``key`` diverged (its loss became NaN or infinite), so that a sweep counts it
    as a result (never selected) and a rerun does not train it again. Not a record: ``load`` never
    returns it; delete the file to train the run again."""
    note = {"key": key, "diverged": message,
            "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    return atomic_write_text(results_dir(directory) / DIVERGED / f"{key}.json", json.dumps(note, indent=1) + "\n")


def diverged(key: str, directory: str | os.PathLike | None = None) -> str | None:
    """What ``mark_diverged`` noted for run ``key`` (its error message), or None."""
    path = results_dir(directory) / DIVERGED / f"{key}.json"
    if not path.is_file():
        return None
    try:
        note = json.loads(path.read_text(encoding="utf-8"))
        return str(note["diverged"])
    except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError):
        print(f"warning: ignoring {path}: not a note of a diverged run; delete it", file=sys.stderr)
        return None


def _json_default(obj: Any):
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    return str(obj)


def get(key: str, directory: str | os.PathLike | None = None) -> dict | None:
    """The record stored under ``key``; None when there is none or its file is unreadable (warned)."""
    path = results_dir(directory) / f"{key}.json"
    if not path.is_file():
        return None
    return read_record(path)


def read_record(path: Path) -> dict | None:
    """The record in ``path``, or None with a warning on stderr naming the file when it is not one
    (unreadable, truncated, not a JSON object, no plain string ``key``): one bad file never breaks
    the store, and a run whose record is unreadable counts as not run (and is rerun)."""
    try:
        if not path.is_file():      # a FIFO would block the read forever
            raise OSError(f"{path} is not a regular file")
        rec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        problem = f"unreadable or truncated JSON ({err or type(err).__name__})"
    else:
        if not isinstance(rec, dict):
            problem = f"a JSON {'list' if isinstance(rec, list) else type(rec).__name__}, not a record (an object)"
        elif not isinstance(rec.get("key"), str) or not rec["key"]:
            problem = f"a record without a plain 'key' (got {rec.get('key')!r})"
        else:
            problem = shape_problem(rec)
            if problem is None:
                return rec
    print(f"warning: skipping {path}: {problem}; delete or fix the file (a run without a readable "
          f"record counts as not run)", file=sys.stderr)
    return None


_OBJECTS = ("backbone", "run_config", "hyperparameters", "label", "final", "best", "parameters")
_LISTS = ("evals", "history", "notes")


def shape_problem(rec: Mapping) -> str | None:
    """What is wrong with the shape of a record read from a file, or None: the fields the tables
    and queries read must be what ``make_record`` writes (objects, lists, numeric accuracies)."""
    for name in _OBJECTS:
        if rec.get(name) is not None and not isinstance(rec[name], dict):
            return f"field {name!r} is a {type(rec[name]).__name__}, not an object"
    for name in _LISTS:
        if rec.get(name) is not None and not isinstance(rec[name], list):
            return f"field {name!r} is a {type(rec[name]).__name__}, not a list"
    metrics = [(f"{w}.{split}", m) for w in ("final", "best") for split, m in (rec.get(w) or {}).items()]
    splits = {split for w in ("final", "best") for split in (rec.get(w) or {})}
    for i, e in enumerate(rec.get("evals") or []):
        if not isinstance(e, dict):
            return f"evals[{i}] is a {type(e).__name__}, not an object"
        metrics += [(f"evals[{i}].{split}", e[split]) for split in splits if split in e]
    for where, m in metrics:
        if not isinstance(m, dict):
            return f"{where} is a {type(m).__name__}, not an object of metrics"
        acc = m.get("accuracy")
        if acc is not None and (isinstance(acc, bool) or not isinstance(acc, (int, float))):
            return f"{where}.accuracy is {acc!r}, not a number"
    return None


def load(directory: str | os.PathLike | None = None, **filters: Any) -> list[dict]:
    """All records (oldest first), optionally filtered by top-level fields, e.g. ``load(task="bit-xor")``;
    ``backbone="minilm"`` matches the backbone's name. Bad files are skipped with a warning (``read_record``)."""
    folder = results_dir(directory)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"the results folder {folder} is a file, not a folder: give --results-dir (or "
                         f"$FPT_RESULTS_DIR) the folder that holds the records")
    records = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        if path.name == MANIFEST:      # how the records were produced (evidence folder), not a record
            continue
        rec = read_record(path)
        if rec is not None and all(_matches(rec, k, v) for k, v in filters.items()):
            records.append(rec)
    return sorted(records, key=lambda r: str(r.get("created_at", "")))


def _matches(rec: dict, field: str, want: Any) -> bool:
    have = rec.get(field)
    if field == "backbone" and isinstance(have, dict):
        return have.get("name") == want
    return have == want


# -- record queries -----------------------------------------------------------------------------

def accuracy(record: Mapping[str, Any], split: str | None = None, which: str = "final") -> float | None:
    """A record's accuracy as a fraction: ``which`` is ``final`` or ``best``; ``split`` defaults to
    ``test`` when the run was evaluated on it (the paper reports test accuracy), else the last."""
    values = record.get(which) or {}
    if not values:
        return None
    if split is None:
        split = "test" if "test" in values else list(values)[-1]
    entry = values.get(split)
    return None if entry is None else entry.get("accuracy")


def eval_split(record: Mapping[str, Any], prefer: Sequence[str] = ("val", "test")) -> str | None:
    """The evaluation split a record's curve is drawn from: ``val`` when evaluated, else ``test``,
    else the first split it has (from its final metrics, else its evaluations)."""
    splits = list((record.get("final") or {}).keys()) or \
        [k for e in (record.get("evals") or [])[:1] for k, v in e.items() if isinstance(v, Mapping)]
    for s in prefer:
        if s in splits:
            return s
    return splits[0] if splits else None


def steps_to(record: Mapping[str, Any], target: float, split: str | None = None) -> int | None:
    """The first evaluated step at which the accuracy on ``split`` (default: :func:`eval_split`)
    reached ``target`` (a fraction); None when it never did within the run."""
    split = split or eval_split(record) or "val"
    for e in record.get("evals", []):
        entry = e.get(split)
        if isinstance(entry, Mapping) and entry.get("accuracy") is not None and entry["accuracy"] >= target:
            return e["step"]
    return None


def train_accuracy(record: Mapping[str, Any]) -> float | None:
    """The last logged training accuracy of a run (averaged over its last logging interval)."""
    hist = record.get("history") or []
    return hist[-1].get("accuracy") if hist else None


def provenance(record: Mapping[str, Any], *, data: bool = False) -> str:
    """What produced a record's numbers, e.g. ``minilm (pretrained), freeze fpt, lr 0.001, 300 steps,
    seed 0``; ``data=True`` adds the data source."""
    bb = record.get("backbone") or {}
    cfg = record.get("run_config") or {}
    layers = cfg.get("layers")
    depth = f", {layers} layer{'s' if layers != 1 else ''}" if layers else ""
    parts = [f"{bb.get('name', '?')} ({bb.get('init', '?')}{depth})",
             f"freeze {record.get('freeze', '?')}"]
    hp = record.get("hyperparameters") or {}
    if hp.get("lr") is not None:
        parts.append(f"lr {hp['lr']:g}")
    parts.append(f"{record.get('steps', '?')} steps")
    parts.append(f"seed {record.get('seed', '?')}")
    if data:
        parts.append(str(record.get("data_source", "?")))
    return ", ".join(parts)
