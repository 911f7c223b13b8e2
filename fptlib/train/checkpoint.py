"""Atomic checkpoints that resume to exactly the run that was interrupted.

A checkpoint holds what a run needs to continue as if it had never stopped: the trained
parameters, the optimizer (and gradient-scaler) state, the step, every random-number state, and
the history so far. Frozen parameters are not stored (GPT-2 large would make each checkpoint
3 GB); instead a fingerprint of them is, and resuming onto different frozen weights (a random
backbone built with another seed, say) is refused. So is a checkpoint written for another
configuration: the message lists what differs.
"""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fptlib.files import atomic_write

CHECKPOINT_NAME = "checkpoint.pt"


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """torch.save through a temporary file and os.replace (see files.atomic_write)."""
    return atomic_write(path, lambda f: torch.save(obj, f), binary=True)


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def trained_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Trainable parameters and all buffers, on the CPU."""
    state = {n: p.detach().cpu().clone() for n, p in model.named_parameters() if p.requires_grad}
    state.update({f"buffer:{n}": b.detach().cpu().clone() for n, b in model.named_buffers()})
    return state


def load_trained_state(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    params = dict(model.named_parameters())
    buffers = dict(model.named_buffers())
    with torch.no_grad():
        for name, value in state.items():
            if name.startswith("buffer:"):
                buffers[name[len("buffer:"):]].copy_(value)
            else:
                params[name].copy_(value)


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


def load(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    # our own files: they hold RNG states (tuples, numpy arrays), so not weights_only
    return torch.load(path, map_location="cpu", weights_only=False)
