"""Bit XOR and Bit Memory: targets, per-bit objective, seeded and resumable streams."""
import itertools

import pytest
import torch

from fptlib import tasks
from fptlib.tasks.bits import BitMemory, BitXOR


def take(stream, n):
    return list(itertools.islice(stream, n))


def test_xor_targets_are_the_xor_of_the_two_strings():
    task = BitXOR(n=7)
    batch = next(task.train_batches(64, "cpu", seed=3))
    assert batch.x.shape == (64, 14) and batch.x.dtype == torch.float32
    a, b = batch.x[:, :7].long(), batch.x[:, 7:].long()
    assert set(batch.x.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(batch.y, a ^ b)
    assert task.output_tokens == 7 and task.output_dim == 2 and task.token_dim == 1
    assert task.max_len == 14


def test_memory_query_is_a_masked_copy_of_one_pattern_and_target_is_that_pattern():
    task = BitMemory(n_bits=40, n_patterns=3, patch=8, mask_p=0.5)
    batch = next(task.train_batches(32, "cpu", seed=0))
    x = batch.x.view(32, 4, 40)
    patterns, query = x[:, :3], x[:, 3]
    target = batch.y.float() * 2 - 1                      # back to +-1
    assert set(patterns.unique().tolist()) == {-1.0, 1.0}
    kept = query != 0
    assert torch.equal(query[kept], target[kept])          # unmasked bits are the target's
    frac = kept.float().mean().item()
    assert 0.4 < frac < 0.6                                # about half masked
    # the target is one of the patterns in the input
    match = (patterns == target[:, None]).all(-1)
    assert match.any(-1).all()
    assert task.max_len == 4 * 40 // 8 and task.output_tokens == 5 and task.output_dim == 16


def test_paper_sizes_are_the_defaults():
    mem, xor = tasks.get("bit-memory"), tasks.get("bit-xor")
    assert (mem.max_len, mem.token_dim, mem.output_tokens, mem.output_dim) == (120, 50, 20, 100)
    assert (xor.max_len, xor.token_dim, xor.output_tokens, xor.output_dim) == (10, 1, 5, 2)
    assert mem.hparams["lr"] == 1e-3 and mem.hparams["grad_clip"] == 1.0
    assert next(mem.train_batches(2, "cpu", 0)).x.shape == (2, 6000)


def test_same_seed_same_batches_different_seed_different_and_resume_matches():
    task = BitXOR(n=16)
    first = take(task.train_batches(8, "cpu", seed=1), 6)
    again = take(task.train_batches(8, "cpu", seed=1), 6)
    other = take(task.train_batches(8, "cpu", seed=2), 6)
    resumed = take(task.train_batches(8, "cpu", seed=1, start_step=4), 2)
    assert all(torch.equal(a.x, b.x) for a, b in zip(first, again))
    assert not any(torch.equal(a.x, b.x) for a, b in zip(first, other))
    assert torch.equal(resumed[0].x, first[4].x) and torch.equal(resumed[1].y, first[5].y)
    assert not torch.equal(first[0].x, first[1].x)


def test_eval_batches_are_fixed_sized_and_independent_of_training_seed():
    task = BitMemory(n_bits=20, patch=10, eval_size=50)
    a = list(task.eval_batches("val", 16, "cpu"))
    b = list(task.eval_batches("val", 16, "cpu"))
    t = list(task.eval_batches("test", 16, "cpu"))
    assert [len(x) for x in a] == [16, 16, 16, 2]
    assert all(torch.equal(p.x, q.x) for p, q in zip(a, b))
    assert not torch.equal(a[0].x, t[0].x)
    assert sum(len(x) for x in task.eval_batches("test", 16, "cpu", limit=20)) == 20
    with pytest.raises(ValueError, match="known splits: val, test, train"):
        next(task.eval_batches("valid", 16, "cpu"))


def test_per_bit_accuracy_and_loss_reshape_logits_to_two_classes_per_bit():
    task = BitMemory(n_bits=20, n_patterns=2, patch=10)
    batch = next(task.train_batches(4, "cpu", seed=0))
    # perfect logits laid out [batch, output token, bits per token, 2]
    perfect = torch.nn.functional.one_hot(batch.y, 2).float().view(4, 2, 20) * 10
    assert task.accuracy(perfect, batch.y).item() == 1.0
    wrong_first = perfect.view(4, 20, 2).clone()
    wrong_first[:, 0] = wrong_first[:, 0].flip(-1)        # bit 0 of every example wrong
    assert task.accuracy(wrong_first.view(4, 2, 20), batch.y).item() == pytest.approx(19 / 20)
    assert task.loss(perfect, batch.y) < task.loss(-perfect, batch.y)
    with pytest.raises(ValueError, match="expected 20"):
        task.loss(torch.zeros(4, 2, 7), batch.y)


def test_bad_sizes_are_explained():
    with pytest.raises(ValueError, match="multiple of patch"):
        BitMemory(n_bits=1001, patch=50)
    with pytest.raises(ValueError, match="mask_p"):
        BitMemory(mask_p=1.5)
    with pytest.raises(ValueError, match="positive integer"):
        BitXOR(n=0)
