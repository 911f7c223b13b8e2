"""Packed runs: each run of a pack ends where the same run trained alone ends.

Tolerance. A pack computes the same arithmetic as the runs alone, but its matmuls have K times
more rows and its per-run gradient norm is one norm over all trained parameters instead of a norm
of per-tensor norms, so float32 sums are rounded in another order (about 1e-7 relative per
operation). Over 50 Adam steps the largest parameter difference measured here was below 1e-6.
PARAM_TOL = 1e-4 leaves a 100x margin for other CPUs' kernels, yet is a tenth of a single Adam
step at lr 1e-3 (Adam moves every trained parameter by about lr per step): a run fed another run's
batches, sharing another run's optimizer state or skipping one update fails it.
"""
import collections
import dataclasses

import pytest
import torch
from torch import nn

from fpt_testing import tiny_backbone
from fptlib import results as store
from fptlib import tasks
from fptlib.model import FPT
from fptlib.train import NonFiniteLossError, TrainConfig, Trainer
from fptlib.train.packed import PackedModel, PackError, PackedTrainer, auto_pack_size
from test_train_toy import one_thread  # noqa: F401

PARAM_TOL = 1e-4
STEPS = 50
LISTOPS = {"n_train": 64, "n_val": 16, "n_test": 16, "min_length": 10, "max_length": 40, "max_len": 48}


def _task(name, tmp_path=None):
    if name == "listops":
        return tasks.get("listops", data_dir=tmp_path, **LISTOPS)
    return tasks.get("bit-xor", n=5, eval_size=200)


def _build(task, family, seed, freeze="fpt"):
    """A run's model as it would be built alone: trained parts initialised from its seed, frozen
    backbone the same for every seed (the backbone's own seed is fixed), dropout off."""
    torch.manual_seed(seed)
    return FPT.for_task(task, tiny_backbone(family, seed=0, dropout=0.0), freeze=freeze, dropout=0.0)


def _cfg(**kw):
    base = dict(steps=STEPS, lr=1e-3, batch_size=8, eval_every=25, eval_limit=200, device="cpu",
                progress=False, log_every=10)
    return TrainConfig(**{**base, **kw})


def _alone(task, family, seed, cfg):
    model = _build(task, family, seed)
    try:
        return model, Trainer(model, task, cfg).fit()
    except NonFiniteLossError as err:
        return model, err


def _packed(task, family, seeds, configs, **kw):
    models = [_build(task, family, s) for s in seeds]
    return models, PackedTrainer(models, task, configs, **kw).fit()


def _max_diff(a, b):
    return max((p - q).abs().max().item() for (_, p), (_, q) in zip(a.named_parameters(), b.named_parameters()))


def _assert_same_run(alone_model, alone, packed_model, packed, tol=PARAM_TOL):
    assert _max_diff(alone_model, packed_model) <= tol
    assert packed.steps == alone.steps and packed.samples == alone.samples and packed.stopped == alone.stopped
    assert [e["step"] for e in packed.evals] == [e["step"] for e in alone.evals]
    assert [(h["step"], h["samples"]) for h in packed.history] == [(h["step"], h["samples"]) for h in alone.history]
    assert [h["loss"] for h in packed.history] == pytest.approx([h["loss"] for h in alone.history], abs=1e-4)
    for a, p in zip(alone.evals, packed.evals):
        for split in ("val", "test"):
            examples = a[split]["examples"]
            assert p[split]["examples"] == examples
            assert abs(a[split]["accuracy"] - p[split]["accuracy"]) * examples <= 1.0 + 1e-9   # within one example


RUNS = [(0, dict(lr=1e-3)), (1, dict(lr=3e-3, optimizer="adamw", weight_decay=0.01)), (2, dict(lr=1e-2, grad_clip=0.5))]


@pytest.mark.parametrize("family", ["gpt2", "bert", "llama", "lstm", "longformer", "vit", "t5"])
def test_each_run_of_a_pack_ends_where_it_ends_alone(family):
    """Causal (GPT-2), bidirectional (BERT, Longformer, ViT with its new bare position table, T5
    with its per-head relative position bias), rotary (LLaMA) and the LSTM; three runs differing in
    seed (initialisation and data), learning rate, optimizer, weight decay and clipping."""
    task = _task("bit-xor")
    configs = [_cfg(seed=s, **kw) for s, kw in RUNS]
    models, results = _packed(task, family, [s for s, _ in RUNS], configs)
    moved = []
    for (seed, _), cfg, model, result in zip(RUNS, configs, models, results):
        alone_model, alone = _alone(task, family, seed, cfg)
        _assert_same_run(alone_model, alone, model, result)
        assert result.packed["runs"] == 3 and len(result.packed["with"]) == 2
        assert result.config == cfg.to_dict()
        moved.append(_max_diff(_build(task, family, seed), model))
    assert moved[2] > moved[0] > 10 * PARAM_TOL        # the learning rates really differed


@pytest.mark.parametrize("family", ["bert", "gpt2"])
def test_padded_discrete_listops_batches_of_different_widths(family, tmp_path):
    task = _task("listops", tmp_path)
    configs = [_cfg(seed=s, steps=20, eval_every=10, batch_size=4) for s in (0, 1)]
    widths = [[b.mask.shape[1] for _, b in zip(range(20), task.train_batches(4, "cpu", seed))] for seed in (0, 1)]
    assert widths[0] != widths[1]           # the two runs' batches need padding to one width
    models, results = _packed(task, family, [0, 1], configs)
    for seed, cfg, model, result in zip((0, 1), configs, models, results):
        alone_model, alone = _alone(task, family, seed, cfg)
        _assert_same_run(alone_model, alone, model, result)


class NanInSeed:
    """The task, but the training stream of ``seed`` carries a NaN input from ``step`` on."""

    def __init__(self, task, seed, step):
        self._task, self._seed, self._step = task, seed, step

    def __getattr__(self, name):
        return getattr(self._task, name)

    def train_batches(self, batch_size, device, seed, start_step=0):
        for step, batch in enumerate(self._task.train_batches(batch_size, device, seed, start_step), start_step):
            if seed == self._seed and step >= self._step:
                batch.x[0, 0] = float("nan")
            yield batch


def test_gradient_accumulation_in_a_pack():
    task = _task("bit-xor")
    configs = [_cfg(seed=s, steps=10, eval_every=5, grad_accum=2, lr=3e-3) for s in (0, 1)]
    models, results = _packed(task, "gpt2", [0, 1], configs)
    for seed, cfg, model, result in zip((0, 1), configs, models, results):
        alone_model, alone = _alone(task, "gpt2", seed, cfg)
        _assert_same_run(alone_model, alone, model, result)
        assert result.samples == 10 * 2 * 8


def test_early_stop_and_nan_in_one_run_leave_the_others_unchanged():
    task, family = NanInSeed(_task("bit-xor"), seed=2, step=7), "gpt2"
    configs = [_cfg(seed=0), _cfg(seed=1, target_accuracy=0.01),        # reached at the first evaluation
               _cfg(seed=2), _cfg(seed=3, steps=33)]                    # seed 2: NaN input at step 8
    models, results = _packed(task, family, [0, 1, 2, 3], configs)
    assert results[1].stopped == "target" and results[1].steps == 25
    assert isinstance(results[2], NonFiniteLossError)
    assert results[3].steps == 33 and results[3].stopped == "steps"      # not a logging step of the others
    for seed, cfg, model, result in zip((0, 1, 2, 3), configs, models, results):
        alone_model, alone = _alone(task, family, seed, cfg)
        if isinstance(alone, NonFiniteLossError):
            assert str(result) == str(alone) and "at step 8" in str(result)    # the same message and step
        else:
            _assert_same_run(alone_model, alone, model, result)


class Interrupted(Exception):
    pass


class InterruptAt:
    """The task, but its training stream raises at ``step`` (a killed process)."""

    def __init__(self, task, step):
        self._task, self._step = task, step

    def __getattr__(self, name):
        return getattr(self._task, name)

    def train_batches(self, batch_size, device, seed, start_step=0):
        for step, batch in enumerate(self._task.train_batches(batch_size, device, seed, start_step), start_step):
            if step >= self._step:
                raise Interrupted
            yield batch


def test_resume_of_an_interrupted_pack_equals_the_uninterrupted_pack(tmp_path):
    task, family = _task("bit-xor"), "bert"
    configs = [_cfg(seed=0, eval_every=10), _cfg(seed=1, lr=3e-3, eval_every=10, steps=15),
               _cfg(seed=2, optimizer="adamw", weight_decay=0.1, eval_every=10)]
    straight_models, straight = _packed(task, family, [0, 1, 2], configs)

    with pytest.raises(Interrupted):        # checkpoint at step 20 (run 1 finished at 15), killed at 25
        _packed(InterruptAt(task, 25), family, [0, 1, 2], configs, checkpoint_dir=str(tmp_path))
    assert (tmp_path / "checkpoint.pt").is_file()
    torch.manual_seed(123)                  # another process state must not matter
    models, resumed = _packed(task, family, [0, 1, 2], configs, checkpoint_dir=str(tmp_path))
    for a, b, ra, rb in zip(straight_models, models, straight, resumed):
        for (n, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
            assert torch.equal(p, q), n
        assert rb.evals == [{**e, "wall_s": f["wall_s"]} for e, f in zip(ra.evals, rb.evals)]
        assert rb.steps == ra.steps and rb.stopped == ra.stopped
    assert [r.resumed_from for r in resumed] == [20, 20, 20]
    # another configuration is refused, with what differs
    with pytest.raises(ValueError, match=r"runs\[0\].lr"):
        _packed(task, family, [0, 1, 2], [dataclasses.replace(configs[0], lr=0.5), *configs[1:]],
                checkpoint_dir=str(tmp_path))


def test_runs_that_cannot_share_a_pack_are_refused_clearly():
    task = _task("bit-xor")
    models = [_build(task, "gpt2", 0), _build(task, "gpt2", 1)]
    with pytest.raises(PackError, match="batch_size"):
        PackedTrainer(models, task, [_cfg(), _cfg(batch_size=4)])
    other_backbone = FPT.for_task(task, tiny_backbone("gpt2", seed=5, dropout=0.0), dropout=0.0)
    with pytest.raises(PackError, match="frozen weights differ"):
        PackedTrainer([models[0], other_backbone], task, [_cfg(), _cfg()])
    # a bare trained parameter stacks only as a position table (ViT's); any other one is refused
    scale = nn.Module()
    scale.weight = nn.Parameter(torch.ones(3, 3))
    with pytest.raises(PackError, match="cannot pack the trained parameters of 'scale'.*unpacked"):
        PackedModel(nn.Sequential(collections.OrderedDict(scale=scale)))
    attention = [_build(task, "gpt2", s, freeze="+attention") for s in (0, 1)]
    with pytest.raises(PackError, match=r"trains \['attention'\].*unpacked"):
        PackedTrainer(attention, task, [_cfg(), _cfg()])


def test_auto_pack_size_by_memory_on_cuda_and_by_measurement_on_cpu():
    from fptlib.train import packed
    assert auto_pack_size(10, "cpu") == packed.CPU_AUTO_PACK
    assert auto_pack_size(2, "cpu") == min(2, packed.CPU_AUTO_PACK)
    assert auto_pack_size(40, "cuda", per_run_bytes=1 << 30, free_bytes=10 << 30) == 7    # 70% of 10 GiB / 1 GiB
    assert auto_pack_size(3, "cuda", per_run_bytes=1 << 30, free_bytes=80 << 30) == 3
    assert auto_pack_size(3, "cuda", per_run_bytes=1 << 40, free_bytes=1 << 30) == 1      # one run: no pack
    with pytest.raises(ValueError, match="per_run_bytes"):
        auto_pack_size(3, "cuda")


def test_bf16_autocast_pack_runs_on_cpu():
    task = _task("bit-xor")
    models, results = _packed(task, "llama", [0, 1], [_cfg(seed=s, steps=4, eval_every=0, amp="bf16") for s in (0, 1)])
    assert [r.amp for r in results] == ["bfloat16", "bfloat16"]
    assert all(r.final["val"]["loss"] == r.final["val"]["loss"] for r in results)      # finite, not NaN


def test_records_of_packed_runs_equal_those_of_the_runs_alone(tmp_path):
    """experiments.run_many: packs of compatible runs (tiny random GPT-2: the seed makes the
    backbone, so runs pack by seed, across learning rates) give the records the runs give alone."""
    from fptlib import experiments
    from test_train_toy import tiny_config
    configs = [tiny_config(lr=lr, seed=s, steps=12, eval_every=6) for s in (0, 1) for lr in (1e-3, 3e-3)]
    logs = []
    packed = experiments.run_many(configs, pack=2, directory=tmp_path / "packed", progress=False, log=logs.append)
    alone = experiments.run_many(configs, pack=False, directory=tmp_path / "alone", progress=False, log=logs.append)
    assert sum(line.startswith("packing 2 runs") for line in logs) == 2
    for p, a in zip(packed, alone):
        assert p["key"] == a["key"] and p["hyperparameters"] == a["hyperparameters"] and p["seed"] == a["seed"]
        assert p["steps"] == a["steps"] and p["stopped"] == a["stopped"] and p["run_config"] == a["run_config"]
        for split in ("val", "test"):
            examples = a["final"][split]["examples"]
            assert abs(p["final"][split]["accuracy"] - a["final"][split]["accuracy"]) * examples <= 1.0 + 1e-9
            assert p["final"][split]["loss"] == pytest.approx(a["final"][split]["loss"], abs=1e-4)
        assert p["packed"]["runs"] == 2 and "packed" not in a
        assert any("trained packed with 1 other run" in n and "result as alone" in n for n in p["notes"])
        assert [n for n in p["notes"] if "packed" not in n] == a["notes"]
    # stored records are reused, not trained again
    again = experiments.run_many(configs, directory=tmp_path / "packed", progress=False, log=logs.append)
    assert [(r["key"], r["created_at"]) for r in again] == [(r["key"], r["created_at"]) for r in packed]


def test_a_packed_sweep_gives_the_unpacked_sweep(tmp_path):
    from fptlib import sweeps
    from test_train_toy import tiny_config
    base = tiny_config(steps=8, eval_every=4)
    kw = dict(lrs=(1e-3, 3e-3), seeds=(0,), progress=False, log=lambda line: None)
    packed = sweeps.sweep(base, directory=tmp_path / "packed", pack=2, **kw)
    alone = sweeps.sweep(base, directory=tmp_path / "alone", pack=False, **kw)
    assert all(r.get("packed") for r in store.load(directory=tmp_path / "packed"))
    for p, a in zip(packed.rows, alone.rows):
        assert p["lr"] == a["lr"] and p["seeds"] == a["seeds"]
        one_example = 1 / 128                   # the quick profile's Bit XOR evaluation sets hold 128 examples
        assert p["val"] == pytest.approx(a["val"], abs=one_example)
        assert p["test"] == pytest.approx(a["test"], abs=one_example)


def test_models_of_a_pack_can_share_one_frozen_backbone():
    from fptlib.train.packed import share_frozen
    task = _task("bit-xor")
    for family in ("gpt2", "lstm"):
        a, b = _build(task, family, 0), _build(task, family, 1)
        share_frozen(a, b)
        frozen_a = {n: p for n, p in a.named_parameters() if not p.requires_grad}
        assert all(p is frozen_a[n] for n, p in b.named_parameters() if not p.requires_grad)
        assert not any(p is dict(a.named_parameters())[n] for n, p in b.named_parameters() if p.requires_grad)
        x = next(task.train_batches(4, "cpu", seed=0)).x
        assert torch.equal(b(x), _build(task, family, 1)(x))       # b computes what it computed before
    with pytest.raises(PackError, match="frozen weights differ"):
        other_backbone = FPT.for_task(task, tiny_backbone("gpt2", seed=5, dropout=0.0), dropout=0.0)
        share_frozen(_build(task, "gpt2", 0), other_backbone)


def test_stack_batches_pads_continuous_and_discrete_tokens_to_the_widest():
    from types import SimpleNamespace as NS

    from fptlib.tasks.base import Batch
    from fptlib.train.packed import stack_batches
    ones = lambda *shape: torch.ones(*shape, dtype=torch.long)  # noqa: E731
    continuous = [Batch(torch.ones(2, 3, 4), torch.zeros(2), ones(2, 3)),
                  Batch(torch.ones(2, 5, 4), torch.zeros(2), ones(2, 5))]
    x, y, mask = stack_batches(continuous, NS(pad_id=None))        # homology-like [B, L, features]
    assert x.shape == (4, 5, 4) and mask.shape == (4, 5) and y.shape == (2, 2)
    assert x[:2, 3:].abs().sum() == 0 and mask[:2, 3:].sum() == 0 and mask[2:].all()
    discrete = [Batch(ones(2, 2) * 7, torch.zeros(2), ones(2, 2)), Batch(ones(2, 4) * 7, torch.zeros(2), ones(2, 4))]
    x, _, mask = stack_batches(discrete, NS(pad_id=3))
    assert x.shape == (4, 4) and (x[:2, 2:] == 3).all() and mask[:2, 2:].sum() == 0


def test_a_run_another_process_is_training_is_read_not_trained_again(tmp_path):
    """Two reproduce processes sharing a store: a run claimed by the other process is taken up
    last, and its record is read from the store once the other process has written it."""
    import multiprocessing
    from fptlib import experiments, files
    from test_train_toy import tiny_config
    mine, theirs = tiny_config(seed=0, steps=4, eval_every=2), tiny_config(seed=1, steps=4, eval_every=2)
    ctx = multiprocessing.get_context("fork")
    holding, release = ctx.Event(), ctx.Event()
    other = ctx.Process(target=_hold_claim_then_store, args=(tmp_path, theirs, holding, release))
    other.start()
    try:
        assert holding.wait(30)
        logs = []

        def log(line):      # once deferred, the other process stores the record, then releases its claim
            logs.append(line)
            if line.startswith("another process is training"):
                release.set()
        records = experiments.run_many([theirs, mine], pack=False, directory=tmp_path, progress=False, log=log)
    finally:
        release.set()
        other.join(30)
    assert any(f"another process is training {theirs.key}" in line for line in logs)
    assert records[0]["key"] == theirs.key and records[0]["notes"] == ["trained by the other process"]
    assert records[1]["key"] == mine.key and "notes" in records[1]
    assert files.claim_run(tmp_path, theirs.key) is not None      # released when the other ended


def _hold_claim_then_store(folder, config, holding, release):
    from fptlib import files
    lock = files.claim_run(folder, config.key)
    holding.set()
    release.wait(30)
    import time
    time.sleep(1.0)
    store.save({"key": config.key, "notes": ["trained by the other process"]}, folder)
    lock.close()


def test_reproduce_goes_on_with_other_runs_while_another_process_trains_one(tmp_path, monkeypatch):
    """reproduce does not wait at a run another process holds: it trains the table's other runs
    first and reads the held run's record at the end."""
    import multiprocessing
    from fptlib import experiments
    from test_train_toy import tiny_config
    held_cfg, other_cfg = tiny_config(seed=0, steps=4, eval_every=2), tiny_config(seed=1, steps=4, eval_every=2, lr=3e-3)
    held_cfg = dataclasses.replace(held_cfg, table="toy", row="a", column="x")
    other_cfg = dataclasses.replace(other_cfg, table="toy", row="b", column="x", task_options=(("n", 6),))
    monkeypatch.setitem(experiments.TABLES, "toy", lambda profile, backbone: [held_cfg, other_cfg])
    ctx = multiprocessing.get_context("fork")
    holding, release = ctx.Event(), ctx.Event()
    other = ctx.Process(target=_hold_claim_then_store, args=(tmp_path, held_cfg, holding, release))
    other.start()
    logs = []

    def log(line):
        logs.append(line)
        if line.startswith("waiting for"):
            release.set()
    try:
        assert holding.wait(30)
        records = experiments.reproduce("toy", "quick", directory=tmp_path, progress=False, log=log, pack=False)
    finally:
        release.set()
        other.join(30)
    trained = next(i for i, line in enumerate(logs) if line.startswith("[2/2] running b"))
    waited = next(i for i, line in enumerate(logs) if line.startswith("waiting for 1 run"))
    assert trained < waited
    assert [r["key"] for r in records] == [held_cfg.key, other_cfg.key]
    assert records[0]["notes"] == ["trained by the other process"]


# -- fp16: one dynamic loss scale per run ------------------------------------------------------
@pytest.fixture
def fp16_on_cpu(monkeypatch):
    """amp='fp16' on this CPU (env refuses it outside CUDA; CPU autocast runs float16 matmuls, and
    torch.amp.GradScaler works on a CPU), for the Trainer and the pack alike."""
    from fptlib import env
    real = env.amp_dtype
    monkeypatch.setattr(env, "amp_dtype", lambda amp, device: torch.float16 if amp == "fp16" else real(amp, device))


def _inf_in_gradient(model, run, at_step, batch_size):
    """At training forward ``at_step`` (1-based), an inf in the gradient of the backbone's output
    for run ``run``'s first example (rows ``run * batch_size``...): the loss stays finite, the
    run's input-layer gradients overflow. The hook travels into the pack's copy of the model."""
    calls = [0]

    def poison(grad):
        grad = grad.clone()
        grad[run * batch_size] = float("inf")
        return grad

    def hook(module, args, out):
        if torch.is_grad_enabled():
            calls[0] += 1
            if calls[0] == at_step:
                out.hidden.register_hook(poison)
    model.backbone.register_forward_hook(hook)


def _fp16_pack(task, seeds, configs, inf=None, **kw):
    """(models, results, per-run final loss scales read from the pack's checkpoint)."""
    models = [_build(task, "gpt2", s) for s in seeds]
    if inf is not None:
        _inf_in_gradient(models[0], *inf, batch_size=configs[0].batch_size)
    results = PackedTrainer(models, task, configs, **kw).fit()
    saved = torch.load(f"{kw['checkpoint_dir']}/checkpoint.pt", weights_only=True) if "checkpoint_dir" in kw else None
    return models, results, saved and [r["loss_scale"] for r in saved["runs"]]


# fp16 autocast rounds activations to 11 significant bits (4.9e-4 relative); the pack's float32
# sums in another order (see PARAM_TOL) flip some of those roundings, so a packed fp16 run drifts
# from the run alone: measured here (tiny GPT-2 and BERT, RUNS, lr up to 1e-2) up to 1.6e-4 after
# 20 steps and 2.2e-4 after 50. The loss scales are powers of two and add no rounding of their own.
# FP16_PARAM_TOL = 5e-4 is half of one Adam step at lr 1e-3, so a skipped or extra update still fails.
FP16_PARAM_TOL = 5e-4


@pytest.mark.parametrize("family", ["gpt2", "bert"])
def test_fp16_pack_equals_each_run_alone_with_its_grad_scaler(family, fp16_on_cpu, tmp_path):
    """Runs whose fp16 gradients overflow (tiny GPT-2's seeds 0 and 2 do in the first steps) skip
    those steps and back off as their GradScaler alone does: the final scales are equal."""
    task = _task("bit-xor")
    configs = [_cfg(seed=s, steps=20, eval_every=10, amp="fp16", **kw) for s, kw in RUNS]
    models = [_build(task, family, s) for s, _ in RUNS]
    results = PackedTrainer(models, task, configs, checkpoint_dir=str(tmp_path)).fit()
    scales = [r["loss_scale"] for r in torch.load(tmp_path / "checkpoint.pt", weights_only=True)["runs"]]
    for (seed, _), cfg, model, result, scale in zip(RUNS, configs, models, results, scales):
        alone_model = _build(task, family, seed)
        trainer = Trainer(alone_model, task, cfg)
        alone = trainer.fit()
        assert alone.amp == result.amp == "float16"
        assert scale == trainer.scaler.get_scale()
        _assert_same_run(alone_model, alone, model, result, tol=FP16_PARAM_TOL)


def test_fp16_inf_in_one_runs_gradient_skips_its_step_and_halves_its_scale(fp16_on_cpu, tmp_path):
    task, steps = _task("bit-xor"), 6
    configs = [_cfg(seed=s, steps=steps, eval_every=0, amp="fp16", **kw) for s, kw in RUNS]
    clean, _, clean_scales = _fp16_pack(task, [0, 1, 2], configs, checkpoint_dir=str(tmp_path / "clean"))
    before, _, _ = _fp16_pack(task, [0, 1, 2], [dataclasses.replace(c, steps=steps - 1) for c in configs])
    hit, _, hit_scales = _fp16_pack(task, [0, 1, 2], configs, inf=(1, steps), checkpoint_dir=str(tmp_path / "hit"))
    assert clean_scales[1] == 2.0 ** 16         # run 1 never overflowed alone (runs 0 and 2 do, in fp16)
    assert hit_scales == [clean_scales[0], 2.0 ** 15, clean_scales[2]]
    for i in (0, 2):        # the other runs stepped as in the pack without the inf
        for (n, p), (_, q) in zip(clean[i].named_parameters(), hit[i].named_parameters()):
            assert torch.equal(p, q), n
    # run 1 skipped its last step: it ends where it was one step before
    assert _max_diff(clean[1], before[1]) > 0
    for (n, p), (_, q) in zip(before[1].named_parameters(), hit[1].named_parameters()):
        assert torch.equal(p, q), n


def test_fp16_loss_scales_survive_checkpoint_and_resume(fp16_on_cpu, tmp_path):
    task = _task("bit-xor")
    configs = [_cfg(seed=s, steps=20, eval_every=10, amp="fp16") for s in (0, 1, 2)]
    straight, straight_results, straight_scales = _fp16_pack(task, [0, 1, 2], configs, inf=(1, 3),
                                                             checkpoint_dir=str(tmp_path / "straight"))
    folder = str(tmp_path / "resumed")
    with pytest.raises(Interrupted):        # run 1 overflows at step 3, checkpoint at step 10, killed at 15
        _fp16_pack(InterruptAt(task, 15), [0, 1, 2], configs, inf=(1, 3), checkpoint_dir=folder)
    saved = torch.load(f"{folder}/checkpoint.pt", weights_only=True)
    assert saved["step"] == 10 and saved["loss_scale"][1] <= 2.0 ** 15 and saved["growth_tracker"].shape == (3,)
    models, results, scales = _fp16_pack(task, [0, 1, 2], configs, checkpoint_dir=folder)
    assert [r.resumed_from for r in results] == [10, 10, 10]
    assert scales == straight_scales
    for a, b in zip(straight, models):
        for (n, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
            assert torch.equal(p, q), n


def test_per_run_scaler_grows_backs_off_and_follows_runs_leaving_the_pack():
    from fptlib.train.packed import PerRunScaler
    s = PerRunScaler(3, "cpu", True)
    s.growth_tracker = torch.tensor([PerRunScaler.INTERVAL - 1, 5, PerRunScaler.INTERVAL - 1], dtype=torch.int32)
    grad = torch.ones(3, 4) * 2.0 ** 16
    grad[2, 1] = float("nan")
    found = s.unscale_(grad)
    assert found.tolist() == [False, False, True] and torch.equal(grad[:2], torch.ones(2, 4))
    s.update(found)
    assert s.scale.tolist() == [2.0 ** 17, 2.0 ** 16, 2.0 ** 15] and s.growth_tracker.tolist() == [0, 6, 0]
    s.keep(torch.tensor([1, 2]))
    assert s.scale.tolist() == [2.0 ** 16, 2.0 ** 15] and s.growth_tracker.tolist() == [6, 0]
    off = PerRunScaler(2, "cpu", False)
    losses = torch.tensor([1.0, 2.0])
    assert off.scale_losses(losses) is losses and off.unscale_(torch.ones(2, 3)) is None


def test_the_packed_note_says_dropout_makes_another_draw():
    """With dropout a packed run's masks come from the pack's generator: its record must not claim
    the numbers of the run alone."""
    from fptlib.experiments import packed_note
    info = {"runs": 3, "technique": "batch-stacked"}
    assert "result as alone, up to float rounding" in packed_note(info, 0.0)
    with_dropout = packed_note(info, 0.1)
    assert "another random draw" in with_dropout and "result as alone" not in with_dropout


def test_seeds_pack_together_only_where_the_seed_changes_no_frozen_weight():
    """A pretrained backbone's seeds share every frozen weight when the input layer trains; a preset
    that freezes the (randomly drawn) input layer, or a random backbone, makes each seed its own group."""
    from fptlib.experiments import config, pack_group

    def groups(**kw):
        return {pack_group(config("bit-xor", backbone="minilm", seed=s, **kw)) for s in (0, 1, 2)}

    assert len(groups(init="pretrained", freeze="fpt")) == 1
    assert len(groups(init="pretrained", freeze="+input")) == 1
    assert len(groups(init="pretrained", freeze="+layernorm")) == 3
    assert len(groups(init="random", freeze="fpt")) == 3


def test_a_pack_stopped_between_its_record_writes_resumes_as_the_same_pack(tmp_path, monkeypatch):
    """Issue #25: a pack killed after writing some of its records is not retrained from step 0 as a
    new pack of the runs left: run_many resumes the same pack from its checkpoint (packs keep one at
    every profile) and ends where the uninterrupted pack ends; the record written before stays as it was."""
    from fptlib import experiments
    from test_train_toy import tiny_config
    configs = [tiny_config(lr=lr, seed=0, steps=12, eval_every=6) for lr in (1e-3, 2e-3, 3e-3)]
    whole = experiments.run_many(configs, pack=3, directory=tmp_path / "whole", progress=False, log=lambda s: None)
    real, written = experiments.many.store_record, []

    def killed_after_one(c, *args, **kwargs):
        if written:
            raise KeyboardInterrupt("killed between the pack's record writes")
        written.append(real(c, *args, **kwargs))
        return written[-1]
    monkeypatch.setattr(experiments.many, "store_record", killed_after_one)
    with pytest.raises(KeyboardInterrupt):
        experiments.run_many(configs, pack=3, directory=tmp_path / "cut", progress=False, log=lambda s: None)
    monkeypatch.setattr(experiments.many, "store_record", real)
    assert len(written) == 1 and store.checkpoint_of(configs[1].key, tmp_path / "cut") is not None
    logs = []
    again = experiments.run_many(configs, pack=3, directory=tmp_path / "cut", progress=False, log=logs.append)
    assert any(line.startswith("resuming the pack of 3 runs") for line in logs), logs
    assert not any(line.startswith("packing") for line in logs), logs          # no new pack from step 0
    assert again[0]["created_at"] == written[0]["created_at"]
    timeless = lambda evals: [{k: v for k, v in e.items() if k != "wall_s"} for e in evals]  # noqa: E731
    for a, w in zip(again, whole):
        assert a["key"] == w["key"] and a["final"] == w["final"] and timeless(a["evals"]) == timeless(w["evals"])
