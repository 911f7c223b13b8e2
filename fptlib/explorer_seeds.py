"""The explorer's measurements over seeds, judged by the course's one rule (notebook 12).

:mod:`fptlib.explorer` describes one trained model per string length. Here every seed of a length
and initialisation is measured the same way: its top partner-share head (each seed's own), that
head's partner share against chance, and Bit XOR accuracy with nothing, the top head or random
heads of its layer silenced. The seeds are then judged by :mod:`fptlib.stats`: the 95% Welch
interval of the difference of the means over seeds decides "higher", "lower" or "no clear
difference"; an accuracy is never more certain than its test set allows; fewer than
``stats.MIN_SEEDS`` seeds give no verdict. Every sentence is computed from the measurements.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from matplotlib.figure import Figure

from . import experiments, stats
from .backbones import default_backbone
from .explorer import ALL_BUT_TOP, PRETRAINED, RANDOM, bit_accuracy, head_ablation, xor_attention, xor_models
from .viz import plot_seeds

CHANCE_ACCURACY = 0.5       # Bit XOR: one bit, two classes
# the notebook scores each model (and each ablation) on the test split's first 250 examples: 24 models
# in minutes on a 2-core CPU, where the whole split took about 40 s a model at n=8 and minutes at n=32;
# the verdicts count the sampling error of 250 examples (``stats.Summary.n_test``)
TEST_EXAMPLES = 250


@dataclass(frozen=True)
class SeedMeasure:
    """One trained model (string length, initialisation, seed) measured as the explorer measures."""
    n_bits: int
    kind: str
    seed: int
    top: str                 # its top partner-share head, e.g. "L3 H5"
    partner: float           # that head's partner share (fraction of the output rows' attention)
    chance: float            # the partner share of uniform attention
    accuracy: dict           # "none" | "top head" | "random head" (mean) | ALL_BUT_TOP -> bit accuracy
    n_test: int              # test examples scored (the accuracies' sampling error)
    produced_by: str


@dataclass(frozen=True)
class SeedMeasures:
    """Every measured model of one backbone, and the runs that could not be measured (with why)."""
    backbone: str
    items: tuple[SeedMeasure, ...]
    missing: tuple[str, ...] = ()

    def of(self, n_bits: int, kind: str) -> list[SeedMeasure]:
        return sorted((m for m in self.items if m.n_bits == n_bits and m.kind == kind), key=lambda m: m.seed)

    @property
    def lengths(self) -> list[int]:
        return sorted({m.n_bits for m in self.items})


def measure(lengths: Iterable[int], profile: str, backbone: str | None = None, *, seeds: Sequence[int] | None = None,
            layers: int | None = None, steps: int | None = None, kinds: Sequence[str] = (PRETRAINED, RANDOM),
            train: bool = False,
            directory=None, device: str = "cpu", limit: int | None = None, random_heads: int = 3,
            progress: bool = False) -> SeedMeasures:
    """Measure every seed (default: the profile's, ``experiments.SEEDS``) of each length and kind.
    ``train=False`` only loads stored runs with their trained weights (those missing are listed in
    ``missing`` with the command that produces them); ``limit`` scores the accuracies on the test
    split's first ``limit`` examples only (their sampling error counts in the verdicts). A model at
    chance is not ablated: it has nothing to lose."""
    seeds = tuple(experiments.SEEDS[profile] if seeds is None else seeds)
    items, missing = [], []
    for n in lengths:
        for seed in seeds:
            trained = xor_models(n, profile, backbone, seed=seed, layers=layers, steps=steps, kinds=kinds, train=train,
                                 directory=directory, device=device, progress=progress)
            missing += [f"n={n}, {kind}, seed {seed}: {why}" for kind, why in trained.failed.items()]
            if not trained.models:
                continue
            shares = xor_attention(trained).shares()
            size = trained.task.eval_size if limit is None else min(limit, trained.task.eval_size)
            for kind, model in trained.models.items():
                layer, head = shares[kind].top
                accuracy = {"none": bit_accuracy(model, trained.task, limit=limit)}
                if _solved(stats.Summary((accuracy["none"],), n_test=size)):   # else nothing to take away
                    rows = head_ablation(model, trained.task, layer, head, random_heads=random_heads, seed=seed,
                                         limit=limit, base=accuracy["none"])
                    by: dict[str, list[float]] = {}
                    for r in rows[1:]:
                        by.setdefault(r["ablated"], []).append(r["test acc (%)"] / 100)
                    accuracy.update({k: sum(v) / len(v) for k, v in by.items()})
                items.append(SeedMeasure(n, kind, seed, f"L{layer} H{head}", float(shares[kind].partner[layer, head]),
                                         shares[kind].partner_chance, accuracy, size, trained.produced_by[kind]))
            del trained
    name = default_backbone(backbone)[0]
    return SeedMeasures(name + (f" (first {layers} layers)" if layers else ""), tuple(items), tuple(missing))


def _solved(accuracy: stats.Summary) -> bool:
    """Above chance by more than the rule's floor margin (``stats.at_or_below``)."""
    return stats.at_or_below(accuracy, (("chance", CHANCE_ACCURACY),)) is None


def _summary(values: Sequence[float], n_test: int | None = None) -> stats.Summary:
    return stats.Summary(tuple(values), n_test=n_test)


def _pm(s: stats.Summary, digits: int = 1) -> str:
    if s.n == 0:
        return "-"
    return f"{100 * s.mean:.{digits}f}" + ("" if s.n == 1 else f" ± {100 * s.std:.{digits}f}")


def table_rows(m: SeedMeasures) -> list[dict]:
    """One row per (length, model): seeds, each seed's top head, mean ± sd of its partner share
    (with chance) and of the accuracy with nothing, the top head or a random head ablated."""
    rows = []
    for n in m.lengths:
        for kind in (PRETRAINED, RANDOM):
            xs = m.of(n, kind)
            if not xs:
                continue
            acc = {k: _summary([x.accuracy[k] for x in xs if k in x.accuracy]) for k in ("none", "top head", "random head")}

            def cell(key: str) -> str:      # a seed at chance is not ablated: say how many seeds were
                s = acc[key]
                return _pm(s) + ("" if s.n in (0, len(xs)) else f" ({s.n} of {len(xs)} seeds)")
            rows.append({"n": n, "model": kind, "seeds": len(xs), "top heads": ", ".join(x.top for x in xs),
                         "partner share (%)": _pm(_summary([x.partner for x in xs])),
                         "chance (%)": f"{100 * xs[0].chance:.1f}", "test acc (%)": _pm(acc["none"]),
                         "top head ablated (%)": cell("top head"), "random head ablated (%)": cell("random head")})
    return rows


def _way(first: stats.Summary, second: stats.Summary, words: dict) -> tuple[str, str]:
    """The rule's word for ``first`` against ``second`` (``words``: higher / lower / no clear
    difference -> the sentence's word), and the interval of the difference ("" below MIN_SEEDS)."""
    kind = stats.difference(first, second)
    if kind == "too few seeds":
        return f"no verdict, fewer than {stats.MIN_SEEDS} seeds", ""
    return words[kind], f" ({stats.interval(first, second).text()})"


def verdicts(m: SeedMeasures) -> list[str]:
    """Per length, computed from the seeds: whether each initialisation solved Bit XOR (its accuracy
    against chance), whether the language-pretrained top heads put more attention on the partner bit
    than the random-init ones, and, for each model that solved the task, whether silencing its top
    head costs more accuracy than silencing a random head of the same layer."""
    lines = [f"Measured on {m.backbone} (not GPT-2 unless it says gpt2), every seed its own top head:"]
    for n in m.lengths:
        pre, rnd = m.of(n, PRETRAINED), m.of(n, RANDOM)
        parts = []
        solved = {}
        for kind, xs in ((PRETRAINED, pre), (RANDOM, rnd)):
            if not xs:
                continue
            acc = _summary([x.accuracy["none"] for x in xs], min(x.n_test for x in xs))
            solved[kind] = _solved(acc)
            state = "solved Bit XOR" if solved[kind] else "did not solve Bit XOR (at or below chance, 50%)"
            parts.append(f"{kind} {_pm(acc)}% test accuracy ({acc.n} seed{'s' * (acc.n != 1)}): {state}")
        lines.append(f"- n={n}: " + "; ".join(parts) + ".")
        if pre and rnd:
            a, b = _summary([x.partner for x in pre]), _summary([x.partner for x in rnd])
            word, iv = _way(a, b, {"higher": "more", "lower": "less", "no clear difference": "no clearly different"})
            lines.append(f"  Partner share of the top head: language-pretrained {_pm(a)}% vs random-init {_pm(b)}% "
                         f"(chance {100 * pre[0].chance:.1f}%): " +
                         (f"language-pretrained heads put {word} attention on the partner bit{iv}." if iv else f"{word}."))
        for kind, xs in ((PRETRAINED, pre), (RANDOM, rnd)):
            if not xs or not solved.get(kind) or not all("random head" in x.accuracy for x in xs):
                continue
            size = min(x.n_test for x in xs)
            top = _summary([x.accuracy["top head"] for x in xs], size)
            other = _summary([x.accuracy["random head"] for x in xs], size)
            word, iv = _way(top, other, {"lower": "costs more than", "higher": "costs less than",
                                         "no clear difference": "costs no clearly different accuracy from"})
            need = {"costs more than": "the models need their top head more than a random one",
                    "costs less than": "the top head matters less than a random one"}.get(
                word, "this ablation does not show that the models need their top head") if iv else word
            lines.append(f"  Ablation, {kind}: silencing the top head leaves {_pm(top)}%, a random head of its layer "
                         f"{_pm(other)}%: " + (f"silencing the top head {word} a random head{iv}; " if iv else "") +
                         f"{need}.")
    if m.missing:
        lines.append(f"Not measured ({len(m.missing)} runs): " + "; ".join(m.missing[:3]) +
                     (" ..." if len(m.missing) > 3 else ""))
    return lines


def plot(m: SeedMeasures, title: str | None = None) -> tuple[Figure, Figure]:
    """Every seed a dot, the mean and spread a bar: the top head's partner share (chance as the
    baseline diamond), and the accuracy with nothing, the top head or a random head ablated."""
    shares, share_base, acc, acc_base = {}, {}, {}, {}
    for n in m.lengths:
        for kind in (PRETRAINED, RANDOM):
            xs = m.of(n, kind)
            if not xs:
                continue
            label = f"n={n}, {kind}"
            shares[label] = [100 * x.partner for x in xs]
            share_base[label] = ("uniform attention", 100 * xs[0].chance)
            for what in ("none", "top head", "random head"):
                row = f"{label}: {'nothing' if what == 'none' else what} ablated"
                acc[row] = [100 * x.accuracy[what] for x in xs if what in x.accuracy]
                acc_base[row] = ("chance", 100 * CHANCE_ACCURACY)
    title = title or m.backbone
    return (plot_seeds(shares, baselines=share_base, unit="partner share of the top head (%)",
                       title=f"{title}: each seed's top head, partner share"),
            plot_seeds(acc, baselines=acc_base, unit="Bit XOR test accuracy (%)",
                       title=f"{title}: accuracy with heads ablated"))


__all__ = ["SeedMeasure", "SeedMeasures", "measure", "table_rows", "verdicts", "plot", "ALL_BUT_TOP"]
