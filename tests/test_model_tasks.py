"""Every task's batches go through a model built by ``FPT.for_task`` on every backbone family."""
from __future__ import annotations

import pytest
import torch

import fptlib.tasks as tasks
from fptlib.model import FPT

from fpt_testing import tiny_backbone

SMALL = {
    "bit-xor": {},
    "bit-memory": {"n_bits": 40, "n_patterns": 3, "patch": 10},
    "listops": {"n_train": 40, "n_val": 8, "n_test": 8, "min_length": 10, "max_length": 40,
                "max_len": 48},
    "digits": {},
}


@pytest.mark.parametrize("family", ["gpt2", "bert", "llama", "lstm"])
@pytest.mark.parametrize("name", list(SMALL))
def test_for_task_builds_a_model_that_takes_the_tasks_batches(name, family, tmp_path):
    options = dict(SMALL[name])
    if name == "listops":
        options["data_dir"] = tmp_path
    task = tasks.get(name, **options)
    model = FPT.for_task(task, tiny_backbone(family))
    assert model.output_tokens == task.output_tokens and model.output_dim == task.output_dim
    batch = next(task.train_batches(4, "cpu", seed=0))
    logits = model(batch.x, attention_mask=batch.mask)
    loss = task.loss(logits, batch.y)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert model.output.weight.grad is not None
    acc = task.accuracy(logits, batch.y)
    assert 0.0 <= float(acc) <= 1.0
