"""fptlib.notebook: profile/device choice, setup() printing and seeding, tables, curves."""
from __future__ import annotations

import sys
import types

import pytest

from fptlib import notebook as nb


@pytest.fixture
def fake_default_backbone(monkeypatch):
    """Only in tests: a stand-in for fptlib.backbones.default_backbone if it has not landed."""
    try:
        import fptlib.backbones as bb

        if hasattr(bb, "default_backbone"):
            monkeypatch.setattr(bb, "default_backbone", lambda *a, **k: ("minilm", "test rule"))
            return
    except ImportError:
        pass
    mod = types.ModuleType("fptlib.backbones")
    mod.default_backbone = lambda *a, **k: ("minilm", "test rule")
    monkeypatch.setitem(sys.modules, "fptlib.backbones", mod)


def test_profile_rule():
    assert nb.choose_profile("cpu", {})[0] == "quick"
    assert nb.choose_profile("cuda", {})[0] == "full"
    assert nb.choose_profile("cuda", {"FPT_PROFILE": "quick"}) == ("quick", "set by FPT_PROFILE")
    assert nb.choose_profile("cpu", {"FPT_PROFILE": " FULL "})[0] == "full"
    with pytest.raises(ValueError, match="quick, full"):
        nb.choose_profile("cpu", {"FPT_PROFILE": "fast"})


def test_device_env_override():
    assert nb.choose_device({"FPT_DEVICE": "cpu"}) == "cpu"


def test_results_dir_env(tmp_path):
    assert nb.default_results_dir({"FPT_RESULTS_DIR": str(tmp_path)}) == tmp_path


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


def test_backbone_choice_shapes(monkeypatch):
    class Choice:
        name, reason = "gpt2", "GPU and weights cached"

    for value, expected in [(("a", "b"), ("a", "b")), ("c", ("c", "the registry's default")),
                            (Choice(), ("gpt2", "GPU and weights cached"))]:
        mod = types.ModuleType("fptlib.backbones")
        mod.default_backbone = lambda value=value, **k: value
        monkeypatch.setitem(sys.modules, "fptlib.backbones", mod)
        assert nb._default_backbone("cpu") == expected


def test_markdown_table_formats_and_orders():
    text = nb.markdown_table([{"a": 1, "b": 0.123456}, {"b": None, "c": True}], digits=2)
    lines = text.splitlines()
    assert lines[0] == "| a | b | c |"
    assert lines[2] == "| 1 | 0.12 | - |"
    assert lines[3] == "| - | - | yes |"
    assert nb.markdown_table([]) == "(no rows)"


def test_paper_vs_run_labels_paper_and_scales_fractions():
    t = nb.paper_vs_run([
        {"setting": "Bit XOR", "paper": 100, "run": 0.987, "produced_by": "minilm, quick"},
        {"setting": "C10", "paper": 72.1, "paper_model": "GPT-2 large", "run": None},
    ])
    text = repr(t)
    assert text.splitlines()[0].startswith("| setting | paper (%) | paper's model | this run (%)")
    assert "| Bit XOR | 100.0 | GPT-2 | 98.7 | minilm, quick |" in text
    assert "| C10 | 72.1 | GPT-2 large | - | - |" in text
    assert t._repr_markdown_() == text


def test_series_accepts_several_history_shapes():
    rows = [{"step": 10, "val_acc": 0.5}, {"step": 20, "loss": 1.0}, {"step": 30, "val_acc": 0.9}]
    cols = {"step": [10, 20, 30], "val_acc": [0.5, None, 0.9]}
    obj = types.SimpleNamespace(history=rows)
    for h in (rows, cols, obj, {"history": rows}):
        assert nb._series(h, "val_acc") == ([10.0, 30.0], [0.5, 0.9])
    assert nb.steps_to_target(rows, 0.8) == 30.0
    assert nb.steps_to_target(rows, 0.95) is None
    assert nb.steps_to_target([{"step": 5, "val_acc": 99.0}], 0.9) == 5.0


def test_plot_curves_draws_one_line_per_history():
    import matplotlib

    matplotlib.use("Agg")
    rows = [{"step": 1, "val_acc": 0.5}, {"step": 2, "val_acc": 0.75}]
    ax = nb.plot_curves({"a": rows, "b": rows, "empty": []}, target=0.9, title="t")
    lines = ax.get_lines()
    assert len(lines) == 3  # two curves + the target line
    assert list(lines[0].get_ydata()) == [50.0, 75.0]
    assert ax.get_legend() is not None and len(ax.get_legend().get_texts()) == 2
