"""A run's model: built untrained from its config (:func:`build`), or loaded trained (:func:`load_model`).
Nothing here trains."""
from __future__ import annotations

import os

import torch

from fptlib import env, results, tasks
from fptlib.backbones.registry import load_backbone
from fptlib.experiments import catalogue
from fptlib.experiments.settings import INITS, RunConfig, store_dir
from fptlib.model import FPT
from fptlib.train.checkpoint import load_trained_state, load_weights


class PretrainingMissing(RuntimeError):
    """A ``bit-memory`` init was built before its Bit Memory pretraining run was stored with its weights."""


def build(config: RunConfig, device: str | torch.device = "cpu", directory=None):
    """(model, task) for a config, seeded by config.seed; the model is untrained, and nothing is
    trained here: a ``bit-memory`` init needs its pretraining run stored first
    (``experiments.ensure_pretraining``; ``run``, ``train``, ``run_many`` and ``reproduce`` do it),
    else :class:`PretrainingMissing`."""
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
    The pretraining is itself a stored run with its weights (``experiments.ensure_pretraining``)."""
    pre = catalogue.pretraining_config(config)
    path = results.weights_path(pre.key, store_dir(pre.profile, directory))
    if not path.is_file():
        raise PretrainingMissing(f"run {config.key} starts from the Bit Memory pretraining run {pre.key}, whose "
                                 f"trained weights are not at {path}: call experiments.ensure_pretraining(config) "
                                 f"first (experiments.run, train, run_many and reproduce do)")
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
    backbone.source = f"randomly initialised, then fully trained on Bit Memory (run {pre.key})"
    return backbone


LOADED_WEIGHTS_LOG = "FPT_LOADED_WEIGHTS_LOG"    # a file: load_model appends each weights file it loads


def load_model(config: RunConfig, device: str = "cpu", directory=None):
    """The trained model of a finished run (rebuilt, then its trained weights loaded), with its task.
    Raises FileNotFoundError when the run has no stored weights: ``run(config)`` first."""
    path = results.weights_path(config.key, store_dir(config.profile, directory))
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
