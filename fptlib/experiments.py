"""Run settings, named configurations for every table of the paper at two profiles, and ``run(config)``.

``config(task, profile, backbone, **changes)`` is the one place a run's settings come from: the
paper's hyperparameters for the task (``paper.HYPERPARAMETERS``), then what the profile changes
(``PROFILE_SETTINGS``), then the caller's changes. The profile, unless given, follows the one rule
of :func:`choose_profile` (``FPT_PROFILE``, else ``full`` on a GPU and ``quick`` without one).

- ``quick``: minutes on a 2-core CPU with the default backbone (the bundled MiniLM where GPT-2
  is not available): small sizes, a few hundred steps, for CI and a first contact. These numbers
  show the *shape* of the paper's findings at toy scale; they are not the paper's numbers.
- ``full``: the paper's settings (GPT-2, full-size tasks, long training), for a GPU.

A ``RunConfig`` is a plain frozen dataclass. Its ``key`` is a stable hash of everything that
changes the result (task and options, backbone and init, freeze preset, hyperparameters, seed)
and of nothing else: the same run listed in two tables (FPT on Bit XOR is in table 1, the
initialisation table and the ablation ladder) has one key, runs once, and is stored once.
``run(config)`` returns the stored record when the results store already has that key.

Where the paper's backbone (GPT-2) cannot be loaded, the tables use the default backbone
(``fptlib.backbones.default_backbone``) and every record names the backbone it really used.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from fptlib import env, paper, results, tasks
from fptlib.backbones import BackboneUnavailable
from fptlib.backbones.registry import default_backbone, hidden_size_of, load_backbone
from fptlib.model import FPT
from fptlib.tasks.registry import data_key
from fptlib.train.checkpoint import atomic_save, load_trained_state
from fptlib.train.distributed import context
from fptlib.train.features import fit_output_only, has_training_set
from fptlib.train.trainer import TrainConfig, Trainer

PROFILES = ("quick", "full")
INITS = ("pretrained", "random", "statistics", "bit-memory")   # RunConfig.init (see bit_memory_backbone)

# What a profile changes, per task, on top of the paper's hyperparameters (``paper.HYPERPARAMETERS``):
# task options and the training budget. quick: ~10-40 s per run on 2 CPU cores with MiniLM, with
# the smaller images the notebooks use; full: the paper's task sizes, training long enough to
# converge (its "steps to converge" table), evaluating on the test set (ListOps, Homology: validation).
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
    "full": {
        "bit-xor": dict(options={}, steps=20_000, eval_every=500),
        "bit-memory": dict(options={}, steps=40_000, eval_every=1000),
        "listops": dict(options={}, steps=20_000, eval_every=1000),
        "mnist": dict(options={}, steps=20_000, eval_every=1000),
        "fashion-mnist": dict(options={}, steps=20_000, batch_size=16, eval_every=1000),
        "mnist-5k": dict(options={}, steps=20_000, batch_size=16, eval_every=1000),
        "cifar10": dict(options={}, steps=100_000, eval_every=2500),
        "cifar10-lra": dict(options={}, steps=100_000, eval_every=2500),
        "digits": dict(options={}, steps=100_000, batch_size=4, eval_every=2500),
        "homology": dict(options={}, steps=100_000, eval_every=2500),
    },
}
# a table's column run on another task at a profile, with its changes: no MNIST offline, so the
# quick tables use scikit-learn's real 8x8 digits in the MNIST column (2x2 patches, 16 tokens, the
# whole test split), and the records say so
STAND_INS: dict[str, dict[str, tuple[str, dict]]] = {
    "quick": {"mnist": ("digits", dict(task_options={"patch_size": 2}, eval_limit=None))}, "full": {}}
# the tasks a table runs at each profile; full: the paper's seven
QUICK_TASKS = ("bit-xor", "bit-memory", "listops", "mnist")
FULL_TASKS = ("bit-memory", "bit-xor", "listops", "mnist", "cifar10", "cifar10-lra", "homology")
# target accuracies for the compute table ("steps to converge"): reaching them counts as converged
TARGETS = {"bit-xor": 0.99, "bit-memory": 0.99, "listops": 0.35, "mnist": 0.95, "cifar10": 0.6,
           "cifar10-lra": 0.35, "homology": 0.1}
LSTM_LR = 3e-4          # the paper's learning rate for LSTMs
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

    def describe(self) -> str:
        layers = f", {self.layers} layers" if self.layers else ""
        return (f"{self.task} | {self.backbone} ({self.init}{layers}) | freeze {self.freeze} | "
                f"{self.steps} steps, lr {self.lr:g}, batch {self.batch_size}, seed {self.seed}")


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
    return RunConfig(**kw)


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
    return "\n".join(lines)


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}: choose one of {PROFILES}")
    return profile


def choose_profile(device: str | None = None, environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """The one profile rule: ``(profile, reason)``. ``FPT_PROFILE`` if set, else ``full`` on a GPU
    and ``quick`` without one (``device``: default the one training would use, ``env.pick_device``)."""
    environ = os.environ if environ is None else environ
    asked = environ.get("FPT_PROFILE", "").strip().lower()
    if asked:
        if asked not in PROFILES:
            raise ValueError(f"FPT_PROFILE={asked!r} is not a profile; use one of {', '.join(PROFILES)}")
        return asked, "set by FPT_PROFILE"
    device = str(device) if device is not None else str(env.pick_device("auto"))
    if device.startswith("cuda"):
        return "full", "a GPU is present (set FPT_PROFILE=quick for the short runs)"
    return "quick", "no GPU (set FPT_PROFILE=full for the paper's settings)"


def _base(task: str, profile: str, backbone: str, **changes) -> RunConfig:
    """A table column's run: :func:`config` for the column's task or its stand-in at ``profile``."""
    task, stand_in = STAND_INS[profile].get(task, (task, {}))
    return config(task, profile, backbone, **{**stand_in, **changes})


def _tasks(profile: str, quick: tuple[str, ...] = QUICK_TASKS) -> tuple[str, ...]:
    return quick if profile == "quick" else FULL_TASKS


# the quick profile keeps the notebooks' total CPU time small: the ablation tables use two tasks
QUICK_ABLATION_TASKS = ("bit-xor", "mnist")


def _label(cfg: RunConfig, table: str, row: str, column: str) -> RunConfig:
    return dataclasses.replace(cfg, table=table, row=row, column=column)


def _lstm(cfg: RunConfig, **changes) -> RunConfig:
    """The paper's LSTM baseline in place of the transformer: as wide as the backbone it replaces
    (768 for GPT-2 small, 384 for MiniLM), lr 3e-4."""
    width = hidden_size_of(cfg.backbone)
    width = None if width == 768 else width      # None: the LSTM's default, 768
    return dataclasses.replace(cfg, backbone="lstm", init="random", lr=LSTM_LR, hidden_size=width, **changes)


def _table1(profile, bb):
    out = []
    for t in _tasks(profile):
        base = _base(t, profile, bb)
        out.append(_label(base, "table1", "FPT", t))
        # "Full transformer": the same architecture, randomly initialised, every weight trained
        out.append(_label(dataclasses.replace(base, init="random", freeze="full"), "table1", "Full transformer", t))
        out.append(_label(_lstm(base, freeze="full"), "table1", "Full LSTM", t))
    return out


def _init(profile, bb):
    out = []
    for t in _tasks(profile, QUICK_ABLATION_TASKS):
        base = _base(t, profile, bb)
        out.append(_label(base, "init", "language", t))
        out.append(_label(dataclasses.replace(base, init="random"), "init", "random", t))
        if t != "bit-memory":
            out.append(_label(dataclasses.replace(base, init="bit-memory"), "init", "Bit Memory pretrained", t))
        out.append(_label(dataclasses.replace(base, init="statistics"), "init", "statistics only", t))
    return out


def _architecture(profile, bb):
    t = "cifar10" if profile == "full" else "mnist"
    base = _base(t, profile, bb, init="random")
    return [_label(base, "architecture", "frozen random transformer", "cifar10"),
            _label(_lstm(base), "architecture", "frozen random LSTM", "cifar10")]


def _compute(profile, bb):
    out = []
    for t in _tasks(profile, QUICK_ABLATION_TASKS):
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
    # quick: depth of the bundled backbone stands in for size (2, 4 and all of MiniLM's 6 layers;
    # "all" shares its run with table 1)
    out = []
    for row, k in (("small", 2), ("medium", 4), ("large", None)):
        for col, init in (("language", "pretrained"), ("random", "random")):
            out.append(_label(_base("bit-xor", profile, bb, init=init, layers=k), "model_size", row, col))
    return out


LADDER = (("output only", "output_only"), ("+ layer norm", "+layernorm"), ("+ input", "+input"),
          ("+ positions", "fpt"))


def _ladder(profile, bb):
    reported = paper.get("ladder").values     # the paper ran the random ladder on five tasks only
    out = []
    for t in _tasks(profile, QUICK_ABLATION_TASKS):
        for init, row_init in (("pretrained", "pretrained"), ("random", "random")):
            if f"{t} {row_init}" not in reported or (profile == "quick" and init == "random" and t != "bit-xor"):
                continue        # quick: the random ladder on Bit XOR only (the paper's starkest row)
            for col, preset in LADDER:
                cfg = _base(t, profile, bb, init=init, freeze=preset)
                out.append(_label(cfg, "ladder", f"{t} {row_init}", col))
    return out


def _layernorm(profile, bb):
    t = "cifar10" if profile == "full" else "mnist"
    return [_label(_base(t, profile, bb, init=init, freeze=preset), "layernorm", init, col)
            for init in ("pretrained", "random")
            for col, preset in (("layer norm frozen", "input+output+positions"), ("layer norm trained", "fpt"))]


def _more_than_fpt(profile, bb):
    rows = (("FPT", "fpt"), ("+ feed-forward", "+feedforward"), ("+ attention", "+attention"), ("+ both", "+both"))
    return [_label(_base(t, profile, bb, freeze=preset), "more_than_fpt", row, t)
            for t in _tasks(profile, QUICK_ABLATION_TASKS) for row, preset in rows]


def _backbones(profile, bb):
    # quick: the default backbone in the row of its family (MiniLM is a small BERT, not GPT-2)
    names = (("GPT-2", "gpt2"), ("BERT", "bert-base")) if profile == "full" else \
        ((("BERT" if bb in ("minilm", "bert-base") else "GPT-2"), bb),)
    columns = ("cifar10", "listops") if profile == "full" else ("listops",)
    return [_label(_base(t, profile, name), "backbones", row, t) for row, name in names for t in columns]


def _depth(profile, bb):
    layers = (1, 2, 6) if profile == "full" else (1, 2)     # quick: MiniLM has only 6 layers in all
    out = []
    for k in layers:
        for col, init in (("pretrained", "pretrained"), ("random", "random")):
            out.append(_label(_base("listops", profile, bb, init=init, layers=k, freeze="+layernorm"),
                              "depth", f"{k} layer{'s' if k > 1 else ''}", col))
    for col, init in (("pretrained", "pretrained"), ("random", "random")):
        out.append(_label(_base("listops", profile, bb, init=init, freeze="output_only"),
                          "depth", "12 layers, output only", col))
    return out


def _lr_critique(profile, bb):
    """One configuration per (model, task) at the profile's default lr; the sweep
    (``fptlib.sweeps``) varies lr and seeds around these and selects on validation."""
    columns = ("listops", "mnist", "cifar10", "cifar10-lra") if profile == "full" else ("listops", "mnist")
    rows = (("frozen random", "random", "fpt"), ("frozen pretrained", "pretrained", "fpt"),
            ("unfrozen random", "random", "full"), ("unfrozen pretrained", "pretrained", "full"))
    return [_label(_base(t, profile, bb, init=init, freeze=preset, batch_size=8), "lr_critique", row, t)
            for t in columns for row, init, preset in rows]


TABLES: dict[str, Callable[[str, str], list[RunConfig]]] = {
    "table1": _table1, "init": _init, "architecture": _architecture, "compute": _compute,
    "model_size": _model_size, "ladder": _ladder, "layernorm": _layernorm, "more_than_fpt": _more_than_fpt,
    "backbones": _backbones, "depth": _depth, "lr_critique": _lr_critique,
}
ALIASES = {"table2": "init", "lstm-vs-transformer": "architecture", "steps": "compute",
           "param-groups": "ladder", "more-than-fpt": "more_than_fpt", "model-size": "model_size",
           "lr-critique": "lr_critique"}


def names() -> list[str]:
    return list(TABLES)


def canonical(name: str) -> str:
    name = ALIASES.get(name, name)
    if name not in TABLES:
        raise ValueError(f"unknown experiment table {name!r}: known tables are {names()} "
                         f"(aliases: {sorted(ALIASES)})")
    return name


def table(name: str, profile: str | None = None, backbone: str | None = None, **changes) -> list[RunConfig]:
    """The run configurations of a paper table at a profile (default: :func:`choose_profile`), each
    labelled with its row and column. ``changes`` replace fields of every config (e.g. ``steps=50``
    for a shorter smoke run)."""
    configs = TABLES[canonical(name)](check_profile(profile or choose_profile()[0]), resolve_backbone(backbone))
    return [dataclasses.replace(c, **changes) for c in configs] if changes else configs


# -- running --------------------------------------------------------------------------------

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
    path = weights_path(record["key"], directory)
    if not path.is_file():
        raise FileNotFoundError(f"the Bit Memory pretraining run {pre.key} has a record but no weights at {path}: "
                                f"delete its record in {results.results_dir(directory)} to train it again")
    backbone = load_backbone(config.backbone, init="random", dropout=config.dropout, seed=config.seed,
                             layers=config.layers, config_overrides=dict(config.backbone_overrides) or None)
    state = torch.load(path, map_location="cpu", weights_only=True)
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

    ``checkpoint`` (default: on for the full profile) keeps a resumable checkpoint under
    ``<results>/checkpoints/<key>/``: rerunning after an interruption continues where it stopped.
    ``compile``: the Trainer's torch.compile setting (a speed choice, not part of the run's key).
    """
    if not force:
        done = results.get(config.key, directory)
        if done is not None:
            return done
    record, _ = train(config, directory=directory, progress=progress, device=device, checkpoint=checkpoint,
                      save_weights=save_weights, compile=compile)
    return record


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
    (None: on for the full profile only). ``save_weights``: keep the trained parameters next to
    the record (None: when there are at most MAX_SAVED_TRAINED of them).
    Output-only runs of dataset tasks train on cached frozen features (:func:`uses_feature_cache`;
    augmentation and dropout before the output layer off, as the record's notes say)."""

    dev = env.pick_device(device)
    model, task = build(config, "cpu", directory)      # the Trainer moves it (under DDP: to this rank's GPU)
    if checkpoint is None:
        checkpoint = config.profile == "full"
    if isinstance(checkpoint, (str, Path)):
        ckpt_dir = Path(checkpoint)
    else:
        ckpt_dir = results.results_dir(directory) / "checkpoints" / config.key if checkpoint else None
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
    if config.profile == "quick":
        notes.append(FULL_SIZE_NOTE)
    if config.backbone != "lstm" and not config.backbone.startswith("gpt2"):
        notes.append(f"backbone {config.backbone}, not the paper's GPT-2")
    record = results.make_record(result, model, task, key=config.key, freeze=config.freeze, profile=config.profile,
                                 label={"table": config.table, "row": config.row, "column": config.column},
                                 notes=notes, extra={"run_config": config.to_dict()})
    if hasattr(result, "feature_s"):
        record["feature_cache"] = {"feature_s": round(result.feature_s, 3), "examples": result.cached_examples}
    if store and context().is_main:        # under DDP only rank 0 writes
        trained = {n: p.detach().cpu() for n, p in model.named_parameters() if p.requires_grad}
        if save_weights is None:
            save_weights = sum(p.numel() for p in trained.values()) <= MAX_SAVED_TRAINED
        if save_weights:
            path = weights_path(config.key, directory)
            atomic_save(trained, path)
            record["weights"] = str(path.name)
        results.save(record, directory)
    if context().enabled:                  # the other ranks wait for the files (Bit Memory weights)
        torch.distributed.barrier()
    return record, model


def load_model(config: RunConfig, device: str = "cpu", directory=None):
    """The trained model of a finished run (rebuilt, then its trained weights loaded), with its task.
    Raises FileNotFoundError when the run has no stored weights: ``run(config)`` first."""
    path = weights_path(config.key, directory)
    if not path.is_file():
        raise FileNotFoundError(f"no trained weights for run {config.key} at {path}: call experiments.run(config) first")
    model, task = build(config, device, directory)
    state = torch.load(path, map_location=device, weights_only=True)
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
              compile: bool | str = "auto", **changes) -> list[dict]:
    """Run every configuration of a table that the store does not have yet; return all records
    in the table's order, each labelled with its place in THIS table (a run shared with another
    table is stored once, under the label of the table that ran it first). Runs are taken group by group (:func:`compatible_groups`: the seeds
    and learning rates of one setting together). Runs whose data or backbone is not available
    here are skipped with a message."""
    configs = table(name, profile, backbone, **changes)
    groups = compatible_groups(configs)
    log(f"{name}: {len(configs)} configurations, {sum(map(len, groups))} distinct runs "
        f"in {len(groups)} groups (differing in {' or '.join(GROUP_VARIES)} only)")
    by_key = {}
    ordered = [cfg for group in groups for cfg in group]
    for i, cfg in enumerate(ordered, 1):
        done = results.get(cfg.key, directory)
        if done is not None:
            log(f"[{i}/{len(ordered)}] done already: {cfg.row} / {cfg.column} ({cfg.key})")
            by_key[cfg.key] = done
            continue
        log(f"[{i}/{len(ordered)}] running {cfg.row} / {cfg.column}: {cfg.describe()}")
        try:
            by_key[cfg.key] = run(cfg, directory=directory, progress=progress, device=device, compile=compile)
        except (FileNotFoundError, BackboneUnavailable) as err:
            log(f"    skipped, not available here: {err}")
    return [{**by_key[c.key], "label": {"table": c.table, "row": c.row, "column": c.column}}
            for c in configs if c.key in by_key]
