"""What every course notebook needs and nothing more: one ``setup()`` call and a few displays.

The first code cell after the install cell of every notebook is::

    from fptlib.notebook import setup
    ctx = setup()

``setup()`` chooses ONE profile (``FPT_PROFILE``; otherwise ``quick`` on a CPU and ``full`` on a
GPU), seeds Python, NumPy and PyTorch, picks the device and the default backbone (the rule lives in
``fptlib.backbones.default_backbone``), and prints what it chose and why, so a reader always knows
which model and profile produced the numbers below.

The display helpers (tables of the paper's numbers beside this run's, learning curves) live here,
d2l-style, so notebooks stay thin and the code is unit tested (``tests/test_notebook_helpers.py``).
"""
from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

PROFILES = ("quick", "full")
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

    def summary(self) -> str:
        """The lines ``setup()`` prints (stable across runs on the same kind of machine)."""
        lines = [
            f"profile    : {self.profile}",
            f"device     : {self.device}",
            f"backbone   : {self.backbone} ({self.backbone_reason})",
            f"results    : {_display_path(self.results_dir)}",
            f"seed       : {self.seed}",
        ]
        lines += [f"note       : {n}" for n in self.notes]
        return "\n".join(lines)


def _display_path(path: Path) -> str:
    """A path relative to the repository (or home) when possible, so printed output is stable."""
    path = Path(path).resolve()
    root = repo_root()
    if root is not None:
        try:
            return str(path.relative_to(root)) + "/"
        except ValueError:
            pass
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except ValueError:
        return str(path)


def repo_root() -> Path | None:
    """The repository checkout this package was imported from, or None for an installed copy."""
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").exists() and (here / "fptlib").is_dir():
        return here
    return None


def choose_profile(device: str, env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """``(profile, reason)``: ``FPT_PROFILE`` if set, else ``quick`` on CPU and ``full`` on a GPU."""
    env = os.environ if env is None else env
    asked = env.get("FPT_PROFILE", "").strip().lower()
    if asked:
        if asked not in PROFILES:
            raise ValueError(f"FPT_PROFILE={asked!r} is not a profile; use one of {', '.join(PROFILES)}")
        return asked, "set by FPT_PROFILE"
    if device.startswith("cuda"):
        return "full", "a GPU is present (set FPT_PROFILE=quick for the short runs)"
    return "quick", "no GPU (set FPT_PROFILE=full for the paper's settings)"


def choose_device(env: Mapping[str, str] | None = None) -> str:
    """``FPT_DEVICE`` if set, else the library's rule (CUDA, then MPS, then CPU)."""
    env = os.environ if env is None else env
    asked = env.get("FPT_DEVICE", "").strip()
    if asked:
        return asked
    try:
        from fptlib.env import pick_device
    except ImportError:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(pick_device("auto"))


def default_results_dir(env: Mapping[str, str] | None = None) -> Path:
    """``FPT_RESULTS_DIR`` if set, else the results store's own default, else ``<repo>/results``."""
    env = os.environ if env is None else env
    if env.get("FPT_RESULTS_DIR"):
        return Path(env["FPT_RESULTS_DIR"])
    try:  # the results store owns the default when it defines one
        from fptlib import results as _results

        for name in ("default_dir", "default_results_dir"):
            fn = getattr(_results, name, None)
            if callable(fn):
                return Path(fn())
        if getattr(_results, "RESULTS_DIR", None):
            return Path(_results.RESULTS_DIR)
    except ImportError:
        pass
    root = repo_root()
    return (root / "results") if root is not None else Path.cwd() / "results"


def seed_everything(seed: int = DEFAULT_SEED) -> None:
    """Seed Python, NumPy and PyTorch (all devices)."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def _default_backbone(device: str) -> tuple[str, str]:
    """Ask the backbone registry for its documented rule; accept a tuple or an object."""
    from fptlib.backbones import default_backbone

    try:
        choice = default_backbone(device=device)
    except TypeError:  # the rule may look at the device itself
        choice = default_backbone()
    if isinstance(choice, str):
        return choice, "the registry's default"
    if isinstance(choice, (tuple, list)):
        return str(choice[0]), str(choice[1])
    return str(choice.name), str(getattr(choice, "reason", "the registry's default"))


def setup(seed: int = DEFAULT_SEED, *, profile: str | None = None, quiet: bool = False,
          matplotlib_inline: bool = True) -> NotebookContext:
    """Pick profile, device and backbone, seed everything, print the choice, return the context."""
    import sys

    device = choose_device()
    if profile is not None:
        if profile not in PROFILES:
            raise ValueError(f"profile {profile!r} is not one of {', '.join(PROFILES)}")
        chosen, reason = profile, "passed to setup()"
    else:
        chosen, reason = choose_profile(device)
    backbone, why = _default_backbone(device)
    results_dir = default_results_dir()
    results_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(seed)
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
# tables


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None,
                   digits: int = 1) -> str:
    """A markdown table of ``rows`` (dicts); ``columns`` picks and orders the keys."""
    if not rows:
        return "(no rows)"
    if columns is None:
        columns = []
        for row in rows:
            columns += [k for k in row if k not in columns]
    head = "| " + " | ".join(columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(_fmt(row.get(c), digits) for c in columns) + " |" for row in rows]
    return "\n".join([head, rule, *body])


class Table:
    """A table that shows as markdown in Jupyter and as aligned text in ``print`` / nbval.

    Its ``text/plain`` form is the same markdown, so nbval compares something readable.
    """

    def __init__(self, rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None,
                 title: str | None = None, digits: int = 1):
        self.rows = [dict(r) for r in rows]
        self.columns = list(columns) if columns else None
        self.title = title
        self.digits = digits

    def markdown(self) -> str:
        text = markdown_table(self.rows, self.columns, self.digits)
        return f"**{self.title}**\n\n{text}" if self.title else text

    def _repr_markdown_(self) -> str:
        return self.markdown()

    def __repr__(self) -> str:
        return self.markdown()

    __str__ = __repr__


def as_percent(x: float | None) -> float | None:
    """Accuracy as a percentage (the paper's unit); fractions in [0, 1] are scaled by 100."""
    if x is None:
        return None
    x = float(x)
    return x * 100.0 if x <= 1.0 else x


def paper_vs_run(entries: Iterable[Mapping[str, Any]], *, title: str | None = None) -> Table:
    """Rows of ``{"setting", "paper", "this run", "produced by"}``: the paper's number, labelled
    as the paper's, beside this run's, labelled with what produced it.

    Each entry: ``setting`` (str), ``paper`` (percent or None), ``run`` (fraction or percent or
    None), ``produced_by`` (e.g. "minilm, pretrained, quick, 300 steps"), optional ``paper_model``
    (what the paper's number came from, default "GPT-2").
    """
    rows = []
    for e in entries:
        rows.append({
            "setting": e["setting"],
            "paper (%)": as_percent(e.get("paper")),
            "paper's model": e.get("paper_model", "GPT-2") if e.get("paper") is not None else "-",
            "this run (%)": as_percent(e.get("run")),
            "this run: produced by": e.get("produced_by", "-"),
        })
    columns = ["setting", "paper (%)", "paper's model", "this run (%)", "this run: produced by"]
    return Table(rows, columns, title=title)


# ---------------------------------------------------------------------------------------------
# learning curves


def _series(history: Any, key: str) -> tuple[list[float], list[float]]:
    """``(steps, values)`` of ``key`` from a history in any of the shapes the trainer may give:
    a list of dicts with ``step``; a dict of lists with ``step``; or an object with ``.history``.
    """
    if hasattr(history, "history") and not isinstance(history, Mapping):
        history = history.history
    if isinstance(history, Mapping) and "history" in history and not isinstance(history.get("step"), list):
        history = history["history"]
    if isinstance(history, Mapping):
        steps = list(history.get("step", []))
        vals = list(history.get(key, []))
        pairs = [(s, v) for s, v in zip(steps, vals) if v is not None]
    else:
        pairs = [(h.get("step"), h.get(key)) for h in history if h.get(key) is not None]
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
            vals = [v * 100 if v <= 1.0 else v for v in vals]
        ax.plot(steps, vals, marker="o" if len(steps) < 12 else None, ms=3, label=label)
        drawn += 1
    if target is not None:
        ax.axhline(target * 100 if percent and target <= 1 else target, ls="--", c="grey", lw=1)
    ax.set_xlabel("gradient step")
    ax.set_ylabel(ylabel or (key + (" (%)" if percent else "")))
    if logx:
        ax.set_xscale("log")
    if title:
        ax.set_title(title)
    if drawn:
        ax.legend(fontsize=8)
    return ax


def steps_to_target(history: Any, target: float, key: str = "val_acc") -> float | None:
    """The first logged step at which ``key`` reaches ``target`` (fractions), or None if never."""
    steps, vals = _series(history, key)
    for s, v in zip(steps, vals):
        if (v / 100 if v > 1 else v) >= target:
            return s
    return None
