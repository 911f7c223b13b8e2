"""Explore Bit XOR attention: language-pretrained vs random-init vs before training, side by side.

Three pieces, each usable on its own:

1. :func:`xor_models` trains (or reuses from the results store, through ``fptlib.experiments``)
   two frozen models on Bit XOR with strings of ``n`` bits, one on the language-pretrained
   backbone and one on the same architecture randomly initialised, and builds a third, the
   language-pretrained one before any training (its input and output layers fresh).
2. :func:`xor_attention` runs all of them on the *same* Bit XOR inputs and keeps every layer's
   and head's attention (:class:`XorAttention`), plus their partner and self shares.
3. :func:`render` (a pure function: settings in, ``Figure`` out) draws the chosen layer / head /
   example for each chosen model; :func:`explorer` wires it to ipywidgets sliders. Both open on
   :func:`default_head`, the head with the highest partner share. The widget callback is just
   ``render``, so the tests drive it headlessly over every setting.
4. :func:`head_ablation` silences the top head (and, for comparison, random heads of the same
   layer, and every head of that layer but the top one) and measures Bit XOR accuracy;
   :func:`ablation_verdict` says in words what the numbers show.

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

from . import experiments, results
from .files import short_paths
from .attention import BitShares, ablate_heads, check_n_bits, extract_attentions, is_causal, share_chance
from .results import accuracy, provenance
from .tasks.bits import BitXOR
from .train.trainer import NonFiniteLossError
from .viz import check_index, bit_labels, plot_attention

PRETRAINED, RANDOM, UNTRAINED = "language-pretrained", "random-init", "before training"
KINDS = (PRETRAINED, RANDOM, UNTRAINED)
# string lengths measured per profile (the run set ``reproduce attention`` trains): quick stays small
# for a 2-core CPU and CI; evidence goes to 32 on a CPU; full reaches the paper's 256 (512 tokens:
# within GPT-2's 1024 and MiniLM's 512 learned positions)
LENGTHS = experiments.ATTENTION_LENGTHS
RENDER_TICKS = 20               # labelled tokens per axis in the explorer (all of them up to n=10)
EXAMPLES = 8                    # inputs kept per string length for the pictures and the scores
LONG_EXAMPLES, LONG_FROM = 2, 64  # from n=64 on, keep 2: GPT-2 at n=256 holds 150 MB per example per model


# ----------------------------------------------------------------------------- training

def xor_configs(n_bits: int, profile: str = "quick", backbone: str | None = None, *,
                steps: int | None = None, seed: int = 0, layers: int | None = None) -> dict:
    """``{kind: experiments.RunConfig}`` for the two trained models at string length ``n_bits``.

    The runs of ``python -m fptlib reproduce attention`` (``experiments.attention_config``): the
    course's Bit XOR settings for the profile with the string length and the initialisation changed
    (longer strings: more steps at the evidence profile). At the paper's length 5 these are the very
    runs notebooks 03, 08 and 10 train, so the results store hands them back instead of training
    again. ``layers=k`` keeps only the backbone's first ``k`` layers (it says so in every run's
    description).
    """
    check_n_bits(n_bits)
    changes = {"steps": steps} if steps is not None else {}
    if layers is not None:
        changes["layers"] = layers
    return {kind: experiments.attention_config(n_bits, init, profile, backbone, seed=seed, row=kind, **changes)
            for kind, init in ((PRETRAINED, "pretrained"), (RANDOM, "random"))}


@dataclass
class XorModels:
    """The three models of one string length, and what produced each."""
    n_bits: int
    models: dict                                    # kind -> FPT (eval mode)
    accuracy: dict = field(default_factory=dict)    # kind -> test accuracy as a fraction, or None
    produced_by: dict = field(default_factory=dict)  # kind -> one line: backbone, steps, seed, hardware
    task: object = None                             # the Bit XOR task the runs used (for ablations)
    failed: dict = field(default_factory=dict)      # kind -> why it was not trained (e.g. NaN loss)


def _produced_by(record: dict) -> str:
    """The course's one-line provenance of a run, plus the string length and the hardware."""
    n = dict(record.get("run_config", {}).get("task_options") or {}).get("n", "?")
    return f"{provenance(record)}, bit-xor n={n}, {record.get('hardware', '?')}"


def xor_models(n_bits: int, profile: str = "quick", backbone: str | None = None, *, steps: int | None = None,
               seed: int = 0, layers: int | None = None, directory=None, device: str = "cpu", progress: bool = True,
               kinds: Sequence[str] = KINDS, train: bool = True) -> XorModels:
    """Train (or reuse) the language-pretrained and random-init models; build the untrained one.

    Finished runs come back from the results store (``experiments.run`` skips them and
    ``experiments.load_model`` loads their trained weights), so re-running a notebook never trains
    twice. ``kinds`` chooses which of the three to produce. A run whose loss turns NaN is not
    shown: it is left out of ``models`` and ``failed[kind]`` keeps the trainer's message.
    ``train=False`` only loads (e.g. the committed evidence models beside a quick run): a run the
    store lacks, or whose trained weights it lacks, is left out with ``failed[kind]`` saying how
    to produce it.
    """
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"unknown model kinds {unknown}; known: {list(KINDS)}")
    configs = xor_configs(n_bits, profile, backbone, steps=steps, seed=seed, layers=layers)
    out = XorModels(n_bits, {})
    for kind, cfg in configs.items():
        if kind not in kinds:
            continue
        store = experiments.store_dir(cfg.profile, directory)
        record = None if train else results.get(cfg.key, store)
        if not train and (record is None or not experiments.weights_path(cfg.key, store).is_file()):
            where, command = short_paths(str(results.results_dir(store))), experiments.catalogue.producing_command(cfg)
            out.failed[kind] = (f"run {cfg.key} is not in {where}: `{command}` produces it" if record is None else
                                f"the trained weights of run {cfg.key} are not in {where} (its record is): "
                                f"`{command} --retrain-weightless` trains it again, keeping them")
            continue
        try:
            record = record or experiments.run(cfg, directory=directory, progress=progress, device=device)
        except NonFiniteLossError as err:
            out.failed[kind] = str(err).split(". ")[0]
            continue
        model, _ = experiments.load_model(cfg, device=device, directory=directory)
        out.models[kind] = model
        out.accuracy[kind] = accuracy(record, "test")
        out.produced_by[kind] = _produced_by(record)
    if UNTRAINED not in kinds:
        out.task = BitXOR(**dict(configs[PRETRAINED].task_options))
        return out
    model, out.task = experiments.build(configs[PRETRAINED], device)   # same seed: the pretrained run's start
    out.models[UNTRAINED] = model.eval()
    out.accuracy[UNTRAINED] = None
    depth = "" if layers is None else f", first {layers} layers"
    out.produced_by[UNTRAINED] = f"{configs[PRETRAINED].backbone} (pretrained{depth}), input/output layers untrained"
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
    _shares: dict | None = field(default=None, init=False, repr=False, compare=False)   # shares(), once

    def tokens(self, example: int) -> list[str]:
        return bit_labels(self.x[example], self.n_bits)

    @property
    def chance(self) -> float:
        """The partner (and self) share of uniform attention over the visible tokens."""
        return share_chance(self.n_bits, self.causal)

    def shares(self) -> dict:
        """``{kind: BitShares}``: partner and self shares per layer and head (computed once, then kept)."""
        if self._shares is None:
            self._shares = {k: BitShares.of(a, self.n_bits, self.causal) for k, a in self.attentions.items()}
        return self._shares

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


def default_head(item: XorAttention, kind: str | None = None) -> tuple[int, int, str]:
    """(layer, head, why): the head with the highest partner share, of ``kind`` (default: the
    language-pretrained model, else the first one), and a sentence saying so."""
    kind = kind or (PRETRAINED if PRETRAINED in item.attentions else next(iter(item.attentions)))
    shares = item.shares()[kind]
    layer, head = shares.top
    why = (f"L{layer} H{head}: the highest partner share of the {kind} model at n={item.n_bits} "
           f"({float(shares.partner[layer, head]):.2f} of its attention from output i on bit i of the "
           f"other string; uniform attention gives {shares.partner_chance:.3f})")
    return layer, head, why


def render(data: Mapping[int, XorAttention], n_bits: int, layer: int | None = None, head: int | None = None,
           example: int = 0, mean_heads: bool = False, kinds: Sequence[str] = KINDS) -> Figure:
    """The explorer's picture: one heatmap per chosen model, same inputs, one colour scale (set by the
    output rows; brighter cells above them are clipped).

    ``layer`` and ``head`` default to :func:`default_head` (the highest partner share). Red outlines
    mark the two tokens each output position needs: the partner (n+i, i) and itself (n+i, n+i).
    """
    item = _check_lengths(data, n_bits)
    if layer is None or head is None:
        top_layer, top_head, _ = default_head(item)
        layer = top_layer if layer is None else layer
        head = top_head if head is None else head
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
    # one colour scale, set by the output rows (n..2n-1): in a causal model the first tokens can only
    # attend to themselves, and their weight 1 would wash out the rows the XOR is read from
    vmax = max(float(m[n_bits:].max()) for m in matrices)
    side = 3.9 if n_bits <= 16 else 4.2
    # a fixed layout, few tick labels and rows labelled once: measuring text for a constrained
    # layout was most of a redraw at n=32 (bench/bench_explorer.py)
    fig = Figure(figsize=(side * len(kinds) + 0.8, side + 0.6))
    fig.subplots_adjust(left=0.9 / (side * len(kinds) + 0.8), right=0.92, bottom=0.2, top=0.8, wspace=0.08)
    axes = fig.subplots(1, len(kinds), squeeze=False)[0]
    tokens = item.tokens(example)
    shares = item.shares()
    for ax, kind in zip(axes, kinds):
        acc = item.accuracy.get(kind)
        where = "mean of heads" if mean_heads else f"head {head}"
        s = shares[kind]
        pick = (lambda t: float(t[layer].mean())) if mean_heads else (lambda t: float(t[layer, head]))
        title = (f"{kind}" + ("" if acc is None else f" (test acc {100 * acc:.0f}%)") +
                 f"\nlayer {layer}, {where}: partner share {pick(s.partner):.2f} (self {pick(s.itself):.2f})")
        plot_attention(item.attentions[kind], layer, head, example, tokens=tokens, ax=ax, mean_heads=mean_heads,
                       vmax=vmax, mark_bits=n_bits, title=title, colorbar=False, max_ticks=RENDER_TICKS,
                       ylabels=ax is axes[0])
    fig.colorbar(axes[0].images[0], ax=list(axes), shrink=0.7, pad=0.02)
    mask = "causal: output i sees tokens 0..n+i" if item.causal else "bidirectional"
    fig.suptitle(f"Bit XOR, n={n_bits}, example {example}; chance share (uniform attention, {mask}): "
                 f"{item.chance:.3f}", fontsize=10)
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
    top_layer, top, why = default_head(data[n0])
    style = {"description_width": "initial"}
    controls = {
        "n_bits": W.Dropdown(options=sorted(data), value=n0, description="bits per string", style=style),
        "kinds": W.SelectMultiple(options=kinds, value=kinds, rows=len(kinds), description="models", style=style),
        "layer": W.IntSlider(value=top_layer, min=0, max=layers - 1, description="layer", style=style),
        "head": W.IntSlider(value=top, min=0, max=heads - 1, description="head", style=style),
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
    note = W.HTML(f"Opens on {why}.")
    box = W.VBox([note, W.HBox([c["n_bits"], c["kinds"]]), W.HBox([c["layer"], c["head"]]),
                  W.HBox([c["example"], c["mean_heads"]]), out])
    box.controls, box.draw, box.note = controls, draw, note    # handles for tests and for scripted use
    return box


# ----------------------------------------------------------------------------- measurements

def summary_rows(data: Mapping[int, XorAttention]) -> list[dict]:
    """One row per (string length, model): the top partner-share head, its partner and self shares,
    the best self share of any head, and the chance value both are measured against."""
    rows = []
    for n in sorted(data):
        item = data[n]
        for kind, s in item.shares().items():
            layer, head = s.top
            acc = item.accuracy.get(kind)
            partner = float(s.partner[layer, head])
            rows.append({"n": n, "model": kind, "test acc (%)": None if acc is None else 100 * acc,
                         "top head": f"L{layer} H{head}", "partner share": partner,
                         "its self share": float(s.itself[layer, head]), "max self share": float(s.itself.max()),
                         "chance": s.partner_chance, "partner / chance": partner / s.partner_chance})
    return rows


SHARE_MARGIN = 0.05    # a gap in partner share below this is no clear difference (as the ablation's 5 points)


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
                parts.append(f"{row['model']}: top head {row['top head']} puts {row['partner share']:.2f} of its "
                             f"attention on the partner bit ({row['partner / chance']:.1f}x chance; "
                             f"self {row['its self share']:.2f}{acc})")
        lines.append(f"- n={n} (chance {data[n].chance:.3f}): " + "; ".join(parts) + ".")
        if pre is not None and rnd is not None:
            gap = pre["partner share"] - rnd["partner share"]
            who = ("the language-pretrained model's top head looks more" if gap > SHARE_MARGIN else
                   "the random-init model's top head looks more" if gap < -SHARE_MARGIN else
                   f"neither top head looks clearly more (a gap within {SHARE_MARGIN:.2f})")
            lines.append(f"  -> {who} at the partner bit ({pre['partner share']:.2f} vs {rnd['partner share']:.2f}).")
        if pre is not None and unt is not None:
            gap = pre["partner share"] - unt["partner share"]
            verb = ("raised" if gap > SHARE_MARGIN else "lowered" if gap < -SHARE_MARGIN
                    else f"did not clearly change (within {SHARE_MARGIN:.2f})")
            lines.append(f"  -> training only the input, output, layer-norm and position parameters {verb} the "
                         f"top partner share over the untrained model ({unt['partner share']:.2f} -> "
                         f"{pre['partner share']:.2f}).")
    lines.append("One trained model (one seed) per length: a description of these models, not a finding "
                 "about the initialisations; the evidence runs over seeds are in the tables above.")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- ablation

ALL_BUT_TOP = "all but the top head"


@torch.no_grad()
def bit_accuracy(model, task, split: str = "test", batch_size: int = 256, limit: int | None = None) -> float:
    """Bit accuracy of ``model`` on ``task``'s split (its first ``limit`` examples when given), in
    eval mode (training flag restored)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    try:
        for batch in task.eval_batches(split, batch_size, device, limit=limit):
            k = batch.y.shape[0]
            total += float(task.accuracy(model(batch.x), batch.y)) * k
            count += k
    finally:
        model.train(was_training)
    return total / count


def head_ablation(model, task, layer: int, top: int, *, random_heads: int = 3, seed: int = 0,
                  mode: str = "zero", split: str = "test", limit: int | None = None,
                  base: float | None = None) -> list[dict]:
    """Bit XOR accuracy with heads of ``layer`` silenced (:func:`fptlib.attention.ablate_heads`).

    Rows: nothing ablated; the ``top`` head; ``random_heads`` other heads of the same layer drawn
    with ``seed``, each alone; every head of the layer except ``top``. ``mode`` is "zero" (the
    head's output is set to zero before the output projection) or "mean" (replaced by its mean).
    ``limit`` scores only the split's first ``limit`` examples (a quicker check; the whole split
    by default). ``base``: the accuracy with nothing ablated, when already measured on that split.
    """
    n_heads = model.backbone.num_heads
    others = [h for h in range(n_heads) if h != top]
    g = torch.Generator().manual_seed(seed)
    picked = sorted(others[i] for i in torch.randperm(len(others), generator=g)[:random_heads].tolist())
    runs = [("none", "-", None), ("top head", f"L{layer} H{top}", [top])]
    runs += [("random head", f"L{layer} H{h}", [h]) for h in picked]
    if others:
        runs.append((ALL_BUT_TOP, f"L{layer}: {len(others)} heads", others))
    rows = []
    for what, heads_text, heads in runs:
        if heads is None:
            acc = bit_accuracy(model, task, split, limit=limit) if base is None else base
        else:
            with ablate_heads(model, layer, heads, mode):
                acc = bit_accuracy(model, task, split, limit=limit)
        rows.append({"ablated": what, "heads": heads_text, "mode": mode if heads else "-",
                     f"{split} acc (%)": 100 * acc})
    return rows


def ablation_verdict(rows: Sequence[dict], margin: float = 5.0) -> str:
    """One sentence from :func:`head_ablation`'s rows. The top head "is needed" when ablating it
    costs more than ``margin`` points below the worst random-head ablation."""
    key = next(k for k in rows[0] if k.endswith("acc (%)"))
    acc = {}
    for r in rows:
        acc.setdefault(r["ablated"], []).append(r[key])
    base, top = acc["none"][0], acc["top head"][0]
    top_name = next(r["heads"] for r in rows if r["ablated"] == "top head")
    rnd = acc.get("random head", [])
    text = f"ablating {top_name} moves accuracy from {base:.0f}% to {top:.0f}%"
    if rnd:
        spread = f"{min(rnd):.0f}%" if f"{min(rnd):.0f}" == f"{max(rnd):.0f}" else f"{min(rnd):.0f}-{max(rnd):.0f}%"
        text += f"; ablating one random head of the same layer instead: {spread}"
    if ALL_BUT_TOP in acc:
        text += f"; keeping only {top_name} in its layer: {acc[ALL_BUT_TOP][0]:.0f}%"
    if not rnd:
        return text + "."
    if top < min(rnd) - margin:
        return text + f". The model needs {top_name} more than the random heads (a drop beyond {margin:.0f} points)."
    return text + (f". Ablating {top_name} hurts no more than a random head (within {margin:.0f} points): "
                   "this ablation does not show that the model needs it.")


def ablation_by_length(trained: Mapping[int, XorModels], data: Mapping[int, XorAttention], kind: str = PRETRAINED,
                       **kw) -> dict:
    """``{n: head_ablation rows}`` for ``kind``'s top partner-share head at every measured length."""
    out = {}
    for n in sorted(trained):
        if kind not in trained[n].models:
            continue
        layer, head, _ = default_head(data[n], kind)
        out[n] = head_ablation(trained[n].models[kind], trained[n].task, layer, head, **kw)
    return out


def length_series(data: Mapping[int, XorAttention], ablations: Mapping[int, Sequence[dict]],
                  kind: str = PRETRAINED) -> dict:
    """``{label: {n: value}}`` in [0, 1] for one plot against n: the top head's partner share, its
    chance, and the accuracy with nothing / the top head / a random head (mean) ablated."""
    out = {"partner share (top head)": {}, "chance share": {}, "accuracy": {},
           "accuracy, top head ablated": {}, "accuracy, random head ablated (mean)": {}}
    for n in sorted(data):
        if kind in data[n].attentions:
            s = data[n].shares()[kind]
            out["partner share (top head)"][n] = float(s.partner.max())
            out["chance share"][n] = s.partner_chance
        rows = ablations.get(n)
        if rows:
            key = next(k for k in rows[0] if k.endswith("acc (%)"))
            by = {}
            for r in rows:
                by.setdefault(r["ablated"], []).append(r[key] / 100)
            out["accuracy"][n] = by["none"][0]
            out["accuracy, top head ablated"][n] = by["top head"][0]
            if "random head" in by:
                out["accuracy, random head ablated (mean)"][n] = sum(by["random head"]) / len(by["random head"])
    return {k: v for k, v in out.items() if v}
