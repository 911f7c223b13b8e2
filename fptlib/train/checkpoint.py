"""Atomic checkpoints that resume to exactly the run that was interrupted.

A checkpoint holds what a run needs to continue as if it had never stopped: the trained
parameters, the optimizer (and gradient-scaler) state, the step, every random-number state, and
the history so far. Frozen parameters are not stored (GPT-2 large would make each checkpoint
3 GB); instead a fingerprint of them is, and resuming onto different frozen weights (a random
backbone built with another seed, say) is refused. So is a checkpoint written for another
configuration: the message lists what differs.

A checkpoint holds plain data only (tensors, dicts, lists, numbers, strings: RNG states too), so it
is read with ``torch.load(weights_only=True)``: a checkpoint from elsewhere (a shared drive, a
colleague) cannot run code when loaded. Empty files, folders, other files and other schemas are
refused with the path and the fix. Ctrl-C during training stops after the current step with a
checkpoint (``DeferredInterrupt``); temporaries left by a killed writer are removed.
"""
from __future__ import annotations

import os
import pickle
import random
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fptlib.files import atomic_write

CHECKPOINT_NAME = "checkpoint.pt"
FORMAT = 2              # 2: plain data only (RNG states as lists and tensors), read with weights_only=True
REQUIRED = ("format", "identity", "fingerprint", "trained", "optimizer", "scaler", "rng", "step")
PLAIN = (str, int, float, bool, type(None), torch.Tensor)
STALE_TMP_AGE_S = 60    # a temporary untouched this long, and older than this process, is a dead writer's
_PROCESS_START = time.time()


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """torch.save through a temporary file and os.replace (see files.atomic_write). Only plain
    data is saved (``check_plain``), so that the file loads with ``weights_only=True``."""
    check_plain(obj)
    return atomic_write(path, lambda f: torch.save(obj, f), binary=True)


def check_plain(obj: Any, where: str = "") -> None:
    """Raise TypeError naming the first entry that is not a tensor, dict, list, tuple, number,
    string, bool or None."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if not isinstance(key, (str, int)):
                raise TypeError(f"checkpoint key {where}[{key!r}] is a {type(key).__name__}: keys must be "
                                f"strings or integers")
            check_plain(value, f"{where}.{key}" if where else str(key))
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            check_plain(value, f"{where}[{i}]")
    elif not isinstance(obj, PLAIN):
        raise TypeError(f"checkpoint entry {where or 'value'} is a {type(obj).__module__}.{type(obj).__name__}: "
                        f"a checkpoint holds only tensors, dicts, lists, numbers and strings, so that it "
                        f"loads with weights_only=True (convert it, e.g. to a tensor or a list)")


def rng_state() -> dict:
    """Every random-number state, as plain data (tensors, lists, numbers, strings)."""
    version, py_state, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"torch": torch.get_rng_state(),
             "python": {"version": version, "state": list(py_state), "gauss": gauss},
             "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def trained_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Trainable parameters and all buffers, on the CPU."""
    state = {n: p.detach().cpu().clone() for n, p in model.named_parameters() if p.requires_grad}
    state.update({f"buffer:{n}": b.detach().cpu().clone() for n, b in model.named_buffers()})
    return state


def load_trained_state(model: torch.nn.Module, state: dict[str, torch.Tensor],
                       where: str = "the saved weights") -> None:
    """Copy ``state`` (trained parameters, and buffers as ``buffer:<name>``) into ``model``. A tensor
    the model lacks, of another shape, or not a tensor at all is a ValueError naming ``where``."""
    params = dict(model.named_parameters())
    buffers = dict(model.named_buffers())
    targets = {}
    for name, value in state.items():
        target = buffers.get(name[len("buffer:"):]) if name.startswith("buffer:") else params.get(name)
        if target is None:
            problem = "the model has no such tensor"
        elif not isinstance(value, torch.Tensor):
            problem = f"it is a {type(value).__name__}, not a tensor"
        elif value.shape != target.shape:
            problem = f"shape {tuple(value.shape)}, the model's is {tuple(target.shape)}"
        else:
            targets[name] = (target, value)
            continue
        raise ValueError(f"{where} do not fit this model: {name!r}: {problem}. They were written for "
                         f"another model (or damaged): delete them to train afresh")
    with torch.no_grad():
        for target, value in targets.values():
            target.copy_(value)


def frozen_fingerprint(model: torch.nn.Module) -> dict[str, list[float]]:
    """Per frozen tensor: sum and sum of squares in float64. Cheap, and enough to notice that
    the frozen weights are not the ones the checkpoint was trained on."""
    frozen = [(name, p) for name, p in model.named_parameters() if not p.requires_grad]
    if not frozen:
        return {}

    def sums(p):                        # one float64 copy at a time
        d = p.detach().double()
        return torch.stack([d.sum(), (d * d).sum()])
    with torch.no_grad():
        values = torch.stack([sums(p) for _, p in frozen]).tolist()     # one host read, not two per tensor
    return {name: [round(a, 6), round(b, 6)] for (name, _), (a, b) in zip(frozen, values)}


def config_differences(saved: Any, current: Any, prefix: str = "") -> list[str]:
    """Human-readable list of the leaves that differ between two nested JSON-like configs."""
    if isinstance(saved, dict) and isinstance(current, dict):
        diffs = []
        for key in sorted(set(saved) | set(current), key=str):
            where = f"{prefix}.{key}" if prefix else str(key)
            if key not in saved:
                diffs.append(f"{where}: absent in the checkpoint, {current[key]!r} now")
            elif key not in current:
                diffs.append(f"{where}: {saved[key]!r} in the checkpoint, absent now")
            else:
                diffs.extend(config_differences(saved[key], current[key], where))
        return diffs
    if isinstance(saved, (list, tuple)) and isinstance(current, (list, tuple)) and len(saved) == len(current):
        diffs = []
        for i, (a, b) in enumerate(zip(saved, current)):
            diffs.extend(config_differences(a, b, f"{prefix}[{i}]"))
        return diffs
    return [] if saved == current else [f"{prefix or 'value'}: {saved!r} in the checkpoint, {current!r} now"]


class CheckpointMismatch(ValueError):
    """The checkpoint in a run folder was written for another configuration."""


def check_compatible(path: Path, saved_config: dict, config: dict,
                     saved_fingerprint: dict, fingerprint: dict) -> None:
    diffs = config_differences(saved_config, config)
    if saved_fingerprint != fingerprint:
        changed = sorted(k for k in set(saved_fingerprint) | set(fingerprint)
                         if saved_fingerprint.get(k) != fingerprint.get(k))
        diffs.append(f"frozen weights differ from the checkpoint's ({len(changed)} tensors, e.g. "
                     f"{changed[0]}): was the backbone loaded differently or initialised with another seed?")
    if diffs:
        listing = "\n  ".join(diffs[:20]) + ("\n  ..." if len(diffs) > 20 else "")
        raise CheckpointMismatch(
            f"refusing to resume from {path}: it was written for another configuration:\n  {listing}\n"
            f"Use another checkpoint_dir for this configuration, or delete {path} to start afresh.")


def check_steps(path: Path, saved_step: int, steps: int) -> None:
    """A checkpoint past the requested steps holds a longer run: it cannot stand for this one."""
    if saved_step > steps:
        raise CheckpointMismatch(
            f"refusing to resume from {path}: it is at step {saved_step}, past this run's steps={steps}, so "
            f"its parameters are those of a longer run. Ask for steps >= {saved_step}, use another "
            f"checkpoint_dir, or delete {path} to start afresh.")


def load(path: str | os.PathLike, required: tuple[str, ...] = REQUIRED) -> dict:
    """A checkpoint written by ``atomic_save``, read with ``weights_only=True`` (nothing in it can run
    code). Anything else (a folder, an empty or truncated file, pickled objects, another schema) is a
    ValueError naming the path and the fix."""
    path = Path(path)
    fix = f"delete {path} (or use another checkpoint_dir) to start afresh"
    if path.is_dir():
        raise ValueError(f"the checkpoint path {path} is a folder, not a file: remove it or use another "
                         f"checkpoint_dir")
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if path.stat().st_size == 0:
        raise ValueError(f"the checkpoint {path} is empty (an interrupted copy?): {fix}")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "weights only" not in str(err).lower():
            raise ValueError(f"the checkpoint {path} is not a readable PyTorch file ({str(err).splitlines()[0]}): "
                             f"{fix}") from None
        raise ValueError(
            f"refusing to load {path}: it holds objects that are not plain data (tensors, dicts, lists, "
            f"numbers, strings), and unpickling them could run code ({str(err).splitlines()[0][:200]}). fptlib "
            f"writes only plain data (older versions wrote numpy RNG states): {fix}") from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise ValueError(f"the checkpoint {path} is not a readable PyTorch file ({err}); it may be truncated: "
                         f"{fix}") from None
    if not isinstance(saved, dict) or "format" not in saved:
        what = f"keys {sorted(map(str, saved))[:5]}" if isinstance(saved, dict) else f"a {type(saved).__name__}"
        raise ValueError(f"{path} is not an fptlib training checkpoint (it holds {what}): {fix}")
    if saved["format"] != FORMAT:
        raise ValueError(f"the checkpoint {path} has format {saved['format']!r}; this version of fptlib reads "
                         f"format {FORMAT}: {fix}")
    missing = [k for k in required if k not in saved]
    if missing:
        raise ValueError(f"the checkpoint {path} lacks {missing}: it was not written by fptlib's Trainer; {fix}")
    step = saved.get("step", 0)
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"the checkpoint {path} says step {step!r}, not a whole number of steps: {fix}")
    if not isinstance(saved.get("trained", {}), dict):
        raise ValueError(f"the checkpoint {path} holds no trained tensors (its 'trained' is a "
                         f"{type(saved['trained']).__name__}): {fix}")
    return saved


def load_weights(path: str | os.PathLike, map_location="cpu") -> dict[str, torch.Tensor]:
    """Stored trained weights (a dict of tensors, as ``atomic_save`` writes them), read with
    ``weights_only=True``. A truncated or damaged file, pickled objects (never unpickled here:
    torch's advice to retry with weights_only=False would run whatever they name) or anything
    but tensors is a ValueError naming the file and the fix."""
    path = Path(path)
    fix = f"delete {path} (and its record, to train the run again)"
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(f"refusing to load {path}: it is not plain tensors, and unpickling it could run "
                         f"code ({str(err).splitlines()[0][:160]}); {fix}") from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise ValueError(f"the weights file {path} cannot be read ({str(err).splitlines()[0][:160]}); it "
                         f"is probably truncated: {fix}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"the weights file {path} does not hold a dict of tensors: {fix}")
    return state


def remove_stale_temporaries(folder: str | os.PathLike, name: str = CHECKPOINT_NAME) -> list[Path]:
    """Delete ``.<name>.*.tmp`` files that a killed writer left behind: those older than this process
    and untouched for STALE_TMP_AGE_S (a file another process is writing now is kept)."""
    removed = []
    now = time.time()
    for tmp in Path(folder).glob(f".{name}.*.tmp"):
        try:
            mtime = tmp.stat().st_mtime
            if mtime < _PROCESS_START and now - mtime > STALE_TMP_AGE_S:
                tmp.unlink()
                removed.append(tmp)
        except OSError:
            pass                        # gone already, or not ours to delete
    return removed


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped training after a whole step; ``checkpoint`` (when kept) resumes it."""

    def __init__(self, step: int, checkpoint: Path | None):
        self.step, self.checkpoint = step, checkpoint
        where = (f"; checkpoint {checkpoint}: the same call (the same checkpoint folder) resumes from step {step}"
                 if checkpoint else "; no checkpoint kept: the same call starts afresh")
        super().__init__(f"interrupted at step {step}{where}")


class DeferredInterrupt:
    """Between ``start()`` and ``stop()``, Ctrl-C (SIGINT) only sets ``requested``: the training loop
    finishes its step, saves a checkpoint and raises TrainingInterrupted, so a checkpoint never holds
    half a step. A second Ctrl-C stops at once. Outside the main thread (where signals cannot be
    caught), where SIGINT is ignored, or with ``enabled=False`` (DDP: processes signalled a step
    apart would wait on each other for ever), it does nothing."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.requested = False
        self._previous = None

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nCtrl-C: stopping after this step (press again to stop at once)", file=sys.stderr, flush=True)

    def start(self) -> "DeferredInterrupt":
        # only in the main thread, and not where SIGINT is ignored (nohup, a background job)
        if self.enabled and threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def stop(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
