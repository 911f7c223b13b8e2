"""fptlib.notebook (setup, curves) and what notebooks use from experiments, results and report:
the profile and device rules, the one config path, record queries, tables."""
from __future__ import annotations

import types

import pytest

from fptlib import env, experiments, files, paper, report, results
from fptlib import notebook as nb


@pytest.fixture
def fake_default_backbone(monkeypatch):
    """The registry's rule answers "minilm" whatever this machine has cached."""
    import fptlib.backbones as bb

    monkeypatch.setattr(bb, "default_backbone", lambda *a, **k: ("minilm", "test rule"))


def test_profile_rule():
    choose = experiments.choose_profile
    assert choose("cpu", {})[0] == "quick"
    assert choose("cuda", {})[0] == "evidence"
    assert choose("cuda", {"FPT_PROFILE": "quick"}) == ("quick", "set by FPT_PROFILE")
    assert choose("cpu", {"FPT_PROFILE": " FULL "})[0] == "full"
    with pytest.raises(ValueError, match="quick, evidence, full"):
        choose("cpu", {"FPT_PROFILE": "fast"})


def test_device_env_override(monkeypatch):
    monkeypatch.setenv("FPT_DEVICE", "cpu")
    monkeypatch.delenv("FPT_PROFILE", raising=False)
    assert str(env.pick_device("auto")) == "cpu"      # what setup() prints is what training uses
    assert experiments.choose_profile()[0] == "quick"


def test_results_dir_env(tmp_path):
    assert files.results_dir(env={"FPT_RESULTS_DIR": str(tmp_path)}) == tmp_path


def test_setup_prints_choice_and_seeds(monkeypatch, tmp_path, capsys, fake_default_backbone):
    import torch

    monkeypatch.setenv("FPT_RESULTS_DIR", str(tmp_path / "res"))
    monkeypatch.setenv("FPT_DEVICE", "cpu")
    monkeypatch.delenv("FPT_PROFILE", raising=False)
    ctx = nb.setup(seed=3)
    out = capsys.readouterr().out
    assert ctx.profile == "quick" and ctx.device == "cpu" and ctx.backbone == "minilm"
    assert (tmp_path / "res").is_dir() and ctx.results_dir == tmp_path / "res"
    for word in ("profile    : quick", "device     : cpu", "backbone   : minilm (test rule)", "results"):
        assert word in out
    a = torch.rand(3)
    nb.setup(seed=3, quiet=True)
    assert torch.equal(a, torch.rand(3)), "setup() must seed torch"
    assert capsys.readouterr().out == ""
    with pytest.raises(ValueError):
        nb.setup(profile="medium")


def test_markdown_table_formats_and_orders():
    text = report.markdown_table([{"a": 1, "b": 0.123456}, {"b": None, "c": True}], digits=2)
    lines = text.splitlines()
    assert lines[0] == "| a | b | c |"
    assert lines[2] == "| 1 | 0.12 | - |"
    assert lines[3] == "| - | - | yes |"
    assert report.markdown_table([]) == "(no rows)"


def test_series_accepts_several_history_shapes():
    rows = [{"step": 10, "val_acc": 0.5}, {"step": 20, "loss": 1.0}, {"step": 30, "val_acc": 0.9}]
    cols = {"step": [10, 20, 30], "val_acc": [0.5, None, 0.9]}
    obj = types.SimpleNamespace(history=rows)
    for h in (rows, cols, obj, {"history": rows}):
        assert nb._series(h, "val_acc") == ([10.0, 30.0], [0.5, 0.9])


def test_plot_curves_draws_one_line_per_history():
    import matplotlib

    matplotlib.use("Agg")
    rows = [{"step": 1, "val_acc": 0.5}, {"step": 2, "val_acc": 0.75}]
    ax = nb.plot_curves({"a": rows, "b": rows, "empty": []}, target=0.9, title="t")
    lines = ax.get_lines()
    assert len(lines) == 3  # two curves + the target line
    assert list(lines[0].get_ydata()) == [50.0, 75.0]
    assert ax.get_legend() is not None and len(ax.get_legend().get_texts()) == 2


# ---- records, configs and tables --------------------------------------------------------------

def _record(accs=(0.5, 0.8, 0.95), test=0.9, key="k", lr=1e-3, steps=30):
    evals = [{"step": 10 * (i + 1), "val": {"accuracy": a, "loss": 1.0}, "test": {"accuracy": a - 0.05}}
             for i, a in enumerate(accs)]
    return {"key": key, "backbone": {"name": "minilm", "init": "pretrained"}, "freeze": "fpt",
            "hyperparameters": {"lr": lr}, "steps": steps, "seed": 0, "data_source": "generated bits",
            "evals": evals, "history": [{"step": 10, "loss": 0.7, "accuracy": 0.6},
                                        {"step": 30, "loss": 0.2, "accuracy": 0.97}],
            "final": {"val": {"accuracy": accs[-1]}, "test": {"accuracy": test}},
            "best": {"val": {"accuracy": max(accs)}, "test": {"accuracy": test}},
            "run_config": {"layers": None}}


def test_record_readers():
    rec = _record()
    assert results.accuracy(rec) == 0.9                      # test preferred: the paper reports test
    assert results.accuracy(rec, "val") == 0.95
    assert results.eval_split(rec) == "val"
    assert results.steps_to(rec, 0.8) == 20.0 and results.steps_to(rec, 0.99) is None
    assert results.steps_to(rec, 0.8, "test") == 30
    assert results.train_accuracy(rec) == 0.97
    assert nb._series(rec, "val") == ([10.0, 20.0, 30.0], [0.5, 0.8, 0.95])
    assert nb._series(rec, "loss") == ([10.0, 30.0], [0.7, 0.2])   # not an eval split: training history
    assert results.provenance(rec) == "minilm (pretrained), freeze fpt, lr 0.001, 30 steps, seed 0"
    assert results.provenance({**rec, "run_config": {"layers": 2}}, data=True).startswith("minilm (pretrained, 2 layers)")
    assert results.provenance(rec, data=True).endswith("generated bits")


def test_results_table_pairs_paper_and_run():
    t = report.results_table({"FPT": _record(), "random": _record(accs=(0.5, 0.6, 0.7), test=0.7)},
                         {"FPT": 100, "random": (75.8, "GPT-2 base")}, target=0.9)
    lines = repr(t).splitlines()
    assert lines[0].startswith("| setting | paper (%) | paper's setting | this run, final (%)")
    assert "| FPT | 100.0 | GPT-2 | 90.0 | 90.0 | 30 |" in lines[2]
    # test accuracy at the best-validation evaluation (65.0), not the best test evaluation (70.0... or more)
    assert "| random | 75.8 | GPT-2 base | 70.0 | 65.0 | > 30 |" in lines[3]
    assert "this run, at best val (%)" in lines[0] and "best (%)" not in lines[0]


def test_config_layers_paper_profile_and_caller():
    q = experiments.config("bit-xor", "quick", "minilm")
    f = experiments.config("bit-xor", "full", "minilm")
    assert q.eval_every == experiments.PROFILE_SETTINGS["quick"]["bit-xor"]["eval_every"] != f.eval_every
    assert f.batch_size == paper.HYPERPARAMETERS["bit-xor"]["batch_size"] and q.batch_size == 8
    assert experiments.config("homology", "quick", "minilm").lr == paper.HYPERPARAMETERS["homology"]["lr"]
    # changes win; task options merge into the profile's options
    c = experiments.config("bit-xor", "quick", "minilm", lr=3e-4, task_options={"n": 7})
    assert c.lr == 3e-4 and dict(c.task_options) == {"n": 7, "eval_size": 128}
    assert c.key != q.key
    d = experiments.config("fashion-mnist", "quick", "minilm")
    assert d.task == "fashion-mnist" and dict(d.task_options)["patch_size"] == 7
    with pytest.raises(ValueError, match="unknown profile"):
        experiments.config("bit-xor", "slow", "minilm")


def test_one_run_one_key_from_every_entry_point(monkeypatch, fake_default_backbone):
    """The same run asked for by a notebook, the command line and ``reproduce``'s tables has one key."""
    from fptlib.cli import build_parser
    from fptlib.commands import _config_from_args

    monkeypatch.setenv("FPT_DEVICE", "cpu")
    monkeypatch.delenv("FPT_PROFILE", raising=False)
    ctx = nb.setup(quiet=True, matplotlib_inline=False)
    from_notebook = ctx.config("bit-xor")
    args = build_parser().parse_args(["train", "--task", "bit-xor", "--backbone", "minilm"])
    from_cli = _config_from_args(args)
    from_table = experiments.table("table1", None, "minilm")[0]
    assert from_notebook.key == from_cli.key == from_table.key
    assert from_notebook.profile == from_cli.profile == "quick"     # one profile rule, no GPU here
    monkeypatch.setenv("FPT_PROFILE", "full")
    assert _config_from_args(args).profile == "full"


def test_short_paths_hides_machine_folders():
    import sysconfig

    site = sysconfig.get_paths()["purelib"]
    assert files.short_paths(f"package folder {site}/pkg/model") == "package folder <site-packages>/pkg/model"
    root = files.repo_root()
    if root is not None:
        assert files.short_paths(f"looked in {root}/data") == "looked in <repo>/data"


def test_sweep_each_drops_a_diverging_lr(monkeypatch):
    from fptlib import sweeps as sweep_mod
    from fptlib.train.trainer import NonFiniteLossError

    calls = []

    def fake_sweep(cfg, lrs, seeds, progress=True):
        calls.append(tuple(lrs))
        if 0.01 in lrs:
            raise NonFiniteLossError("the training loss became NaN or infinite at step 3 (lr=0.01, amp=off)")
        return types.SimpleNamespace(best_lr=max(lrs), rows=[{"lr": lr} for lr in lrs])

    monkeypatch.setattr(sweep_mod, "sweep", fake_sweep)
    results, diverged = sweep_mod.sweep_each({"a": object()}, lrs=(1e-3, 1e-2))
    assert calls == [(1e-3, 1e-2), (1e-3,)]
    assert diverged == {"a": [0.01]} and results["a"].best_lr == 1e-3


def test_show_patches_reassembles_tokens():
    import matplotlib
    import torch

    matplotlib.use("Agg")
    from fptlib.tasks.base import Batch

    class FakeImages:  # 4x4 grey images in 2x2 patches: 4 tokens of 4 values
        name, patch = "fake", 2

        def eval_batches(self, split, n, device):
            yield Batch(torch.arange(n * 16, dtype=torch.float).reshape(n, 4, 4), torch.zeros(n, dtype=torch.long))

    fig = nb.show_patches(FakeImages(), n=2)
    assert len(fig.axes) == 2
    assert "4 tokens of 2x2x1 = 4 values" in fig._suptitle.get_text()
    canvas = fig.axes[0].get_images()[0].get_array()
    assert canvas.shape == (6, 6)          # 2 patches of 2 pixels + 1-pixel gaps per side


def test_describe_setting_says_what_runs():
    cfg = experiments.config("bit-xor", "quick", "minilm")
    text = experiments.describe_setting(cfg)
    assert "task        : bit-xor" in text and "backbone    : minilm (pretrained)" in text
    assert "the paper used GPT-2; this run uses minilm instead" in text
    assert "quick profile" in text
    assert "the paper used GPT-2" not in experiments.describe_setting(experiments.config("bit-xor", "quick", "gpt2"))
