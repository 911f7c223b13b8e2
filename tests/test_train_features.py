"""Output-only training over cached features: the cache is exactly what the output layer sees, the
cached run trains the same output layer as the uncached Trainer (no augmentation, no dropout, the
same batches in the same order), only the output layer changes, and what cannot be cached is
refused with the reason."""
import copy

import pytest
import torch

from fptlib import experiments, tasks
from fptlib.backbones import load_backbone
from fptlib.model import FPT
from fptlib.train.features import OutputHead, compute_features, fit_output_only
from fptlib.train.trainer import Trainer, TrainConfig
from test_train_toy import TINY_GPT2, one_thread, tiny_config  # noqa: F401


@pytest.fixture(scope="module")
def digits():
    """Real 8x8 scikit-learn digits (offline): 64 training images, so 12 steps of 16 are 3 epochs."""
    return tasks.get("digits", n_train=64, n_val=32, n_test=48, augment=False)


@pytest.fixture(scope="module")
def listops(tmp_path_factory):
    """Generated ListOps (padded, length-bucketed batches with masks): 64 training expressions."""
    from fptlib.tasks import listops as lo

    return lo.ListOps(n_train=64, n_val=16, n_test=16, min_length=10, max_length=60, max_len=64,
                      tokenization="corrected", data_dir=tmp_path_factory.mktemp("listops"))


def _model(task, out_layers=(), seed=0):
    torch.manual_seed(seed)
    backbone = load_backbone("gpt2", init="random", dropout=0.0, config_overrides=dict(TINY_GPT2), seed=seed)
    return FPT.for_task(task, backbone, freeze="output_only", dropout=0.0, out_layer_sizes=out_layers)


def test_cached_features_reproduce_the_model(digits):
    model = _model(digits)
    batches = list(digits.eval_batches("test", 16, "cpu"))
    feats = compute_features(model, batches)
    assert feats.h.shape == (48, digits.output_tokens, model.backbone.hidden_size)
    model.eval()
    with torch.no_grad():
        direct = torch.cat([model(b.x) for b in batches])
        assert torch.allclose(OutputHead(model)(feats.h), direct, atol=1e-6)


@pytest.mark.parametrize("name,out_layers", [("digits", ()), ("digits", (8,)), ("listops", ())])
def test_cached_run_trains_the_same_output_layer_as_the_uncached_trainer(request, name, out_layers):
    """12 Adam steps (lr 1e-2, clip 1.0) of batch 16 over 64 examples: 3 epochs, so cached features
    are reused in new orders; ListOps adds padding, masks and length-bucketed batches. Tolerance
    1e-5 absolute on every output parameter (float rounding of differently batched or padded
    forward passes); the loss history and the evaluations agree as closely."""
    task = request.getfixturevalue(name)
    config = TrainConfig(steps=12, lr=1e-2, batch_size=16, eval_every=6, log_every=3, seed=3,
                         device="cpu", progress=False)
    uncached = _model(task, out_layers)
    cached = copy.deepcopy(uncached)
    frozen = {n: p.detach().clone() for n, p in cached.named_parameters() if not p.requires_grad}
    start = {n: p.detach().clone() for n, p in cached.output.named_parameters()}

    ref = Trainer(uncached, task, config).fit()
    res = fit_output_only(cached, task, config)

    for (param, a), (_, b) in zip(uncached.output.named_parameters(), cached.output.named_parameters()):
        assert not torch.equal(b, start[param]), f"output.{param} did not train"
        assert torch.allclose(a, b, atol=1e-5, rtol=0), f"output.{param}: {(a - b).abs().max():.2e}"
    assert all(torch.equal(p, frozen[n]) for n, p in cached.named_parameters() if not p.requires_grad)
    assert [h["step"] for h in res.history] == [h["step"] for h in ref.history] == [3, 6, 9, 12]
    for h_ref, h in zip(ref.history, res.history):
        assert h["loss"] == pytest.approx(h_ref["loss"], abs=1e-5)
    for split in ("val", "test"):
        assert res.final[split]["accuracy"] == pytest.approx(ref.final[split]["accuracy"], abs=1e-9)
        assert res.final[split]["loss"] == pytest.approx(ref.final[split]["loss"], abs=1e-5)
    sizes = {name: len(split) for name, split in task.splits().items()}
    assert res.cached_examples == {s: sizes[s] for s in ("train", "val", "test")} and sizes["train"] == 64
    assert res.feature_s > 0 and res.wall_s >= res.feature_s + res.train_s * 0.99
    assert "augmentation off" in res.notes[0]


def test_a_different_schedule_gives_a_different_layer(digits):
    """The equality above is not vacuous: another seed (another batch order) trains another layer."""
    config = TrainConfig(steps=6, lr=1e-2, batch_size=16, eval_every=0, device="cpu", progress=False)
    a, b = _model(digits), _model(digits)
    fit_output_only(a, digits, config, seed=0)
    fit_output_only(b, digits, config, seed=1)
    assert not torch.allclose(a.output.weight, b.output.weight, atol=1e-5)


def test_augmenting_tasks_are_cached_unaugmented_and_say_so():
    task = tasks.get("digits", n_train=32, n_val=16, n_test=16, augment=True)
    res = fit_output_only(_model(task), task, TrainConfig(steps=2, batch_size=16, eval_every=0,
                                                          device="cpu", progress=False))
    assert any("un-augmented" in n for n in res.notes)


def test_the_cache_refuses_models_that_train_more_than_the_output_layer():
    model, task = experiments.build(tiny_config())          # fpt: input, layer norms, positions train too
    with pytest.raises(ValueError, match="output_only.*input"):
        compute_features(model, task.eval_batches("test", 8, "cpu", limit=8))


def test_tasks_without_a_training_set_are_refused():
    model, task = experiments.build(tiny_config(freeze="output_only"))   # Bit XOR: fresh bits every step
    with pytest.raises(ValueError, match="fresh examples.*ordinary Trainer"):
        fit_output_only(model, task, TrainConfig(steps=2, device="cpu", progress=False))
