"""What a training run is asked for and what it gives back: TrainConfig, TrainResult, the
compile rule and the identities a checkpoint must match. Shared by the Trainer, the PackedTrainer
and the loop that drives them (``loop.py``)."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import torch

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


def jsonable(obj):
    """Normalise tuples to lists so a live identity compares equal to one loaded from a file."""
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    return obj
