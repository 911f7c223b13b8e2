"""The training loop, once, for K >= 1 runs trained side by side: the Trainer (K = 1) and the
PackedTrainer (K runs in one stacked forward) are engines that supply only what differs.

What the loop does for every run, whatever the engine:
- logging: loss and accuracy summed on the device (``Window``) and read back with one host sync
  per log interval; a run's history entry at every ``log_every`` step, evaluation, checkpoint,
  time stop and at its last step;
- NaN isolation: a run whose loss became NaN or infinite stops with its step and the likely
  causes (``nan_message``); the other runs go on;
- evaluation every ``eval_every`` steps, the best metric per split, a stop at the target accuracy,
  a stop at the time budget (agreed by every DDP process), the final evaluation;
- checkpoints: every ``checkpoint_every`` (or ``eval_every``) steps and at the end, atomic, with
  every RNG state and the open log window, so a resumed run ends bit-identical to an uninterrupted
  one; temporaries a killed writer left are removed; Ctrl-C (``DeferredInterrupt``) finishes the
  step, saves, and raises ``TrainingInterrupted`` with the step and the checkpoint to resume from
  (a second Ctrl-C stops at once and names the last checkpoint written);
- the results: per run a TrainResult (the engine's class) or the run's NonFiniteLossError.

An engine provides: ``configs`` (one TrainConfig per run; the settings the loop reads are shared,
configs[0]'s), ``splits``, ``dist``, ``device``, ``amp_dtype``, ``compile_mode``, ``progress``,
``label`` (the progress bar's), ``checkpoint_path``, ``resume``, ``CHECKPOINT_KEYS``, and
``prepare(saved, path) -> records | None`` (a fresh state, or the checkpoint's, checked),
``start(active, step)`` (data streams from ``step``), ``step(step, window)`` (one optimizer step of
the active runs, their sums added to ``window``), ``evaluate_runs(indices) -> [{split: metrics}]``,
``retire(i)`` (run i leaves: keep its final parameters), ``keep(active)`` (drop the others),
``payload(records) -> dict`` (its part of the checkpoint) and ``result(i, record, fields)``.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

import torch
import torch.distributed as torch_dist
from tqdm.auto import tqdm

from fptlib import env
from fptlib.train import checkpoint as ckpt
from fptlib.train import distributed
from fptlib.train.config import CUDA_GRAPH_MODES, NonFiniteLossError

RECORD_FIELDS = ("step", "samples", "history", "evals", "best", "steps_to_target", "stopped", "error")


@dataclass
class RunRecord:
    """One run's account, saved in checkpoints and reported in its result."""
    step: int = 0
    samples: int = 0
    history: list = field(default_factory=list)
    evals: list = field(default_factory=list)
    best: dict = field(default_factory=dict)
    steps_to_target: int | None = None
    stopped: str | None = None          # None while training; "steps" | "target" | "time" | "nan"
    error: str | None = None            # the NaN message

    def saved(self) -> dict:
        return {k: getattr(self, k) for k in RECORD_FIELDS}

    @classmethod
    def of(cls, saved: dict) -> "RunRecord":
        return cls(**{k: saved[k] for k in RECORD_FIELDS if k in saved})


class Window:
    """Per active run (position p): loss and accuracy summed on the device since its last history
    entry, the forward passes summed (``count``), and the step of its first non-finite loss (-1)."""

    def __init__(self, k: int, device, saved: dict | None = None):
        self.loss = torch.zeros(k, device=device)
        self.acc = torch.zeros(k, device=device)
        self.first_bad = torch.full((k,), -1, dtype=torch.long, device=device)
        self.count = [0] * k
        if saved is not None and len(saved["count"]) == k:   # saved mid-window (Ctrl-C): the same log as without it
            self.loss, self.acc, self.first_bad = (saved[n].to(device) for n in ("loss", "accuracy", "first_bad"))
            self.count = list(saved["count"])

    def add(self, losses: torch.Tensor, accuracies: torch.Tensor, step: int) -> None:
        """One forward pass's losses and accuracies ([K], or a scalar for one run); no host sync."""
        self.loss += losses
        self.acc += accuracies
        self.first_bad.masked_fill_(~torch.isfinite(losses) & (self.first_bad < 0), step + 1)

    def agree(self, ctx: distributed.DistContext) -> None:
        """Under DDP: the sums averaged over the processes (each summed its slice's means, so the
        average is the global batch's; sums averaged before stay as they are), the first NaN step
        the earliest of any process. Then ``read`` gives the same on every process."""
        if not ctx.enabled:
            return
        sums = torch.stack([self.loss, self.acc])
        torch_dist.all_reduce(sums)
        self.loss, self.acc = (sums / ctx.world_size).unbind(0)
        never = torch.iinfo(torch.long).max
        bad = torch.where(self.first_bad < 0, never, self.first_bad)
        torch_dist.all_reduce(bad, op=torch_dist.ReduceOp.MIN)
        self.first_bad = torch.where(bad == never, -1, bad)

    def read(self, due: list[int]) -> list[tuple]:
        """Per position (loss, accuracy, first NaN step or -1): the means over the window for the
        positions ``due`` (their window starts again), None for the others. One host read."""
        values = torch.stack([self.loss, self.acc, self.first_bad.float()]).tolist()
        out = []
        for p, n in enumerate(self.count):
            logged = p in due and n > 0
            out.append((values[0][p] / n if logged else None, values[1][p] / n if logged else None, int(values[2][p])))
        index = torch.tensor(sorted(due), device=self.loss.device, dtype=torch.long)
        self.loss[index] = 0
        self.acc[index] = 0
        self.count = [0 if p in due else n for p, n in enumerate(self.count)]
        return out

    def keep(self, positions: list[int]) -> None:
        index = torch.tensor(positions, device=self.loss.device, dtype=torch.long)
        self.loss, self.acc, self.first_bad = (t[index] for t in (self.loss, self.acc, self.first_bad))
        self.count = [self.count[p] for p in positions]

    def state(self) -> dict:
        return {"loss": self.loss.cpu(), "accuracy": self.acc.cpu(), "first_bad": self.first_bad.cpu(),
                "count": list(self.count)}


# -- what both engines set up alike ----------------------------------------------------------
@dataclass
class Placement:
    """Where and how a run (or a pack) trains: processes, device, evaluated splits, autocast."""
    dist: distributed.DistContext
    device: torch.device
    splits: tuple[str, ...]
    amp_dtype: torch.dtype | None


def place(task, config) -> Placement:
    """The processes, device, splits and autocast of ``config``, checked (unknown splits, a target
    split not evaluated, a batch the processes cannot share)."""
    dist = distributed.context()
    device = distributed.device_for(dist, config.device)
    # eval_splits None: all of the task's; () : no evaluation at all (benchmarks)
    splits = tuple(getattr(task, "eval_splits", ()) if config.eval_splits is None else config.eval_splits)
    unknown = [s for s in splits if s not in getattr(task, "eval_splits", splits)]
    if unknown:
        raise ValueError(f"unknown eval split(s) {unknown} for task {getattr(task, 'name', task)!r}: "
                         f"it has {list(task.eval_splits)}")
    target_split(config, splits)
    if config.batch_size % dist.world_size:
        raise ValueError(f"batch_size {config.batch_size} must be divisible by the number of processes "
                         f"({dist.world_size}): each takes an equal slice of the global batch")
    if device.type == "cuda":
        # TF32 tensor cores for what stays in fp32 (Ampere and newer); the usual choice for training
        torch.set_float32_matmul_precision("high")
    return Placement(dist, device, splits, env.amp_dtype(config.amp, device))


def target_split(config, splits, run: str = "") -> str | None:
    """The split ``config``'s target accuracy is read on (checked to be evaluated)."""
    split = config.target_split or (splits[0] if splits else None)
    if config.target_accuracy is not None and split not in splits:
        raise ValueError(f"{run}target_split {split!r} is not evaluated: choose one of {list(splits)}")
    return split


def compiled(module, mode: str | None, device: torch.device):
    """(``module`` under torch.compile ``mode``, or as it is when None; whether each forward-backward
    pass must tell CUDA graphs where it begins)."""
    if mode is None:
        return module, False
    return torch.compile(module, mode=None if mode == "default" else mode), \
        mode in CUDA_GRAPH_MODES and device.type == "cuda"


def autocast(device: torch.device, dtype: torch.dtype | None):
    return contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def amp_name(dtype: torch.dtype | None) -> str:
    return str(dtype).replace("torch.", "") if dtype else "off"


def nan_message(config, amp_dtype, step: int) -> str:
    c = config
    return (f"the training loss became NaN or infinite at step {step} (lr={c.lr}, amp={amp_name(amp_dtype)}, "
            f"grad_clip={c.grad_clip}). Likely causes: a learning rate too high (try lr={c.lr / 10:g}); "
            f"fp16 overflow (use amp='bf16' or amp='off'); training attention or feed-forward weights, "
            f"which the paper reports diverging on MNIST and CIFAR-10 (lower the lr); or NaN/inf values in "
            f"the input data. Training stopped; no result was recorded for this run.")


def finish_bar(bar) -> None:
    """Close a progress bar of a run that ended as planned, at 100% of the steps it took: a run
    that stopped at its target accuracy or time budget reads as finished (green in a notebook and
    in the saved notebook's widget state), where tqdm would mark a bar short of its total as failed."""
    if not bar.disable and bar.total and bar.n < bar.total:
        bar.total = bar.n
        container = getattr(bar, "container", None)      # tqdm.notebook: (label, progress, text)
        if container is not None:
            container.children[1].max = bar.n
    bar.close()


# -- the loop ---------------------------------------------------------------------------------
class Loop:
    """``Loop(engine).run()`` -> per run a TrainResult or its NonFiniteLossError."""

    def __init__(self, engine):
        self.engine = engine
        self.configs = engine.configs
        self.c = engine.configs[0]          # the settings every run shares
        self.path = engine.checkpoint_path
        self.ckpt_every = (self.c.checkpoint_every or self.c.eval_every) if self.path is not None else 0

    def run(self) -> list:
        e = self.engine
        env.seed_everything(self.c.seed)    # dropout: one generator for the stacked batch, run 0's seed
        self._start()
        e.start(list(self.active), self.step)
        total = max(c.steps for c in self.configs)
        bar = tqdm(total=total, initial=min(self.step, total), desc=e.label,
                   disable=not (e.progress and e.dist.is_main), dynamic_ncols=True, leave=True)
        interrupt = ckpt.DeferredInterrupt(enabled=not e.dist.enabled).start()
        self.t_start = time.perf_counter() - self.wall_s
        self.t_train = time.perf_counter()
        try:
            self._train(bar, interrupt)
            finish_bar(bar)             # stopped early on purpose (target, time): finished, not failed
            self.train_s += time.perf_counter() - self.t_train
            results = self._results()
            if interrupt.requested:     # Ctrl-C during the final evaluation: done and saved, stop here
                raise ckpt.TrainingInterrupted(self.step, self.path if self.saved_step is not None else None)
            return results
        except KeyboardInterrupt as err:
            if isinstance(err, ckpt.TrainingInterrupted):
                raise
            # a second Ctrl-C (or one outside the deferred handler): the step is not whole, nothing
            # is saved now; the last checkpoint written resumes
            kept = self.saved_step is not None
            raise ckpt.TrainingInterrupted(self.saved_step if kept else self.step, self.path if kept else None) from err
        finally:
            interrupt.stop()
            bar.close()

    def _start(self) -> None:
        """A fresh state, or the checkpoint's (records, clock, log window, RNG states)."""
        e, saved = self.engine, None
        self.step, self.wall_s, self.train_s, self.resumed_from, self.saved_step = 0, 0.0, 0.0, None, None
        if self.path is not None:
            ckpt.remove_stale_temporaries(self.path.parent)
            if e.resume and self.path.exists():
                saved = ckpt.load(self.path, required=e.CHECKPOINT_KEYS)
        self.records = e.prepare(saved, self.path) or [RunRecord() for _ in self.configs]
        if saved is not None:
            self.step = self.resumed_from = self.saved_step = saved["step"]
            self.wall_s, self.train_s = saved["wall_s"], saved["train_s"]
            ckpt.set_rng_state(saved["rng"])
        self.active = [i for i, r in enumerate(self.records) if r.stopped is None]
        self.window = Window(len(self.active), e.device, saved.get("window") if saved else None)

    def _train(self, bar, interrupt) -> None:
        e, c = self.engine, self.c
        while self.active:
            e.step(self.step, self.window)
            self.step += 1
            self.window.count = [n + c.grad_accum for n in self.window.count]
            for i in self.active:
                self.records[i].step = self.step
                self.records[i].samples += c.batch_size * c.grad_accum
            self._boundary(bar)
            if interrupt.requested and self.active:     # Ctrl-C: this step is whole; save it and stop
                self.train_s += time.perf_counter() - self.t_train
                self.t_train = time.perf_counter()
                self._save()
                raise ckpt.TrainingInterrupted(self.step, self.path)

    def _boundary(self, bar) -> None:
        """After a step: log when due, evaluate, stop runs at their steps, target or the time
        budget (they leave), checkpoint."""
        c, step = self.c, self.step
        ends = {i for i in self.active if step >= self.configs[i].steps}
        do_eval = bool(self.engine.splits) and c.eval_every and step % c.eval_every == 0
        do_ckpt = self.ckpt_every and step % self.ckpt_every == 0
        out_of_time = (c.time_budget_s is not None       # agreed: every process stops at once
                       and self._anyone(time.perf_counter() - self.t_start >= c.time_budget_s))
        everyone = step % c.log_every == 0 or do_eval or do_ckpt or out_of_time
        if not (everyone or ends):
            return
        self._log(set(self.active) if everyone else ends, bar)
        self.train_s += time.perf_counter() - self.t_train
        alive = [i for i in self.active if self.records[i].stopped is None]
        to_eval = [i for i in alive if i not in ends] if do_eval else []
        reached = dict(zip(to_eval, self._evaluate(to_eval))) if to_eval else {}
        for i in alive:
            stop = "steps" if i in ends else "target" if reached.get(i) else "time" if out_of_time else None
            if stop is not None:
                self.records[i].stopped = stop
                self.engine.retire(i)
        self._keep()
        if do_ckpt:
            self._save()
        self.t_train = time.perf_counter()

    def _log(self, due: set[int], bar) -> None:
        """The one host sync: history entries of the runs ``due``, a NaN stop for any run."""
        self.window.agree(self.engine.dist)
        values = self.window.read([p for p, i in enumerate(self.active) if i in due])
        for i, (loss, accuracy, bad_step) in zip(self.active, values):
            run = self.records[i]
            if bad_step >= 0:
                run.stopped, run.error = "nan", nan_message(self.configs[i], self.engine.amp_dtype, bad_step)
            elif loss is not None:
                run.history.append({"step": run.step, "samples": run.samples,
                                    "wall_s": time.perf_counter() - self.t_start, "loss": loss, "accuracy": accuracy})
                if len(self.active) == 1:
                    bar.set_postfix(loss=f"{loss:.4f}", acc=f"{accuracy:.3f}", refresh=False)
        if self.step < bar.total:
            bar.update(self.step - bar.n)
        else:          # the last step: shown once, by bar.close() (an update would print it twice)
            bar.n = self.step

    def _keep(self) -> None:
        """Runs that stopped leave: the engine's state and the log window keep the others."""
        kept = [i for i in self.active if self.records[i].stopped is None]
        if len(kept) < len(self.active):
            self.window.keep([p for p, i in enumerate(self.active) if i in kept])
            self.engine.keep(kept)
            self.active = kept

    def _evaluate(self, indices: list[int]) -> list[bool]:
        """Evaluate runs ``indices``, record it in their evals and best; per run, True when it
        reached its target accuracy."""
        reached, splits = [], self.engine.splits
        for i, metrics in zip(indices, self.engine.evaluate_runs(indices)):
            run, c = self.records[i], self.configs[i]
            entry = {"step": run.step, "samples": run.samples, "wall_s": time.perf_counter() - self.t_start, **metrics}
            for split in splits:
                if split not in run.best or entry[split]["accuracy"] > run.best[split]["accuracy"]:
                    run.best[split] = {**entry[split], "step": run.step}
            run.evals.append(entry)
            hit = c.target_accuracy is not None and entry[c.target_split or splits[0]]["accuracy"] >= c.target_accuracy
            if hit and run.steps_to_target is None:
                run.steps_to_target = run.step
            reached.append(hit)
        return reached

    def _save(self) -> None:
        if self.path is None:
            return
        self.wall_s = time.perf_counter() - self.t_start
        if self.engine.dist.is_main:
            ckpt.atomic_save({"format": ckpt.FORMAT, "step": self.step, "wall_s": self.wall_s, "train_s": self.train_s,
                              "rng": ckpt.rng_state(), "window": self.window.state(),
                              **self.engine.payload(self.records)}, self.path)
        self.saved_step = self.step

    def _results(self) -> list:
        """The final evaluations (unless one was at the run's last step), the last checkpoint, the results."""
        e = self.engine
        final = [i for i, run in enumerate(self.records)
                 if run.stopped != "nan" and not (run.evals and run.evals[-1]["step"] == run.step)]
        if e.splits and final:
            self._evaluate(final)
        if any(run.stopped != "nan" for run in self.records):
            self._save()
        common = dict(wall_s=time.perf_counter() - self.t_start, train_s=self.train_s, resumed_from=self.resumed_from,
                      device=str(e.device), amp=amp_name(e.amp_dtype), compile=e.compile_mode or "off")
        out = []
        for i, run in enumerate(self.records):
            if run.stopped == "nan":
                out.append(NonFiniteLossError(run.error))
                continue
            final_metrics = {s: run.evals[-1][s] for s in e.splits} if run.evals else {}
            out.append(e.result(i, dict(
                steps=run.step, samples=run.samples, history=run.history, evals=run.evals, final=final_metrics,
                best=run.best, stopped=run.stopped, steps_to_target=run.steps_to_target,
                config=self.configs[i].to_dict(), **common)))
        return out

    def _anyone(self, flag: bool) -> bool:
        """True on every process when ``flag`` is True on any (one all-reduce under DDP)."""
        if not self.engine.dist.enabled:
            return flag
        t = torch.tensor([int(flag)], device=self.engine.device)
        torch_dist.all_reduce(t, op=torch_dist.ReduceOp.MAX)
        return bool(t.item())
