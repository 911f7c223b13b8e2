"""Each notebook's closing "What the evidence shows" cell: verdict sentences computed from the
records and a plot of every seed (``notebook.evidence_summary``, ``viz.plot_seeds``)."""
import json
from pathlib import Path

import pytest
from matplotlib.figure import Figure

from fptlib import experiments, notebook as nb, paper, viz
from test_claims import ARCH, record

ROOT = Path(__file__).resolve().parent.parent
LAST = [f"{n:02d}" for n in range(2, 13)]


@pytest.fixture
def ctx(tmp_path, monkeypatch):
    monkeypatch.setenv("FPT_RESULTS_DIR", str(tmp_path))
    return nb.NotebookContext(profile="quick", device="cpu", backbone="minilm", backbone_reason="test",
                              results_dir=tmp_path)


def test_plot_seeds_draws_every_seed_its_mean_and_the_baseline():
    fig = viz.plot_seeds({"FPT": [90.0, 92.0, 91.0], "LSTM": [75.0, 75.0, 75.0], "nothing": []},
                         baselines={"LSTM": ("copy", 75.2)})
    ax = fig.axes[0]
    assert isinstance(fig, Figure) and [t.get_text() for t in ax.get_yticklabels()] == ["FPT", "LSTM", "nothing"]
    dots = [c for c in ax.collections if len(c.get_offsets()) == 3]
    assert sorted(x for x, _ in dots[0].get_offsets()) == [90.0, 91.0, 92.0]
    assert any("not run" == t.get_text() for t in ax.texts)
    with pytest.raises(ValueError, match="at least one"):
        viz.plot_seeds({})


def test_evidence_summary_prints_the_computed_verdicts_and_plots_the_records(ctx, monkeypatch, capsys):
    arch = experiments.table("architecture", "evidence", experiments.EVIDENCE_BACKBONE)
    rows = {r: [c for c in arch if c.row == r] for r in ("frozen random transformer", "frozen random LSTM")}
    stored = [record(c, x, profile="evidence") for c, x in zip(rows["frozen random transformer"], (0.9, 0.92, 0.91))] + \
             [record(c, x, profile="evidence") for c, x in zip(rows["frozen random LSTM"], (0.84, 0.85, 0.86))]
    monkeypatch.setattr(nb.results, "load", lambda directory=None, *a, **k: stored)
    shown = []
    monkeypatch.setattr(nb, "_show_markdown", shown.append)
    fig = nb.evidence_summary(ARCH.notebook, ctx=ctx)
    assert "**frozen random transformer higher**" in shown[-1] and ARCH.text in shown[-1]
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert any(lbl.startswith("frozen random transformer · CIFAR-10") for lbl in labels)
    # the numbers change, the sentence changes
    stored[:3] = [record(c, x, profile="evidence") for c, x in zip(rows["frozen random transformer"], (0.5, 0.5, 0.51))]
    nb.evidence_summary(ARCH.notebook, ctx=ctx)
    assert "**frozen random transformer lower**" in shown[-1]
    assert nb.evidence_summary("12_attention_explorer", ctx=ctx) is None and "not run here" in shown[-1]


@pytest.mark.parametrize("stem", [p.stem for p in sorted((ROOT / "notebooks").glob("*.ipynb")) if p.name[:2] in LAST])
def test_notebooks_02_to_12_end_with_the_computed_evidence_cell(stem):
    cells = json.loads((ROOT / "notebooks" / f"{stem}.ipynb").read_text(encoding="utf-8"))["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert f'evidence_summary("{stem}")' in "".join(code[-1]["source"]), f"{stem}: last code cell is not the evidence cell"
