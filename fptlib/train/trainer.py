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

import contextlib
import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from fptlib import env
from fptlib.train import checkpoint as ckpt
from fptlib.train import distributed

OPTIMIZERS = ("adam", "adamw")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")    # the modes that replay CUDA graphs
AUTO_COMPILE_STEPS = 5000     # compile="auto" compiles CUDA runs of at least this many steps
# the command-line spellings of TrainConfig.compile (``--compile``)
COMPILE_FLAGS = {"auto": "auto", "on": True, "off": False, "reduce-overhead": "reduce-overhead",
                 "max-autotune": "max-autotune"}


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss."""


@dataclass
class TrainConfig:
    """How to train. Defaults follow the paper's appendix C (Adam, lr 1e-3, clip 1.0, batch 4)."""
    steps: int = 1000
    lr: float = 1e-3
    optimizer: str = "adam"            # "adam" (the paper's) or "adamw"
    weight_decay: float = 0.0
    batch_size: int = 4                # examples per forward pass (global, over all DDP processes)
    grad_accum: int = 1                # forward passes per optimizer step
    grad_clip: float | None = 1.0      # max gradient norm; None disables
    eval_every: int = 200              # optimizer steps between evaluations (0: only at the end)
    eval_splits: tuple[str, ...] | None = None   # None: all of task.eval_splits; (): none
    eval_limit: int | None = None      # max examples per split and evaluation (None: the whole split)
    eval_batch_size: int | None = None  # None: max(batch_size, 64)
    time_budget_s: float | None = None  # stop after this many seconds of training
    target_accuracy: float | None = None  # stop once this accuracy is reached on target_split
    target_split: str | None = None    # None: the first eval split
    seed: int = 0
    device: str = "auto"
    amp: str = "auto"                  # "auto" | "bf16" | "fp16" | "off"
    compile: bool | str = "auto"       # "auto": only CUDA runs of >= 5000 steps (see compile_mode());
                                       # True / a torch.compile mode such as "reduce-overhead" (CUDA graphs)
    log_every: int = 20                # steps between host reads of loss/accuracy (history, bar, NaN check)
    checkpoint_dir: str | None = None  # folder for checkpoint.pt; None: no checkpoints
    checkpoint_every: int | None = None  # None: at every evaluation
    resume: bool = True                # continue from checkpoint_dir's checkpoint when there is one
    progress: bool = True
    run_identity: dict | None = None   # what else fixes the result (a RunConfig's dropout, data, ...):
                                       # a checkpoint must match it too

    def __post_init__(self):
        if isinstance(self.eval_splits, list):
            self.eval_splits = tuple(self.eval_splits)
        self.validate()

    def validate(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}: choose one of {OPTIMIZERS}")
        for name in ("steps", "batch_size", "grad_accum", "log_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainConfig.{name} must be a positive integer, got {value!r}")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"TrainConfig.lr must be a positive number, got {self.lr!r}")
        if self.eval_every < 0:
            raise ValueError(f"TrainConfig.eval_every must be >= 0 (0: evaluate only at the end), got {self.eval_every}")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ValueError(f"TrainConfig.grad_clip must be > 0 or None (no clipping), got {self.grad_clip}")
        if self.target_accuracy is not None and not 0 < self.target_accuracy <= 1:
            raise ValueError(f"target_accuracy is a fraction in (0, 1], got {self.target_accuracy}")
        if self.compile not in (True, False, "auto", *COMPILE_MODES):
            raise ValueError(f"TrainConfig.compile must be True, False, 'auto' or a torch.compile mode "
                             f"{COMPILE_MODES}, got {self.compile!r}")

    def identity(self) -> dict:
        """The settings that shape the trajectory of parameters; a checkpoint must match them.
        Steps, budgets, evaluation, device and logging may change between a run and its resume."""
        keys = ("lr", "optimizer", "weight_decay", "batch_size", "grad_accum", "grad_clip", "seed", "amp",
                "run_identity")
        return {k: getattr(self, k) for k in keys}

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["eval_splits"] = None if self.eval_splits is None else list(self.eval_splits)
        return d


@dataclass
class TrainResult:
    """What a run produced. ``history``: train loss/accuracy averaged over each logging interval;
    ``evals``: every evaluation; ``final`` and ``best`` (with its step): per eval split."""
    steps: int
    samples: int
    wall_s: float
    train_s: float
    history: list[dict] = field(default_factory=list)
    evals: list[dict] = field(default_factory=list)
    final: dict[str, dict] = field(default_factory=dict)
    best: dict[str, dict] = field(default_factory=dict)
    stopped: str = "steps"              # "steps" | "time" | "target"
    steps_to_target: int | None = None
    resumed_from: int | None = None
    device: str = "cpu"
    amp: str = "off"
    compile: str = "off"                # "off" or the torch.compile mode the run used
    config: dict = field(default_factory=dict)

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.train_s if self.train_s > 0 else float("nan")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def model_identity(model: torch.nn.Module) -> dict:
    """model.config_dict() when the model has one (FPT does), else its parameter shapes."""
    if hasattr(model, "config_dict"):
        return model.config_dict()
    return {"class": type(model).__name__,
            "parameters": {n: [list(p.shape), p.requires_grad] for n, p in model.named_parameters()}}


def task_identity(task) -> dict:
    keys = ("name", "data_source", "options", "input_kind", "token_dim", "vocab_size", "max_len",
            "output_tokens", "output_dim")
    return {k: getattr(task, k, None) for k in keys}


def compile_mode(config: "TrainConfig", device: torch.device, task, world_size: int = 1) -> str | None:
    """None (eager) or the torch.compile mode a run uses ("default" for plain ``compile=True``).

    "auto" compiles only long CUDA runs (>= AUTO_COMPILE_STEPS: compiling costs a minute or so).
    It picks CUDA graphs ("reduce-overhead") where every batch has the same shape, one process
    trains and gradients are not accumulated: on an H200 this made GPT-2 small on 32x32 images
    4.2x faster than the authors' style of loop, against 2.0x for the default mode
    (bench/RESULTS.md). Padded, length-bucketed tasks (ListOps, homology), DDP and grad_accum > 1
    keep the default mode: a graph per batch shape, DDP's gradient hooks and gradients that must
    outlive the next replay do not suit CUDA graphs."""
    c, device = config.compile, torch.device(device)
    if c == "auto":
        if device.type != "cuda" or config.steps < AUTO_COMPILE_STEPS:
            return None
        fixed_shape = getattr(task, "pad_id", None) is None
        graphs = fixed_shape and world_size == 1 and config.grad_accum == 1
        return "reduce-overhead" if graphs else "default"
    if c is True:
        return "default"
    if c in CUDA_GRAPH_MODES and config.grad_accum > 1 and device.type == "cuda":
        raise ValueError(f"compile={c!r} replays CUDA graphs, whose outputs (the gradients too) are "
                         f"overwritten by the next replay, so it cannot accumulate gradients over "
                         f"grad_accum={config.grad_accum} passes: use compile=True (the default "
                         f"mode) or grad_accum=1")
    return c or None


# what a checkpoint keeps of a run (the names are the checkpoint format's)
SAVED_FIELDS = ("step", "samples", "wall_s", "train_s", "history", "evals", "best", "steps_to_target")


@dataclass
class RunState:
    """Where a ``fit`` is: the fields a checkpoint saves (``SAVED_FIELDS``) and the live counters."""
    step: int = 0
    samples: int = 0
    wall_s: float = 0.0                 # up to the last checkpoint (a resumed run's clock goes on from it)
    train_s: float = 0.0                # time in training steps, evaluations excluded
    history: list = field(default_factory=list)
    evals: list = field(default_factory=list)
    best: dict = field(default_factory=dict)
    steps_to_target: int | None = None
    resumed_from: int | None = None
    stopped: str = "steps"              # "steps" | "time" | "target"
    t_start: float = 0.0                # perf_counter() of the run's (virtual) start
    t_train: float = 0.0                # perf_counter() when the current training stretch began
    window: int = 0                     # forward passes summed in loss_sum / acc_sum since the last log
    loss_sum: torch.Tensor | None = None
    acc_sum: torch.Tensor | None = None
    first_bad: torch.Tensor | None = None   # step of the first non-finite loss, -1 while none

    def start(self, device: torch.device) -> None:
        """Device-side sums and the clocks, just before the first step."""
        self.loss_sum = torch.zeros((), device=device)
        self.acc_sum = torch.zeros((), device=device)
        self.first_bad = torch.full((), -1, dtype=torch.long, device=device)
        self.t_start = time.perf_counter() - self.wall_s
        self.t_train = time.perf_counter()

    def saved(self) -> dict:
        return {k: getattr(self, k) for k in SAVED_FIELDS}


class Trainer:
    """``Trainer(model, task, TrainConfig(...)).fit()`` -> TrainResult. Keyword overrides of the
    config are accepted too: ``Trainer(model, task, steps=300, lr=1e-3)``."""

    def __init__(self, model: torch.nn.Module, task, config: TrainConfig | None = None, **overrides: Any):
        if config is None:
            config = TrainConfig(**overrides)
        elif overrides:
            config = dataclasses.replace(config, **overrides)
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        self.config = config
        self.task = task
        self.dist = distributed.context()
        self.device = distributed.device_for(self.dist, config.device)
        # eval_splits None: all of the task's; () : no evaluation at all (benchmarks)
        self.splits = tuple(getattr(task, "eval_splits", ()) if config.eval_splits is None else config.eval_splits)
        unknown = [s for s in self.splits if s not in getattr(task, "eval_splits", self.splits)]
        if unknown:
            raise ValueError(f"unknown eval split(s) {unknown} for task {getattr(task, 'name', task)!r}: "
                             f"it has {list(task.eval_splits)}")
        self.target_split = config.target_split or (self.splits[0] if self.splits else None)
        if config.target_accuracy is not None and self.target_split not in self.splits:
            raise ValueError(f"target_split {self.target_split!r} is not evaluated: choose one of {list(self.splits)}")
        if config.batch_size % self.dist.world_size:
            raise ValueError(f"batch_size {config.batch_size} must be divisible by the number of processes "
                             f"({self.dist.world_size}): each takes an equal slice of the global batch")

        if self.device.type == "cuda":
            # TF32 tensor cores for what stays in fp32 (Ampere and newer); the usual choice for training
            torch.set_float32_matmul_precision("high")
        self.model = model.to(self.device)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        if not self.params:
            raise ValueError("the model has no trainable parameters: check the freeze preset (e.g. 'fpt')")
        self.amp_dtype = env.amp_dtype(config.amp, self.device)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.optimizer = self._make_optimizer()
        self.forward_model = distributed.wrap(self.model, self.dist, self.device)
        self._fingerprint = None        # of the frozen weights, see _frozen_fingerprint
        self._ckpt_every = 0            # steps between checkpoints in this fit (0: none)
        self.compile_mode = compile_mode(config, self.device, task, self.dist.world_size)
        if self.compile_mode is not None:
            mode = None if self.compile_mode == "default" else self.compile_mode
            self.forward_model = torch.compile(self.forward_model, mode=mode)
        # CUDA graphs (mode "reduce-overhead") are told where each forward-backward pass begins
        self._mark_step = self.compile_mode in CUDA_GRAPH_MODES and self.device.type == "cuda"

    # -- setup ------------------------------------------------------------------------------
    def _make_optimizer(self) -> torch.optim.Optimizer:
        c = self.config
        kwargs = dict(lr=c.lr, weight_decay=c.weight_decay)
        if self.device.type == "cuda":
            kwargs["fused"] = True      # one kernel for all parameters
        cls = torch.optim.Adam if c.optimizer == "adam" else torch.optim.AdamW
        return cls(self.params, **kwargs)

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

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
                with self._autocast():
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

    # -- checkpoints ------------------------------------------------------------------------
    def _checkpoint_path(self) -> Path | None:
        d = self.config.checkpoint_dir
        return Path(d) / ckpt.CHECKPOINT_NAME if d else None

    def save_checkpoint(self, state: dict) -> Path | None:
        path = self._checkpoint_path()
        if path is None or not self.dist.is_main:
            return None
        payload = {
            "format": ckpt.FORMAT, "identity": _jsonable(self.identity()), "fingerprint": self._frozen_fingerprint(),
            "trained": ckpt.trained_state(self.model), "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(), "rng": ckpt.rng_state(), **state,
        }
        return ckpt.atomic_save(payload, path)

    def _frozen_fingerprint(self) -> dict:
        """The frozen weights' fingerprint, computed once per ``fit`` (the weights cannot change
        during it: the optimizer holds only the trained ones; a pass over GPT-2's 124M costs seconds)."""
        if self._fingerprint is None:
            self._fingerprint = ckpt.frozen_fingerprint(self.model)
        return self._fingerprint

    def _try_resume(self) -> dict | None:
        path = self._checkpoint_path()
        if path is None:
            return None
        ckpt.remove_stale_temporaries(path.parent)
        if not self.config.resume or not path.exists():
            return None
        saved = ckpt.load(path)
        ckpt.check_compatible(path, saved["identity"], _jsonable(self.identity()),
                              saved["fingerprint"], self._frozen_fingerprint())
        ckpt.check_steps(path, saved["step"], self.config.steps)
        ckpt.load_trained_state(self.model, saved["trained"], where=f"the checkpoint {path}'s tensors")
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scaler.load_state_dict(saved["scaler"])
        ckpt.set_rng_state(saved["rng"])
        return saved

    # -- the loop ---------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        """Train for ``config.steps`` optimizer steps (or until the target accuracy or the time
        budget), evaluating and checkpointing on the way; resumes from ``checkpoint_dir``."""
        c = self.config
        env.seed_everything(c.seed)
        self._fingerprint = None
        run = self._start_state()
        self._ckpt_every = (c.checkpoint_every or c.eval_every) if self._checkpoint_path() is not None else 0
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        batches = self.task.train_batches(c.batch_size, self.device, c.seed, start_step=run.step * c.grad_accum)
        bar = tqdm(total=c.steps, initial=min(run.step, c.steps), desc=getattr(self.task, "name", "train"),
                   disable=not (c.progress and self.dist.is_main), dynamic_ncols=True, leave=True)
        run.start(self.device)
        interrupt = ckpt.DeferredInterrupt(enabled=not self.dist.enabled).start()
        try:
            while run.step < c.steps:
                self._step(run, batches)
                if self._boundary(run, bar):
                    break
                if interrupt.requested:     # Ctrl-C: this step is whole; save it and stop
                    self._log(run, bar)
                    run.train_s += time.perf_counter() - run.t_train
                    run.t_train = time.perf_counter()
                    self._save(run)
                    raise ckpt.TrainingInterrupted(run.step, self._checkpoint_path())
            finish_bar(bar)             # stopped early on purpose (target, time): finished, not failed
        finally:
            interrupt.stop()
            bar.close()
        run.train_s += time.perf_counter() - run.t_train
        return self._finish(run)

    def _start_state(self) -> RunState:
        """A fresh run, or the one in ``checkpoint_dir`` (weights, optimizer and RNG restored)."""
        run = RunState()
        saved = self._try_resume()
        if saved is not None:
            for k in SAVED_FIELDS:
                setattr(run, k, saved[k])
            run.resumed_from = run.step
        return run

    def _step(self, run: RunState, batches) -> None:
        """One optimizer step: ``grad_accum`` forward-backward passes, clipping, the update. Loss and
        accuracy are summed on the device (no host sync); the first non-finite loss's step is kept."""
        c, task, dev = self.config, self.task, self.device
        for micro in range(c.grad_accum):
            if self._mark_step:
                torch.compiler.cudagraph_mark_step_begin()
            batch = distributed.shard(next(batches), self.dist).to(dev)
            sync = micro == c.grad_accum - 1
            with distributed.maybe_no_sync(self.forward_model, sync), self._autocast():
                logits = self._call(self.forward_model, batch).float()
                loss = task.loss(logits, batch.y)
            self.scaler.scale(loss / c.grad_accum).backward()
            loss = loss.detach()
            run.loss_sum += loss
            run.acc_sum += task.accuracy(logits.detach(), batch.y)
            run.first_bad.masked_fill_(~torch.isfinite(loss) & (run.first_bad < 0), run.step + 1)
        run.window += c.grad_accum
        if c.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.params, c.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        run.step += 1
        run.samples += c.batch_size * c.grad_accum

    def _boundary(self, run: RunState, bar) -> bool:
        """After a step: log when due, then evaluate, checkpoint, and stop on the target accuracy or
        the time budget. Returns True when training stops here."""
        c, step = self.config, run.step
        do_eval = self.splits and c.eval_every and step % c.eval_every == 0 and step < c.steps
        do_ckpt = self._ckpt_every and step % self._ckpt_every == 0
        out_of_time = c.time_budget_s is not None and time.perf_counter() - run.t_start >= c.time_budget_s
        if step % c.log_every == 0 or step == c.steps or do_eval or do_ckpt or out_of_time:
            self._log(run, bar)
        if not (do_eval or do_ckpt or out_of_time):
            return False
        run.train_s += time.perf_counter() - run.t_train
        if do_eval and self._evaluate_all(run):
            run.stopped = "target"
        if do_ckpt or run.stopped != "steps" or out_of_time:
            self._save(run)
        run.t_train = time.perf_counter()
        if run.stopped == "target":
            return True
        if out_of_time:
            run.stopped = "time"
            return True
        return False

    def _log(self, run: RunState, bar) -> None:
        """Read the summed loss and accuracy (the one host sync), stop on a non-finite loss, append
        the interval's means to the history and move the progress bar."""
        values = torch.stack([run.loss_sum, run.acc_sum, run.first_bad.float()]).tolist()
        if values[2] >= 0:
            bar.close()
            raise NonFiniteLossError(self._nan_message(int(values[2])))
        if run.window:
            entry = {"step": run.step, "samples": run.samples, "wall_s": time.perf_counter() - run.t_start,
                     "loss": values[0] / run.window, "accuracy": values[1] / run.window}
            run.history.append(entry)
            bar.set_postfix(loss=f"{entry['loss']:.4f}", acc=f"{entry['accuracy']:.3f}", refresh=False)
        run.loss_sum.zero_(); run.acc_sum.zero_()
        run.window = 0
        bar.update(run.step - bar.n)

    def _finish(self, run: RunState) -> TrainResult:
        """The final evaluation (unless the loop just did it at this step), the last checkpoint, the result."""
        if self.splits and not (run.evals and run.evals[-1]["step"] == run.step):
            self._evaluate_all(run)
        self._save(run)
        final = {s: run.evals[-1][s] for s in self.splits} if run.evals else {}
        return TrainResult(
            steps=run.step, samples=run.samples, wall_s=time.perf_counter() - run.t_start, train_s=run.train_s,
            history=run.history, evals=run.evals, final=final, best=run.best, stopped=run.stopped,
            steps_to_target=run.steps_to_target, resumed_from=run.resumed_from, device=str(self.device),
            amp=str(self.amp_dtype).replace("torch.", "") if self.amp_dtype else "off",
            compile=self.compile_mode or "off", config=self.config.to_dict())

    def _evaluate_all(self, run: RunState) -> bool:
        """Evaluate every split, update best; True when the target accuracy is reached."""
        entry = {"step": run.step, "samples": run.samples, "wall_s": time.perf_counter() - run.t_start}
        for split in self.splits:
            entry[split] = self.evaluate(split)
            if split not in run.best or entry[split]["accuracy"] > run.best[split]["accuracy"]:
                run.best[split] = {**entry[split], "step": run.step}
        run.evals.append(entry)
        target = self.config.target_accuracy
        if target is not None and entry[self.target_split]["accuracy"] >= target:
            if run.steps_to_target is None:
                run.steps_to_target = run.step
            return True
        return False

    def _save(self, run: RunState) -> None:
        run.wall_s = time.perf_counter() - run.t_start
        self.save_checkpoint(run.saved())

    def _nan_message(self, step: int) -> str:
        c = self.config
        amp = str(self.amp_dtype).replace("torch.", "") if self.amp_dtype else "off"
        return (f"the training loss became NaN or infinite at step {step} (lr={c.lr}, amp={amp}, "
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


def _jsonable(obj):
    """Normalise tuples to lists so a live identity compares equal to one loaded from a file."""
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj
