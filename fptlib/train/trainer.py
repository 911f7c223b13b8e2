"""The training loop: one model, one task, one TrainConfig -> a TrainResult.

Built to be fast where it matters (a GPU) and sensible on a laptop CPU:
- data comes from ``task.train_batches`` already on the device (bit tasks generate it there);
- the loss and accuracy are summed on the device and read back only every ``log_every`` steps,
  so the GPU never waits on the host between steps (the authors' loop calls ``.item()`` every step);
- autocast: bf16 on CUDA cards that support it, fp16 with a gradient scaler on older ones
  (Colab's T4), off on CPU where it was measured slower; ``torch.compile`` (CUDA graphs where
  batch shapes are fixed) for long CUDA runs, opt-in on CPU;
- the optimizer is Adam as in the paper (PyTorch defaults, no weight decay), fused on CUDA.

It also keeps a run honest and recoverable: evaluation at intervals with the best and final
metric per split, a stop at a step / time budget or a target accuracy, atomic checkpoints that
resume to the same parameters as an uninterrupted run, and a clear stop on a NaN or infinite loss.

``batch_size`` is the global batch of one forward pass; one optimizer step sees
``batch_size * grad_accum`` examples. Under DDP each of the W processes takes its 1/W slice of
the same global batch, so the update equals the one-process update (see ``distributed.py``).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from fptlib.train import checkpoint as ckpt
from fptlib.train import distributed
from fptlib.train.config import (AUTO_COMPILE_STEPS, COMPILE_FLAGS, COMPILE_MODES, CUDA_GRAPH_MODES,  # noqa: F401
                                 OPTIMIZERS, NonFiniteLossError, TrainConfig, TrainResult, compile_mode, jsonable,
                                 model_identity, task_identity)
from fptlib.train.loop import Loop, RunRecord, autocast, compiled, finish_bar, place, target_split  # noqa: F401

# what a checkpoint keeps of the run besides the loop's step, clocks, RNG states and log window
# (the names are the checkpoint format's)
RUN_FIELDS = ("samples", "history", "evals", "best", "steps_to_target")


class Trainer:
    """``Trainer(model, task, TrainConfig(...)).fit()`` -> TrainResult. Keyword overrides of the
    config are accepted too: ``Trainer(model, task, steps=300, lr=1e-3)``.

    The engine of one run for ``loop.Loop``: its step (``grad_accum`` forward-backward passes,
    clipping, the optimizer), its evaluation, its checkpoint contents."""
    CHECKPOINT_KEYS = ckpt.REQUIRED

    def __init__(self, model: torch.nn.Module, task, config: TrainConfig | None = None, **overrides: Any):
        if config is None:
            config = TrainConfig(**overrides)
        elif overrides:
            config = dataclasses.replace(config, **overrides)
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        self.config = config
        self.task = task
        where = place(task, config)
        self.dist, self.device, self.splits, self.amp_dtype = where.dist, where.device, where.splits, where.amp_dtype
        self.target_split = target_split(config, self.splits)
        self.model = model.to(self.device)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        if not self.params:
            raise ValueError("the model has no trainable parameters: check the freeze preset (e.g. 'fpt')")
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.optimizer = self._make_optimizer()
        self._fingerprint = None        # of the frozen weights, see _frozen_fingerprint
        self.compile_mode = compile_mode(config, self.device, task, self.dist.world_size)
        # CUDA graphs (mode "reduce-overhead") are told where each forward-backward pass begins
        self.forward_model, self._mark_step = compiled(distributed.wrap(self.model, self.dist, self.device),
                                                       self.compile_mode, self.device)
        self._batches = None

    # -- setup ------------------------------------------------------------------------------
    def _make_optimizer(self) -> torch.optim.Optimizer:
        c = self.config
        kwargs = dict(lr=c.lr, weight_decay=c.weight_decay)
        if self.device.type == "cuda":
            kwargs["fused"] = True      # one kernel for all parameters
        cls = torch.optim.Adam if c.optimizer == "adam" else torch.optim.AdamW
        return cls(self.params, **kwargs)

    def identity(self) -> dict:
        return {"model": model_identity(self.model), "task": task_identity(self.task),
                "train": self.config.identity()}

    def _call(self, model, batch):
        if batch.mask is not None:
            return model(batch.x, attention_mask=batch.mask)
        return model(batch.x)

    # -- evaluation -------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, split: str, limit: int | None = None) -> dict[str, float]:
        """Mean loss and accuracy over a split (weighted by examples), in eval mode. Runs under
        a forked RNG so that evaluating never changes the training trajectory."""
        c = self.config
        bs = c.eval_batch_size or max(c.batch_size, 64)
        was_training = self.model.training
        self.model.eval()
        devices = [self.device] if self.device.type == "cuda" else []
        loss_sum = torch.zeros((), device=self.device, dtype=torch.float64)
        acc_sum = torch.zeros((), device=self.device, dtype=torch.float64)
        n = 0
        with torch.random.fork_rng(devices=devices):
            for batch in self.task.eval_batches(split, bs, self.device, limit=limit if limit is not None else c.eval_limit):
                batch = batch.to(self.device)
                with autocast(self.device, self.amp_dtype):
                    logits = self._call(self.model, batch)
                logits = logits.float()
                k = batch.y.shape[0]
                loss_sum += self.task.loss(logits, batch.y).double() * k
                acc_sum += self.task.accuracy(logits, batch.y).double() * k
                n += k
        self.model.train(was_training)
        if n == 0:
            raise ValueError(f"split {split!r} of task {getattr(self.task, 'name', '?')!r} produced no examples")
        return {"loss": loss_sum.item() / n, "accuracy": acc_sum.item() / n, "examples": n}

    # -- the loop ---------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        """Train for ``config.steps`` optimizer steps (or until the target accuracy or the time
        budget), evaluating and checkpointing on the way; resumes from ``checkpoint_dir``."""
        self._fingerprint = None
        (result,) = Loop(self).run()
        if isinstance(result, NonFiniteLossError):
            raise result
        return result

    # -- the engine of one run (see loop.py) ------------------------------------------------
    @property
    def configs(self) -> list[TrainConfig]:
        return [self.config]

    @property
    def progress(self) -> bool:
        return self.config.progress

    @property
    def label(self) -> str:
        return getattr(self.task, "name", "train")

    @property
    def checkpoint_path(self) -> Path | None:
        d = self.config.checkpoint_dir
        return Path(d) / ckpt.CHECKPOINT_NAME if d else None

    @property
    def resume(self) -> bool:
        return self.config.resume

    def prepare(self, saved: dict | None, path: Path) -> list[RunRecord] | None:
        """None for a fresh run; else the checkpoint's run, its weights, optimizer and scaler
        restored after checking it was written for this configuration and these frozen weights."""
        if saved is None:
            return None
        ckpt.check_compatible(path, saved["identity"], jsonable(self.identity()),
                              saved["fingerprint"], self._frozen_fingerprint())
        ckpt.check_steps(path, saved["step"], self.config.steps)
        ckpt.load_trained_state(self.model, saved["trained"], where=f"the checkpoint {path}'s tensors")
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scaler.load_state_dict(saved["scaler"])
        run = RunRecord(step=saved["step"], **{k: saved[k] for k in RUN_FIELDS})
        # a run saved at its last step is done; one with more steps asked of it goes on
        run.stopped = "steps" if run.step >= self.config.steps else None
        return [run]

    def start(self, active: list[int], step: int) -> None:
        c = self.config
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        self._batches = self.task.train_batches(c.batch_size, self.device, c.seed, start_step=step * c.grad_accum)

    def step(self, step: int, window) -> None:
        """One optimizer step: ``grad_accum`` forward-backward passes, clipping, the update. Loss and
        accuracy are summed on the device (no host sync); the first non-finite loss's step is kept."""
        c, task, dev = self.config, self.task, self.device
        for micro in range(c.grad_accum):
            if self._mark_step:
                torch.compiler.cudagraph_mark_step_begin()
            batch = distributed.shard(next(self._batches), self.dist).to(dev)
            sync = micro == c.grad_accum - 1
            with distributed.maybe_no_sync(self.forward_model, sync), autocast(dev, self.amp_dtype):
                logits = self._call(self.forward_model, batch).float()
                loss = task.loss(logits, batch.y)
            self.scaler.scale(loss / c.grad_accum).backward()
            loss = loss.detach()
            window.add(loss, task.accuracy(logits.detach(), batch.y), step)
        if c.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.params, c.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)

    def evaluate_runs(self, indices: list[int]) -> list[dict[str, dict]]:
        return [{split: self.evaluate(split) for split in self.splits} for _ in indices]

    def retire(self, index: int) -> None:
        """The run stopped: its parameters are the model's, nothing to keep apart."""

    def keep(self, active: list[int]) -> None:
        """One run: nothing else to drop."""

    def payload(self, records: list[RunRecord]) -> dict:
        run = records[0]
        return {"identity": jsonable(self.identity()), "fingerprint": self._frozen_fingerprint(),
                "trained": ckpt.trained_state(self.model), "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict(), **{k: getattr(run, k) for k in RUN_FIELDS}}

    def result(self, index: int, fields: dict) -> TrainResult:
        return TrainResult(**fields)

    def _frozen_fingerprint(self) -> dict:
        """The frozen weights' fingerprint, computed once per ``fit`` (the weights cannot change
        during it: the optimizer holds only the trained ones; a pass over GPT-2's 124M costs seconds)."""
        if self._fingerprint is None:
            self._fingerprint = ckpt.frozen_fingerprint(self.model)
        return self._fingerprint
