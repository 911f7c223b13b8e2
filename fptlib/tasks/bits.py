"""Bit Memory and Bit XOR: generated on the training device, nothing to download.

Bits are drawn on the device with a ``torch.Generator`` seeded from ``(seed, "train", step)``,
so the GPU never waits on NumPy and a resumed run sees the same bits as an uninterrupted one.
Evaluation sets are fixed: drawn from fixed seeds, independent of the training seed.

Both tasks predict bits: the model reads ``output_tokens`` last tokens and each gives
``2 * bits_per_token`` logits, laid out as ``[bits_per_token, 2]`` (for each bit, the logits of
0 and 1). ``loss`` and ``accuracy`` view the logits as ``[..., 2]`` per bit, so accuracy is the
fraction of bits right.
"""
from __future__ import annotations

from typing import Iterator

import torch
from torch import Tensor

from fptlib.tasks.base import Batch, Task, paper_hparams, positive, seeded_generator

EVAL_SEEDS = {"val": 1001, "test": 2002}  # fixed, never equal to a (seed, step) training stream


class BitTask(Task):
    """Shared machinery: per-bit loss/accuracy and seeded train/eval streams."""

    input_kind = "continuous"

    def __init__(self, eval_size: int):
        self.eval_size = positive("eval_size", eval_size)

    def generate(self, batch_size: int, generator: torch.Generator) -> Batch:
        raise NotImplementedError

    def flatten(self, logits: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        if logits.shape[-1] != self.output_dim:
            raise ValueError(f"task {self.name!r}: logits have {logits.shape[-1]} entries per "
                             f"output token, expected {self.output_dim} (2 per bit)")
        return super().flatten(logits.reshape(*logits.shape[:-1], -1, 2), y)

    def train_batches(self, batch_size: int, device, seed: int, start_step: int = 0) -> Iterator[Batch]:
        positive("batch_size", batch_size)
        step = start_step
        while True:
            yield self.generate(batch_size, seeded_generator(device, seed, "train", step))
            step += 1

    def eval_batches(self, split: str, batch_size: int, device, limit: int | None = None) -> Iterator[Batch]:
        """Fixed evaluation bits: batch ``i`` of ``split`` comes from seed (split seed, i).

        ``split="train"`` gives fresh bits too (the training distribution is the test one).
        """
        self.check_split(split)
        positive("batch_size", batch_size)
        total = self.eval_size if limit is None else min(limit, self.eval_size)
        base = EVAL_SEEDS.get(split, 3003)
        for i, start in enumerate(range(0, total, batch_size)):
            n = min(batch_size, total - start)
            yield self.generate(n, seeded_generator(device, "eval", base, i))


class BitXOR(BitTask):
    """Elementwise XOR of two bit strings (the paper: length 5).

    Input: ``x`` float [B, 2n] in {0, 1}, string ``a`` then string ``b``; the model cuts it into
    2n tokens of dimension 1. Target: ``y`` long [B, n], ``a XOR b``. The model reads the last
    ``n`` tokens (the tokens of string ``b``): output position ``i`` is token ``n + i``, and the
    answer needs tokens ``i`` and ``n + i``. That is the pair the paper's attention figure shows
    the heads attending to.
    """

    name = "bit-xor"

    def __init__(self, n: int = 5, eval_size: int = 1000):
        super().__init__(eval_size)
        self.n = positive("n", n)
        self.options = {"n": n, "eval_size": eval_size}
        self.token_dim, self.max_len = 1, 2 * n
        self.output_tokens, self.output_dim = n, 2
        self.hparams = paper_hparams(token_dim=1)
        self.description = (f"Bit XOR: two random bit strings of length {n}, one bit per token "
                            f"({2 * n} tokens); predict their elementwise XOR from the last {n} "
                            f"tokens (2 classes per bit).")
        self.data_source = (f"generated on the fly: uniform random bits, strings of length {n} "
                            f"(the paper's: 5)")

    def generate(self, batch_size: int, generator: torch.Generator) -> Batch:
        bits = torch.randint(0, 2, (batch_size, 2, self.n), generator=generator,
                             device=generator.device)
        y = bits[:, 0] ^ bits[:, 1]
        return Batch(bits.reshape(batch_size, 2 * self.n).float(), y.long())


class BitMemory(BitTask):
    """Recall a bit string from a masked copy (the paper: 5 strings of 1000 bits, patches of 50).

    Input: ``n_patterns`` random +-1 strings of ``n_bits``, then one of them again with each bit
    set to 0 with probability ``mask_p``: ``x`` float [B, (n_patterns + 1) * n_bits], cut into
    tokens of ``patch`` bits. Target: the unmasked string as 0/1 classes, ``y`` long [B, n_bits]
    (``y = (pattern + 1) / 2``). The model reads the last ``n_bits / patch`` tokens (the masked
    query), ``2 * patch`` logits each.
    """

    name = "bit-memory"

    def __init__(self, n_bits: int = 1000, n_patterns: int = 5, patch: int = 50,
                 mask_p: float = 0.5, eval_size: int = 1000):
        super().__init__(eval_size)
        self.n_bits, self.n_patterns = positive("n_bits", n_bits), positive("n_patterns", n_patterns)
        self.patch = positive("patch", patch)
        if n_bits % patch:
            raise ValueError(f"n_bits ({n_bits}) must be a multiple of patch ({patch}): every token "
                             f"holds patch bits; e.g. n_bits={n_bits - n_bits % patch or patch}")
        if not 0.0 <= mask_p < 1.0:
            raise ValueError(f"mask_p is a probability in [0, 1), got {mask_p!r}")
        self.mask_p = float(mask_p)
        self.options = {"n_bits": n_bits, "n_patterns": n_patterns, "patch": patch,
                        "mask_p": mask_p, "eval_size": eval_size}
        self.token_dim = patch
        self.max_len = (n_patterns + 1) * n_bits // patch
        self.output_tokens, self.output_dim = n_bits // patch, 2 * patch
        self.hparams = paper_hparams(token_dim=patch)
        self.description = (f"Bit Memory: {n_patterns} random +-1 strings of {n_bits} bits, then one "
                            f"of them with each bit masked to 0 at p={mask_p}; recall the full "
                            f"string. {self.max_len} tokens of {patch} bits; the last "
                            f"{self.output_tokens} tokens predict {n_bits} bits.")
        self.data_source = (f"generated on the fly: uniform random bits, {n_patterns} x {n_bits} "
                            f"bits in patches of {patch} (the paper's: 5 x 1000 in patches of 50)")

    def generate(self, batch_size: int, generator: torch.Generator) -> Batch:
        device = generator.device
        patterns = torch.randint(0, 2, (batch_size, self.n_patterns, self.n_bits),
                                 generator=generator, device=device).float() * 2 - 1
        which = torch.randint(0, self.n_patterns, (batch_size,), generator=generator, device=device)
        target = patterns[torch.arange(batch_size, device=device), which]
        keep = torch.rand(target.shape, generator=generator, device=device) >= self.mask_p
        query = target * keep
        x = torch.cat([patterns, query[:, None]], dim=1).reshape(batch_size, -1)
        return Batch(x, ((target + 1) / 2).long())
