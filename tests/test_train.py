"""Trainer: learning, resume == uninterrupted, refused checkpoints, NaN stop, budgets and targets."""
import pytest
import torch

from fptlib.train import CheckpointMismatch, NonFiniteLossError, TrainConfig, Trainer
from fptlib.train.trainer import compile_mode
from test_train_toy import ToyModel, ToyTask, one_thread, tiny_config  # noqa: F401


def _cfg(**kw):
    base = dict(steps=40, lr=3e-3, batch_size=16, eval_every=20, device="cpu", progress=False, log_every=5)
    base.update(kw)
    return TrainConfig(**base)


def _params(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def test_fit_learns_and_reports_history_and_metrics():
    model = ToyModel()
    frozen_before = model.frozen.weight.detach().clone()
    r = Trainer(model, ToyTask(), _cfg(steps=200, eval_every=100)).fit()
    assert r.steps == 200 and r.samples == 200 * 16 and r.stopped == "steps"
    assert [e["step"] for e in r.evals] == [100, 200]
    assert set(r.final) == {"val", "test"} and r.final["val"]["accuracy"] > 0.75
    assert r.best["val"]["accuracy"] >= r.final["val"]["accuracy"] and r.best["val"]["step"] in (100, 200)
    assert len(r.history) == 200 // 5 and r.history[-1]["step"] == 200
    assert r.history[-1]["loss"] < r.history[0]["loss"]
    assert torch.equal(model.frozen.weight, frozen_before)      # frozen stays frozen


def test_resume_gives_the_same_parameters_as_an_uninterrupted_run(tmp_path):
    torch.manual_seed(0)
    straight = ToyModel()
    Trainer(straight, ToyTask(), _cfg(grad_accum=2)).fit()

    # "interrupted": a first process trains 20 steps (checkpoint at 20), then a new process resumes
    first = ToyModel()
    r1 = Trainer(first, ToyTask(), _cfg(grad_accum=2, steps=20, checkpoint_dir=str(tmp_path))).fit()
    assert (tmp_path / "checkpoint.pt").is_file() and r1.steps == 20
    torch.manual_seed(123)                      # a different process state must not matter
    resumed = ToyModel()
    r2 = Trainer(resumed, ToyTask(), _cfg(grad_accum=2, checkpoint_dir=str(tmp_path))).fit()
    assert r2.resumed_from == 20 and r2.steps == 40
    for name, p in _params(straight).items():
        assert torch.equal(p, dict(resumed.named_parameters())[name]), name
    assert [e["step"] for e in r2.evals] == [20, 40]    # history carried over


def test_checkpoint_from_another_configuration_is_refused(tmp_path):
    Trainer(ToyModel(), ToyTask(), _cfg(steps=5, checkpoint_dir=str(tmp_path))).fit()
    with pytest.raises(CheckpointMismatch) as err:
        Trainer(ToyModel(), ToyTask(), _cfg(steps=10, lr=1e-4, checkpoint_dir=str(tmp_path))).fit()
    msg = str(err.value)
    assert "train.lr: 0.003 in the checkpoint, 0.0001 now" in msg and "delete" in msg
    # different frozen weights (another seed) are refused too
    with pytest.raises(CheckpointMismatch, match="frozen weights differ"):
        Trainer(ToyModel(seed=1), ToyTask(), _cfg(steps=10, checkpoint_dir=str(tmp_path))).fit()
    # a changed step count is not a different configuration: it continues
    r = Trainer(ToyModel(), ToyTask(), _cfg(steps=10, checkpoint_dir=str(tmp_path))).fit()
    assert r.resumed_from == 5 and r.steps == 10


def test_nan_loss_stops_naming_the_step_and_causes():
    with pytest.raises(NonFiniteLossError) as err:
        Trainer(ToyModel(), ToyTask(nan_at_step=7), _cfg(steps=30)).fit()
    msg = str(err.value)
    assert "at step 8" in msg and "learning rate too high" in msg and "fp16" in msg


def test_target_accuracy_and_time_budget_stop_early():
    r = Trainer(ToyModel(), ToyTask(), _cfg(steps=2000, eval_every=20, target_accuracy=0.6)).fit()
    assert r.stopped == "target" and r.steps < 2000 and r.steps_to_target == r.steps
    assert r.final["val"]["accuracy"] >= 0.6
    r = Trainer(ToyModel(), ToyTask(), _cfg(steps=10**6, eval_every=0, time_budget_s=0.3)).fit()
    assert r.stopped == "time" and 0 < r.steps < 10**6 and "val" in r.final


def test_bad_configuration_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown optimizer 'sgd'.*adam"):
        TrainConfig(optimizer="sgd")
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        TrainConfig(steps=0)
    with pytest.raises(ValueError, match="unknown amp setting"):
        Trainer(ToyModel(), ToyTask(), _cfg(amp="fp8"))
    with pytest.raises(ValueError, match="unknown eval split.*val"):
        Trainer(ToyModel(), ToyTask(), _cfg(eval_splits=("dev",)))
    frozen = ToyModel().requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        Trainer(frozen, ToyTask(), _cfg())


def test_compile_is_opt_in_on_cpu_and_takes_torch_compile_modes():
    assert Trainer(ToyModel(), ToyTask(), _cfg()).compile_mode is None            # auto: eager on CPU
    assert Trainer(ToyModel(), ToyTask(), _cfg(compile=False)).compile_mode is None
    t = Trainer(ToyModel(), ToyTask(), _cfg(compile="reduce-overhead"))
    assert t.compile_mode == "reduce-overhead" and not t._mark_step             # CUDA graphs: CUDA only
    assert Trainer(ToyModel(), ToyTask(), _cfg(compile=True)).compile_mode == "default"
    with pytest.raises(ValueError, match="compile must be.*reduce-overhead.*got 'fast'"):
        TrainConfig(compile="fast")


def test_auto_compile_uses_cuda_graphs_only_for_long_fixed_shape_single_process_cuda_runs():
    from types import SimpleNamespace as NS

    def mode(device="cuda", steps=20_000, pad_id=None, world_size=1, **config):
        return compile_mode(TrainConfig(steps=steps, **config), device, NS(pad_id=pad_id), world_size)
    assert mode() == "reduce-overhead"                     # bits, images: one batch shape
    assert mode(pad_id=0) == "default"                     # ListOps, homology: bucketed lengths
    assert mode(world_size=2) == "default"                 # DDP
    assert mode(grad_accum=2) == "default"                 # graph outputs are overwritten by the next pass
    assert mode(steps=300) is None and mode(device="cpu") is None
    with pytest.raises(ValueError, match="cannot accumulate gradients.*compile=True"):
        mode(compile="reduce-overhead", grad_accum=4)
    assert mode(device="cpu", compile="reduce-overhead", grad_accum=4) == "reduce-overhead"   # no graphs on CPU


def test_adamw_bf16_autocast_on_cpu_is_opt_in_and_runs():
    t = Trainer(ToyModel(), ToyTask(), _cfg(steps=4, optimizer="adamw", amp="bf16", eval_every=0))
    assert t.amp_dtype == torch.bfloat16
    assert Trainer(ToyModel(), ToyTask(), _cfg()).amp_dtype is None     # auto: off on CPU
    r = t.fit()
    assert r.amp == "bfloat16" and r.steps == 4


def test_real_fpt_resume_matches_uninterrupted_run(tmp_path):
    """The real FPT (tiny random GPT-2, dropout on) on the real bit-xor task: stop at 3, resume to 6."""
    from fptlib import experiments
    cfg = tiny_config(dropout=0.1)
    tc = _cfg(steps=6, eval_every=3, batch_size=8)

    straight, task = experiments.build(cfg)
    Trainer(straight, task, tc).fit()
    first, task = experiments.build(cfg)
    Trainer(first, task, tc, steps=3, checkpoint_dir=str(tmp_path)).fit()
    resumed, task = experiments.build(cfg)
    r = Trainer(resumed, task, tc, checkpoint_dir=str(tmp_path)).fit()
    assert r.resumed_from == 3
    trained = [n for n, p in straight.named_parameters() if p.requires_grad]
    assert any(n.startswith("input") for n in trained) and any("wpe" in n for n in trained)
    for (n, a), (_, b) in zip(straight.named_parameters(), resumed.named_parameters()):
        assert torch.equal(a, b), n
