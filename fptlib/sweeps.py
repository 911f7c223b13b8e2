"""Learning-rate sweeps with validation-based selection over several seeds.

The critique of FPT (Rothermel et al. 2021) showed that the paper's single learning rate (1e-3)
favoured frozen models: once every model gets its own tuned learning rate (swept from 1e-6 to
1e-2, batch 8, early stopping on validation, 3 seeds), fully trained transformers beat frozen
ones. ``sweep`` does exactly that for one run configuration:

1. run every (lr, seed) pair (each a stored, reusable run);
2. per run, take the evaluation with the best *validation* accuracy (early stopping) and the
   *test* accuracy at that same evaluation;
3. choose the lr whose mean best-validation accuracy over seeds is highest, and report its mean
   and spread of test accuracy. Test numbers never influence the choice.
"""
from __future__ import annotations

import dataclasses
import statistics
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from fptlib import experiments
from fptlib.experiments import RunConfig
from fptlib.train.trainer import NonFiniteLossError

CRITIQUE_LRS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2)
QUICK_LRS = (3e-4, 1e-3, 3e-3)


def early_stopped(record: dict, select: str = "val", report: str = "test") -> tuple[float, float, int]:
    """(best validation accuracy, test accuracy at that evaluation, its step) of one record."""
    evals = [e for e in record.get("evals", []) if select in e]
    if not evals:
        raise ValueError(f"run {record.get('key')} has no evaluations on split {select!r}: "
                         f"sweeps need eval_every > 0 and a validation split")
    best = max(evals, key=lambda e: e[select]["accuracy"])
    reported = best.get(report, best[select])["accuracy"]
    return best[select]["accuracy"], reported, best["step"]


@dataclass
class SweepResult:
    base: RunConfig
    rows: list[dict]          # per lr: val mean, test mean/std, per-seed values
    best_lr: float
    select: str
    report: str

    @property
    def best(self) -> dict:
        return next(r for r in self.rows if r["lr"] == self.best_lr)

    def markdown(self) -> str:
        lines = [f"Learning-rate sweep: {self.base.describe()} (selection on {self.select}, "
                 f"reported: {self.report} at the best-{self.select} evaluation)", "",
                 f"| lr | {self.select} acc % (mean) | {self.report} acc % (mean +- std) | seeds |",
                 "|---|---|---|---|"]
        for r in self.rows:
            mark = " **chosen**" if r["lr"] == self.best_lr else ""
            lines.append(f"| {r['lr']:g}{mark} | {100 * r['val_mean']:.1f} | {100 * r['test_mean']:.1f} +- "
                         f"{100 * r['test_std']:.1f} | {len(r['seeds'])} |")
        return "\n".join(lines)


def sweep(base: RunConfig, lrs=QUICK_LRS, seeds=(0, 1), *, select: str = "val", report: str = "test",
          directory=None, progress: bool = True, device: str = "auto",
          log: Callable[[str], None] = print) -> SweepResult:
    if not lrs or not seeds:
        raise ValueError("a sweep needs at least one learning rate and one seed")
    if any(not (isinstance(lr, (int, float)) and lr > 0) for lr in lrs):
        raise ValueError(f"learning rates must be positive numbers, got {list(lrs)}")
    rows = []
    for lr in lrs:
        vals, tests = [], []
        for seed in seeds:
            cfg = dataclasses.replace(base, lr=float(lr), seed=int(seed))
            log(f"sweep: lr {lr:g}, seed {seed}: {cfg.key}")
            record = experiments.run(cfg, directory=directory, progress=progress, device=device)
            v, t, _ = early_stopped(record, select, report)
            vals.append(v)
            tests.append(t)
        rows.append({"lr": float(lr), "val_mean": statistics.fmean(vals), "test_mean": statistics.fmean(tests),
                     "test_std": statistics.pstdev(tests), "seeds": list(seeds), "val": vals, "test": tests})
    best_lr = max(rows, key=lambda r: r["val_mean"])["lr"]
    return SweepResult(base, rows, best_lr, select, report)


def sweep_each(configs: Mapping[str, Any], lrs: Sequence[float], seeds: Sequence[int] = (0,), *,
               progress: bool = True) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """``sweep`` for each labelled configuration (its own learning rate chosen on
    validation). A learning rate whose run diverges (NaN loss) is dropped, with a message, and the
    sweep continues without it. Returns ``({label: SweepResult}, {label: [diverged lrs]})``."""
    results: dict[str, Any] = {}
    diverged: dict[str, list[float]] = {}
    for label, cfg in configs.items():
        remaining = list(lrs)
        diverged[label] = []
        while remaining:
            try:
                results[label] = sweep(cfg, lrs=remaining, seeds=tuple(seeds), progress=progress)
                break
            except NonFiniteLossError as err:
                bad = next((lr for lr in remaining if f"lr={lr}" in str(err)), remaining[-1])
                print(f"{label}: lr {bad:g} diverged (NaN loss); dropped from its sweep")
                diverged[label].append(bad)
                remaining.remove(bad)
    return results, diverged
