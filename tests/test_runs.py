"""The execution path of the tables: output-only runs go through the feature cache (and bit tasks
do not), learning-rate sweeps select on validation only, and reproduce takes a table's runs in
compatible groups (seeds and learning rates of one setting together)."""
import dataclasses

import pytest
import torch

from fptlib import experiments, stats, sweeps
from fptlib.cli import main
from fptlib.train.trainer import Trainer
from test_train_toy import one_thread, tiny_config  # noqa: F401

DIGITS = {"n_train": 64, "n_val": 32, "n_test": 48, "augment": False}


def _table(monkeypatch, name, configs):
    """Make ``name`` a table of ``configs`` (labelled with it) for this test."""
    labelled = [dataclasses.replace(c, table=name) for c in configs]
    monkeypatch.setitem(experiments.TABLES, name, lambda profile, bb: labelled)
    return labelled


def test_reproduce_trains_output_only_rows_on_cached_features(tmp_path, monkeypatch):
    """An output-only row of a dataset task takes the cached path (said in its record) and trains
    the same output layer as the ordinary Trainer: 12 Adam steps of batch 16 over 64 real digits,
    no augmentation, dropout 0, within the 1e-5 of tests/test_train_features.py. The Bit XOR row
    (fresh bits every step) keeps the ordinary Trainer and says why."""
    cached_cfg = tiny_config("digits", freeze="output_only", task_options=tuple(sorted(DIGITS.items())),
                             steps=12, lr=1e-2, batch_size=16, eval_every=6, seed=3, eval_limit=None,
                             row="output only", column="mnist")
    bits_cfg = tiny_config(freeze="output_only", steps=2, eval_every=1, row="output only", column="bit-xor")
    fpt_cfg = dataclasses.replace(cached_cfg, freeze="fpt", steps=2, row="+ positions")
    _table(monkeypatch, "ladder", [cached_cfg, bits_cfg, fpt_cfg])

    records = experiments.reproduce("ladder", "quick", directory=tmp_path, progress=False, log=lambda *_: None)
    cached, bits, fpt = records
    assert [r["key"] for r in records] == [cached_cfg.key, bits_cfg.key, fpt_cfg.key]
    assert any("cached frozen features" in n for n in cached["notes"])
    assert cached["feature_cache"]["examples"] == {"train": 64, "val": 32, "test": 48}
    assert not any("cached" in n for n in bits["notes"] + fpt["notes"])
    assert any("fresh examples" in n and "ordinary Trainer" in n for n in bits["notes"])
    assert "feature_cache" not in bits and "feature_cache" not in fpt

    model, task = experiments.build(cached_cfg)
    ref = Trainer(model, task, experiments.train_config(cached_cfg, device="cpu", progress=False)).fit()
    trained, _ = experiments.load_model(cached_cfg, directory=tmp_path)
    for (name, a), (_, b) in zip(model.output.named_parameters(), trained.output.named_parameters()):
        assert torch.allclose(a, b, atol=1e-5, rtol=0), f"output.{name}: {(a - b).abs().max():.2e}"
    for split in ("val", "test"):
        assert cached["final"][split]["accuracy"] == pytest.approx(ref.final[split]["accuracy"], abs=1e-9)
    assert [h["step"] for h in cached["evals"]] == [e["step"] for e in ref.evals]


def _record(lr, seed, evals, **run):
    return {"key": f"k-{lr}-{seed}", "seed": seed,
            "run_config": {"task": "listops", "freeze": "fpt", "lr": lr, "seed": seed, **run},
            "evals": [{"step": s, "val": {"accuracy": v}, "test": {"accuracy": t}} for s, v, t in evals]}


def test_select_by_validation_follows_validation_not_test():
    """lr 1e-3 has the best validation mean (0.8 vs 0.6), lr 1e-2 the best test (0.9): 1e-3 is
    chosen, and its test Summary holds each run's test at its best-validation step."""
    records = [_record(1e-3, 0, [(1, 0.7, 0.2), (2, 0.8, 0.4)]),
               _record(1e-3, 1, [(1, 0.8, 0.5), (2, 0.6, 0.95)]),
               _record(1e-2, 0, [(1, 0.6, 0.9), (2, 0.5, 0.9)]),
               _record(1e-2, 1, [(1, 0.6, 0.9)])]
    lr, summary = sweeps.select_by_validation(records)
    assert lr == 1e-3
    assert summary.values == (0.4, 0.5) and summary.seeds == (0, 1)
    assert summary.mean == pytest.approx(0.45)
    best_test = max(sweeps.by_lr(records).items(), key=lambda kv: kv[1][1].mean)[0]
    assert best_test == 1e-2 != lr
    with pytest.raises(ValueError, match="2 configurations"):
        sweeps.select_by_validation(records + [_record(1e-3, 2, [(1, 0.9, 0.9)], freeze="full")])
    with pytest.raises(ValueError, match="no records"):
        sweeps.select_by_validation([])


def test_reproduce_runs_a_tables_lr_grid_and_selects_each_setting_on_validation(tmp_path, monkeypatch):
    """A learning-rate-critique table with its grid (2 settings x 2 lrs x 2 seeds): reproduce runs
    every config, grouped per setting, and each setting's lr is chosen on validation."""
    configs = _table(monkeypatch, "lr_critique", _grid())
    groups = experiments.compatible_groups(configs)
    assert [len(g) for g in groups] == [4, 4] and {c.row for c in groups[0]} == {"frozen random"}

    shared = dataclasses.replace(configs[0], table="table1", row="FPT")     # stored first by another table
    experiments.run(shared, directory=tmp_path, progress=False)
    lines = []
    records = experiments.reproduce("lr_critique", "quick", directory=tmp_path, progress=False, log=lines.append)
    assert records[0]["key"] == shared.key and records[0]["label"]["row"] == "frozen random"   # this table's label
    assert len(records) == len({r["key"] for r in records}) == 8
    assert "8 distinct runs in 2 groups" in lines[0]
    for row in ("frozen random", "unfrozen random"):
        mine = [r for r in records if r["label"]["row"] == row]
        lr, summary = sweeps.select_by_validation(mine)
        vals = {k: v.mean for k, (v, _) in sweeps.by_lr(mine).items()}
        assert lr in (1e-3, 1e-2) and vals[lr] == max(vals.values())
        assert summary.n == 2 and summary.values == stats.summarize(
            [r for r in mine if sweeps.record_lr(r) == lr]).values
        assert sweeps.select_each(records)[(row, "listops")] == (lr, summary)
    assert len(sweeps.select_each(records)) == 2
    assert sweeps.select_each([r for r in records if sweeps.record_lr(r) == 1e-3]) == {}   # one lr: no sweep


def _grid(rows=(("frozen random", "fpt"), ("unfrozen random", "full")), lrs=(1e-3, 1e-2), seeds=(0, 1)):
    return [dataclasses.replace(tiny_config(steps=2, eval_every=1, freeze=freeze), lr=lr, seed=seed,
                                row=row, column="listops")
            for row, freeze in rows for lr in lrs for seed in seeds]


def test_reproduce_command_runs_the_lr_critique_grid_and_prints_each_choice(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FPT_RESULTS_DIR", str(tmp_path))
    _table(monkeypatch, "lr_critique", _grid())
    assert main(["reproduce", "lr_critique", "--profile", "quick", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.count("] running") == 8 and "learning rates chosen on validation" in out
    chosen = [line for line in out.splitlines() if line.startswith("  ") and "/ listops: lr " in line]
    assert len(chosen) == 2 and all("(2 seeds)" in line for line in chosen)


def test_compatible_groups_share_everything_but_seed_and_lr():
    a = tiny_config()
    configs = [a, dataclasses.replace(a, seed=1), dataclasses.replace(a, lr=3e-3, row="x"),
               dataclasses.replace(a, freeze="full"), dataclasses.replace(a, steps=7), a]
    groups = experiments.compatible_groups(configs)
    assert [[c.key for c in g] for g in groups] == [[c.key for c in configs[:3]], [configs[3].key],
                                                    [configs[4].key]]
