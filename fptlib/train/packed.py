"""Packed runs: K configurations trained in one forward/backward over one shared frozen backbone.

FPT's frozen attention and feed-forward weights are the same for every run on a backbone; only
the small trained parts differ (input and output layers, layer norms, positions). A pack of K
runs (differing in seed, learning rate, optimizer settings, the initialisation of their trained
parameters) is therefore trained as one model on the K runs' batches stacked along the batch
dimension: ``[K * B, ...]``, run ``i``'s examples in rows ``i*B .. (i+1)*B - 1``.

How (``packed_model.py``): a copy of the model shares the frozen parameters and replaces every
module that owns trained parameters by a twin holding K stacked copies; all trained parameters of
the pack live in one ``[K, N]`` tensor. The loop is the Trainer's (``loop.Loop``): this module's
``PackedTrainer`` is its engine for K runs (the stacked step, the packed evaluation, the pack's
checkpoint state, runs leaving the pack), so a pack logs, stops on NaN, evaluates, checkpoints,
resumes and answers Ctrl-C exactly as a run alone does.

Each run keeps its own data stream (``task.train_batches`` with its own seed, exactly the batches
it would get alone), optimizer state, clipping, evaluation (the fixed evaluation batches repeated
for the K runs, one packed forward, in eval mode), early stop, fp16 loss scale (``PerRunScaler``:
torch.amp.GradScaler's dynamic scale per run, so an overflow in one run skips only that run's
step), and result: a run that reaches its steps or target accuracy, or whose loss becomes NaN,
leaves the pack (the others go on unchanged).

What differs from training alone: batched matmuls sum in another order (float rounding, see
tests/test_packed.py for the size), and dropout masks are drawn for the whole stacked batch from
one generator, so with dropout > 0 a packed run is a different (equally valid) random draw than
the same run alone.

Under DDP (torchrun, ``distributed.py``) every process draws every run's global batch as one
process would and keeps its slice (``distributed.shard`` per run: run i's rows on rank r are the
examples a DDP Trainer of run i gives rank r); after the summed backward the flat gradient [K, N]
is averaged over the processes (one all-reduce), before unscaling, clipping and Adam, so every
process keeps the same parameters, the ones a single process gets on the whole batch. The logged
losses and accuracies are averaged over the processes too (the global batch's, as alone), the
first NaN step is the earliest of any process, and the time budget stops every process when one
runs out, so all stop together. Rank 0 evaluates and sends its results to the others (the stop
decisions are rank 0's by construction), shows progress and writes the checkpoint. With dropout
each process draws the masks of its own slice (as under the DDP Trainer).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as torch_dist

from fptlib.train import checkpoint as ckpt
from fptlib.train import distributed
from fptlib.train.config import TrainConfig, TrainResult, compile_mode, jsonable, model_identity, task_identity
from fptlib.train.loop import Loop, RunRecord, autocast, compiled, place, target_split
from fptlib.train.packed_model import (PACKABLE_GROUPS, PackedModel, PackError, PerRunScaler,  # noqa: F401
                                       adam_step, clip_rows, frozen_difference, share_frozen, stack_batches)

TECHNIQUE = "batch-stacked"
# settings every run of a pack shares (one stacked batch, one evaluation schedule, one device)
SHARED_SETTINGS = ("batch_size", "grad_accum", "eval_every", "eval_splits", "eval_limit", "eval_batch_size",
                   "time_budget_s", "device", "amp", "compile", "log_every", "checkpoint_every")
# settings a run may have of its own
RUN_SETTINGS = ("lr", "optimizer", "weight_decay", "grad_clip", "seed", "steps", "target_accuracy", "target_split")
PACK_CHECKPOINT_KEYS = ("format", "identity", "fingerprint", "runs", "step", "rng", "active", "flat", "exp_avg",
                        "exp_avg_sq", "opt_steps")
# Measured by bench/bench_packed.py (bench/RESULTS.md, "packing default"): on a CPU pack="auto" packs
# CPU_AUTO_PACK runs of a task whose sequences are at most CPU_PACK_MAX_TOKENS long (Bit XOR's 10
# tokens: packed was faster) and trains longer ones one at a time (64-token digits: not faster).
CPU_AUTO_PACK = 4
CPU_PACK_MAX_TOKENS = 10


@dataclass
class PackedTrainResult(TrainResult):
    """A TrainResult plus who the run was packed with (``packed``: technique, size, index, the runs)."""
    packed: dict = field(default_factory=dict)


class _Active:
    """The runs still in the pack: position p of every tensor and list belongs to run ``runs[p]``."""

    def __init__(self, runs, flat, exp_avg, exp_avg_sq, opt_steps, scaler: PerRunScaler):
        self.runs, self.flat, self.exp_avg, self.exp_avg_sq, self.opt_steps = runs, flat, exp_avg, exp_avg_sq, opt_steps
        self.scaler = scaler

    def start(self, configs, task, step: int, device) -> None:
        """Per-run data streams from ``step`` (the batches each run gets alone) and settings."""
        c0 = configs[0]
        self.batches = [task.train_batches(c0.batch_size, device, configs[i].seed, start_step=step * c0.grad_accum)
                        for i in self.runs]
        self.settings(configs)

    def settings(self, configs) -> None:
        """Per run: lr, weight decay (None when no run decays), AdamW or not, clipping norm."""
        cs, dev = [configs[i] for i in self.runs], self.flat.device
        per_run = lambda values, dtype=torch.float32: torch.tensor(values, device=dev, dtype=dtype)  # noqa: E731
        self.lr = per_run([c.lr for c in cs], torch.float64)
        self.wd = per_run([c.weight_decay for c in cs], torch.float64) if any(c.weight_decay for c in cs) else None
        self.decoupled = per_run([c.optimizer == "adamw" for c in cs], torch.bool)
        self.clip = per_run([c.grad_clip if c.grad_clip is not None else float("inf") for c in cs])

    def keep(self, positions: list[int], configs) -> None:
        """Drop the other runs (finished) from the pack: their rows, optimizer states and streams."""
        if len(positions) == len(self.runs):
            return
        index = torch.tensor(positions, device=self.flat.device, dtype=torch.long)
        self.flat, self.exp_avg, self.exp_avg_sq = (
            t.detach()[index].clone() for t in (self.flat, self.exp_avg, self.exp_avg_sq))
        self.opt_steps = self.opt_steps[index]
        self.scaler.keep(index)
        self.runs, self.batches = ([xs[p] for p in positions] for xs in (self.runs, self.batches))
        self.settings(configs)

    def state(self) -> dict:
        return {"active": self.runs, "flat": self.flat.detach().cpu(), "exp_avg": self.exp_avg.cpu(),
                "exp_avg_sq": self.exp_avg_sq.cpu(), "opt_steps": self.opt_steps.cpu(), **self.scaler.state()}


def describe_run(config: TrainConfig) -> dict:
    return {k: getattr(config, k) for k in ("seed", "lr", "optimizer", "weight_decay", "grad_clip", "steps")}


def check_packable(models, task, configs) -> None:
    """Refuse (PackError) runs that cannot share one stacked forward; the message names the difference."""
    if len(models) != len(configs) or not models:
        raise PackError(f"a pack needs one model per config, got {len(models)} models and {len(configs)} configs")
    first = configs[0]
    for i, c in enumerate(configs[1:], 1):
        diffs = [f"{k}: {getattr(first, k)!r} vs {getattr(c, k)!r}" for k in SHARED_SETTINGS
                 if getattr(first, k) != getattr(c, k)]
        if diffs:
            raise PackError(f"run {i} cannot join the pack of run 0: packed runs share {', '.join(SHARED_SETTINGS)}; "
                            f"they differ in {'; '.join(diffs)}")
        if c.checkpoint_dir is not None:
            raise PackError("a packed run has no checkpoint_dir of its own: give PackedTrainer(checkpoint_dir=...)")
    ident = model_identity(models[0])
    for i, m in enumerate(models[1:], 1):
        if model_identity(m) != ident:
            diffs = ckpt.config_differences(jsonable(ident), jsonable(model_identity(m)))
            raise PackError(f"run {i}'s model differs from run 0's ({'; '.join(diffs[:5])}): a pack shares one "
                            f"model configuration")
        differs = frozen_difference(models[0], m)
        if differs:
            raise PackError(f"run {i}'s frozen weights differ from run 0's (e.g. {differs}): a pack shares one frozen "
                            f"backbone. A randomly initialised backbone built with another seed is another "
                            f"backbone; pack only runs whose backbone is the same (e.g. pretrained)")


class PackedTrainer:
    """``PackedTrainer(models, task, configs).fit()`` -> one result per run: the TrainResult the
    Trainer would return (a PackedTrainResult, with who it was packed with), or the
    NonFiniteLossError of a run whose loss became NaN (the other runs are not affected).

    ``models``: one per run, built exactly as each run alone would be (so the trained parameters
    start where they would); their frozen weights must be equal. ``configs``: one TrainConfig per
    run; runs may differ in RUN_SETTINGS, share SHARED_SETTINGS. The trained parameters are written
    back into each model. ``checkpoint_dir``: the pack's checkpoint (resume gives the same pack)."""

    CHECKPOINT_KEYS = PACK_CHECKPOINT_KEYS

    def __init__(self, models, task, configs, *, checkpoint_dir: str | None = None, resume: bool = True,
                 progress: bool | None = None):
        models, configs = list(models), list(configs)
        check_packable(models, task, configs)
        self.models, self.task, self.configs = models, task, configs
        c = configs[0]
        where = place(task, c)          # the settings every run shares: splits, device, amp, processes
        self.dist, self.device, self.splits, self.amp_dtype = where.dist, where.device, where.splits, where.amp_dtype
        for i, cfg in enumerate(configs):
            target_split(cfg, self.splits, run=f"run {i}: ")
        self.checkpoint_dir, self.resume = checkpoint_dir, resume
        self.progress = (c.progress if progress is None else progress) and self.dist.is_main
        self.label = f"{getattr(task, 'name', 'train')} x{len(configs)}"
        self.net = PackedModel(models[0]).to(self.device)
        if not self.net.names:
            raise ValueError("the model has no trainable parameters: check the freeze preset (e.g. 'fpt')")
        self.compile_mode = compile_mode(c, self.device, task, self.dist.world_size)
        # CUDA graphs (as in the Trainer) are told where each forward-backward pass begins; a run
        # leaving the pack changes the shapes, and the graphs are recorded again for the new K
        self.forward, self._mark_step = compiled(self.net, self.compile_mode, self.device)
        self._fingerprint = None
        self.pack: _Active | None = None
        self.rows: dict[int, torch.Tensor] = {}     # the final parameters of the runs that left the pack
        self.loss_scales: dict[int, float] = {}     # ... and their fp16 loss scales

    def fit(self) -> list:
        """Train the pack; per run its PackedTrainResult or its NonFiniteLossError."""
        self._fingerprint = None
        return Loop(self).run()

    # -- checkpoints ------------------------------------------------------------------------
    def identity(self) -> dict:
        return jsonable({"packed": TECHNIQUE, "model": model_identity(self.models[0]),
                         "task": task_identity(self.task), "runs": [c.identity() for c in self.configs]})

    @property
    def checkpoint_path(self) -> Path | None:
        return Path(self.checkpoint_dir) / ckpt.CHECKPOINT_NAME if self.checkpoint_dir else None

    def _frozen_fingerprint(self) -> dict:
        if self._fingerprint is None:
            self._fingerprint = ckpt.frozen_fingerprint(self.models[0])
        return self._fingerprint

    # -- the engine of K runs (see loop.py) -------------------------------------------------
    def prepare(self, saved: dict | None, path: Path) -> list[RunRecord] | None:
        """A fresh pack (None), or the checkpoint's runs and pack state, checked against these
        runs' configurations and frozen weights."""
        dev, fp16, k = self.device, self.amp_dtype == torch.float16, len(self.configs)
        self.rows, self.loss_scales = {}, {}
        if saved is None:
            flat = torch.stack([self.net.flatten(m).to(dev) for m in self.models])
            self.pack = _Active(list(range(k)), flat, torch.zeros_like(flat), torch.zeros_like(flat),
                                torch.zeros(k, device=dev, dtype=torch.float64), PerRunScaler(k, dev, fp16))
            return None
        ckpt.check_compatible(path, saved["identity"], self.identity(), saved["fingerprint"], self._frozen_fingerprint())
        runs = saved["runs"]
        self.rows = {i: run["row"] for i, run in enumerate(runs) if run.get("row") is not None}
        self.loss_scales = {i: run["loss_scale"] for i, run in enumerate(runs) if "loss_scale" in run}
        self.pack = _Active(saved["active"], *(saved[n].to(dev) for n in ("flat", "exp_avg", "exp_avg_sq", "opt_steps")),
                            PerRunScaler(len(saved["active"]), dev, fp16, saved.get("loss_scale"),
                                         saved.get("growth_tracker")))    # absent in checkpoints before fp16 packs
        return [RunRecord.of(run) for run in runs]

    def start(self, active: list[int], step: int) -> None:
        if active != self.pack.runs:
            raise ValueError(f"the pack's checkpoint lists runs {self.pack.runs} as training but {active} by their "
                             f"records: it is damaged; delete {self.checkpoint_path} to start afresh")
        self.net.train()
        self.pack.start(self.configs, self.task, step, self.device)

    def step(self, step: int, window) -> None:
        """One optimizer step of every run in the pack: forward/backward on the stacked batches,
        per-run loss scaling under fp16 (a run whose gradient overflowed skips its update), clipping
        and Adam; losses, accuracies and the first NaN step summed on the device."""
        c0, task, dev, pack = self.configs[0], self.task, self.device, self.pack
        k = len(pack.runs)
        pack.flat.requires_grad_(True)
        for _ in range(c0.grad_accum):
            if self._mark_step:
                torch.compiler.cudagraph_mark_step_begin()
            x, y, mask = stack_batches([distributed.shard(next(b), self.dist) for b in pack.batches], task)
            with autocast(dev, self.amp_dtype):
                logits = self.forward(pack.flat, x.to(dev), None if mask is None else mask.to(dev)).float()
            logits = logits.view(k, -1, *logits.shape[1:])
            losses = torch.stack([task.loss(logits[p], y[p]) for p in range(k)])
            (pack.scaler.scale_losses(losses).sum() / c0.grad_accum).backward()
            losses = losses.detach()
            window.add(losses, torch.stack([task.accuracy(logits[p].detach(), y[p]) for p in range(k)]), step)
        grad, pack.flat = pack.flat.grad, pack.flat.detach()
        if self.dist.enabled:            # the mean over the processes' slices: the global batch's gradient
            torch_dist.all_reduce(grad)
            grad.div_(self.dist.world_size)
        found_inf = pack.scaler.unscale_(grad)              # None without fp16
        clip_rows(grad, pack.clip)
        pack.opt_steps += 1 if found_inf is None else ~found_inf
        adam_step(pack.flat, grad, pack.exp_avg, pack.exp_avg_sq, pack.opt_steps, pack.lr, pack.wd, pack.decoupled,
                  skip=found_inf)
        pack.scaler.update(found_inf)

    def evaluate_runs(self, indices: list[int]) -> list[dict[str, dict]]:
        """Per run of ``indices`` (in the pack, or left it) its metrics per split, evaluated together."""
        live = self.pack.flat.detach()
        rows = torch.stack([live[self.pack.runs.index(i)] if i in self.pack.runs else self.rows[i].to(self.device)
                            for i in indices])
        return self._evaluate_agreed(rows)

    def retire(self, index: int) -> None:
        """Run ``index`` stops: its parameters (and fp16 loss scale) are kept apart from the pack."""
        p = self.pack.runs.index(index)
        self.rows[index] = self.pack.flat[p].detach().cpu().clone()
        if self.pack.scaler.enabled:
            self.loss_scales[index] = self.pack.scaler.scale[p].item()

    def keep(self, active: list[int]) -> None:
        self.pack.keep([p for p, i in enumerate(self.pack.runs) if i in active], self.configs)

    def payload(self, records: list[RunRecord]) -> dict:
        runs = [{**run.saved(), "row": self.rows.get(i),
                 **({"loss_scale": self.loss_scales[i]} if i in self.loss_scales else {})}
                for i, run in enumerate(records)]
        return {"identity": self.identity(), "fingerprint": self._frozen_fingerprint(), "runs": runs,
                **self.pack.state()}

    def result(self, index: int, fields: dict) -> PackedTrainResult:
        """Run ``index``'s result; its trained parameters are written back into its model."""
        self.net.unflatten_into(self.rows[index].to(self.device), self.models[index])
        others = [{"index": j, **describe_run(c)} for j, c in enumerate(self.configs) if j != index]
        return PackedTrainResult(**fields, packed={"technique": TECHNIQUE, "runs": len(self.configs),
                                                   "index": index, "with": others})

    # -- evaluation -------------------------------------------------------------------------
    @torch.no_grad()
    def _evaluate_rows(self, rows: torch.Tensor) -> list[dict[str, dict]]:
        """Mean loss and accuracy per split for K runs' parameters ``rows`` [K, N] at once: every
        fixed evaluation batch repeated K times, one packed forward, in eval mode, under a forked
        RNG (evaluating never changes the training trajectory); as Trainer.evaluate per run."""
        c, task, dev, k = self.configs[0], self.task, self.device, rows.shape[0]
        was_training = self.net.training
        self.net.eval()
        out = [{} for _ in range(k)]
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
            for split in self.splits:
                loss_sum = torch.zeros(k, device=dev, dtype=torch.float64)
                acc_sum = torch.zeros(k, device=dev, dtype=torch.float64)
                n = 0
                for batch in task.eval_batches(split, c.eval_batch_size or max(c.batch_size, 64), dev, c.eval_limit):
                    batch = batch.to(dev)
                    mask = None if batch.mask is None else batch.mask.repeat(k, 1)
                    with autocast(dev, self.amp_dtype):
                        logits = self.net(rows, batch.x.repeat(k, *([1] * (batch.x.dim() - 1))), mask).float()
                    logits = logits.view(k, -1, *logits.shape[1:])
                    b = batch.y.shape[0]
                    loss_sum += torch.stack([task.loss(logits[p], batch.y) for p in range(k)]).double() * b
                    acc_sum += torch.stack([task.accuracy(logits[p], batch.y) for p in range(k)]).double() * b
                    n += b
                if n == 0:
                    raise ValueError(f"split {split!r} of task {getattr(task, 'name', '?')!r} produced no examples")
                for p, (loss, acc) in enumerate(zip(loss_sum.tolist(), acc_sum.tolist())):
                    out[p][split] = {"loss": loss / n, "accuracy": acc / n, "examples": n}
        self.net.train(was_training)
        return out

    def _evaluate_agreed(self, rows: torch.Tensor) -> list[dict[str, dict]]:
        """``_evaluate_rows``; under DDP rank 0 evaluates and every process gets its results, so the
        records and the stop decisions drawn from them are the same on every process."""
        return distributed.from_main(self._evaluate_rows(rows) if self.dist.is_main else None, self.dist)


def auto_pack_size(runs: int, device, *, per_run_bytes: int | None = None, free_bytes: int | None = None,
                   fraction: float = 0.7, tokens: int | None = None) -> int:
    """How many runs to pack: on CUDA as many as ``fraction`` of the free memory holds (one run's
    step costs ``per_run_bytes``, measured by ``measure_run_bytes``); on a CPU ``CPU_AUTO_PACK``
    where bench/bench_packed.py measured packing faster: sequences of at most ``CPU_PACK_MAX_TOKENS``
    (``tokens``: the task's length; longer ones: 1); 1 means do not pack."""
    device = torch.device(device)
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    if device.type != "cuda":
        if tokens is not None and tokens > CPU_PACK_MAX_TOKENS:
            return 1
        return max(1, min(runs, CPU_AUTO_PACK))
    if per_run_bytes is None or per_run_bytes <= 0:
        raise ValueError("on CUDA the pack size is chosen by memory: give per_run_bytes (measure_run_bytes)")
    if free_bytes is None:
        free_bytes, _ = torch.cuda.mem_get_info(device)
    return max(1, min(runs, int(fraction * free_bytes // per_run_bytes)))


def measure_run_bytes(model, task, config: TrainConfig) -> int:
    """Peak CUDA memory one packed run's training step adds (a pack of one, one step, then freed)."""
    device = torch.device(config.device if config.device != "auto" else "cuda")
    if device.type != "cuda":
        raise ValueError("measure_run_bytes measures CUDA memory; on a CPU auto_pack_size needs no measurement")
    net = PackedModel(model).to(device)
    flat = net.flatten(model).to(device)[None].requires_grad_(True)
    batch = next(task.train_batches(config.batch_size, device, config.seed))
    torch.cuda.synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    logits = net(flat, batch.x, batch.mask).float()
    task.loss(logits, batch.y).backward()
    torch.cuda.synchronize(device)
    used = torch.cuda.max_memory_allocated(device) - before + 3 * flat.numel() * 4   # + grad and Adam's 2 states
    del net, flat, logits
    return int(used)
