"""Experiments: every paper table has configs at both profiles, keys are stable and shared,
run() reuses the store, trained models reload, and the Bit-Memory-pretrained init works."""
import dataclasses

import pytest
import torch

from fptlib import experiments, paper, results
from fptlib.train import TrainConfig, Trainer
from test_train_toy import one_thread, tiny_config  # noqa: F401


@pytest.mark.parametrize("profile", experiments.PROFILES)
def test_every_table_has_labelled_configs_matching_the_paper(profile):
    for name in experiments.names():
        configs = experiments.table(name, profile, backbone="minilm")
        ptable = paper.get(experiments.canonical(name))
        assert configs, name
        for c in configs:
            assert c.profile == profile and c.table == name
            # the paper's row and column, or a labelled variant the paper did not run
            assert c.row in ptable.rows or c.row in experiments.VARIANTS, (name, c.row)
            assert c.column in ptable.columns or c.column in experiments.VARIANTS, (name, c.column)
            if c.row not in experiments.VARIANTS and c.column not in experiments.VARIANTS:
                assert ptable.value(c.row, c.column) is not None, (name, c.row, c.column)
    full = experiments.table("table1", "full", backbone="gpt2")
    assert {c.column for c in full} == set(paper.TASKS) | {"listops (brackets kept)"}
    assert all(c.steps >= 20_000 for c in full)


def test_keys_are_stable_shared_across_tables_and_ignore_labels():
    t1 = {(c.row, c.column): c for c in experiments.table("table1", "quick", backbone="minilm")}
    init = {(c.row, c.column): c for c in experiments.table("init", "quick", backbone="minilm")}
    ladder = {(c.row, c.column): c for c in experiments.table("ladder", "quick", backbone="minilm")}
    fpt_xor = t1[("FPT", "bit-xor")]
    assert fpt_xor.key == init[("language", "bit-xor")].key == ladder[("bit-xor pretrained", "+ positions")].key
    assert fpt_xor.key != t1[("Full transformer", "bit-xor")].key
    assert dataclasses.replace(fpt_xor, lr=3e-4).key != fpt_xor.key
    assert fpt_xor.key == experiments.table("table1", "quick", backbone="minilm")[0].key   # stable
    assert fpt_xor.key.startswith("bit-xor-minilm-pretrained-fpt-")
    # quick MNIST is scikit-learn's digits, labelled as the paper's MNIST column, never named MNIST
    mnist = t1[("FPT", "mnist")]
    assert mnist.task == "digits" and mnist.column == "mnist"
    every = [c for n in experiments.names() for c in experiments.table(n, "quick", backbone="minilm")]
    assert len({c.key for c in every}) < len(every)        # shared runs: one key, run once


def test_unknown_names_are_clear_errors():
    with pytest.raises(ValueError, match="unknown experiment table 'table9'.*table1"):
        experiments.table("table9")
    with pytest.raises(ValueError, match="unknown profile 'slow'"):
        experiments.table("table1", "slow", backbone="minilm")
    assert experiments.table("table2", "quick", backbone="minilm")[0].table == "init"   # alias


def test_run_trains_once_then_reuses_the_record_and_reloads_the_model(tmp_path, monkeypatch):
    cfg = tiny_config()
    rec = experiments.run(cfg, directory=tmp_path, progress=False)
    assert rec["key"] == cfg.key and results.get(cfg.key, tmp_path)["created_at"] == rec["created_at"]
    assert rec["backbone"]["name"] == "gpt2" and rec["backbone"]["init"] == "random"
    assert rec["run_config"]["backbone_overrides"] and rec["steps"] == 6

    def no_training(*a, **k):
        raise AssertionError("run() trained although the store had the record")
    monkeypatch.setattr(experiments.single, "train", no_training)
    assert experiments.run(cfg, directory=tmp_path)["created_at"] == rec["created_at"]

    model, task = experiments.load_model(cfg, directory=tmp_path)
    again = Trainer(model, task, TrainConfig(batch_size=cfg.batch_size, device="cpu")).evaluate("test")
    assert again["accuracy"] == pytest.approx(rec["final"]["test"]["accuracy"], abs=1e-9)
    with pytest.raises(FileNotFoundError, match="experiments.run"):
        experiments.load_model(dataclasses.replace(cfg, seed=5), directory=tmp_path)


def test_bit_memory_pretrained_init_trains_then_freezes_the_backbone(tmp_path, monkeypatch):
    monkeypatch.setattr(experiments.single, "MAX_SAVED_TRAINED", 0)    # pretraining weights are kept regardless
    cfg = tiny_config(init="bit-memory", steps=2, eval_every=0)
    pre = experiments.pretraining_config(cfg)
    assert pre.task == "bit-memory" and pre.freeze == "full" and pre.init == "random"
    experiments.ensure_pretraining(cfg, directory=tmp_path)       # build() never trains: the prerequisite first
    model, _ = experiments.build(cfg, directory=tmp_path)
    assert model.backbone.init == "bit-memory"
    stored = torch.load(experiments.weights_path(pre.key, tmp_path), weights_only=True)
    name = next(n for n in stored if n.endswith("h.0.attn.c_attn.weight"))
    own = dict(model.named_parameters())[name]
    assert torch.equal(own, stored[name]) and not own.requires_grad, name
    random_model, _ = experiments.build(dataclasses.replace(cfg, init="random"))
    assert not torch.equal(dict(random_model.named_parameters())[name], own)


def test_full_settings_follow_the_tasks_paper_hyperparameters():
    from fptlib import tasks
    for name in ("bit-xor", "bit-memory", "listops"):
        hp = tasks.get(name).hparams
        cfg = experiments.config(name, "full", "gpt2")
        assert (cfg.batch_size, cfg.lr) == (hp["batch_size"], hp["lr"]), name
        assert paper.HYPERPARAMETERS[name] == {"lr": hp["lr"], "batch_size": hp["batch_size"]}, name
    assert experiments.config("homology", "full", "gpt2").lr == 1e-4


@pytest.mark.parametrize("profile", experiments.PROFILES)
def test_the_explorers_run_set_is_what_the_explorer_loads(profile):
    """`reproduce attention` trains exactly the explorer's models: at the paper's 5 bits the init
    table's runs (one key), longer strings at every length of the profile, each init and seed."""
    from fptlib import explorer
    runs = experiments.table("attention", profile, backbone="minilm")
    lengths = experiments.ATTENTION_LENGTHS[profile]
    assert {c.column for c in runs} == {f"n={n}" for n in lengths}
    assert len(runs) == len(lengths) * 2 * len(experiments.SEEDS[profile])
    for n in lengths:
        shown = explorer.xor_configs(n, profile, "minilm")
        ours = {c.key for c in runs if c.column == f"n={n}" and c.seed == 0}
        assert {c.key for c in shown.values()} == ours
        assert all(dict(c.task_options).get("n", paper.BIT_XOR_BITS) == n for c in shown.values())
    init = {(c.row, c.seed): c.key for c in experiments.table("init", profile, backbone="minilm")
            if c.column == "bit-xor"}
    at5 = {(c.row, c.seed): c.key for c in runs if c.column == "n=5"}
    assert at5[("pretrained", 0)] == init[("language", 0)] and at5[("random", 0)] == init[("random", 0)]
    assert "attention" not in experiments.names() and "attention" in experiments.names(run_sets=True)


def test_a_run_set_table_reports_seeds_without_a_paper_column(tmp_path):
    from fptlib import report
    runs = experiments.table("attention", "evidence", backbone="minilm")
    cfg = next(c for c in runs if c.column == "n=8" and c.row == "pretrained")
    records = []
    for seed, acc in ((0, 0.9), (1, 0.7), (2, 0.8)):
        key = dataclasses.replace(cfg, seed=seed).key
        records.append({"key": key, "seed": seed, "steps": 300, "final": {"test": {"accuracy": 0.5}},
                        "evals": [{"step": 100, "val": {"accuracy": acc}, "test": {"accuracy": acc}},
                                  {"step": 300, "val": {"accuracy": acc - 0.1}, "test": {"accuracy": 0.5}}]})
    table = report.run_set_table("attention", "evidence", records=records, backbone="minilm")
    row = next(r for r in table.rows if r["setting"] == "pretrained" and r["column"] == "n=8")
    assert row["this run (%)"] == "80.0 ± 10.0" and row["seeds"] == 3 and row["steps trained"] == "300, 300, 300"
    assert all(r["this run (%)"] == "not run" for r in table.rows if r["column"] == "n=32")
    assert "paper" not in " ".join(table.columns or [])


def test_the_tuned_run_set_shows_each_cells_lr_chosen_on_validation_and_its_runs_only():
    from fptlib import report
    runs = experiments.table("tuned_lr", "evidence", backbone="minilm")
    table1_rows, more_rows = {"FPT", "Full transformer", "Full LSTM"}, {"+ feed-forward", "+ attention", "+ both"}
    assert {c.row for c in runs} == table1_rows | more_rows
    assert {c.column for c in runs} == set(experiments.TUNED_COLUMNS)
    # the more-than-FPT rows only where that table runs at the profile (evidence: the image stand-in)
    assert {c.column for c in runs if c.row in more_rows} == {"cifar10"}
    # the runs at the paper's learning rates are Table 1's and the more-than-FPT table's own runs (one key)
    paper_runs = {c.key for name in ("table1", "more_than_fpt")
                  for c in experiments.table(name, "evidence", backbone="minilm")}
    at_paper_lr = {c.key for c in runs if c.lr == (experiments.LSTM_LR if c.row == "Full LSTM" else 1e-3)}
    assert at_paper_lr <= paper_runs and len(at_paper_lr) == 3 * 3 * 3 + 3 * 3
    lstm = [c for c in runs if c.row == "Full LSTM" and c.column == "bit-xor"]
    records = [{"key": c.key, "seed": c.seed, "steps": 100 if c.lr == 1e-4 else 600, "hyperparameters": {"lr": c.lr},
                "evals": [{"step": 50, "val": {"accuracy": 0.9 if c.lr == 1e-4 else 0.6},
                           "test": {"accuracy": 0.85 if c.lr == 1e-4 else 0.95}}]} for c in lstm]
    table = report.run_set_table("tuned_lr", "evidence", records=records, backbone="minilm")
    row = next(r for r in table.rows if r["setting"] == "Full LSTM" and r["column"] == "Bit XOR")
    assert row["lr chosen on val"] == "0.0001" and row["this run (%)"] == "85.0 ± 0.0"     # val chose, not test
    assert row["steps trained"] == "100, 100, 100" and row["seeds"] == 3
    assert "lr 0.0001 chosen on validation among 0.0001, 0.0003, 0.001" in row["what produced it"]


def test_a_pretraining_run_stored_without_weights_by_another_table_is_trained_again(tmp_path, monkeypatch):
    """Table 1's fully trained Bit Memory transformer is the same run as the init table's Bit Memory
    pretraining: stored by Table 1 without its weights (too large), it must be retrained with them,
    not refused; and from now on such a run keeps its weights whatever table trains it."""
    monkeypatch.setattr(experiments.single, "MAX_SAVED_TRAINED", 0)
    cfg = tiny_config(init="bit-memory", steps=2, eval_every=0)
    pre = experiments.pretraining_config(cfg)
    experiments.run(pre, directory=tmp_path, save_weights=False)       # as Table 1 stored it before
    path = experiments.weights_path(pre.key, tmp_path)
    assert not path.is_file()
    experiments.ensure_pretraining(cfg, directory=tmp_path)        # build() never trains: the prerequisite first
    model, _ = experiments.build(cfg, directory=tmp_path)
    assert path.is_file() and model.backbone.init == "bit-memory"
    path.unlink()
    experiments.run(pre, directory=tmp_path, force=True)                # save_weights=None: kept anyway
    assert path.is_file()


def test_the_image_epoch_run_set_trains_one_epoch_of_the_stand_in_in_64_tokens():
    """Issue #24 item 6: the image stand-in trained for at least one epoch, 4x4 patches of 32x32 (64 tokens)."""
    from fptlib import tasks
    runs = experiments.table("image_epoch", "evidence", backbone="minilm")
    assert {c.column for c in runs} == {"cifar10"} and {c.task for c in runs} == {"fashion-mnist"}
    assert {c.seed for c in runs} == {0, 1, 2}
    c = runs[0]
    options = dict(c.task_options)
    assert (options["image_size"] // options["patch_size"]) ** 2 == 64
    train_images = 55_000       # Fashion-MNIST's 60,000 less the 5,000 carved for validation
    assert c.steps * c.batch_size >= train_images
    by_row = {r.row: r for r in runs}
    assert by_row["FPT"].key == by_row["language"].key          # Table 1's FPT is the language run
    assert by_row["Full LSTM"].backbone == "lstm" and by_row["Full transformer"].layers == 3
    assert all(r.target == experiments.TARGETS["cifar10"] for r in runs if r.backbone != "lstm")
    assert tasks.get(c.task, **options).info()["max_len"] == 64


def test_a_long_run_keeps_a_checkpoint_by_default_and_a_short_one_does_not(tmp_path):
    """Nothing a user trained is lost: a run estimated over CHECKPOINT_AFTER_SECONDS resumes."""
    long = experiments.table("image_epoch", "evidence", backbone="minilm")[0]
    short = experiments.config("bit-xor", "evidence", "minilm")
    assert experiments._checkpoint_dir(None, long, long.key, tmp_path) is not None
    assert experiments._checkpoint_dir(None, short, short.key, tmp_path) is None
    assert experiments._checkpoint_dir(False, long, long.key, tmp_path) is None


def test_the_image_epoch_table_gives_steps_to_60_percent_beside_the_accuracy():
    from fptlib import report
    runs = [c for c in experiments.table("image_epoch", "evidence", backbone="minilm") if c.row in ("language", "random")]
    first = {"language": 344, "random": 1032}       # the first evaluation at or above 60% validation accuracy

    def record(c):
        evals = [{"step": s, "val": {"accuracy": 0.7 if s >= first[c.row] else 0.5},
                  "test": {"accuracy": 0.69 if s >= first[c.row] else 0.5}} for s in range(344, 3441, 344)]
        return {"key": c.key, "seed": c.seed, "steps": c.steps, "hyperparameters": {"lr": c.lr}, "evals": evals}
    table = report.run_set_table("image_epoch", "evidence", records=[record(c) for c in runs], backbone="minilm")
    rows = {r["setting"]: r for r in table.rows}
    assert rows["language"]["steps to 60% (mean ± sd)"].startswith("344") and rows["random"][
        "steps to 60% (mean ± sd)"].startswith("1032")
    assert rows["language"]["this run (%)"] == "69.0 ± 0.0" and rows["Full LSTM"]["this run (%)"] == "not run"


def test_build_never_trains_a_missing_pretraining_it_names_the_fix(tmp_path, monkeypatch):
    """build() of a bit-memory init without its pretraining run stored refuses, naming
    experiments.ensure_pretraining; nothing is trained or stored."""
    def no_training(*a, **k):
        raise AssertionError("build() trained")
    monkeypatch.setattr(experiments.single, "train", no_training)
    cfg = tiny_config(init="bit-memory", steps=2, eval_every=0)
    with pytest.raises(experiments.PretrainingMissing, match="ensure_pretraining"):
        experiments.build(cfg, directory=tmp_path)
    assert results.load(tmp_path) == []
    assert experiments.ensure_pretraining(tiny_config(), directory=tmp_path) is None     # no prerequisite


def test_results_knows_where_every_checkpoint_of_a_run_lives(tmp_path):
    """A run's checkpoint alone, on cached features (<key>/cached) or in a pack (any pack folder
    naming it): results.checkpoint_of finds each; the notebooks' plan asks it."""
    from fptlib.train.checkpoint import CHECKPOINT_NAME
    assert results.checkpoint_of("k1", tmp_path) is None
    alone = results.checkpoint_dir("k1", tmp_path)
    cached = results.checkpoint_dir("k2", tmp_path, cached=True)
    pack = results.pack_checkpoint_dir(["k3", "k4"], tmp_path)
    for folder in (alone, cached, pack):
        folder.mkdir(parents=True)
        (folder / CHECKPOINT_NAME).write_bytes(b"x")
    results.note_pack(pack, ["k3", "k4"])
    assert results.checkpoint_of("k1", tmp_path) == alone / CHECKPOINT_NAME
    assert results.checkpoint_of("k2", tmp_path) == cached / CHECKPOINT_NAME and cached.parent.name == "k2"
    assert results.checkpoint_of("k4", tmp_path) == pack / CHECKPOINT_NAME and pack.name.startswith("pack-")
    assert results.checkpoint_of("k5", tmp_path) is None
    assert results.store_dir("evidence", tmp_path) == tmp_path / "evidence" and results.store_dir("quick", tmp_path) == tmp_path


def test_same_run_is_one_rule_for_every_grouping():
    base = experiments.config("bit-xor", "quick", "minilm")
    other_lr = experiments.dataclasses.replace(base, lr=base.lr * 3, seed=base.seed + 1)
    assert experiments.same_run(base, "setting") == experiments.same_run(other_lr, "setting")
    assert experiments.same_run(base, "resume") != experiments.same_run(other_lr, "resume")
    longer = experiments.dataclasses.replace(base, steps=base.steps * 2, eval_every=7)
    assert experiments.same_run(base, "resume") == experiments.same_run(longer, "resume")
    assert experiments.pack_group(base) == experiments.pack_group(other_lr)      # pretrained, fpt: seeds share
    assert experiments.run_kind(base, "cpu") == experiments.run_kind(experiments.dataclasses.replace(
        base, init="random", seed=3), "cpu")


def test_the_second_backbone_run_set_is_smollm2_language_against_random_on_three_tasks():
    """Issue #24 item 7: a causal backbone of another family, its depth said in every row's setting."""
    runs = experiments.table("second_backbone", "evidence", backbone="minilm")      # whatever the default
    assert {c.backbone for c in runs} == {"smollm2"} and {c.layers for c in runs} == {6}
    assert {(c.row, c.init) for c in runs} == {("language", "pretrained"), ("random", "random")}
    assert {c.column for c in runs} == {"bit-memory", "bit-xor", "listops"} and {c.seed for c in runs} == {0, 1, 2}
    assert all("smollm2 (" in c.describe() and "6 layers" in c.describe() for c in runs)
    for c in runs:      # the column's evidence settings, as the MiniLM rows have them, but backbone and depth
        twin = experiments.config(c.task, "evidence", "minilm")
        assert (c.steps, c.batch_size, c.lr, c.task_options) == (twin.steps, twin.batch_size, twin.lr, twin.task_options)


def test_the_cost_model_counts_a_wider_backbone_by_its_blocks():
    """STEP_SECONDS is MiniLM's; SmolLM2's first 6 blocks (576 wide) were measured at about 2x MiniLM's 6."""
    minilm = experiments.config("bit-memory", "evidence", "minilm")
    smol = next(c for c in experiments.table("second_backbone", "evidence") if c.task == "bit-memory")
    assert experiments.cost.block_cost(minilm) == 1.0
    assert 1.8 < experiments.cost.block_cost(smol) < 2.6
    assert experiments.run_seconds(smol) > 1.8 * experiments.run_seconds(minilm)
    one = experiments.dataclasses.replace(minilm, layers=1)
    assert experiments.cost.block_cost(one) == 0.2          # the input and output layers cost something


def test_the_cost_model_counts_an_images_tokens():
    """STEP_SECONDS is measured at the evidence settings' 16 tokens; 64-token images (image_epoch)
    were measured 3.7x slower a step (0.59 s against 0.16 s), and the estimate says so."""
    short = experiments.config("fashion-mnist", "evidence", "minilm")     # the CIFAR-10 column's stand-in
    epoch = next(c for c in experiments.table("image_epoch", "evidence", "minilm") if c.row == "language")
    assert experiments.cost.token_factor(short) == 1.0
    per_step = [experiments.run_seconds(c) / c.steps for c in (short, epoch)]
    assert 3.4 < per_step[1] / per_step[0] < 4.0
    bits = experiments.config("bit-xor", "evidence", "minilm")
    assert experiments.cost.token_factor(bits) == 1.0      # only image runs change with their patch size
