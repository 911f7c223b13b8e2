"""Pure plotting functions: they draw what they are given, label bits, and refuse bad indices."""
import io

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from fptlib.attention import BitShares
from fptlib.viz import (as_bertviz, bertviz_views, bit_labels, plot_ablation, plot_attention, plot_attention_grid,
                        plot_share_heatmap, plot_shares, plot_vs_length)

matplotlib.use("Agg")


def random_attn(layers=2, batch=3, heads=4, L=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(layers, batch, heads, L, L, generator=g).softmax(-1)


def pixels(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def test_bit_labels_from_zero_one_and_pm_one():
    x = torch.tensor([1.0, 0.0, 0.0, 1.0])
    assert bit_labels(x) == ["a0:1", "a1:0", "b0:0", "b1:1"]
    assert bit_labels(x * 2 - 1) == bit_labels(x)
    assert bit_labels(x[:, None], n_bits=2) == bit_labels(x)
    with pytest.raises(ValueError, match="pass x\\[example\\]"):
        bit_labels(torch.zeros(2, 4), n_bits=2)


def test_plot_attention_draws_the_chosen_matrix_with_bit_ticks():
    attn = random_attn()
    tokens = bit_labels(torch.tensor([1, 0, 1, 1, 0, 0, 1, 0, 1, 1.0]))
    fig = plot_attention(attn, layer=1, head=2, example=0, tokens=tokens)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    np.testing.assert_allclose(ax.images[0].get_array(), attn[1, 0, 2].numpy())
    assert [t.get_text() for t in ax.get_xticklabels()] == tokens
    assert [t.get_text() for t in ax.get_yticklabels()] == tokens
    mean = plot_attention(attn, 1, 0, 2, mean_heads=True, colorbar=False)
    np.testing.assert_allclose(mean.axes[0].images[0].get_array(), attn[1, 2].mean(0).numpy(), rtol=1e-6)
    assert "mean of heads" in mean.axes[0].get_title()


def test_plot_attention_other_head_is_another_picture():
    attn = random_attn()
    assert pixels(plot_attention(attn, 0, 0, 0)) != pixels(plot_attention(attn, 0, 1, 0))


def test_plot_attention_into_given_axes_and_marks():
    attn = random_attn(L=8)
    fig = Figure()
    ax = fig.add_subplot()
    assert plot_attention(attn, 0, 0, 0, ax=ax, mark_bits=4) is fig
    # two outlined cells per output position: partner (n+i, i) in red, itself (n+i, n+i) in white
    partner, itself = ax.collections
    assert len(partner.get_paths()) == len(itself.get_paths()) == 4
    corners = [tuple(p.get_extents().min + 0.5) for p in partner.get_paths()]
    assert corners == [(i, 4 + i) for i in range(4)]
    assert [tuple(p.get_extents().min + 0.5) for p in itself.get_paths()] == [(4 + i, 4 + i) for i in range(4)]


def test_plot_attention_errors_name_the_range():
    attn = random_attn()
    with pytest.raises(ValueError, match="head=4 is out of range.*0..3"):
        plot_attention(attn, 0, 4, 0)
    with pytest.raises(ValueError, match="layer=-1"):
        plot_attention(attn, -1, 0, 0)
    with pytest.raises(TypeError, match="example must be an int"):
        plot_attention(attn, 0, 0, 0.5)
    with pytest.raises(ValueError, match="tokens has 3 labels"):
        plot_attention(attn, 0, 0, 0, tokens=["a", "b", "c"])


def test_long_strings_thin_the_ticks():
    attn = random_attn(layers=1, batch=1, heads=1, L=512)
    fig = plot_attention(attn, 0, 0, 0, tokens=[str(i) for i in range(512)], colorbar=False)
    assert 10 <= len(fig.axes[0].get_xticks()) <= 40


def test_grid_has_one_panel_per_layer_and_head():
    attn = random_attn(layers=3, heads=4)
    fig = plot_attention_grid(attn, example=1, layers=[0, 2], heads=[1, 3])
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 4
    np.testing.assert_allclose(panels[3].images[0].get_array(), attn[2, 1, 3].numpy())
    assert len(plot_attention_grid(attn).axes) == 3 * 4 + 1   # + colorbar
    with pytest.raises(ValueError, match="heads is empty"):
        plot_attention_grid(attn, heads=[])


def test_share_plots():
    score = torch.tensor([[0.1, 0.95], [0.5, 0.2]])
    fig = plot_share_heatmap(score, chance=0.2, mark=(0, 1))
    ax = fig.axes[0]
    assert "chance 0.200" in ax.get_title()
    assert sorted(t.get_text() for t in ax.texts) == sorted([".10", ".95", ".50", ".20"])
    assert len(ax.patches) == 1
    shares = {"pretrained": BitShares(5, False, score, score.flip(1), 0.1, 0.1),
              "random": BitShares(5, False, score * 0.5, score, 0.1, 0.1)}
    both = plot_shares(shares, suptitle="x")
    titles = [a.get_title().split("\n")[0] for a in both.axes if a.images]
    assert titles == ["pretrained: partner share (top L0 H1)", "random: partner share (top L0 H1)",
                      "pretrained: self share", "random: self share"]
    panels = [a for a in both.axes if a.images]
    assert [len(a.texts) for a in panels] == [4, 4, 0, 0]     # values written in the partner row only
    lines = plot_vs_length({"partner share": {5: 0.9, 8: 0.8}, "chance share": {5: 0.1, 8: 0.0625}})
    assert len(lines.axes[0].lines) == 2 and lines.axes[0].lines[1].get_linestyle() == "--"
    with pytest.raises(ValueError, match="layers, heads"):
        plot_share_heatmap(torch.zeros(3))


def test_ablation_bars_show_the_numbers():
    rows = [{"ablated": "none", "heads": "-", "test acc (%)": 100.0},
            {"ablated": "top head", "heads": "L0 H3", "test acc (%)": 51.0},
            {"ablated": "random head", "heads": "L0 H1", "test acc (%)": 99.0}]
    ax = plot_ablation(rows).axes[0]
    assert [p.get_height() for p in ax.patches] == [100.0, 51.0, 99.0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["none", "L0 H3", "L0 H1"]


def test_bertviz_layout_and_html():
    attn = random_attn()
    per_layer = as_bertviz(attn, example=2)
    assert len(per_layer) == 2 and per_layer[0].shape == (1, 4, 10, 10)
    torch.testing.assert_close(per_layer[1][0], attn[1, 2])
    tokens = bit_labels(torch.tensor([1, 0, 1, 1, 0, 0, 1, 0, 1, 1.0]))
    head_html, model_html = bertviz_views(attn, tokens, example=0)
    for html in (head_html, model_html):
        assert "a0:1" in html.data and "b4:1" in html.data
