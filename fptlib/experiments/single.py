"""One run: train it (or find its record), store its record and weights (:func:`run`, :func:`train`),
and the Bit Memory pretraining a ``bit-memory`` init needs first (:func:`ensure_pretraining`)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Mapping

import torch

from fptlib import env, results
from fptlib.experiments import catalogue, models
from fptlib.experiments.cost import run_seconds
from fptlib.experiments.settings import RESUMABLE, RunConfig, check_outputs, profile_notes, store_dir
from fptlib.train.checkpoint import atomic_save
from fptlib.train.distributed import context
from fptlib.train.features import fit_output_only, has_training_set
from fptlib.train.trainer import TrainConfig, Trainer

MAX_SAVED_TRAINED = 5_000_000    # trained parameters above which weights are not kept (fully trained runs)
OUTPUT_ONLY = "output_only"      # the freeze preset whose runs train on cached frozen features
FRESH_DATA_NOTE = ("output layer only, trained with the ordinary Trainer: the task draws fresh examples "
                   "at every step, so there is no training set to cache")


def uses_feature_cache(config: RunConfig, task) -> bool:
    """Whether ``train`` fits ``config`` on cached frozen features (``train.features``): output-only
    runs of a task with a finite training set. Bit tasks draw fresh data at every step and train
    with the ordinary Trainer."""
    return config.freeze == OUTPUT_ONLY and has_training_set(task)


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


def ensure_pretraining(config: RunConfig, *, directory=None, progress: bool = True, device: str = "auto",
                       compile: bool | str = "auto") -> dict | None:
    """The explicit prerequisite of a ``bit-memory`` init: its Bit Memory pretraining run
    (``pretraining_config``), stored with its trained weights, trained here unless it already is.
    Returns its record; None for any other init. ``train`` (so ``run``, ``run_many``, ``reproduce``
    and the ``train`` command) calls it before building; ``build`` never trains."""
    if config.init != "bit-memory":
        return None
    pre = catalogue.pretraining_config(config)
    kw = dict(directory=directory, save_weights=True, progress=progress, device=device, compile=compile)
    record = run(pre, **kw)
    if not results.weights_path(pre.key, store_dir(pre.profile, directory)).is_file():
        record = run(pre, force=True, **kw)    # stored by another table without its (large) weights: again
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
    (None: on for the full profile and for runs estimated over ``CHECKPOINT_AFTER_SECONDS``). ``save_weights``: keep the trained parameters next to
    the record (None: when there are at most MAX_SAVED_TRAINED of them). A ``bit-memory`` init's
    pretraining run is trained first when not stored (:func:`ensure_pretraining`).
    Output-only runs of dataset tasks train on cached frozen features (:func:`uses_feature_cache`;
    augmentation and dropout before the output layer off, as the record's notes say)."""

    check_outputs([config], directory, checkpoint=checkpoint, store=store)
    dev = env.pick_device(device)
    ensure_pretraining(config, directory=directory, progress=progress, device=device, compile=compile)
    model, task = models.build(config, "cpu", directory)      # the Trainer moves it (under DDP: to this rank's GPU)
    ckpt_dir = checkpoint_folder(checkpoint, config, config.key, directory)
    tc = train_config(config, device=str(dev), progress=progress, compile=compile,
                      checkpoint_dir=str(ckpt_dir) if ckpt_dir else None)
    notes = []
    if uses_feature_cache(config, task):
        # a checkpoint of the output head alone: apart from any checkpoint of an uncached run
        if tc.checkpoint_dir:
            tc = dataclasses.replace(tc, checkpoint_dir=str(Path(tc.checkpoint_dir) / results.CACHED))
        result = fit_output_only(model, task, tc)
        notes.extend(result.notes)
    else:
        if config.freeze == OUTPUT_ONLY:
            notes.append(FRESH_DATA_NOTE)
        result = Trainer(model, task, tc).fit()
    record = store_record(config, result, model, task, notes=notes, directory=directory, store=store,
                            save_weights=save_weights)
    return record, model


# a run estimated longer than this on this machine (``run_seconds``) keeps a checkpoint by default
CHECKPOINT_AFTER_SECONDS = 600


def checkpoint_folder(checkpoint, config: RunConfig, name: str, directory) -> Path | None:
    """``checkpoint``: True for ``results.checkpoint_dir(name)`` (a run key or a pack's name), a
    folder, False, or None (the full profile, and any run estimated longer than
    ``CHECKPOINT_AFTER_SECONDS``: an interrupted one resumes)."""
    if checkpoint is None:
        checkpoint = config.profile == "full" or run_seconds(config) > CHECKPOINT_AFTER_SECONDS
    if isinstance(checkpoint, (str, Path)):
        return Path(checkpoint)
    return results.checkpoint_dir(name, store_dir(config.profile, directory)) if checkpoint else None


def store_record(config: RunConfig, result, model, task, *, notes=(), directory=None, store: bool = True,
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
                            or config.key == catalogue.pretraining_config(config).key)
        if save_weights:
            path = results.weights_path(config.key, folder)
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
