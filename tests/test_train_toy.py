"""A tiny test-only task and model for the trainer's unit tests (not part of fptlib).

ToyTask follows the Task contract of docs/ARCHITECTURE.md: Bit-XOR-like data generated from
(seed, step), so ``start_step`` resumes the same stream. ToyModel is a small MLP with dropout and
one frozen layer, so checkpoints must handle frozen parameters and RNG state.
"""
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class ToyBatch:
    x: torch.Tensor
    y: torch.Tensor
    mask: torch.Tensor | None = None

    def to(self, device):
        return ToyBatch(self.x.to(device), self.y.to(device), None if self.mask is None else self.mask.to(device))


class ToyTask:
    name = "toy-xor"
    description = "test-only: XOR of two 4-bit strings"
    data_source = "generated (test-only toy)"
    input_kind = "continuous"
    token_dim, vocab_size, pad_id = 1, None, None
    max_len, output_tokens, output_dim = 8, 1, 4
    hparams = {}
    eval_splits = ("val", "test")

    def __init__(self, nan_at_step=None):
        self.nan_at_step = nan_at_step

    def _batch(self, gen, batch_size, device):
        bits = torch.randint(0, 2, (batch_size, 8), generator=gen).float()
        y = (bits[:, :4] != bits[:, 4:]).float()
        return ToyBatch(bits.to(device), y.to(device))

    def train_batches(self, batch_size, device, seed, start_step=0):
        step = start_step
        while True:
            gen = torch.Generator().manual_seed(seed * 1_000_003 + step)
            b = self._batch(gen, batch_size, device)
            if self.nan_at_step is not None and step >= self.nan_at_step:
                b.x[0, 0] = float("nan")
            yield b
            step += 1

    def eval_batches(self, split, batch_size, device, limit=None):
        gen = torch.Generator().manual_seed(10_000 + self.eval_splits.index(split))
        for i in range(4 if limit is None else min(limit, 4)):
            yield self._batch(gen, batch_size, device)

    def loss(self, logits, y):
        return F.binary_cross_entropy_with_logits(logits, y)

    def accuracy(self, logits, y):
        return ((logits > 0).float() == y).float().mean()


class ToyModel(torch.nn.Module):
    def __init__(self, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.inp = torch.nn.Linear(8, 32)
        self.frozen = torch.nn.Linear(32, 32)
        self.out = torch.nn.Linear(32, 4)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        self.frozen.requires_grad_(False)
        self.drop = torch.nn.Dropout(0.1)

    def forward(self, x, attention_mask=None):
        return self.out(self.drop(torch.relu(self.frozen(torch.relu(self.inp(x))))))


def test_toy_task_is_deterministic_in_seed_and_step():
    t = ToyTask()
    a = [b.x for _, b in zip(range(3), t.train_batches(4, "cpu", seed=1))]
    b = next(t.train_batches(4, "cpu", seed=1, start_step=2)).x
    assert torch.equal(a[2], b) and not torch.equal(a[0], a[1])


# -- shared by the trainer / experiments / results / CLI tests -------------------------------
import pytest  # noqa: E402

# a tiny randomly initialised GPT-2 (no download): the real FPT code path at test speed
TINY_GPT2 = (("n_embd", 32), ("n_head", 2), ("n_layer", 2))


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: on a shared 2-core machine two OpenMP threads were measured 10-80x
    slower for small models (they spin while the other core is busy)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_config(task="bit-xor", **changes):
    from fptlib import experiments
    base = experiments.config(task, "quick", "gpt2", init="random", backbone_overrides=TINY_GPT2,
                                   steps=6, eval_every=3, dropout=0.0)
    return experiments.dataclasses.replace(base, **changes)
