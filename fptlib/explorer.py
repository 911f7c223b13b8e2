"""Explore Bit XOR attention: language-pretrained vs random-init vs before training, side by side.

Three pieces, each usable on its own:

1. :func:`xor_models` trains (or reuses from the results store, through ``fptlib.experiments``)
   two frozen models on Bit XOR with strings of ``n`` bits, one on the language-pretrained
   backbone and one on the same architecture randomly initialised, and builds a third, the
   language-pretrained one before any training (its input and output layers fresh).
2. :func:`xor_attention` runs all of them on the *same* Bit XOR inputs and keeps every layer's
   and head's attention (:class:`XorAttention`), plus their matching-bit scores.
3. :func:`render` (a pure function: settings in, ``Figure`` out) draws the chosen layer / head /
   example for each chosen model; :func:`explorer` wires it to ipywidgets sliders. The widget
   callback is just ``render``, so the tests drive it headlessly over every setting.

The widgets need only ``ipywidgets`` and plain inline matplotlib (no ipympl): each redraw is a
PNG image in an ``Output`` area.
"""
from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
from matplotlib.figure import Figure
from torch import Tensor

from . import experiments
from .attention import (MatchingReport, chance_value, check_n_bits, extract_attentions, is_causal,
                        matching_bit_score)
from .results import accuracy, provenance
from .tasks.bits import BitXOR
from .viz import check_index, bit_labels, plot_attention

PRETRAINED, RANDOM, UNTRAINED = "language-pretrained", "random-init", "before training"
KINDS = (PRETRAINED, RANDOM, UNTRAINED)
# string lengths measured per profile: quick stays small for a 2-core CPU and CI; full reaches
# the paper's 256 (512 tokens: within GPT-2's 1024 and MiniLM's 512 learned positions)
LENGTHS = {"quick": (5, 8), "full": (5, 16, 64, 256)}
EXAMPLES = 8                    # inputs kept per string length for the pictures and the scores
LONG_EXAMPLES, LONG_FROM = 2, 64  # from n=64 on, keep 2: GPT-2 at n=256 holds 150 MB per example per model


# ----------------------------------------------------------------------------- training

def xor_configs(n_bits: int, profile: str = "quick", backbone: str | None = None, *,
                steps: int | None = None, seed: int = 0) -> dict:
    """``{kind: experiments.RunConfig}`` for the two trained models at string length ``n_bits``.

    The course's Bit XOR settings for the profile (``fptlib.experiments.config``) with only the
    string length and the initialisation changed. At the paper's length 5 these are the very runs
    notebooks 03, 08 and 10 train, so the results store hands them back instead of training again.
    """
    check_n_bits(n_bits)
    backbone = experiments.resolve_backbone(backbone)
    changes = {"steps": steps} if steps is not None else {}
    return {kind: experiments.config("bit-xor", profile, backbone, init=init, seed=seed, task_options={"n": n_bits},
                         table="attention", row=kind, column=f"n={n_bits}", **changes)
            for kind, init in ((PRETRAINED, "pretrained"), (RANDOM, "random"))}


@dataclass
class XorModels:
    """The three models of one string length, and what produced each."""
    n_bits: int
    models: dict                                    # kind -> FPT (eval mode)
    accuracy: dict = field(default_factory=dict)    # kind -> test accuracy as a fraction, or None
    produced_by: dict = field(default_factory=dict)  # kind -> one line: backbone, steps, seed, hardware


def _produced_by(record: dict) -> str:
    """The course's one-line provenance of a run, plus the string length and the hardware."""
    n = dict(record.get("run_config", {}).get("task_options") or {}).get("n", "?")
    return f"{provenance(record)}, bit-xor n={n}, {record.get('hardware', '?')}"


def xor_models(n_bits: int, profile: str = "quick", backbone: str | None = None, *, steps: int | None = None,
               seed: int = 0, directory=None, device: str = "cpu", progress: bool = True) -> XorModels:
    """Train (or reuse) the language-pretrained and random-init models; build the untrained one.

    Finished runs come back from the results store (``experiments.run`` skips them and
    ``experiments.load_model`` loads their trained weights), so re-running a notebook never trains
    twice.
    """
    configs = xor_configs(n_bits, profile, backbone, steps=steps, seed=seed)
    out = XorModels(n_bits, {})
    for kind, cfg in configs.items():
        record = experiments.run(cfg, directory=directory, progress=progress, device=device)
        model, _ = experiments.load_model(cfg, device=device, directory=directory)
        out.models[kind] = model
        out.accuracy[kind] = accuracy(record, "test")
        out.produced_by[kind] = _produced_by(record)
    model, _ = experiments.build(configs[PRETRAINED], device)   # same seed: the pretrained run's start
    out.models[UNTRAINED] = model.eval()
    out.accuracy[UNTRAINED] = None
    out.produced_by[UNTRAINED] = f"{configs[PRETRAINED].backbone} (pretrained), input/output layers untrained"
    return out


# ----------------------------------------------------------------------------- attentions

@dataclass
class XorAttention:
    """Attentions of several models on the same Bit XOR inputs of one string length."""
    n_bits: int
    x: Tensor                        # [B, 2n] the inputs (string a, then string b)
    attentions: dict                 # kind -> [layers, B, heads, 2n, 2n]
    causal: bool
    accuracy: dict = field(default_factory=dict)
    produced_by: dict = field(default_factory=dict)
    _scores: dict | None = field(default=None, init=False, repr=False, compare=False)   # scores(), once

    def tokens(self, example: int) -> list[str]:
        return bit_labels(self.x[example], self.n_bits)

    @property
    def chance(self) -> float:
        return chance_value(self.n_bits, self.causal)

    def scores(self) -> dict:
        """``{kind: [layers, heads]}`` matching-bit scores (computed on the first call, then kept)."""
        if self._scores is None:
            self._scores = {k: matching_bit_score(a, self.n_bits) for k, a in self.attentions.items()}
        return self._scores

    @property
    def shape(self) -> tuple[int, int, int]:
        """(layers, examples, heads)."""
        first = next(iter(self.attentions.values()))
        return first.shape[0], first.shape[1], first.shape[2]


def xor_inputs(n_bits: int, examples: int = EXAMPLES) -> Tensor:
    """Fixed Bit XOR inputs: the first ``examples`` of the task's test split (same for every model)."""
    task = BitXOR(n=n_bits, eval_size=max(examples, 1))
    return next(iter(task.eval_batches("test", examples, "cpu"))).x


def xor_attention(trained: XorModels, examples: int | None = None) -> XorAttention:
    """Run every model of ``trained`` on the same inputs; keep all attentions.

    ``examples`` defaults to ``EXAMPLES``, and to ``LONG_EXAMPLES`` for long strings, since all
    layers x heads x L x L weights of three models are kept in memory.
    """
    if examples is None:
        examples = EXAMPLES if trained.n_bits < LONG_FROM else LONG_EXAMPLES
    x = xor_inputs(trained.n_bits, examples)
    attentions = {kind: extract_attentions(model, x) for kind, model in trained.models.items()}
    causal = is_causal(next(iter(trained.models.values())))
    return XorAttention(trained.n_bits, x, attentions, causal, dict(trained.accuracy), dict(trained.produced_by))


# ----------------------------------------------------------------------------- drawing

def _check_lengths(data: Mapping[int, XorAttention], n_bits) -> XorAttention:
    if not data:
        raise ValueError("no attentions to show: pass {n_bits: xor_attention(...)}")
    if n_bits not in data:
        raise ValueError(f"no attentions for strings of {n_bits} bits; measured lengths: {sorted(data)}")
    return data[n_bits]


def render(data: Mapping[int, XorAttention], n_bits: int, layer: int = 0, head: int = 0, example: int = 0,
           mean_heads: bool = False, kinds: Sequence[str] = KINDS) -> Figure:
    """The explorer's picture: one heatmap per chosen model, same inputs, same colour scale.

    Red outlines mark the two tokens each output position needs, (n+i, i) and (n+i, n+i).
    """
    item = _check_lengths(data, n_bits)
    kinds = list(kinds)
    if not kinds:
        raise ValueError("choose at least one model to show, e.g. kinds=('language-pretrained',)")
    unknown = [k for k in kinds if k not in item.attentions]
    if unknown:
        raise ValueError(f"no attentions for {unknown}; available: {list(item.attentions)}")
    n_layers, n_examples, n_heads = item.shape
    check_index("layer", layer, n_layers)
    check_index("example", example, n_examples)
    if not mean_heads:
        check_index("head", head, n_heads)
    matrices = []
    for kind in kinds:
        a = item.attentions[kind]
        m = a[layer, example].mean(0) if mean_heads else a[layer, example, head]
        matrices.append(m)
    vmax = max(float(m.max()) for m in matrices)
    side = 3.2 if n_bits <= 16 else 4.2
    fig = Figure(figsize=(side * len(kinds) + 0.8, side + 0.6), layout="constrained")
    axes = fig.subplots(1, len(kinds), squeeze=False)[0]
    tokens = item.tokens(example)
    score = {k: s for k, s in item.scores().items() if k in kinds}
    for ax, kind in zip(axes, kinds):
        acc = item.accuracy.get(kind)
        where = "mean of heads" if mean_heads else f"head {head}"
        share = float(score[kind][layer].mean()) if mean_heads else float(score[kind][layer, head])
        title = (f"{kind}" + ("" if acc is None else f" (test acc {100 * acc:.0f}%)") +
                 f"\nlayer {layer}, {where}: matching share {share:.2f}")
        plot_attention(item.attentions[kind], layer, head, example, tokens=tokens, ax=ax, mean_heads=mean_heads,
                       vmax=vmax, mark_bits=n_bits, title=title, colorbar=False)
    fig.colorbar(axes[0].images[0], ax=list(axes), shrink=0.7)
    fig.suptitle(f"Bit XOR, n={n_bits}, example {example} (chance share {item.chance:.2f})", fontsize=10)
    return fig


def figure_png(fig: Figure, dpi: int = 80) -> bytes:
    """A figure as PNG bytes (what the explorer shows; also what the tests compare)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def explorer(data: Mapping[int, XorAttention], kinds: Sequence[str] | None = None):
    """An ipywidgets explorer over ``render``: layer, head, example, mean over heads, models, length.

    Returns the widget box (display it as a cell's last value). Every change redraws a PNG into
    an Output area; no interactive matplotlib backend is needed.
    """
    import ipywidgets as W
    from IPython.display import Image, display

    if not data:
        raise ValueError("no attentions to explore: pass {n_bits: xor_attention(...)}")
    n0 = min(data)
    layers, examples, heads = data[n0].shape
    kinds = tuple(kinds or data[n0].attentions)
    style = {"description_width": "initial"}
    controls = {
        "n_bits": W.Dropdown(options=sorted(data), value=n0, description="bits per string", style=style),
        "kinds": W.SelectMultiple(options=kinds, value=kinds, rows=len(kinds), description="models", style=style),
        "layer": W.IntSlider(value=0, min=0, max=layers - 1, description="layer", style=style),
        "head": W.IntSlider(value=0, min=0, max=heads - 1, description="head", style=style),
        "example": W.IntSlider(value=0, min=0, max=examples - 1, description="example", style=style),
        "mean_heads": W.Checkbox(value=False, description="mean over heads", style=style),
    }

    def draw(**settings):
        try:
            display(Image(data=figure_png(render(data, **settings)), format="png"))
        except ValueError as err:    # e.g. no model selected: say so instead of failing silently
            print(err)

    def on_length(change):
        controls["example"].max = data[change["new"]].shape[1] - 1

    def on_mean(change):
        controls["head"].disabled = change["new"]

    controls["n_bits"].observe(on_length, names="value")
    controls["mean_heads"].observe(on_mean, names="value")
    out = W.interactive_output(draw, controls)
    c = controls
    box = W.VBox([W.HBox([c["n_bits"], c["kinds"]]), W.HBox([c["layer"], c["head"]]),
                  W.HBox([c["example"], c["mean_heads"]]), out])
    box.controls, box.draw = controls, draw    # handles for tests and for scripted use
    return box


# ----------------------------------------------------------------------------- measurements

def summary_rows(data: Mapping[int, XorAttention]) -> list[dict]:
    """One row per (string length, model): best head, its share, the share over all heads, chance."""
    rows = []
    for n in sorted(data):
        item = data[n]
        for kind, score in item.scores().items():
            report = MatchingReport(n, item.causal, score, item.chance)
            layer, head, best = report.best
            acc = item.accuracy.get(kind)
            rows.append({"n": n, "model": kind, "test acc (%)": None if acc is None else 100 * acc,
                         "best head": f"L{layer} H{head}", "best share": best,
                         "mean share": float(score.mean()), "chance": item.chance,
                         "best / chance": report.best_over_chance})
    return rows


def conclusion(data: Mapping[int, XorAttention], backbone: str) -> str:
    """What the measurements show, in words, computed from ``data`` (nothing here is hard-coded)."""
    rows = summary_rows(data)
    by = {(r["n"], r["model"]): r for r in rows}
    lines = [f"Measured on backbone {backbone!r} (not GPT-2 unless it says gpt2), strings of "
             f"{', '.join(str(n) for n in sorted(data))} bits:"]
    for n in sorted(data):
        pre, rnd, unt = (by.get((n, k)) for k in KINDS)
        parts = []
        for row in (pre, rnd, unt):
            if row is not None:
                acc = "" if row["test acc (%)"] is None else f", test acc {row['test acc (%)']:.0f}%"
                parts.append(f"{row['model']}: best head {row['best head']} puts {row['best share']:.2f} "
                             f"of its attention on the two needed bits ({row['best / chance']:.1f}x chance{acc})")
        lines.append(f"- n={n} (chance {data[n].chance:.3f}): " + "; ".join(parts) + ".")
        if pre is not None and rnd is not None:
            winner = "language-pretrained" if pre["best share"] > rnd["best share"] else "random-init"
            lines.append(f"  -> the {winner} model's best head is the more focused one "
                         f"({pre['best share']:.2f} vs {rnd['best share']:.2f}).")
        if pre is not None and unt is not None:
            verb = "raised" if pre["best share"] > unt["best share"] else "did not raise"
            lines.append(f"  -> training only the input, output, layer-norm and position parameters {verb} the "
                         f"best share over the untrained model ({unt['best share']:.2f} -> {pre['best share']:.2f}).")
    return "\n".join(lines)
