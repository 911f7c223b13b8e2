"""Learning-rate sweeps with validation-based selection over several seeds.

The critique of FPT (Rothermel et al. 2021) showed that the paper's single learning rate (1e-3)
favoured frozen models: once every model gets its own tuned learning rate (swept from 1e-6 to
1e-2, batch 8, early stopping on validation, 3 seeds), fully trained transformers beat frozen
ones. One selection rule, :func:`select_by_validation`, used by ``sweep`` and by the tables:

1. every (lr, seed) pair is a stored, reusable run;
2. per run, the evaluation with the best *validation* accuracy counts, with the *test* accuracy
   at that same evaluation (``stats.selected``: early stopping);
3. the lr whose mean best-validation accuracy over seeds is highest is chosen, and its test
   accuracies over seeds (``stats.Summary``) are reported. Test numbers never influence the choice.
"""
from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

from fptlib import experiments, results, stats
from fptlib.experiments import RunConfig
from fptlib.train.trainer import NonFiniteLossError

# RunConfig fields that make two records different configurations (not just another lr or seed)
_SETTING_FIELDS = tuple(f.name for f in dataclasses.fields(RunConfig)
                        if f.compare and f.name not in experiments.GROUP_VARIES)


def record_lr(record: Mapping) -> float:
    """The learning rate a record was trained with (its run config, else its hyperparameters)."""
    lr = (record.get("run_config") or {}).get("lr", (record.get("hyperparameters") or {}).get("lr"))
    if lr is None:
        raise ValueError(f"run {record.get('key')!r} does not say its learning rate")
    return float(lr)


def _setting(record: Mapping) -> dict:
    run = record.get("run_config") or {}
    return {k: run[k] for k in _SETTING_FIELDS if k in run}


def by_lr(records: Iterable[Mapping], select: str = "val",
          report: str = "test") -> dict[float, tuple[stats.Summary, stats.Summary]]:
    """One configuration's records grouped by learning rate (ascending): per lr, the seeds'
    ``select`` accuracies and ``report`` accuracies, each at the run's best-``select`` evaluation.
    Records of different configurations (other than lr and seed) are refused."""
    records = list(records)
    if not records:
        raise ValueError("no records to select from: run the sweep's configurations first")
    settings = {json.dumps(_setting(r), sort_keys=True, default=str) for r in records}
    if len(settings) > 1:
        raise ValueError(f"these records are {len(settings)} configurations, not one that differs in lr "
                         f"and seed only (keys {[r.get('key') for r in records][:4]}...): group them per "
                         f"configuration (row and column) first")
    groups: dict[float, list] = defaultdict(list)
    for r in records:
        groups[record_lr(r)].append(r)
    out = {}
    for lr in sorted(groups):
        runs = sorted(groups[lr], key=lambda r: (r.get("seed") is None, r.get("seed") or 0))   # as summarize
        chosen = [stats.selected(r, select, report) for r in runs]
        seeds = tuple(r.get("seed") for r in runs)
        out[lr] = (stats.Summary(tuple(c.selected for c in chosen), seeds),
                   stats.summarize(groups[lr], select, report))
    return out


def select_by_validation(records: Iterable[Mapping], select: str = "val",
                         report: str = "test") -> tuple[float, stats.Summary]:
    """``(lr, test Summary)`` of one configuration swept over learning rates and seeds: the lr with
    the highest mean validation accuracy over its seeds (ties: the smallest lr), and the test
    accuracies of its seeds, each at that run's best-validation evaluation."""
    table = by_lr(records, select, report)
    lr = max(table, key=lambda k: table[k][0].mean)        # ascending keys: ties go to the smallest lr
    return lr, table[lr][1]


def select_each(records: Iterable[Mapping], select: str = "val",
                report: str = "test") -> dict[tuple[str, str], tuple[float, stats.Summary]]:
    """:func:`select_by_validation` per setting of a table, a setting being a (row, column) of the
    records' labels: ``{(row, column): (lr, test Summary)}`` for every setting run at more than
    one learning rate."""
    settings: dict[tuple[str, str], list] = defaultdict(list)
    for r in records:
        label = r.get("label") or {}
        settings[(label.get("row", ""), label.get("column", ""))].append(r)
    return {where: select_by_validation(runs, select, report) for where, runs in settings.items()
            if len({record_lr(r) for r in runs}) > 1}


@dataclass
class SweepResult:
    base: RunConfig
    rows: list[dict]          # per lr: val mean, test mean/std, per-seed values
    best_lr: float
    select: str
    report: str

    diverged: dict = dataclasses.field(default_factory=dict)   # lr -> seeds whose loss became NaN

    @property
    def best(self) -> dict:
        return next(r for r in self.rows if r["lr"] == self.best_lr)

    def markdown(self) -> str:
        lines = [f"Learning-rate sweep: {self.base.describe(sweep=True)} (selection on {self.select}, "
                 f"reported: {self.report} at the best-{self.select} evaluation)", "",
                 f"| lr | {self.select} acc % (mean) | {self.report} acc % (mean +- std) | seeds |",
                 "|---|---|---|---|"]
        for r in self.rows:
            mark = " **chosen**" if r["lr"] == self.best_lr else ""
            lines.append(f"| {r['lr']:g}{mark} | {100 * r['val_mean']:.1f} | {100 * r['test_mean']:.1f} +- "
                         f"{100 * r['test_std']:.1f} | {len(r['seeds'])} |")
        for lr, seeds in sorted(self.diverged.items()):
            lines.append(f"| {lr:g} | diverged | diverged (NaN loss, seed{'s' if len(seeds) > 1 else ''} "
                         f"{', '.join(map(str, seeds))}) | {len(seeds)} |")
        if self.diverged:
            lines += ["", "A diverged rate is never chosen; a rate with any diverged seed counts as diverged."]
        return "\n".join(lines)


def sweep(base: RunConfig, lrs=None, seeds=(0, 1), *, select: str = "val", report: str = "test",
          directory=None, progress: bool = True, device: str = "auto",
          log: Callable[[str], None] = print, pack: bool | int | str = "auto") -> SweepResult:
    """Run ``base`` at every lr (default: its profile's ``experiments.LR_GRID``) and seed (stored runs
    are reused) and choose the lr on validation (:func:`select_by_validation`). ``pack``: train compatible runs together as packs (see
    experiments.run_many): "auto", a pack size, or False for one run at a time; the records are the
    same either way."""
    lrs = experiments.LR_GRID[base.profile] if lrs is None else lrs
    if not lrs or not seeds:
        raise ValueError("a sweep needs at least one learning rate and one seed")
    if any(not (isinstance(lr, (int, float)) and lr > 0) for lr in lrs):
        raise ValueError(f"learning rates must be positive numbers, got {list(lrs)}")
    for what, values in (("learning rate", [float(lr) for lr in lrs]), ("seed", list(seeds))):
        twice = sorted({v for v in values if values.count(v) > 1})
        if twice:
            raise ValueError(f"{what} {', '.join(map(str, twice))} given twice: give each {what} once "
                             f"(a repeated one would count its run twice in the mean)")
    configs = [dataclasses.replace(base, lr=float(lr), seed=int(seed)) for lr in lrs for seed in seeds]
    store = experiments.store_dir(base.profile, directory)

    def note(cfg: RunConfig, err: Exception) -> None:
        log(f"sweep: lr {cfg.lr:g}, seed {cfg.seed} diverged (NaN loss): recorded as diverged, never chosen")
        results.mark_diverged(cfg.key, str(err), store)

    todo = [c for c in configs if results.diverged(c.key, store) is None]      # diverged before: not again
    experiments.run_many(todo, pack=pack, directory=directory, progress=progress, device=device, log=log,
                         on_diverged=note)
    records, diverged = [], defaultdict(list)
    for cfg in configs:
        if results.diverged(cfg.key, store) is not None:
            diverged[cfg.lr].append(cfg.seed)
            continue
        log(f"sweep: lr {cfg.lr:g}, seed {cfg.seed}: {cfg.key}")
        records.append(experiments.run(cfg, directory=directory, progress=progress, device=device))
    records = [r for r in records if record_lr(r) not in diverged]
    if not records:
        raise NonFiniteLossError(f"every learning rate of the sweep diverged (NaN loss): "
                                 f"{', '.join(f'{lr:g}' for lr in diverged)}; try smaller rates")
    best_lr, _ = select_by_validation(records, select, report)
    rows = [{"lr": lr, "val_mean": val.mean, "test_mean": test.mean, "test_std": test.std,
             "seeds": list(test.seeds), "val": list(val.values), "test": list(test.values)}
            for lr, (val, test) in by_lr(records, select, report).items()]
    return SweepResult(base, rows, best_lr, select, report, dict(diverged))


def sweep_each(configs: Mapping[str, Any], lrs: Sequence[float], seeds: Sequence[int] = (0,), *,
               progress: bool = True) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """``sweep`` for each labelled configuration (its own learning rate chosen on
    validation). A learning rate whose run diverges (NaN loss) is recorded as diverged and never
    chosen (``SweepResult.diverged``). Returns ``({label: SweepResult}, {label: [diverged lrs]})``."""
    out: dict[str, Any] = {}
    diverged: dict[str, list[float]] = {}
    for label, cfg in configs.items():
        remaining = list(lrs)
        diverged[label] = []
        while remaining:
            try:
                out[label] = sweep(cfg, lrs=remaining, seeds=tuple(seeds), progress=progress)
            except NonFiniteLossError as err:       # every rate left diverged
                bad = next((lr for lr in remaining if f"lr={lr}" in str(err)), remaining[-1])
                diverged[label].append(bad)
                remaining.remove(bad)
                continue
            diverged[label] += sorted(getattr(out[label], "diverged", {}))
            break
        for lr in diverged[label]:
            print(f"{label}: lr {lr:g} diverged (NaN loss); never chosen")
    return out, diverged

