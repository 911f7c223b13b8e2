"""Feature cache for the output-layer-only ablation: the cache is exactly what the output layer
sees, only the output layer changes, and it learns."""
import pytest
import torch

from fptlib import experiments
from fptlib.train.features import compute_features, evaluate_cached, fit_output_layer
from test_train_toy import one_thread, tiny_config  # noqa: F401


def test_cached_features_reproduce_the_model_and_only_the_output_layer_trains():
    model, task = experiments.build(tiny_config(freeze="output_only", dropout=0.1, task_options=(("n", 5),)))
    batches = list(task.eval_batches("test", 32, "cpu", limit=64))
    feats = compute_features(model, batches)
    assert feats.h.shape == (64, task.output_tokens, model.backbone.hidden_size)
    model.eval()
    with torch.no_grad():
        direct = torch.cat([model(b.x) for b in batches])
        y = torch.cat([b.y for b in batches])
    assert evaluate_cached(model, task, feats)["loss"] == pytest.approx(task.loss(direct, y).item(), rel=1e-5)

    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    res = fit_output_layer(model, task, n_train=256, epochs=3, batch_size=16, lr=1e-2, eval_splits=("test",),
                           eval_limit=128, progress=False)
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed == {"output.weight", "output.bias"}
    assert len(res.history) == 3 and res.history[-1]["loss"] < res.history[0]["loss"]
    assert res.feature_s > 0 and res.epoch_s > 0 and res.final["test"]["examples"] == 128


def test_the_cache_refuses_models_that_train_more_than_the_output_layer():
    model, task = experiments.build(tiny_config())          # fpt: input, layer norms, positions train too
    with pytest.raises(ValueError, match="output_only.*input"):
        compute_features(model, task.eval_batches("test", 8, "cpu", limit=8))
