"""Results store: records round-trip atomically, filter, and render beside the paper's numbers."""
import json

import pytest

from fptlib import experiments, paper, report, results, stats
from fptlib.train import TrainConfig, Trainer
from test_train_toy import ToyModel, ToyTask, one_thread, tiny_config  # noqa: F401


@pytest.fixture(scope="module")
def toy_result():
    return Trainer(ToyModel(), ToyTask(), TrainConfig(steps=20, eval_every=10, device="cpu", progress=False,
                                                      batch_size=8, log_every=5)).fit()


def test_record_round_trips_with_everything_that_produced_it(tmp_path, toy_result):
    rec = results.make_record(toy_result, ToyModel(), ToyTask(), key="toy-run-1", freeze="custom", profile="quick")
    for field in ("task", "data_source", "backbone", "freeze", "hyperparameters", "steps", "samples", "wall_time_s",
                  "final", "best", "seed", "hardware", "versions", "git_commit", "profile", "created_at"):
        assert field in rec, field
    assert rec["data_source"] == "generated (test-only toy)" and rec["backbone"]["family"] == "custom"
    assert rec["hyperparameters"]["lr"] == 1e-3 and rec["versions"]["torch"]
    path = results.save(rec, tmp_path)
    assert path.name == "toy-run-1.json" and not list(tmp_path.glob(".*tmp"))
    assert results.get("toy-run-1", tmp_path) == json.loads(json.dumps(rec))
    results.save({**rec, "key": "toy-run-2", "task": "other"}, tmp_path)
    assert [r["key"] for r in results.load(tmp_path, task="toy-xor")] == ["toy-run-1"]
    assert len(results.load(tmp_path)) == 2 and results.get("missing", tmp_path) is None
    (tmp_path / "broken.json").write_text("{not json")
    assert len(results.load(tmp_path)) == 2            # skipped with a warning
    with pytest.raises(ValueError, match="plain 'key'"):
        results.save({**rec, "key": "../escape"}, tmp_path)


def test_results_dir_honours_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("FPT_RESULTS_DIR", str(tmp_path / "elsewhere"))
    assert results.results_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv("FPT_RESULTS_DIR")
    assert results.results_dir().name == "results"


def test_table_renders_our_runs_beside_the_papers(tmp_path):
    cfg = next(c for c in experiments.table("architecture", "quick", backbone="gpt2",
                                            backbone_overrides=tiny_config().backbone_overrides, steps=3)
               if c.backbone == "gpt2")
    rec = experiments.run(cfg, directory=tmp_path, progress=False)
    md = report.table("architecture", "quick", directory=tmp_path, backbone="gpt2",
                      backbone_overrides=cfg.backbone_overrides, steps=3)
    ours = f"{100 * stats.selected(rec).reported:.1f}"          # test at the best-val evaluation
    assert "paper (12-layer GPT-2 / 3-layer LSTM)" in md and "this run" in md
    line = next(l for l in md.splitlines() if l.startswith("| frozen random transformer"))
    assert "| 62.0 |" in line and f"| {ours} |" in line and "3 steps, seed 0" in line
    # quick: the CIFAR-10 column runs on its stand-in, Fashion-MNIST, and the row says so
    assert "gpt2 (random), freeze fpt, lr 0.001, 3 steps, seed 0, Fashion-MNIST" in line
    assert "| frozen random LSTM | CIFAR-10 | 34.0 | stand-in: fashion-mnist, not CIFAR-10 | not run | 0 | - |" in md
    assert "| trivial baseline: chance | CIFAR-10 | - | fashion-mnist | 10.0 |" in md
    summary = report.table(None, directory=tmp_path)
    assert cfg.key in summary and "| fashion-mnist |" in summary


def test_paper_numbers_are_labelled_and_complete():
    assert paper.get("table1").value("FPT", "listops") == 38.4
    assert paper.get("more_than_fpt").cell("+ attention", "mnist") == "89.0 (diverged)"
    assert paper.get("compute").cell("random", "bit-xor") == "20000"
    assert paper.get("lr_critique").source == paper.CRITIQUE_SOURCE
    for name in paper.names():
        t = paper.get(name)
        assert t.paper_label.startswith(("paper", "critique paper")) and set(t.values) <= set(t.rows)
    with pytest.raises(ValueError, match="known tables"):
        paper.get("table7")


def test_steps_to_target_reads_the_evaluations():
    rec = {"evals": [{"step": 50, "test": {"accuracy": 0.6}}, {"step": 100, "test": {"accuracy": 0.995}}]}
    assert results.steps_to(rec, 0.99) == 100 and results.steps_to(rec, 0.5) == 50   # the split it has
    assert results.steps_to(rec, 1.0) is None


def test_long_histories_are_thinned_keeping_the_last_entry():
    hist = [{"step": i} for i in range(1, 5001)]
    out = results.thin(hist, keep=1000)
    assert len(out) <= 1001 and out[0]["step"] == 1 and out[-1]["step"] == 5000
    assert results.thin(hist[:10]) == hist[:10]
