"""What runs cost: ONE cost model. ``STEP_SECONDS`` (seconds per step measured on a 2-core CPU)
sizes the profiles and a table before it runs (:func:`estimate`, :func:`seconds_for`,
``reproduce``'s estimate, ``report.progress``); on the machine at hand, a short measured warm-up of
each kind of run (:func:`measure`) gives :func:`plan` its estimate before a notebook's long cell.
"""
from __future__ import annotations

import dataclasses
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import torch

from fptlib import env, results
from fptlib.backbones.hub import BackboneUnavailable
from fptlib.backbones.registry import hidden_size_of, num_layers_of
from fptlib.experiments import catalogue, models
from fptlib.experiments.settings import RunConfig, same_run, store_dir
from fptlib.freeze import FreezeSpec
from fptlib.tasks.images import image_tokens
from fptlib.tasks.registry import TASKS
from fptlib.train.trainer import TrainConfig, Trainer

# Seconds per training step at batch 16 with MiniLM and the FPT preset at the evidence settings, one
# thread of a 2-core CPU shared by other work: the committed evidence records' own wall times over
# their steps, divided by (1 + EVAL_OVERHEAD). How each was measured (the runs, the load):
# bench/RESULTS.md, "Cost model measurements". They size the profile; they are not benchmarks.
STEP_SECONDS = {"bit-xor": 0.13, "bit-memory": 0.34, "listops": 0.40, "mnist-5k": 0.26,
                "fashion-mnist": 0.26, "digits": 0.60,
                "japanese-vowels": 0.58}
# image tasks: the tokens per image at which STEP_SECONDS was measured (the evidence settings), and how a
# step grows with them: FPT measured 0.16 s at 16 tokens and 0.59 s at 64 (bench/RESULTS.md, image_epoch)
STEP_TOKENS = {"mnist-5k": 16, "fashion-mnist": 16, "digits": 64}
TOKEN_EXPONENT = 0.94
# relative cost of a step: every weight trained, the LSTM, output-only on cached frozen features (one
# forward pass per example, ``train.features``); evaluation's share (bench/RESULTS.md, same section)
TRAINED_ALL, LSTM_COST, OUTPUT_ONLY_COST, EVAL_OVERHEAD = 1.5, 0.4, 0.3, 0.25
# ``reproduce`` prints the estimate for the runs a table still lacks before it starts (the whole
# evidence profile at these rates: bench/RESULTS.md). Run the tables in EVIDENCE_ORDER (issue #12's
# ranking) so that a shorter budget gives the most-needed first.
EVIDENCE_ORDER = ("init", "compute", "table1", "tuned_lr", "architecture", "ladder", "layernorm", "more_than_fpt",
                  "depth", "lr_critique", "backbones", "model_size", "attention",
                  "timeseries",   # beyond the paper (issue #27)
                  "image_epoch",  # one epoch of the image stand-in at 64 tokens (issue #24)
                  "second_backbone")  # the language-vs-random claims on SmolLM2 (issue #24)


def estimate(name: str, profile: str = "evidence", backbone: str = "minilm") -> float:
    """CPU seconds to produce a table from scratch on this machine (``STEP_SECONDS``), counting each
    run key once (runs shared between tables run once) and the Bit Memory pretraining an init needs."""
    return seconds_for(catalogue.table(name, profile, backbone))


def seconds_for(configs: Iterable[RunConfig], skip: Callable[[RunConfig], bool] = lambda c: False) -> float:
    """CPU seconds to train ``configs`` on this machine (``STEP_SECONDS``), each run key once, with the
    Bit Memory pretraining an init needs; ``skip(config)``: runs not to count (e.g. those stored)."""
    todo = {c.key: c for c in configs}
    for c in list(todo.values()):
        if c.init == "bit-memory":
            pre = catalogue.pretraining_config(c)
            todo[pre.key] = pre
    return sum(run_seconds(c) for c in todo.values() if not skip(c))


def trains_blocks(c: RunConfig) -> bool:
    """Whether the run trains the transformer blocks' attention or feed-forward weights (``full``,
    ``+feedforward``, ``+attention``, ``+both``): a step then costs a full backward pass."""
    return bool(FreezeSpec.parse(c.freeze).trained & {"attention", "feedforward"})


def token_factor(c: RunConfig) -> float:
    """How much longer than at ``STEP_TOKENS`` a step of an image run is (1 for other tasks)."""
    if c.task not in STEP_TOKENS:       # image tasks only
        return 1.0
    options = dict(c.task_options)
    tokens = image_tokens(TASKS[c.task][1]["dataset"], options.get("patch_size"), options.get("image_size"))
    return (tokens / STEP_TOKENS[c.task]) ** TOKEN_EXPONENT


def run_seconds(c: RunConfig) -> float:
    per_step = STEP_SECONDS.get(c.task, max(STEP_SECONDS.values())) * c.batch_size / 16 * token_factor(c)
    if c.backbone == "lstm":
        per_step *= LSTM_COST
    elif c.freeze == "output_only":
        per_step *= OUTPUT_ONLY_COST
    elif trains_blocks(c):
        per_step *= TRAINED_ALL
    if c.backbone != "lstm":
        per_step *= block_cost(c)
    return c.steps * per_step * (1 + EVAL_OVERHEAD)


# STEP_SECONDS was measured with MiniLM: 6 blocks 384 wide
REFERENCE_LAYERS, REFERENCE_WIDTH = 6, 384


def block_cost(c: RunConfig) -> float:
    """A step's cost relative to MiniLM's: the blocks kept (at least a fifth: the input and output
    layers cost something) times the square of the width relative to MiniLM's 384 (a SmolLM2 block
    576 wide was measured at about 2x a MiniLM block: bench/RESULTS.md). 1 for MiniLM."""
    try:
        total, width = num_layers_of(c.backbone), hidden_size_of(c.backbone)
    except (KeyError, ValueError, BackboneUnavailable):     # a body with no config (scratch rows): as MiniLM
        total, width = REFERENCE_LAYERS, REFERENCE_WIDTH
    depth = max(c.layers / REFERENCE_LAYERS, 0.2) if c.layers else total / REFERENCE_LAYERS
    return depth * (width / REFERENCE_WIDTH) ** 2


# -- on this machine: a measured warm-up, and the plan printed before a long cell ---------------

WARMUP_STEPS = 6          # optimizer steps of a warm-up; the first WARMUP_SKIP are not timed
WARMUP_SKIP = 2           # (allocation, kernel selection, caches)
REPEAT_EVAL_S = 5.0       # an evaluation shorter than this is timed a second time (the first warms up)
WARMUP_LR = 1e-4          # speed does not depend on it; a sweep's largest rate could diverge in a warm-up


@dataclass(frozen=True)
class Warmup:
    """Seconds per optimizer step and per evaluation (all eval splits), measured on ``device``."""
    step_s: float
    eval_s: float
    steps_timed: int
    device: str

    def estimate(self, config) -> float:
        """Seconds ``config`` should take: its steps at the measured rate plus its evaluations
        (one every ``eval_every`` steps and one at the end). An upper bound when the run stops at a
        target accuracy; output-only runs of dataset tasks (feature cache) usually take less."""
        evals = (config.steps - 1) // config.eval_every + 1 if config.eval_every else 1
        return config.steps * self.step_s + evals * self.eval_s


# the warm-ups measured in this process, per :func:`run_kind` (``measure``'s default ``warmups``):
# a plain dict, visible here; clear it to measure again
WARMUPS: dict[str, "Warmup"] = {}


def run_kind(config, device: str | None = None) -> str:
    """What fixes a run's speed (``same_run(config, "speed")``), and the device."""
    return json.dumps([same_run(config, "speed"), device or str(env.pick_device("auto"))])


def measure(config, device: str | None = None, steps: int = WARMUP_STEPS, *,
            warmups: dict[str, Warmup] | None = None) -> Warmup:
    """Time a few training steps and one evaluation of ``config``'s model, task and batch on the
    device (a randomly initialised backbone of the same architecture: nothing pretrained is loaded
    and no pretraining run is started). Remembered in ``warmups`` (default ``WARMUPS``) per :func:`run_kind`."""
    device = device or str(env.pick_device("auto"))
    kind = run_kind(config, device)
    warmups = WARMUPS if warmups is None else warmups
    if kind in warmups and warmups[kind].steps_timed >= steps - WARMUP_SKIP:
        return warmups[kind]
    if steps <= WARMUP_SKIP:
        raise ValueError(f"a warm-up needs more than {WARMUP_SKIP} steps, got {steps}")
    probe = dataclasses.replace(config, init="random", steps=steps)
    saved = random.getstate(), np.random.get_state()       # the notebook's random state is left as it was
    gpus = list(range(torch.cuda.device_count())) if device.startswith("cuda") else []
    with torch.random.fork_rng(devices=gpus):
        model, task = models.build(probe, "cpu")
        trainer = Trainer(model, task, TrainConfig(
            steps=steps, lr=WARMUP_LR, batch_size=config.batch_size, grad_accum=config.grad_accum, eval_every=0,
            eval_splits=(), eval_limit=config.eval_limit, seed=config.seed, device=device, log_every=1,
            progress=False, compile=False))
        history = trainer.fit().history
        walls = {h["step"]: h["wall_s"] for h in history}
        step_s = (walls[steps] - walls[WARMUP_SKIP]) / (steps - WARMUP_SKIP)
        eval_s = _time_evaluations(trainer, task, config.eval_limit)
        if eval_s < REPEAT_EVAL_S:          # the first pass also warms up (eval mode, batch sizes)
            eval_s = _time_evaluations(trainer, task, config.eval_limit)
    random.setstate(saved[0])
    np.random.set_state(saved[1])
    warm = Warmup(step_s=step_s, eval_s=eval_s, steps_timed=steps - WARMUP_SKIP, device=device)
    warmups[kind] = warm
    return warm


def _time_evaluations(trainer, task, limit) -> float:
    """Seconds one evaluation of every split takes (what the run does at each evaluation)."""
    t0 = time.perf_counter()
    for split in task.eval_splits:
        trainer.evaluate(split, limit=limit)
    if trainer.device.type == "cuda":
        torch.cuda.synchronize(trainer.device)
    return time.perf_counter() - t0


def duration(seconds: float) -> str:
    """``42 s``, ``3.5 min``, ``2.1 h``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


@dataclass
class Plan:
    """What :func:`plan` found: the runs in the store, those to train and their estimates."""
    stored: dict[str, Any]
    to_train: dict[str, Any]
    seconds: dict[str, float]
    warmups: dict[str, Warmup]
    device: str
    failed: dict[str, str] = field(default_factory=dict)   # label -> why its warm-up failed
    LIST_STORED = 8        # more stored runs than this are named on one line
    LONG_S = 3600          # above this total, the plan says how to shorten it or keep it safe

    @property
    def total_s(self) -> float:
        return sum(self.seconds.values())

    def text(self) -> str:
        n = len(self.stored) + len(self.to_train)
        lines = [f"plan: {n} run{'s' if n != 1 else ''}: {len(self.stored)} in the results store "
                 f"(loaded, not trained), {len(self.to_train)} to train on {self.device}"]
        if len(self.stored) <= self.LIST_STORED:
            lines += [f"  stored   {label}: {cfg.describe()}" for label, cfg in self.stored.items()]
        else:
            lines.append(f"  stored   {', '.join(self.stored)}")
        for label, cfg in self.to_train.items():
            w = self.warmups.get(label)
            resume = " (resumes from its checkpoint)" if _has_checkpoint(cfg) else ""
            lines.append(f"  to train {label}: {cfg.describe()}{resume}")
            if w is None:
                lines.append(f"           no estimate: the warm-up failed ({self.failed[label]})")
                continue
            lines.append(f"           ~{duration(self.seconds[label])}: {cfg.steps} steps x {w.step_s:.3g} s "
                         f"+ evaluations of {w.eval_s:.3g} s each (warm-up of {w.steps_timed} steps)")
        if self.seconds:
            some = f" for the {len(self.seconds)} runs measured" if len(self.seconds) < len(self.to_train) else ""
            lines.append(f"estimate: about {duration(self.total_s)} in all{some} on {self.device}, from measured "
                         f"warm-ups (at most this when a run stops at its target accuracy)")
        if self.total_s > self.LONG_S:
            lines.append("this is long: a smaller profile in setup(profile=...) runs shorter versions, and "
                         "setup(results=\"drive\") on Colab keeps finished runs and checkpoints if the runtime ends")
        return "\n".join(lines)


def _has_checkpoint(config) -> bool:
    """Whether ``config`` would resume from a checkpoint (alone, on cached features or in a pack)."""
    return results.checkpoint_of(config.key, store_dir(config.profile)) is not None


def labelled(configs) -> dict[str, Any]:
    if isinstance(configs, Mapping):
        return dict(configs)
    if hasattr(configs, "key") and hasattr(configs, "steps"):
        configs = [configs]
    out: dict[str, Any] = {}
    for c in configs:        # a table: its seeds and learning rates share (row, column)
        label = f"{c.row}, {c.column} (lr {c.lr:g}, seed {c.seed})" if getattr(c, "row", "") else c.key
        out[label if label not in out else f"{label} {c.key}"] = c
    return out


def plan(configs: Mapping[str, Any] | Iterable[Any], *, device: str | None = None, quiet: bool = False) -> Plan:
    """Say what is about to be trained before a long cell: which runs the results store already
    holds and, for the others, an estimate of how long they take on this device from a short
    measured warm-up (a few steps of the same model, task and batch; once per kind of run).
    ``configs``: ``{label: RunConfig}``, a list of them (a table) or one. Prints unless ``quiet``."""
    device = device or str(env.pick_device("auto"))
    runs = {}
    for label, cfg in labelled(configs).items():
        if cfg.init == "bit-memory":        # trained first (experiments.ensure_pretraining) when not stored
            runs.setdefault(f"Bit Memory pretraining for {label}", catalogue.pretraining_config(cfg))
        runs[label] = cfg
    stored, to_train, seconds, warmups, failed = {}, {}, {}, {}, {}
    for label, cfg in runs.items():
        if results.get(cfg.key, store_dir(cfg.profile)) is not None:   # evidence: results/evidence/
            stored[label] = cfg
            continue
        to_train[label] = cfg
        try:
            warmups[label] = measure(cfg, device)
        except Exception as err:      # an estimate is advice: the run itself reports its own errors
            failed[label] = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"[:200]
            continue
        seconds[label] = warmups[label].estimate(cfg)
    p = Plan(stored, to_train, seconds, warmups, device, failed)
    if not quiet:
        print(p.text(), flush=True)
    return p
