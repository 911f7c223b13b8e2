"""Which examples go into which training step: seeded epochs and length bucketing.

Training order is a pure function of ``(seed, epoch)``: epoch ``e`` is a permutation drawn from a
generator seeded with ``(seed, "epoch", e)``, and step ``s`` is batch ``s % per_epoch`` of epoch
``s // per_epoch``. A run resumed at any step therefore sees the same batches as one that never
stopped, without saving any sampler state.

For variable-length data (ListOps, protein sequences) padding every batch to the longest example
in the whole dataset wastes most of the compute. The bucketing sampler shuffles, then sorts
within pools of ``pool`` batches by length, cuts batches from each sorted pool and shuffles the
batch order: every batch holds examples of similar length, and each is padded only to its own
longest example.
"""
from __future__ import annotations

import torch
from torch import Tensor

from fptlib.tasks.base import positive, seeded_generator


def epoch_permutation(n: int, seed: int, epoch: int) -> Tensor:
    """The order of the ``n`` training examples in ``epoch`` (CPU LongTensor)."""
    return torch.randperm(n, generator=seeded_generator("cpu", seed, "epoch", epoch))


def bucketed_batches(lengths: Tensor, batch_size: int, seed: int, epoch: int,
                     pool: int = 50) -> list[Tensor]:
    """The batches (index tensors) of one epoch, grouped by similar length.

    ``lengths`` is a CPU tensor of example lengths. Incomplete trailing batches are dropped, as in
    the uniform sampler, so every step has exactly ``batch_size`` examples.
    """
    order = epoch_permutation(len(lengths), seed, epoch)
    batches = []
    chunk = batch_size * pool
    for start in range(0, len(order), chunk):
        part = order[start:start + chunk]
        part = part[torch.argsort(lengths[part], stable=True)]
        batches += [part[i:i + batch_size] for i in range(0, len(part) - batch_size + 1, batch_size)]
    shuffle = torch.randperm(len(batches), generator=seeded_generator("cpu", seed, "buckets", epoch))
    return [batches[i] for i in shuffle.tolist()]


class StepSampler:
    """Maps a training step to the indices of its examples (deterministic in seed and step)."""

    def __init__(self, n: int, batch_size: int, seed: int, lengths: Tensor | None = None,
                 pool: int = 50):
        positive("batch_size", batch_size)
        if n < batch_size:
            raise ValueError(f"batch_size {batch_size} is larger than the {n} training examples; "
                             f"use a smaller batch_size or more training data")
        self.n, self.batch_size, self.seed, self.pool = n, batch_size, seed, pool
        self.lengths = None if lengths is None else lengths.cpu()
        self._epoch, self._batches = None, None

    def _epoch_batches(self, epoch: int) -> list[Tensor]:
        if self.lengths is not None:
            return bucketed_batches(self.lengths, self.batch_size, self.seed, epoch, self.pool)
        order = epoch_permutation(self.n, self.seed, epoch)
        usable = (self.n // self.batch_size) * self.batch_size
        return list(order[:usable].split(self.batch_size))

    def indices(self, step: int) -> Tensor:
        if self._batches is None:
            self._epoch, self._batches = 0, self._epoch_batches(0)
        per_epoch = len(self._batches)
        epoch, i = divmod(step, per_epoch)
        if epoch != self._epoch:
            self._epoch, self._batches = epoch, self._epoch_batches(epoch)
        return self._batches[i]
