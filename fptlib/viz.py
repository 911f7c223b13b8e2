"""Pictures of attention: heatmaps per head, grids over layers and heads, matching-bit scores.

Every function here is pure: it takes tensors, builds a new ``matplotlib.figure.Figure`` (not
through pyplot, so nothing accumulates in global state and a notebook shows each figure exactly
once, as the cell's value) and returns it. The explorer widgets and the tests call the same
functions.

Convention: rows are the attending token ("from"), columns the attended token ("to"). For Bit XOR
the two bands the paper shows are the cells (n+i, i) and (n+i, n+i): ``mark_bits=n`` outlines them.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from torch import Tensor

from .attention import check_attentions
from .jupyter_static import FILES, ROUTE

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


def _set_token_ticks(ax: Axes, tokens: Sequence[str] | None, L: int, x=True, y=True) -> None:
    if tokens is not None and len(tokens) != L:
        raise ValueError(f"tokens has {len(tokens)} labels but the attention covers {L} tokens; "
                         "pass one label per token (e.g. bit_labels(x[example]))")
    step = max(1, -(-L // MAX_TICKS))
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
    """Outline the cells an XOR head should light up: (n+i, i) and (n+i, n+i)."""
    if 2 * n_bits != L:
        raise ValueError(f"mark_bits={n_bits} needs {2 * n_bits} tokens, the attention covers {L}")
    for i in range(n_bits):
        for col in (i, n_bits + i):
            ax.add_patch(Rectangle((col - 0.5, n_bits + i - 0.5), 1, 1, fill=False,
                                   edgecolor="red", linewidth=0.8 if L <= 32 else 0.3))


def plot_attention(attn: Tensor, layer: int, head: int, example: int, tokens: Sequence[str] | None = None,
                   ax: Axes | None = None, mean_heads: bool = False, *, vmax: float | None = None,
                   mark_bits: int | None = None, title: str | None = None, colorbar: bool = True) -> Figure:
    """Heatmap of one head's attention (or the mean over heads) for one example.

    ``attn`` is ``[layers, batch, heads, L, L]`` from :func:`fptlib.attention.extract_attentions`.
    ``tokens`` label both axes (bits, e.g. from :func:`bit_labels`); ``vmax`` fixes the colour scale
    (for side-by-side comparisons); ``mark_bits=n`` outlines the two cells per output position that
    Bit XOR needs. Draws into ``ax`` when given, and returns its figure.
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
    _set_token_ticks(ax, tokens, L)
    if mark_bits is not None:
        _mark_matching(ax, mark_bits, L)
    ax.set_xlabel("attended token (to)", fontsize=8)
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


def plot_matching_scores(score: Tensor, chance: float | None = None, ax: Axes | None = None,
                         title: str = "matching-bit attention", vmax: float = 1.0) -> Figure:
    """Heatmap of the matching-bit score per layer (rows) x head (columns), values written in."""
    if not isinstance(score, Tensor) or score.dim() != 2:
        raise ValueError("score must be a [layers, heads] tensor from fptlib.attention.matching_bit_score, "
                         f"got {getattr(score, 'shape', type(score).__name__)}")
    n_layers, n_heads = score.shape
    ax = _new_ax(ax, figsize=(0.32 * n_heads + 1.8, 0.32 * n_layers + 1.2))
    ax.grid(False)
    image = ax.imshow(score.numpy(), cmap="magma", vmin=0.0, vmax=vmax, aspect="auto")
    for layer in range(n_layers):
        for head in range(n_heads):
            v = float(score[layer, head])
            ax.text(head, layer, f"{v:.2f}"[1:] if 0 <= v < 1 else f"{v:.1f}", ha="center", va="center",
                    fontsize=6, color="black" if v > 0.6 * vmax else "white")
    ax.set_xticks(range(n_heads), [str(h) for h in range(n_heads)], fontsize=7)
    ax.set_yticks(range(n_layers), [str(layer) for layer in range(n_layers)], fontsize=7)
    ax.set_xlabel("head", fontsize=8)
    ax.set_ylabel("layer", fontsize=8)
    ax.set_title(title + ("" if chance is None else f"\n(chance {chance:.3f})"), fontsize=9)
    ax.figure.colorbar(image, ax=ax, shrink=0.8)
    return ax.figure


def plot_matching_comparison(scores: Mapping[str, Tensor], chance: float | None = None,
                             suptitle: str | None = None) -> Figure:
    """Matching-bit heatmaps of several models (e.g. language-pretrained vs random-init) side by side."""
    if not scores:
        raise ValueError("scores is empty: pass {model name: [layers, heads] score}")
    first = next(iter(scores.values()))
    fig = Figure(figsize=(len(scores) * (0.32 * first.shape[1] + 1.8), 0.32 * first.shape[0] + 1.6),
                 layout="constrained")
    axes = fig.subplots(1, len(scores), squeeze=False)[0]
    for ax, (name, score) in zip(axes, scores.items()):
        plot_matching_scores(score, chance, ax=ax, title=name)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    return fig


def plot_matching_vs_length(best: Mapping[str, Mapping[int, float]], chance: Mapping[int, float],
                            title: str = "best head's matching-bit share vs string length") -> Figure:
    """Lines of the best head's score per model against string length, with chance as a dashed line.

    ``best`` maps a model name to ``{n_bits: score}``; ``chance`` maps ``n_bits`` to the chance value.
    """
    if not best or not chance:
        raise ValueError("best and chance must be non-empty: {model: {n_bits: score}}, {n_bits: chance}")
    ax = _new_ax(None, figsize=(5.5, 3.6))
    for name, by_n in best.items():
        ns = sorted(by_n)
        ax.plot(ns, [by_n[n] for n in ns], marker="o", label=name)
    ns = sorted(chance)
    ax.plot(ns, [chance[n] for n in ns], "k--", label="chance (uniform attention)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(ns, [str(n) for n in ns])
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("bits per string (n)")
    ax.set_ylabel("share of attention on the 2 needed bits")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return ax.figure


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
