"""Tasks backed by a fixed set of examples (images, ListOps files, proteins).

Each split is loaded once into CPU tensors (``Split``) and copied to the training device on first
use, so batches are gathered by indexing a tensor that already lives on the GPU: no DataLoader,
no worker processes, no host-to-device copy of examples per step (only the step's indices, sent
without waiting). Variable-length splits are stored padded to their longest example together with
the true lengths; a batch is cut to its own longest example (per-batch padding, its width read
from the CPU copy of the lengths, so the host never waits on the device) and carries a mask.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch
from torch import Tensor

from fptlib.tasks.base import Batch, Task, seeded_generator
from fptlib.tasks.sampling import StepSampler


@dataclass
class Split:
    """Examples of one split: ``x`` [N, ...], ``y`` [N], ``lengths`` [N] for padded sequences."""

    x: Tensor
    y: Tensor
    lengths: Tensor | None = None

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def to(self, device) -> "Split":
        lengths = None if self.lengths is None else self.lengths.to(device)
        return Split(self.x.to(device), self.y.to(device), lengths)

    @classmethod
    def from_sequences(cls, sequences: list[list[int]], labels: list[int]) -> "Split":
        """Token-id lists (ids < 256) stored right-padded with 0 as uint8, with their lengths."""
        width = max(len(t) for t in sequences)
        x = torch.zeros(len(sequences), width, dtype=torch.uint8)
        for row, t in enumerate(sequences):
            x[row, : len(t)] = torch.tensor(t, dtype=torch.uint8)
        return cls(x, torch.tensor(labels), torch.tensor([len(t) for t in sequences]))

    def take(self, n: int | None) -> "Split":
        """The first ``n`` examples (all when ``n`` is None)."""
        if n is None or n >= len(self):
            return self
        lengths = None if self.lengths is None else self.lengths[:n]
        return Split(self.x[:n], self.y[:n], lengths)


class DatasetTask(Task):
    """A task whose examples are stored tensors; subclasses implement ``load_splits``.

    ``prepare(x, train, generator)`` turns stored examples (e.g. uint8 images) into model input
    on the device; image tasks normalise, augment and cut patches there.
    """

    def __init__(self):
        self._splits: dict[str, Split] | None = None
        self._on_device: dict[tuple[str, str], Split] = {}

    # subclasses: return {"train": Split, "val": Split, <eval split>: Split, ...}
    def load_splits(self) -> dict[str, Split]:
        raise NotImplementedError

    def prepare(self, x: Tensor, train: bool, generator: torch.Generator | None) -> Tensor:
        return x

    # -------------------------------------------------------------------------------------
    def splits(self) -> dict[str, Split]:
        if self._splits is None:
            self._splits = self.load_splits()
        return self._splits

    def split(self, name: str, device="cpu") -> Split:
        key = (name, str(torch.device(device)))
        if key not in self._on_device:
            self._on_device[key] = self.splits()[name].to(device)
        return self._on_device[key]

    def _batch(self, data: Split, idx: Tensor, train: bool, generator, width: int | None) -> Batch:
        """Gather examples ``idx`` of ``data``; padded splits are cut to ``width`` tokens, the
        batch's longest example, which callers compute on the CPU (no device-to-host sync)."""
        x, mask = data.x[idx], None
        if data.lengths is not None:
            lengths = data.lengths[idx]
            x = x[:, :width].long()
            mask = (torch.arange(width, device=x.device)[None, :] < lengths[:, None]).long()
        return Batch(self.prepare(x, train, generator), data.y[idx].long(), mask)

    def batch_of(self, split: str, idx: Tensor, device) -> Batch:
        """Examples ``idx`` (CPU indices) of ``split`` as one batch on ``device``, un-augmented (as
        evaluated), padded to the longest of them: what a cache of frozen features reads."""
        data, host = self.split(split, device), self.splits()[split]
        return self._batch(data, idx.to(data.y.device), False, None, self._width(host, idx))

    @staticmethod
    def _width(host: Split, idx: Tensor) -> int | None:
        """The longest of examples ``idx`` (CPU indices) of the CPU split ``host``; None if unpadded."""
        return None if host.lengths is None else int(host.lengths[idx].max())

    def train_batches(self, batch_size: int, device, seed: int, start_step: int = 0) -> Iterator[Batch]:
        data, host = self.split("train", device), self.splits()["train"]
        sampler = StepSampler(len(data), batch_size, seed, lengths=host.lengths)  # length-bucketed
        step = start_step
        while True:
            idx = sampler.indices(step)  # a CPU tensor; its width is read on the CPU too
            width = self._width(host, idx)
            idx = idx.to(data.y.device, non_blocking=True)  # no wait for the device's queue
            yield self._batch(data, idx, True, seeded_generator(device, seed, "augment", step), width)
            step += 1

    def eval_batches(self, split: str, batch_size: int, device, limit: int | None = None) -> Iterator[Batch]:
        """The first ``limit`` examples of ``split`` in a fixed order (by length when padded)."""
        name = self.check_split(split)
        data, host = self.split(name, device).take(limit), self.splits()[name].take(limit)
        order = torch.arange(len(host))
        if host.lengths is not None:  # similar lengths together: less padding, same every call
            order = torch.argsort(host.lengths, stable=True)
        # ordered and cut on the CPU, which also knows each batch's width; one copy to the device
        on_device = order.to(data.y.device, non_blocking=True)
        for idx, dev_idx in zip(order.split(batch_size), on_device.split(batch_size)):
            yield self._batch(data, dev_idx, False, None, self._width(host, idx))
