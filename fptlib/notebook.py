"""What every course notebook needs and nothing more: one ``setup()`` call and a few displays.

The first code cell after the install cell of every notebook is::

    from fptlib.notebook import setup
    ctx = setup()

``setup()`` chooses ONE profile (``experiments.choose_profile``: ``FPT_PROFILE``; otherwise
``quick`` on a CPU and ``full`` on a GPU), seeds Python, NumPy and PyTorch, picks the device
(``env.pick_device``: ``FPT_DEVICE`` first) and the default backbone (the rule lives in
``fptlib.backbones.default_backbone``), and prints what it chose and why, so a reader always knows
which model and profile produced the numbers below. ``ctx.config(task, ...)`` is
``experiments.config`` at that profile and backbone.

The rest displays: learning curves, image patches, and which runs were loaded or trained. Tables
live in ``fptlib.report``, record queries in ``fptlib.results``, run settings in
``fptlib.experiments``.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch

from fptlib import backbones, env, experiments, files, results, tasks
from fptlib.report import as_percent

DEFAULT_SEED = 0


@dataclass
class NotebookContext:
    """What ``setup()`` chose. Notebooks read these fields instead of deciding again."""

    profile: str
    device: str
    backbone: str
    backbone_reason: str
    results_dir: Path
    seed: int = DEFAULT_SEED
    in_colab: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def quick(self) -> bool:
        return self.profile == "quick"

    def config(self, task: str, **changes) -> experiments.RunConfig:
        """``experiments.config`` for ``task`` at this profile and backbone, then ``changes``."""
        backbone = changes.pop("backbone", None) or self.backbone
        return experiments.config(task, self.profile, backbone, **changes)

    def summary(self) -> str:
        """The lines ``setup()`` prints (stable across runs on the same kind of machine)."""
        lines = [
            f"profile    : {self.profile} (quick without a GPU, full with one; FPT_PROFILE chooses)",
            f"device     : {self.device}",
            f"backbone   : {self.backbone} ({self.backbone_reason})",
            f"results    : {_display_path(self.results_dir)}",
            f"seed       : {self.seed}",
        ]
        return "\n".join(lines)


def _display_path(path: Path) -> str:
    """A path relative to the repository (or home) when possible, so printed output is stable."""
    path = Path(path).resolve()
    root = files.repo_root()
    if root is not None:
        try:
            return str(path.relative_to(root)) + "/"
        except ValueError:
            pass
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except ValueError:
        return str(path)


def setup(seed: int = DEFAULT_SEED, *, profile: str | None = None, quiet: bool = False,
          matplotlib_inline: bool = True) -> NotebookContext:
    """Pick profile, device and backbone, seed everything, print the choice, return the context."""
    device = str(env.pick_device("auto"))
    if profile is not None:
        chosen, reason = experiments.check_profile(profile), "passed to setup()"
    else:
        chosen, reason = experiments.choose_profile(device)
    backbone, why = backbones.default_backbone()
    results_dir = files.results_dir()
    results_dir.mkdir(parents=True, exist_ok=True)
    env.seed_everything(seed)
    ctx = NotebookContext(
        profile=chosen, device=device, backbone=backbone, backbone_reason=why,
        results_dir=results_dir, seed=seed, in_colab="google.colab" in sys.modules,
        notes=[f"profile {reason}"],
    )
    if matplotlib_inline:
        _quiet_matplotlib()
    if not quiet:
        print(ctx.summary())
    return ctx


def _quiet_matplotlib() -> None:
    """Same figure size and fonts everywhere, so committed plots look alike."""
    try:
        import matplotlib

        matplotlib.rcParams.update({"figure.figsize": (6.4, 3.6), "figure.dpi": 80,
                                    "axes.grid": True, "grid.alpha": 0.3})
    except ImportError:  # matplotlib is a dependency; keep setup() usable without it anyway
        pass


# ---------------------------------------------------------------------------------------------
# learning curves


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
    """Evaluation accuracy against step, one line per labelled run (records from :func:`run`)."""
    first = next(iter(runs.values()), {})
    split = split or results.eval_split(first) or "val"
    return plot_curves(dict(runs), key=split, ax=ax, title=title, target=target, logx=logx,
                       ylabel=f"{split} accuracy (%)", percent=True)


# ---------------------------------------------------------------------------------------------
# runs: train or load, and say which


def run(config, *, progress: bool = True, quiet: bool = False) -> dict:
    """``experiments.run(config)`` that says whether the run was loaded from the results store or
    trained now. Returns the results record (with ``history`` and ``evals``)."""
    done = results.get(config.key)
    if not quiet:
        what = "loaded from the results store" if done is not None else "training"
        print(f"{what}: {config.describe()}", flush=True)
    return done if done is not None else experiments.run(config, progress=progress)


def run_many(configs: Mapping[str, Any], *, progress: bool = True) -> dict[str, dict]:
    """``{label: record}`` for ``{label: RunConfig}``, training only what the store lacks."""
    return {label: run(cfg, progress=progress) for label, cfg in configs.items()}


def show_patches(config_or_task, n: int = 4, split: str = "test"):
    """Draw ``n`` images of an image task the way the model sees them: cut into patch tokens
    (thin white lines between patches), with the token count and size in the title."""
    import matplotlib.pyplot as plt

    task = config_or_task
    if not hasattr(task, "eval_batches"):
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
