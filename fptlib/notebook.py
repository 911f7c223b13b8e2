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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from fptlib import env, files

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
    from fptlib.env import pick_device

    return str(pick_device("auto"))


def _default_backbone(device: str) -> tuple[str, str]:
    """Ask the backbone registry for its documented rule; accept a tuple or an object."""
    from fptlib.backbones import default_backbone

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


def eval_split(record: Mapping[str, Any], prefer: Sequence[str] = ("val", "test")) -> str | None:
    """The evaluation split a record's curve is drawn from: ``val`` when evaluated, else ``test``,
    else the first split it has."""
    splits = list((record.get("final") or {}).keys())
    for s in prefer:
        if s in splits:
            return s
    return splits[0] if splits else None


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


def steps_to_target(history: Any, target: float, key: str = "val_acc") -> float | None:
    """The first logged step at which ``key`` reaches ``target`` (fractions), or None if never."""
    steps, vals = _series(history, key)
    for s, v in zip(steps, vals):
        if (v / 100 if v > 1 else v) >= target:
            return s
    return None


# ---------------------------------------------------------------------------------------------
# runs: train or load, and say what produced each number


def run(config, *, progress: bool = True, quiet: bool = False) -> dict:
    """``experiments.run(config)`` that says whether the run was loaded from the results store or
    trained now. Returns the results record (with ``history`` and ``evals``)."""
    from fptlib import experiments, results

    done = results.get(config.key)
    if not quiet:
        what = "loaded from the results store" if done is not None else "training"
        print(f"{what}: {config.describe()}", flush=True)
    return done if done is not None else experiments.run(config, progress=progress)


def run_many(configs: Mapping[str, Any], *, progress: bool = True) -> dict[str, dict]:
    """``{label: record}`` for ``{label: RunConfig}``, training only what the store lacks."""
    return {label: run(cfg, progress=progress) for label, cfg in configs.items()}


def produced_by(record: Mapping[str, Any], *, data: bool = False) -> str:
    """What produced a record's numbers, e.g. ``minilm (pretrained), fpt, 300 steps, seed 0``."""
    bb = record.get("backbone") or {}
    cfg = record.get("run_config") or {}
    layers = cfg.get("layers")
    depth = f", {layers} layer{'s' if layers != 1 else ''}" if layers else ""
    parts = [f"{bb.get('name', '?')} ({bb.get('init', '?')}{depth})",
             f"freeze {record.get('freeze', '?')}"]
    hp = record.get("hyperparameters") or {}
    if hp.get("lr") is not None:
        parts.append(f"lr {hp['lr']:g}")
    parts.append(f"{record.get('steps', '?')} steps")
    parts.append(f"seed {record.get('seed', '?')}")
    if data:
        parts.append(str(record.get("data_source", "?")))
    return ", ".join(parts)


def accuracy(record: Mapping[str, Any], split: str | None = None, which: str = "final") -> float | None:
    """A record's accuracy as a fraction: ``which`` is ``final`` or ``best``; ``split`` defaults to
    ``test`` when the run was evaluated on it (the paper reports test accuracy), else the last."""
    values = record.get(which) or {}
    if not values:
        return None
    if split is None:
        split = "test" if "test" in values else list(values)[-1]
    entry = values.get(split)
    return None if entry is None else entry.get("accuracy")


def reached(record: Mapping[str, Any], target: float, split: str | None = None) -> int | None:
    """Steps until the evaluation accuracy on ``split`` (default: :func:`eval_split`) first reached
    ``target`` (a fraction); None when it never did within the run."""
    from fptlib import results

    return results.steps_to(record, target, split or eval_split(record) or "val")


def describe_setting(config, task=None) -> str:
    """Lines saying exactly what a configuration trains: task and its data, backbone and its
    initialisation, what is frozen, the training budget, and how it differs from the paper."""
    from fptlib import tasks as _tasks

    task = task if task is not None else _tasks.get(config.task, **dict(config.task_options))
    options = ", ".join(f"{k}={v}" for k, v in config.task_options) or "the paper's sizes"
    lines = [
        f"task        : {config.task} ({options})",
        f"data        : {getattr(task, 'data_source', '?')}",
        (f"tokens      : {getattr(task, 'max_len', '?')} tokens of dim {task.token_dim}"
         if getattr(task, "token_dim", None) else
         f"tokens      : up to {getattr(task, 'max_len', '?')} tokens (padded per batch), "
         f"vocabulary {getattr(task, 'vocab_size', '?')}"),
        f"backbone    : {config.backbone} ({config.init}"
        + (f", first {config.layers} layers" if config.layers else "") + ")",
        f"trained     : {config.freeze} (the paper's FPT preset is 'fpt')",
        f"training    : {config.steps} steps, batch {config.batch_size}, lr {config.lr:g}, seed {config.seed}, "
        f"evaluation every {config.eval_every} steps",
    ]
    if config.backbone not in ("lstm",) and not config.backbone.startswith("gpt2"):
        lines.append(f"note        : the paper used GPT-2; this run uses {config.backbone} instead")
    if config.profile == "quick":
        lines.append("note        : quick profile: toy scale for a CPU, not the paper's settings")
    return "\n".join(lines)


def results_table(runs: Mapping[str, Mapping[str, Any]], paper: Mapping[str, Any] | None = None, *,
                  target: float | None = None, title: str | None = None, split: str | None = None) -> Table:
    """One row per labelled run: the paper's number for that setting (labelled as the paper's),
    this run's final and best accuracy, optionally the steps to ``target``, and what produced it.

    ``paper``: ``{label: value}`` or ``{label: (value, "the paper's model or setting")}``; missing labels show '-'.
    """
    paper = paper or {}
    rows = []
    for label, rec in runs.items():
        p = paper.get(label)
        p_val, p_model = (p if isinstance(p, tuple) else (p, "GPT-2"))
        row = {"setting": label, "paper (%)": as_percent(p_val),
               "paper's setting": p_model if p_val is not None else "-",
               "this run, final (%)": as_percent(accuracy(rec, split)),
               "this run, best (%)": as_percent(accuracy(rec, split, "best"))}
        if target is not None:
            s = reached(rec, target, split)
            row[f"steps to {target * 100:g}%"] = int(s) if s is not None else f"> {rec.get('steps')}"
        row["this run: produced by"] = produced_by(rec)
        rows.append(row)
    return Table(rows, title=title)


def plot_runs(runs: Mapping[str, Mapping[str, Any]], *, split: str | None = None, target: float | None = None,
              title: str | None = None, ax=None, logx: bool = False):
    """Evaluation accuracy against step, one line per labelled run (records from :func:`run`)."""
    first = next(iter(runs.values()), {})
    split = split or eval_split(first) or "val"
    return plot_curves(dict(runs), key=split, ax=ax, title=title, target=target, logx=logx,
                       ylabel=f"{split} accuracy (%)", percent=True)


# ---------------------------------------------------------------------------------------------
# the course's configurations: the experiments' profile settings plus the notebooks' quick sizes

# Extra shrinking for the quick profile, on top of fptlib.experiments' quick settings, so that the
# whole series runs in under 25 minutes on a 2-core CPU. Only applied when the profile is quick;
# the full profile uses the experiments' (the paper's) settings unchanged.
QUICK_OVERRIDES: dict[str, dict[str, Any]] = {
    # finer evaluation: "steps to a target" (notebook 08) needs more than three points
    "bit-xor": dict(eval_every=25),
    # 32x32 in 8x8 patches: 16 tokens of 64 values (the paper: 4x4 patches, 64 tokens)
    "mnist": dict(task_options=dict(patch_size=8)),
    "fashion-mnist": dict(task_options=dict(patch_size=7), eval_limit=512),
    "cifar10": dict(task_options=dict(patch_size=8)),
    # one pixel per token, as in C10 LRA; offline: 8x8 digits, so 64 tokens of dimension 1
    "digits": dict(task_options=dict(patch_size=1), steps=200, batch_size=8, eval_every=50),
}
# tasks the experiments have no settings for: borrow those of a paper task
SETTINGS_OF = {"fashion-mnist": "mnist", "mnist-5k": "mnist", "digits": "cifar10-lra"}


def config(ctx: NotebookContext | str, task: str, **changes):
    """The ``RunConfig`` a notebook trains: ``experiments.base_config`` for the profile, the quick
    overrides above when the profile is quick, then ``changes``. ``task_options`` may be a dict."""
    import dataclasses

    from fptlib import experiments

    profile = ctx if isinstance(ctx, str) else ctx.profile
    backbone = changes.pop("backbone", None) or (experiments.resolve_backbone(None) if isinstance(ctx, str)
                                                 else ctx.backbone)
    base = experiments.base_config(SETTINGS_OF.get(task, task), profile, backbone)
    if base.task != task:  # borrowed settings, or the experiments' own offline stand-in task
        base = dataclasses.replace(base, task=task, task_options=())
    merged: dict[str, Any] = {}
    if profile == "quick":
        merged.update(QUICK_OVERRIDES.get(task, {}))
    extra_opts = dict(merged.pop("task_options", {}))
    extra_opts.update(dict(changes.pop("task_options", {}) or {}))
    merged.update(changes)
    if extra_opts:
        options = dict(base.task_options)
        options.update(extra_opts)
        merged["task_options"] = tuple(sorted(options.items()))
    return dataclasses.replace(base, **merged)


def task_available(name: str) -> tuple[bool, str]:
    """``(ready, how)`` for a task's data on this machine now (``fptlib.tasks.available``)."""
    from fptlib import tasks as _tasks

    info = _tasks.available().get(name, {})
    return bool(info.get("ready")), short_paths(info.get("source") if info.get("ready") else info.get("how", ""))


def short_paths(text: str) -> str:
    """Replace machine-specific folders (site-packages, the checkout) by short names, so that
    printed output is the same on every machine set up the same way."""
    import site
    import sysconfig

    text = str(text)
    prefixes = [(sysconfig.get_paths().get("purelib", ""), "<site-packages>")]
    prefixes += [(p, "<site-packages>") for p in getattr(site, "getsitepackages", lambda: [])()]
    root = files.repo_root()
    if root is not None:
        prefixes.append((str(root), "<repo>"))
    for prefix, name in prefixes:
        if prefix and prefix in text:
            text = text.replace(prefix, name)
    return text


def train_accuracy(record: Mapping[str, Any]) -> float | None:
    """The last logged training accuracy of a run (averaged over its last logging interval)."""
    hist = record.get("history") or []
    return hist[-1].get("accuracy") if hist else None


def show_patches(config_or_task, n: int = 4, split: str = "test"):
    """Draw ``n`` images of an image task the way the model sees them: cut into patch tokens
    (thin white lines between patches), with the token count and size in the title."""
    import matplotlib.pyplot as plt
    import torch

    task = config_or_task
    if not hasattr(task, "eval_batches"):
        from fptlib import tasks as _tasks

        task = _tasks.get(config_or_task.task, **dict(config_or_task.task_options))
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


# ---------------------------------------------------------------------------------------------
# what this machine has: backbones and data (notebook 00)


def backbone_table() -> Table:
    """Every known backbone: family, what it is, and whether its pretrained weights load here now."""
    from fptlib.backbones import KNOWN, hub_reachable, pretrained_available

    online = hub_reachable()
    rows = []
    for known in KNOWN.values():
        ok, how = pretrained_available(known.name, check_hub=online)
        rows.append({"backbone": known.name, "family": known.family, "what it is": known.description,
                     "pretrained weights here": "yes" if ok else "no",
                     "how / why not": short_paths(how)})
    return Table(rows, title=f"Backbones (Hugging Face hub reachable: {'yes' if online else 'no'})")


def task_table() -> Table:
    """The paper's seven tasks and the offline image sets: ready or not, and from which source."""
    from fptlib import tasks as _tasks

    rows = []
    for name, info in _tasks.available().items():
        rows.append({"task": name, "ready here": "yes" if info["ready"] else "no",
                     "data it would use now": short_paths(info["source"]),
                     "how to get it": short_paths(info["how"]) or "-"})
    return Table(rows, title="Tasks and their data on this machine")
