"""The Task interface: what the model, the trainer and the notebooks agree on.

A task owns its data and everything that is specific to it: how an example becomes model input
(continuous tokens or token ids), how many output tokens the model reads and how many logits each
has, the loss and the accuracy, and the paper's hyperparameters. Everything else (the model, the
optimiser loop, the notebooks) is written once against this interface.

Two promises matter for the trainer:

* ``train_batches(batch_size, device, seed, start_step)`` is an infinite stream that is a pure
  function of ``(seed, step)``: a run resumed at ``start_step`` sees exactly the batches an
  uninterrupted run would have seen, so resuming reproduces the same result.
* ``eval_batches(split, batch_size, device, limit)`` is finite and fixed: every call yields the
  same examples in the same order, so validation numbers are comparable across runs (the paper's
  critique selects learning rates on validation).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass
class Batch:
    """One batch: ``x`` the model input, ``y`` the targets, ``mask`` 1 for real tokens (or None)."""

    x: Tensor
    y: Tensor
    mask: Tensor | None = None

    def to(self, device) -> "Batch":
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return Batch(move(self.x), move(self.y), move(self.mask))

    def __len__(self) -> int:
        return int(self.y.shape[0])


def positive(name: str, value, allow_none: bool = False):
    """``value`` if it is a positive integer (or None, with ``allow_none``), else a ValueError."""
    if allow_none and value is None:
        return value
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer{' or None' if allow_none else ''}, "
                         f"got {value!r}")
    return value


def whole_numbers(values, low: int, high: int, what: str):
    """``values`` (array-like) as an int64 numpy array when every value is a whole number from
    ``low`` to ``high``; else ValueError naming ``what`` (the file and field) and the first bad value.
    Casting alone would wrap 300 to 44 or truncate 3.7 to 3: a silently different dataset."""
    import numpy as np

    try:
        array = np.asarray(values)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{what}: not an array of numbers ({err})") from None
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{what}: holds {array.dtype} values, not numbers")
    bad = ~np.isfinite(array) if array.dtype.kind == "f" else np.zeros(array.shape, bool)
    bad |= (array < low) | (array > high)
    if array.dtype.kind == "f":
        bad |= np.nan_to_num(array) != np.round(np.nan_to_num(array))
    if bad.any():
        first = array.reshape(-1)[int(np.flatnonzero(bad.reshape(-1))[0])]
        raise ValueError(f"{what}: {int(bad.sum())} value(s) outside the whole numbers {low}..{high} "
                         f"(e.g. {first!r}): the file is damaged or not this dataset; replace it "
                         f"(delete it to download it again)")
    return array.astype(np.int64)


def stream_seed(*parts) -> int:
    """A 63-bit seed derived from ``parts`` (ints and strings), stable across Python runs.

    Python's ``hash`` of strings is salted per process, so a real hash is used: batches for
    ``(seed, "train", step)`` must be the same tomorrow as today.
    """
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def seeded_generator(device, *parts) -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded from ``parts`` (see :func:`stream_seed`).

    Numbers drawn on a CUDA generator differ from the CPU's for the same seed: a run is
    reproducible on the same kind of device.
    """
    gen = torch.Generator(device=torch.device(device))
    gen.manual_seed(stream_seed(*parts))
    return gen


def paper_hparams(*, lr: float = 1e-3, batch_size: int = 16, **extra) -> dict:
    """The paper's training settings (appendix C) plus task-specific entries.

    Adam with PyTorch defaults, no weight decay, no schedule, gradient clipping 1.0, dropout 0.1.
    The paper reports batch sizes of 2 to 16 ("the largest that fits" a 2080 Ti); the exact
    per-task choice is ours within that range and says so in ``batch_size_note``.
    """
    return {
        "lr": lr,
        "batch_size": batch_size,
        "batch_size_note": "our choice within the paper's 2-16 range",
        "optimizer": "adam",
        "weight_decay": 0.0,
        "grad_clip": 1.0,
        "dropout": 0.1,
        **extra,
    }


class Task:
    """Base class of every task; subclasses set the attributes and implement the two streams."""

    name: str = ""
    description: str = ""   # a short paragraph for notebooks
    data_source: str = ""   # what the data really is (never a dataset it is not)
    input_kind: str = "continuous"  # "continuous" (float tokens) or "discrete" (token ids)
    token_dim: int | None = None
    vocab_size: int | None = None
    pad_id: int | None = None
    max_len: int = 0
    output_tokens: int = 1
    output_dim: int = 0
    hparams: dict = {}
    eval_splits: tuple[str, ...] = ("val", "test")
    options: dict = {}      # the constructor options, for results records and caching

    # ---- model-facing -------------------------------------------------------------------
    def model_kwargs(self) -> dict:
        """Keyword arguments of ``FPT(...)`` that this task decides."""
        kw = {"output_dim": self.output_dim, "output_tokens": self.output_tokens,
              "max_len": self.max_len}
        if self.input_kind == "continuous":
            kw["token_dim"] = self.token_dim
        else:
            kw["vocab_size"] = self.vocab_size
            kw["pad_id"] = self.pad_id
        return kw

    # ---- data ---------------------------------------------------------------------------
    def train_batches(self, batch_size: int, device, seed: int, start_step: int = 0) -> Iterator[Batch]:
        raise NotImplementedError

    def eval_batches(self, split: str, batch_size: int, device, limit: int | None = None) -> Iterator[Batch]:
        """Finite, fixed batches of ``split``; ``limit`` caps the number of *examples*."""
        raise NotImplementedError

    def check_split(self, split: str) -> str:
        """Accept the evaluation splits and "train" (for train accuracy); else a clear error."""
        known = tuple(self.eval_splits) + ("train",)
        if split not in known:
            raise ValueError(f"task {self.name!r} has no split {split!r}; known splits: "
                             f"{', '.join(known)}")
        return split

    # ---- objective ----------------------------------------------------------------------
    def flatten(self, logits: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Logits as [examples, classes] and targets as [examples] for cross-entropy."""
        flat = logits.reshape(-1, logits.shape[-1])
        target = y.reshape(-1)
        if flat.shape[0] != target.shape[0]:
            raise ValueError(f"task {self.name!r}: logits {tuple(logits.shape)} do not match targets "
                             f"{tuple(y.shape)}; expected [batch, {self.output_dim}] per output token "
                             f"({self.output_tokens} output token(s))")
        return flat, target

    def loss(self, logits: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(*self.flatten(logits.float(), y))

    def accuracy(self, logits: Tensor, y: Tensor) -> Tensor:
        flat, target = self.flatten(logits, y)
        return (flat.argmax(-1) == target).float().mean()

    # ---- display ------------------------------------------------------------------------
    def info(self) -> dict:
        """A JSON-able summary (for results records, notebooks and ``python -m fptlib tasks``)."""
        return {
            "name": self.name, "description": self.description, "data_source": self.data_source,
            "input_kind": self.input_kind, "token_dim": self.token_dim,
            "vocab_size": self.vocab_size, "pad_id": self.pad_id, "max_len": self.max_len,
            "output_tokens": self.output_tokens, "output_dim": self.output_dim,
            "eval_splits": list(self.eval_splits), "hparams": dict(self.hparams),
            "options": dict(self.options),
        }

    def __repr__(self) -> str:
        shape = (f"tokens of dim {self.token_dim}" if self.input_kind == "continuous"
                 else f"tokens from a vocabulary of {self.vocab_size}")
        return (f"<Task {self.name}: up to {self.max_len} {shape}; {self.output_tokens} output "
                f"token(s) x {self.output_dim} logits; data: {self.data_source}>")
