"""What every course notebook needs and nothing more: one ``setup()`` call and a few displays.

The first code cell of every notebook installs the course on Colab (only there), then::

    from fptlib.notebook import setup
    ctx = setup(profile=None,    # None: FPT_PROFILE, else the machine's default; or "quick", "evidence", "full"
                results=None)    # None: results/ of the checkout; "drive": Google Drive (Colab); or a folder

``setup()`` chooses ONE profile (``experiments.choose_profile`` unless ``profile`` is given),
puts the results store (records, trained weights, checkpoints: everything a run writes) where
``results`` says, on Colab enables its widget manager, seeds Python, NumPy and PyTorch, picks the device
(``env.pick_device``: ``FPT_DEVICE`` first) and the default backbone (the rule lives in
``fptlib.backbones.default_backbone``), and prints what it chose and why, so a reader always knows
which model and profile produced the numbers below. ``ctx.config(task, ...)`` is
``experiments.config`` at that profile and backbone.

Before training, :func:`plan` prints what is about to run, which runs the store already holds,
and how long the rest should take on this device, from a short measured warm-up of each kind of
run (:func:`run` and :func:`run_many` call it).

The rest displays: learning curves, image patches, and which runs were loaded or trained. Tables
live in ``fptlib.report``, record queries in ``fptlib.results``, run settings in
``fptlib.experiments``.
"""
from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch

from fptlib import backbones, env, experiments, files, paper, report, results, tasks
from fptlib.experiments.cost import (  # noqa: F401  (before training: what will run and how long it takes)
    REPEAT_EVAL_S, WARMUP_LR, WARMUP_SKIP, WARMUP_STEPS, Plan, Warmup, _labelled, duration, measure, plan, run_kind,
)
from fptlib.report import as_percent

DEFAULT_SEED = 0
CHECK_ENV = "FPT_NOTEBOOK_CHECK"    # set (to 1) while a notebook runs as a test: conftest.py
DRIVE_MOUNT = Path("/content/drive")                     # where Colab mounts Google Drive
DRIVE_RESULTS = DRIVE_MOUNT / "MyDrive" / "fpt-course" / "results"


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
    profile_reason: str = ""
    results_reason: str = "the default"
    checkpoint: bool | None = None     # passed to experiments.run by run(): None = its default

    @property
    def quick(self) -> bool:
        return self.profile == "quick"

    @property
    def checking(self) -> bool:
        """True while the notebook runs as a test (``pytest --nbval``; conftest.py sets
        ``$FPT_NOTEBOOK_CHECK``). A cell whose output nbval ignores may then shrink a costly loop,
        as the TransformerLens demos do, and says so: the committed output is the full loop's."""
        return checking()

    def config(self, task: str, **changes) -> experiments.RunConfig:
        """``experiments.config`` for ``task`` at this profile and backbone, then ``changes``."""
        backbone = changes.pop("backbone", None) or self.backbone
        return experiments.config(task, self.profile, backbone, **changes)

    def summary(self) -> str:
        """The lines ``setup()`` prints (stable across runs on the same kind of machine)."""
        others = " or ".join(f'"{p}"' for p in experiments.PROFILES if p != self.profile)
        lines = [
            f"profile    : {self.profile} ({self.profile_reason or 'the default'})",
            f"             another: setup(profile={others}) in the first cell",
            f"device     : {self.device}",
            f"backbone   : {self.backbone} ({self.backbone_reason})",
            f"results    : {_display_path(self.results_dir)} ({self.results_reason})",
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


_CURRENT: NotebookContext | None = None      # the last setup(): run() reads its checkpoint choice


def in_colab() -> bool:
    return "google.colab" in sys.modules


def checking() -> bool:
    """True while a notebook runs as a test (``$FPT_NOTEBOOK_CHECK``, set by the root conftest.py)."""
    return os.environ.get(CHECK_ENV, "") not in ("", "0")


CHECK_STORE_REASON = "a temporary copy of results/notebooks/, the runs the committed outputs show (a test run)"


def _check_store(committed: Path) -> Path:
    """A temporary copy of the notebooks' committed runs (``files.notebook_runs_dir``), removed when
    the kernel exits: under nbval the notebooks load the very runs their committed outputs were made
    from, and whatever a check cell trains anew never lands in the tracked folder."""
    copy = Path(tempfile.mkdtemp(prefix="fpt-notebook-check-")) / "results"
    shutil.copytree(committed, copy, ignore=shutil.ignore_patterns("checkpoints", ".claims", ".*.lock"))
    atexit.register(shutil.rmtree, copy.parent, ignore_errors=True)
    return copy


def choose_results(results: str | os.PathLike | None = None) -> tuple[Path, str, bool]:
    """``(folder, reason, persistent)`` for ``setup(results=...)``: None is today's rule
    (``files.results_dir``: $FPT_RESULTS_DIR, else results/ of the checkout); ``"drive"`` mounts
    Google Drive (on Colab only) and uses ``MyDrive/fpt-course/results``; anything else is a folder.
    ``persistent``: the folder outlives the runtime (Drive), so long runs keep checkpoints there."""
    if results is None:
        committed = files.notebook_runs_dir()
        if os.environ.get("FPT_RESULTS_DIR"):
            return files.results_dir(), "from $FPT_RESULTS_DIR", False
        if checking() and committed is not None and committed.is_dir():
            return _check_store(committed), CHECK_STORE_REASON, False
        return files.results_dir(), "the default", False
    if str(results).lower() != "drive":
        return Path(results).expanduser().absolute(), "passed to setup()", False
    if not in_colab():
        raise RuntimeError('setup(results="drive") keeps the results on Google Drive and works on Colab only; '
                           'here pass a folder instead, e.g. setup(results="~/fpt-results"), or leave results=None')
    from google.colab import drive     # only on Colab, only when asked

    if not (DRIVE_MOUNT / "MyDrive").is_dir():
        drive.mount(str(DRIVE_MOUNT))
    return DRIVE_RESULTS, "Google Drive: kept after the runtime ends, shared by the notebooks", True


def _enable_colab_widgets() -> None:
    """Colab renders third-party widgets (tqdm bars, the explorer) only with its custom manager."""
    from google.colab import output

    output.enable_custom_widget_manager()


def setup(seed: int = DEFAULT_SEED, *, profile: str | None = None, results: str | os.PathLike | None = None,
          quiet: bool = False, matplotlib_inline: bool = True) -> NotebookContext:
    """Pick profile, device and backbone, place the results store, seed everything, print the
    choice, return the context.

    ``profile``: None follows ``experiments.choose_profile`` (``FPT_PROFILE``, else the device's
    default); a name picks that profile. ``results``: None keeps the default store; ``"drive"``
    mounts Google Drive on Colab and keeps records, trained weights and checkpoints there (a run
    interrupted by a disconnect resumes when its cell runs again); a path uses that folder. The
    choice is exported as ``$FPT_RESULTS_DIR`` so every writer (records, weights, checkpoints,
    the command line in ``!`` cells) uses the same store."""
    global _CURRENT
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= experiments.MAX_SEED:
        raise ValueError(f"setup(seed={seed!r}): give a whole number 0..{experiments.MAX_SEED}, e.g. seed=0")
    if results is not None and not (isinstance(results, (str, os.PathLike)) and str(results).strip()):
        raise ValueError(f"setup(results={results!r}): give a folder, \"drive\" (Colab), or leave it out "
                         f"for the default store")
    device = str(env.pick_device("auto"))
    if profile is not None:
        chosen, reason = experiments.check_profile(profile), "passed to setup()"
    else:
        chosen, reason = experiments.choose_profile(device)
    backbone, why = backbones.default_backbone()
    results_dir, results_reason, persistent = choose_results(results)
    files.check_output_dir(results_dir, "setup(results=...): the results folder")
    if results is not None or results_reason == CHECK_STORE_REASON:
        os.environ["FPT_RESULTS_DIR"] = str(results_dir)
    colab = in_colab()
    if colab:
        _enable_colab_widgets()
    env.seed_everything(seed)
    ctx = NotebookContext(
        profile=chosen, device=device, backbone=backbone, backbone_reason=why,
        results_dir=results_dir, seed=seed, in_colab=colab,
        notes=[f"profile {reason}"], profile_reason=reason, results_reason=results_reason,
        checkpoint=True if persistent else None,
    )
    _CURRENT = ctx
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


def _checkpoint():
    return _CURRENT.checkpoint if _CURRENT is not None else None


def run(config, *, progress: bool = True, quiet: bool = False) -> dict:
    """``experiments.run(config)`` that says whether the run was loaded from the results store or
    trained now (with :func:`plan`'s estimate first). Returns the results record (with ``history``
    and ``evals``)."""
    done = results.get(config.key, experiments.store_dir(config.profile))
    if done is not None:
        if not quiet:
            print(f"loaded from the results store: {config.describe()}", flush=True)
        return done
    if not quiet:
        plan({"training": config})
    return experiments.run(config, progress=progress, checkpoint=_checkpoint())


def run_many(configs: Mapping[str, Any], *, progress: bool = True) -> dict[str, dict]:
    """``{label: record}`` for ``{label: RunConfig}``, training only what the store lacks, after
    printing the :func:`plan` (what is stored, what will train and how long it should take). The
    runs train as ``reproduce`` trains them (``experiments.run_many``): the seeds and learning rates
    of one setting packed over one shared frozen backbone where they can be."""
    todo = plan(configs).to_train
    for label, cfg in configs.items():
        if label in todo:
            print(f"training {label}: {cfg.describe()}", flush=True)
    records = experiments.run_many(list(configs.values()), progress=progress, checkpoint=_checkpoint())
    by_key = {r["key"]: r for r in records}
    return {label: by_key[cfg.key] for label, cfg in configs.items()}


# ---------------------------------------------------------------------------------------------
# the paper's tables, from the same definitions as `python -m fptlib reproduce`


def _context(ctx: NotebookContext | None) -> NotebookContext:
    ctx = ctx or _CURRENT
    if ctx is None:
        raise RuntimeError("no notebook context: call fptlib.notebook.setup() first (the notebook's first code cell)")
    return ctx


def _subset(configs: list, name: str, rows, columns) -> tuple[set | None, set | None]:
    """``rows``/``columns`` as sets, each checked against the labels of the table's ``configs``."""
    out = []
    for given, field_name in ((rows, "row"), (columns, "column")):
        if given is None:
            out.append(None)
            continue
        given = {given} if isinstance(given, str) else set(given)
        known = {getattr(c, field_name) for c in configs}
        unknown = given - known
        if unknown:
            raise ValueError(f"table {name!r} has no {field_name} {sorted(unknown)} at this profile: "
                             f"its {field_name}s are {sorted(known)}")
        out.append(given)
    return out[0], out[1]


def table_configs(name: str, *, rows=None, columns=None, ctx: NotebookContext | None = None) -> list:
    """``experiments.table(name, ctx.profile, ctx.backbone)``: the configurations ``python -m fptlib
    reproduce NAME`` runs at this profile, or only those of the named ``rows`` / ``columns`` (the
    paper's labels; a subset of the same definitions, never new configurations)."""
    ctx = _context(ctx)
    return _subset_configs(name, ctx.profile, ctx.backbone, rows, columns)


def _subset_configs(name: str, profile: str, backbone: str, rows, columns) -> list:
    configs = experiments.table(name, profile, backbone)
    keep_rows, keep_columns = _subset(configs, name, rows, columns)
    return [c for c in configs
            if (keep_rows is None or c.row in keep_rows) and (keep_columns is None or c.column in keep_columns)]


def run_table(name: str, *, rows=None, columns=None, ctx: NotebookContext | None = None,
              progress: bool = True) -> dict[str, dict]:
    """Train (or load) the runs of a paper table at this profile (:func:`table_configs`), after
    printing the :func:`plan`. Returns ``{"row, column (lr, seed)": record}``."""
    configs = table_configs(name, rows=rows, columns=columns, ctx=ctx)
    if not configs:
        raise ValueError(f"table {name!r} has no configurations at this profile for rows={rows}, columns={columns}")
    return run_many(_labelled(configs), progress=progress)


def show_table(name: str, *, rows=None, columns=None, ctx: NotebookContext | None = None) -> report.Table:
    """``report.paper_table(name, ctx.profile)``: the same table ``reproduce`` prints, with the
    paper's numbers, what really ran and the trivial baselines. With ``rows`` / ``columns``, only
    those cells (and their tasks' baselines), and the table says which subset it shows."""
    ctx = _context(ctx)
    return _paper_table(name, ctx.profile, ctx.backbone, rows, columns)


def show_evidence(name: str, *, rows=None, columns=None, ctx: NotebookContext | None = None) -> report.Table | str:
    """The same cells at the evidence profile, from the committed records (``results/evidence/``,
    backbone ``experiments.EVIDENCE_BACKBONE``): read, never trained here. Shown beside a quick
    table, which only checks that the code runs; at the evidence profile the table above is it."""
    ctx = _context(ctx)
    if ctx.profile == files.EVIDENCE and ctx.backbone == experiments.EVIDENCE_BACKBONE:
        return "This notebook runs at the evidence profile: the table above is the evidence."
    table = _paper_table(name, files.EVIDENCE, experiments.EVIDENCE_BACKBONE, rows, columns,
                         store=files.committed_evidence_dir())
    runs = [r for r in table.rows if not str(r.get("setting", "")).startswith("trivial baseline")]
    done = sum(1 for r in runs if r.get("seeds"))
    return report.Table(table.rows, columns=table.columns, title="Committed evidence: " + table.title, notes=[
        f"Read from the committed records in results/evidence/ ({done} of {len(runs)} cells run), made by `python -m fptlib reproduce {experiments.canonical(name)} --profile evidence` on a 2-core "
        f"CPU with {experiments.EVIDENCE_BACKBONE}; nothing is trained by this cell.", *table.notes])


def _paper_table(name: str, profile: str, backbone: str, rows, columns, store=None) -> report.Table:
    configs = _subset_configs(name, profile, backbone, rows, columns)
    store = store or experiments.store_dir(profile)     # evidence: the tracked results/evidence/
    render = report.run_set_table if experiments.canonical(name) in experiments.RUN_SETS else report.paper_table
    if rows is None and columns is None:
        return render(name, profile, directory=store, backbone=backbone)
    keys = {c.key for c in configs}
    records = [r for r in results.load(store) if r.get("key") in keys]
    full = render(name, profile, records=records, backbone=backbone)
    shown = {(c.row, paper.TASK_TITLES.get(c.column, c.column)) for c in configs}
    kept = [r for r in full.rows if (r.get("setting"), r.get("column")) in shown
            or str(r.get("setting", "")).startswith("trivial baseline")]
    named = (("rows", rows), ("columns", columns))
    which = "; ".join(f"{what} {', '.join(repr(x) for x in ([v] if isinstance(v, str) else v))}"   # quoted: labels hold commas
                      for what, v in named if v is not None)
    note = (f"Shown here: only {which} of this table (profile `{profile}`), a subset of the same definitions "
            f"as `python -m fptlib reproduce {experiments.canonical(name)} --profile {profile}`, which runs every cell.")
    return report.Table(kept, columns=full.columns, title=full.title, notes=[note, *full.notes])


def baselines_table(config) -> report.Table:
    """The trivial baselines (chance, majority class of the split, the copy baseline, a pixel logistic
    regression: ``tasks.baselines``) of a run's task, for a run that is in no paper table here."""
    found = report.task_baselines(config.task, config.task_options, config.eval_limit)
    return report.Table([{"trivial baseline": name, "accuracy (%)": as_percent(acc) if acc is not None else "-",
                          "how": how} for name, acc, how in found], title=f"Trivial baselines: {config.task}")


def claims(notebook: str, *, ctx: NotebookContext | None = None) -> report.Table:
    """The rows of ``report.claims(ctx.profile)`` for the paper's claims that ``notebook`` (e.g.
    ``"08_pretraining"``) shows: the verdict computed from the stored records. At the quick profile,
    whose runs only check that the code runs, the verdicts of the committed evidence
    (:func:`evidence_claims`)."""
    ctx = _context(ctx)
    if not any(c.notebook == notebook for c in paper.CLAIMS):
        raise ValueError(f"no claim of the paper is shown in notebook {notebook!r}: "
                         f"known: {sorted({c.notebook for c in paper.CLAIMS})}")
    if ctx.profile == "quick":          # quick runs give no verdict: the committed evidence does
        return evidence_claims(notebook)
    return report.claims(ctx.profile, directory=experiments.store_dir(ctx.profile), backbone=ctx.backbone,
                         notebook=notebook)


def evidence_claims(notebook: str | None = None) -> report.Table:
    """``report.claims`` on the committed evidence (``results/evidence/``, backbone
    ``experiments.EVIDENCE_BACKBONE``): what notebook 00, the README and quick-profile notebooks show;
    ``notebook``: only the claims that notebook shows, with the notes of their settings."""
    full = report.claims(files.EVIDENCE, directory=files.committed_evidence_dir(),
                         backbone=experiments.EVIDENCE_BACKBONE, notebook=notebook)
    note = (f"Verdicts from the committed evidence records (results/evidence/, `python -m fptlib reproduce "
            f"TABLE --profile evidence`, {experiments.EVIDENCE_BACKBONE} on a 2-core CPU), read here, not trained.")
    return report.Table(full.rows, columns=full.columns, title=full.title, notes=[note, *full.notes])


def evidence_summary(notebook: str, *, ctx: NotebookContext | None = None):
    """"What the evidence shows", computed: the verdict sentence of every claim ``notebook`` shows
    (:func:`claims`: at the quick profile, the committed evidence's) and a figure of the runs
    behind them (``viz.plot_seeds``: every seed a dot, the mean and its spread, the task's best
    baseline, trivial or fitted, as the verdicts count it). Shows the sentences and returns the figure (None when the notebook judges
    no claim of ``paper.CLAIMS``)."""
    from fptlib import viz
    ctx = _context(ctx)
    mine = [c for c in paper.CLAIMS if c.notebook == notebook]
    if not mine:
        _show_markdown(f"No claim of the paper (`paper.CLAIMS`) is judged in `{notebook}`: nothing to summarise "
                       f"over seeds here (not run here).")
        return None
    shown = claims(notebook, ctx=ctx)
    lines = [f"**What the evidence shows** ({len(shown.rows)} claims, {shown.title.split('(')[-1].rstrip(')')}):", ""]
    papers, why = "the paper's numbers", "why (computed from the records)"
    lines += [f"* **{r['verdict']}**: {r['claim']}. Paper: {r[papers]}. {r[why]}" for r in shown.rows]
    _show_markdown("\n".join(lines))
    if ctx.profile == "quick":
        profile, store, bb = files.EVIDENCE, files.committed_evidence_dir(), experiments.EVIDENCE_BACKBONE
    else:
        profile, store, bb = ctx.profile, experiments.store_dir(ctx.profile), ctx.backbone
    by_key = {r["key"]: r for r in results.load(store)}
    tables: dict[str, dict] = {}
    groups: dict[str, list[float]] = {}
    floors: dict[str, tuple[str, float]] = {}
    for c in mine:
        source = c.run_set or c.table
        if source not in tables:
            try:
                tables[source] = report.cells(source, profile, by_key, bb)
            except ValueError:           # a table this profile does not define
                tables[source] = {}
        for row, column in (c.first, c.second):
            cell = tables[source].get((row, column))
            label = f"{row} · {paper.TASK_TITLES.get(column, column)}" + (
                f" (ran {cell.task})" if cell is not None and cell.stand_in else "") + (
                " · lr chosen on val" if c.run_set else "")
            if label in groups:
                continue
            groups[label] = [100 * v for v in cell.summary.values] if cell is not None and cell.summary else []
            if cell is not None and cell.records:
                cfg = cell.configs[0]
                found = [(n, 100 * a) for n, a, _ in report.task_baselines(cfg.task, cfg.task_options, cfg.eval_limit)
                         if a is not None]
                if found:
                    floors[label] = max(found, key=lambda f: f[1])
    return viz.plot_seeds(groups, baselines=floors, title=f"{notebook}: each seed of the compared settings\n"
                          f"(profile {profile}, backbone {bb})")


def _show_markdown(text: str) -> None:
    try:
        from IPython.display import Markdown, display
        display(Markdown(text))
    except ImportError:          # outside Jupyter
        print(text)


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
