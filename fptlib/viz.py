"""Pictures of attention: heatmaps per head, grids over layers and heads, partner and self shares, ablations;
and the notebooks' learning curves (``plot_curves``, ``plot_runs``) and image patches (``show_patches``).

Every attention function here is pure: it takes tensors, builds a new ``matplotlib.figure.Figure`` (not
through pyplot, so nothing accumulates in global state and a notebook shows each figure exactly
once, as the cell's value) and returns it. The explorer widgets and the tests call the same
functions.

Convention: rows are the attending token ("from"), columns the attended token ("to"). For Bit XOR
the two bands the paper shows are the cells (n+i, i) (the partner bit) and (n+i, n+i) (the token
itself): ``mark_bits=n`` outlines them.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.collections import PatchCollection
from matplotlib.patches import Rectangle
from torch import Tensor

from . import results
from .attention import check_attentions
from .jupyter_static import FILES, ROUTE
from .report.render import as_percent

CMAP = "viridis"
MAX_TICKS = 40          # above this many tokens, label every k-th one so labels stay readable


def bit_labels(x: Tensor, n_bits: int | None = None) -> list[str]:
    """Tick labels for one Bit XOR example: ``a0:1 a1:0 ... b0:1 ...``.

    ``x`` holds one example's bits, shape ``[2n]`` or ``[2n, 1]`` (values {0, 1} or {-1, +1}:
    positive means 1). The first half is string a, the second string b.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor with one example's bits, got {type(x).__name__}")
    bits = x.detach().reshape(-1).cpu()
    n = n_bits if n_bits is not None else bits.numel() // 2
    if bits.numel() != 2 * n:
        raise ValueError(f"expected {2 * n} bits (two strings of {n}) for one example, got {bits.numel()}; "
                         "pass x[example], not the whole batch")
    values = (bits > 0).int().tolist()
    return [f"{'ab'[j // n]}{j % n}:{v}" for j, v in enumerate(values)]


def _new_ax(ax: Axes | None, figsize=(4.2, 3.8)) -> Axes:
    if ax is not None:
        return ax
    return Figure(figsize=figsize, layout="constrained").add_subplot()


def check_index(name: str, value, size: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not 0 <= value < size:
        raise ValueError(f"{name}={value} is out of range: this attention stack has {size} "
                         f"{name}s, use 0..{size - 1}")
    return value


def _set_token_ticks(ax: Axes, tokens: Sequence[str] | None, L: int, x=True, y=True,
                     max_ticks: int = MAX_TICKS) -> None:
    if tokens is not None and len(tokens) != L:
        raise ValueError(f"tokens has {len(tokens)} labels but the attention covers {L} tokens; "
                         "pass one label per token (e.g. bit_labels(x[example]))")
    step = max(1, -(-L // max_ticks))
    ticks = list(range(0, L, step))
    labels = [tokens[t] if tokens is not None else str(t) for t in ticks]
    small = 7 if L <= 16 else 5
    if x:
        ax.set_xticks(ticks, labels, rotation=90, fontsize=small)
    else:
        ax.set_xticks([])
    if y:
        ax.set_yticks(ticks, labels, fontsize=small)
    else:
        ax.set_yticks([])


def _mark_matching(ax: Axes, n_bits: int, L: int) -> None:
    """Outline the cells an XOR head may light up: the partner (n+i, i) in solid red, the token
    itself (n+i, n+i) in dotted white."""
    if 2 * n_bits != L:
        raise ValueError(f"mark_bits={n_bits} needs {2 * n_bits} tokens, the attention covers {L}")
    width = 0.8 if L <= 32 else 0.3
    rows = range(n_bits, 2 * n_bits)
    for cols, color, style in ((range(n_bits), "red", "-"), (rows, "white", ":")):   # one artist per kind
        ax.add_collection(PatchCollection([Rectangle((c - 0.5, r - 0.5), 1, 1) for c, r in zip(cols, rows)],
                                          facecolor="none", edgecolor=color, linestyle=style, linewidth=width))


def plot_attention(attn: Tensor, layer: int, head: int, example: int, tokens: Sequence[str] | None = None,
                   ax: Axes | None = None, mean_heads: bool = False, *, vmax: float | None = None,
                   mark_bits: int | None = None, title: str | None = None, colorbar: bool = True,
                   max_ticks: int = MAX_TICKS, ylabels: bool = True) -> Figure:
    """Heatmap of one head's attention (or the mean over heads) for one example.

    ``attn`` is ``[layers, batch, heads, L, L]`` from :func:`fptlib.attention.extract_attentions`.
    ``tokens`` label both axes (bits, e.g. from :func:`bit_labels`); ``vmax`` fixes the colour scale
    (for side-by-side comparisons); ``mark_bits=n`` outlines the two cells per output position that
    Bit XOR needs. ``max_ticks`` caps the labelled tokens per axis; ``ylabels=False`` leaves the
    rows unlabelled (a panel beside one that has them). Draws into ``ax`` when given, and returns
    its figure.
    """
    attn = check_attentions(attn)
    n_layers, batch, n_heads, L, _ = attn.shape
    check_index("layer", layer, n_layers)
    check_index("example", example, batch)
    if mean_heads:
        matrix, what = attn[layer, example].mean(0), "mean of heads"
    else:
        matrix, what = attn[layer, example, check_index("head", head, n_heads)], f"head {head}"
    ax = _new_ax(ax)
    ax.grid(False)
    image = ax.imshow(matrix.numpy(), cmap=CMAP, vmin=0.0,
                      vmax=float(matrix.max()) if vmax is None else vmax, interpolation="nearest")
    _set_token_ticks(ax, tokens, L, y=ylabels, max_ticks=max_ticks)
    if mark_bits is not None:
        _mark_matching(ax, mark_bits, L)
    ax.set_xlabel("attended token (to)", fontsize=8)
    if ylabels:
        ax.set_ylabel("attending token (from)", fontsize=8)
    ax.set_title(title if title is not None else f"layer {layer}, {what}, example {example}", fontsize=9)
    if colorbar:
        ax.figure.colorbar(image, ax=ax, shrink=0.8)
    return ax.figure


def _pick(name: str, chosen, size: int) -> list[int]:
    if chosen is None:
        return list(range(size))
    chosen = list(chosen)
    if not chosen:
        raise ValueError(f"{name} is empty: pass None for all {name} or a list of indices")
    return [check_index(name[:-1], c, size) for c in chosen]


def plot_attention_grid(attn: Tensor, example: int = 0, tokens: Sequence[str] | None = None,
                        layers: Sequence[int] | None = None, heads: Sequence[int] | None = None,
                        *, mark_bits: int | None = None) -> Figure:
    """All chosen layers (rows) x heads (columns) for one example, on one shared colour scale.

    Labels go on the outer axes only (left column, bottom row), so the picture stays readable for
    a 12-layer x 12-head model.
    """
    attn = check_attentions(attn)
    n_layers, batch, n_heads, L, _ = attn.shape
    check_index("example", example, batch)
    rows, cols = _pick("layers", layers, n_layers), _pick("heads", heads, n_heads)
    fig = Figure(figsize=(1.3 * len(cols) + 1.2, 1.3 * len(rows) + 0.8), layout="constrained")
    axes = fig.subplots(len(rows), len(cols), squeeze=False)
    vmax = float(attn[rows][:, example][:, cols].max())
    for r, layer in enumerate(rows):
        for c, head in enumerate(cols):
            ax = axes[r][c]
            ax.grid(False)
            image = ax.imshow(attn[layer, example, head].numpy(), cmap=CMAP, vmin=0.0, vmax=vmax,
                              interpolation="nearest")
            _set_token_ticks(ax, tokens, L, x=r == len(rows) - 1, y=c == 0)
            if mark_bits is not None:
                _mark_matching(ax, mark_bits, L)
            if r == 0:
                ax.set_title(f"head {head}", fontsize=8)
            if c == 0:
                ax.set_ylabel(f"layer {layer}", fontsize=8)
    fig.colorbar(image, ax=axes, shrink=0.6)
    fig.suptitle(f"attention, example {example} (rows attend to columns)", fontsize=10)
    return fig


def plot_share_heatmap(score: Tensor, chance: float | None = None, ax: Axes | None = None,
                       title: str = "partner share", vmax: float = 1.0, mark: tuple[int, int] | None = None,
                       annotate: bool = True) -> Figure:
    """Heatmap of a per-head share, layers (rows) x heads (columns), values written in (``annotate``).

    ``mark=(layer, head)`` outlines one cell (e.g. the top partner-share head).
    """
    if not isinstance(score, Tensor) or score.dim() != 2:
        raise ValueError("score must be a [layers, heads] tensor from fptlib.attention.partner_share or self_share, "
                         f"got {getattr(score, 'shape', type(score).__name__)}")
    n_layers, n_heads = score.shape
    ax = _new_ax(ax, figsize=(0.32 * n_heads + 1.8, 0.32 * n_layers + 1.2))
    ax.grid(False)
    image = ax.imshow(score.numpy(), cmap="magma", vmin=0.0, vmax=vmax, aspect="auto")
    cells = [(layer, head) for layer in range(n_layers) for head in range(n_heads)] if annotate else []
    for layer, head in cells:
        v = float(score[layer, head])
        ax.text(head, layer, f"{v:.2f}"[1:] if 0 <= v < 1 else f"{v:.1f}", ha="center", va="center",
                fontsize=6 if n_heads <= 12 else 4, color="black" if v > 0.6 * vmax else "white")
    if mark is not None:
        ax.add_patch(Rectangle((mark[1] - 0.5, mark[0] - 0.5), 1, 1, fill=False, edgecolor="cyan", linewidth=1.5))
    ax.set_xticks(range(n_heads), [str(h) for h in range(n_heads)], fontsize=7)
    step = max(1, -(-n_layers // 16))
    ax.set_yticks(range(0, n_layers, step), [str(layer) for layer in range(0, n_layers, step)], fontsize=7)
    ax.set_xlabel("head", fontsize=8)
    ax.set_ylabel("layer", fontsize=8)
    ax.set_title(title + ("" if chance is None else f"\n(chance {chance:.3f})"), fontsize=9)
    ax.figure.colorbar(image, ax=ax, shrink=0.8)
    return ax.figure


def plot_shares(shares: Mapping[str, object], suptitle: str | None = None) -> Figure:
    """Partner share (top row, the headline, values written in) and self share (bottom row) of several models.

    ``shares`` maps a model name to a :class:`fptlib.attention.BitShares`; each partner panel
    outlines that model's top partner-share head.
    """
    if not shares:
        raise ValueError("shares is empty: pass {model name: BitShares}")
    first = next(iter(shares.values())).partner
    w, h = 0.32 * first.shape[1] + 1.8, 0.32 * min(first.shape[0], 16) + 1.4
    fig = Figure(figsize=(len(shares) * w, 2 * h), layout="constrained")
    axes = fig.subplots(2, len(shares), squeeze=False)
    for c, (name, s) in enumerate(shares.items()):
        layer, head = s.top
        plot_share_heatmap(s.partner, s.partner_chance, ax=axes[0][c], mark=(layer, head),
                           title=f"{name}: partner share (top L{layer} H{head})")
        plot_share_heatmap(s.itself, s.self_chance, ax=axes[1][c], title=f"{name}: self share", annotate=False)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    return fig


def plot_ablation(rows: Sequence[Mapping], title: str = "Bit XOR accuracy with heads ablated") -> Figure:
    """Bars of accuracy per ablation, from :func:`fptlib.explorer.head_ablation`'s rows."""
    if not rows:
        raise ValueError("rows is empty: pass fptlib.explorer.head_ablation(...)")
    key = next(k for k in rows[0] if k.endswith("acc (%)"))
    colors = {"none": "grey", "top head": "crimson", "random head": "steelblue"}
    ax = _new_ax(None, figsize=(0.7 * len(rows) + 2.0, 3.2))
    labels = [r["heads"] if r["ablated"] != "none" else "none" for r in rows]
    values = [r[key] for r in rows]
    ax.bar(range(len(rows)), values, color=[colors.get(r["ablated"], "darkorange") for r in rows])
    for i, v in enumerate(values):
        ax.text(i, v + 1, f"{v:.0f}", ha="center", fontsize=7)
    ax.axhline(50, color="k", linestyle="--", linewidth=0.8, label="chance (50%)")
    ax.set_xticks(range(len(rows)), labels, rotation=30, ha="right", fontsize=7)
    ax.set_ylim(0, 108)
    ax.set_ylabel(key, fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    return ax.figure


def plot_vs_length(series: Mapping[str, Mapping[int, float]], title: str = "against string length") -> Figure:
    """Lines of values in [0, 1] (shares, accuracies) against bits per string, one per label.

    ``series`` maps a label to ``{n_bits: value}`` (e.g. :func:`fptlib.explorer.length_series`);
    labels containing "chance" are drawn dashed.
    """
    if not series or not any(series.values()):
        raise ValueError("series must be non-empty: {label: {n_bits: value}}")
    ax = _new_ax(None, figsize=(6.0, 3.6))
    ns_all = sorted({n for by_n in series.values() for n in by_n})
    for label, by_n in series.items():
        ns = sorted(by_n)
        ax.plot(ns, [by_n[n] for n in ns], "--" if "chance" in label else "-", marker="o", label=label)
    ax.set_xscale("log", base=2)
    ax.set_xticks(ns_all, [str(n) for n in ns_all])
    ax.minorticks_off()
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("bits per string (n)")
    ax.set_ylabel("share / accuracy")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    return ax.figure


def plot_seeds(groups: Mapping[str, Sequence[float]], *, baselines: Mapping[str, tuple[str, float]] | None = None,
               title: str = "every seed of each setting", unit: str = "test accuracy (%)") -> Figure:
    """One row per setting: each seed a dot, the mean a vertical bar with the seeds' standard
    deviation either side, and (``baselines``: label -> (name, value)) the row's best baseline as
    a grey diamond. Values in percent; a setting with no values shows "not run"."""
    labels = list(groups)
    if not labels:
        raise ValueError("plot_seeds needs at least one setting")
    fig = Figure(figsize=(7.5, 0.45 * len(labels) + 1.4))
    ax = fig.add_subplot()
    legend = True
    for y, label in enumerate(labels):
        values = [float(v) for v in groups[label]]
        if not values:
            ax.text(0.01, y, "not run", va="center", fontsize=8, color="grey", transform=ax.get_yaxis_transform())
            continue
        ax.scatter(values, [y] * len(values), s=18, color="tab:blue", alpha=0.7, zorder=3)
        mean = sum(values) / len(values)
        std = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5 if len(values) > 1 else 0.0
        ax.errorbar([mean], [y], xerr=[std], fmt="|", markersize=14, color="black", capsize=3, zorder=4)
        base = (baselines or {}).get(label)
        if base is not None:
            ax.scatter([base[1]], [y], marker="D", s=22, color="grey", zorder=2,
                       label="best baseline (trivial or fitted)" if legend else None)
            legend = False
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(unit)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))      # outside: covers no dot
    fig.tight_layout()
    return fig


def as_bertviz(attn: Tensor, example: int = 0) -> list[Tensor]:
    """One example's attentions in bertviz's layout: a per-layer list of ``[1, heads, L, L]``."""
    attn = check_attentions(attn)
    check_index("example", example, attn.shape[1])
    return [layer[example:example + 1] for layer in attn]


CDN_REQUIRE = "https://cdnjs.cloudflare.com/ajax/libs/require.js/2.3.6/require.min.js"
_CDN_SCRIPT_TAG = f'<script src="{CDN_REQUIRE}"></script>'
_REQUIRE_CONFIG = re.compile(r"require\.config\(\{\s*paths:\s*\{(?P<paths>[^}]*)\}\s*\}\);")
_PATH_ENTRY = re.compile(r"(\w+):\s*'([^']+)'")
# Runs the view once require.js is there: the page's own, else ours from the Jupyter server
# (fptlib.jupyter_static), else the CDN's. Paths try the server's copy first, then the CDN.
_LOADER = """
(function () {
  var cfg = document.getElementById('jupyter-config-data');
  var base = (cfg && JSON.parse(cfg.textContent).baseUrl) || '/';
  var local = base + '%(route)s/';
  function view() {
    require.config({paths: %(paths)s});
%(body)s
  }
  function load(src, fallback) {
    var s = document.createElement('script');
    s.src = src;
    s.onload = view;
    if (fallback) { s.onerror = function () { load(fallback, null); }; }
    document.head.appendChild(s);
  }
  if (window.requirejs && window.require && window.require.config) { view(); }
  else { load(local + '%(require)s', '%(cdn)s'); }
})();
"""


def offline_bertviz(html: str) -> str:
    """bertviz's returned HTML made to draw without internet where fptlib's server extension runs.

    The CDN ``<script>`` for require.js is replaced by a loader that takes require.js from the
    Jupyter server (``<base_url>fptlib/js/``, see :mod:`fptlib.jupyter_static`) and falls back to
    the CDN; d3 and jQuery are looked up the same way (local first, CDN second).
    """
    match = _REQUIRE_CONFIG.search(html)
    if _CDN_SCRIPT_TAG not in html or match is None:
        raise ValueError("this bertviz version writes its HTML differently than fptlib expects "
                         "(no require.js CDN tag or no require.config paths); pin bertviz or update "
                         "fptlib.viz.offline_bertviz")
    cdn = dict(_PATH_ENTRY.findall(match.group("paths")))
    local_of = {"d3": FILES["d3"], "jquery": FILES["jquery"]}
    unknown = sorted(set(cdn) - set(local_of))
    if unknown:
        raise ValueError(f"bertviz asks for libraries fptlib does not serve: {unknown}")
    paths = "{" + ", ".join(f"{name}: [local + '{local_of[name][:-3]}', '{url}']" for name, url in cdn.items()) + "}"
    head, _, rest = html.replace(_CDN_SCRIPT_TAG, "", 1).partition('<script type="text/javascript">')
    body, _, tail = rest.partition("</script>")
    body = _REQUIRE_CONFIG.sub("", body, count=1)
    loader = _LOADER % {"route": ROUTE, "paths": paths, "body": body, "require": FILES["require"],
                        "cdn": CDN_REQUIRE}
    return head + '<script type="text/javascript">' + loader + "</script>" + tail


def _rounded(per_layer: list[Tensor], decimals: int = 3) -> list[Tensor]:
    """float64 rounded copies: bertviz writes every weight into the HTML, and short numbers keep
    the committed notebook small (a float32 prints with up to 17 digits)."""
    return [layer.double().round(decimals=decimals) for layer in per_layer]


def bertviz_views(attn: Tensor, tokens: Sequence[str], example: int = 0):
    """bertviz ``head_view`` and ``model_view`` HTML for one example, bits as token labels.

    bertviz's page loads require.js, d3 and jQuery from a CDN in the browser. Here they come first
    from the Jupyter server (``fptlib.jupyter_static``, which ``tools/setup.sh`` enables with the
    libraries installed from npm), so the views draw offline in JupyterLab; elsewhere (Colab) the
    CDN still serves them. Attention weights are rounded to 3 decimals to keep outputs small.
    Returns ``(head_view_html, model_view_html)`` (``IPython.display.HTML`` objects).
    """
    from bertviz import head_view, model_view   # optional dependency: fptlib[viz]
    from IPython.display import HTML
    per_layer = _rounded(as_bertviz(attn, example))
    if len(tokens) != per_layer[0].shape[-1]:
        raise ValueError(f"tokens has {len(tokens)} labels, the attention covers {per_layer[0].shape[-1]}")
    tokens = list(tokens)
    views = (head_view(per_layer, tokens, html_action="return", prettify_tokens=False),
             model_view(per_layer, tokens, html_action="return", prettify_tokens=False))
    return tuple(HTML(offline_bertviz(view.data)) for view in views)


# ---------------------------------------------------------------------------------------------
# learning curves and image patches (the notebooks' plots; through pyplot, as they were drawn)


def _series(history: Any, key: str) -> tuple[list[float], list[float]]:
    """``(steps, values)`` of ``key`` from a run in any of the shapes the library gives:

    * a results record (a dict with ``evals``): ``key`` names an evaluation split (``"val"``,
      ``"test"``) whose accuracy is taken, or ``"loss"`` / ``"accuracy"`` of the training history;
    * a list of dicts with ``step`` (a trainer history or evals; nested ``{"accuracy": ...}``
      values are read through);
    * a dict of lists with ``step``; an object with ``.history`` (a TrainResult).
    """
    if isinstance(history, Mapping) and ("evals" in history or "history" in history) \
            and not isinstance(history.get("step"), list):
        evals = history.get("evals") or []
        if any(key in e for e in evals):
            history = evals
        else:
            history = history.get("history") or []
    elif hasattr(history, "history") and not isinstance(history, Mapping):
        evals = getattr(history, "evals", None) or []
        history = evals if any(key in e for e in evals) else history.history
    if isinstance(history, Mapping):
        steps = list(history.get("step", []))
        vals = list(history.get(key, []))
        pairs = [(s, v) for s, v in zip(steps, vals) if v is not None]
    else:
        pairs = [(h.get("step"), h.get(key)) for h in history if h.get(key) is not None]
    pairs = [(s, v["accuracy"] if isinstance(v, Mapping) else v) for s, v in pairs]
    return [float(s) for s, _ in pairs], [float(v) for _, v in pairs]


def plot_curves(histories: Mapping[str, Any], key: str = "val_acc", *, ax=None,
                title: str | None = None, ylabel: str | None = None, percent: bool | None = None,
                target: float | None = None, logx: bool = False):
    """One line per labelled history, ``key`` against step. Returns the axes.

    ``percent``: show accuracies in percent (default: when ``key`` looks like an accuracy).
    ``target``: a dashed horizontal line (e.g. the accuracy a convergence count aims at).
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    if percent is None:
        percent = "acc" in key
    drawn = 0
    for label, hist in histories.items():
        steps, vals = _series(hist, key)
        if not steps:
            continue
        if percent:
            vals = [as_percent(v) for v in vals]
        ax.plot(steps, vals, marker="o" if len(steps) < 12 else None, ms=3, label=label)
        drawn += 1
    if target is not None:
        ax.axhline(as_percent(target) if percent else target, ls="--", c="grey", lw=1)
    ax.set_xlabel("gradient step")
    ax.set_ylabel(ylabel or (key + (" (%)" if percent else "")))
    if logx:
        ax.set_xscale("log")
    if title:
        ax.set_title(title)
    if drawn:
        ax.legend(fontsize=8)
    return ax


def plot_runs(runs: Mapping[str, Mapping[str, Any]], *, split: str | None = None, target: float | None = None,
              title: str | None = None, ax=None, logx: bool = False):
    """Evaluation accuracy against step, one line per labelled run (records from ``notebook.run``)."""
    first = next(iter(runs.values()), {})
    split = split or results.eval_split(first) or "val"
    return plot_curves(dict(runs), key=split, ax=ax, title=title, target=target, logx=logx,
                       ylabel=f"{split} accuracy (%)", percent=True)


def show_patches(config_or_task, n: int = 4, split: str = "test"):
    """Draw ``n`` images of an image task the way the model sees them: cut into patch tokens
    (thin white lines between patches), with the token count and size in the title."""
    import matplotlib.pyplot as plt

    task = config_or_task
    if not hasattr(task, "eval_batches"):
        from fptlib import tasks
        task = tasks.get(config_or_task.task, **dict(config_or_task.task_options))
    batch = next(task.eval_batches(split, n, "cpu"))
    x = batch.x.float()                                       # [n, tokens, p*p*c]
    p = int(getattr(task, "patch"))
    side = int(round(x.shape[1] ** 0.5))
    channels = x.shape[2] // (p * p)
    x = x.reshape(x.shape[0], side, side, p, p, channels)     # b h w p1 p2 c (the einops layout)
    gap = 1 if p > 1 else 0
    size = side * (p + gap)
    fig, axes = plt.subplots(1, x.shape[0], figsize=(2.2 * x.shape[0], 2.6), squeeze=False)
    for ax, img, y in zip(axes[0], x, batch.y):
        canvas = torch.ones(size, size, channels)
        lo, hi = img.min(), img.max()
        img = (img - lo) / (hi - lo + 1e-8)
        for i in range(side):
            for j in range(side):
                canvas[i * (p + gap):i * (p + gap) + p, j * (p + gap):j * (p + gap) + p] = img[i, j]
        ax.imshow(canvas.squeeze(-1).numpy(), cmap="gray" if channels == 1 else None)
        ax.set_title(f"label {int(y)}", fontsize=9)
        ax.axis("off")
    fig.suptitle(f"{task.name}: {side * side} tokens of {p}x{p}x{channels} = {x.shape[3] * x.shape[4] * channels} values",
                 fontsize=10)
    return fig
