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

Before training, ``plan`` (``experiments.cost``, the one cost model) prints what is about to run,
which runs the store already holds, and how long the rest should take on this device, from a short
measured warm-up of each kind of run (:func:`run_or_load` and :func:`run_labelled` call it). The
helpers take ``ctx=``; without it they use ``NotebookContext.current``, the last ``setup()``'s.

Tables live in ``fptlib.report``, plots (learning curves, image patches) in ``fptlib.viz``, record
queries in ``fptlib.results``, run settings in ``fptlib.experiments``; the names the notebooks
import from here (``plot_runs``, ``show_patches``, ``baselines_table``, ``run``, ``claims``, ...)
are kept.
"""
from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Mapping

from fptlib import backbones, env, experiments, files, paper, report, results
from fptlib.experiments.cost import (  # noqa: F401  (before training: what will run and how long it takes)
    REPEAT_EVAL_S, WARMUP_LR, WARMUP_SKIP, WARMUP_STEPS, Plan, Warmup, labelled, duration, measure, plan, run_kind,
)
from fptlib.report import baselines_table, evidence_claims  # noqa: F401  (notebook.X, as the notebooks call them)
from fptlib.report import subset_configs as _subset_configs  # noqa: F401  (tests call notebook._subset_configs)
from fptlib.viz import _series, plot_curves, plot_runs, show_patches  # noqa: F401  (the notebooks' plots)

DEFAULT_SEED = 0
CHECK_ENV = "FPT_NOTEBOOK_CHECK"    # set (to 1) while a notebook runs as a test: conftest.py
DRIVE_MOUNT = Path("/content/drive")                     # where Colab mounts Google Drive
DRIVE_RESULTS = DRIVE_MOUNT / "MyDrive" / "fpt-course" / "results"


@dataclass
class NotebookContext:
    """What ``setup()`` chose. Notebooks read these fields instead of deciding again.
    ``NotebookContext.current`` is the last ``setup()``'s: the helpers below (``run``, ``run_table``,
    ``show_table``, ``claims``, ...) use it when no ``ctx=`` is passed."""

    current: ClassVar[NotebookContext | None] = None

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
            f"results    : {files.display_path(self.results_dir)} ({self.results_reason})",
            f"seed       : {self.seed}",
        ]
        return "\n".join(lines)


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
    NotebookContext.current = ctx
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
# runs: train or load, and say which


def _checkpoint(ctx: NotebookContext | None):
    ctx = ctx or NotebookContext.current
    return ctx.checkpoint if ctx is not None else None


def run_or_load(config, *, progress: bool = True, quiet: bool = False, ctx: NotebookContext | None = None) -> dict:
    """``experiments.run(config)`` that says whether the run was loaded from the results store or
    trained now (with :func:`plan`'s estimate first; a ``bit-memory`` init's pretraining first).
    Returns the results record (with ``history`` and ``evals``)."""
    done = results.get(config.key, experiments.store_dir(config.profile))
    if done is not None:
        if not quiet:
            print(f"loaded from the results store: {config.describe()}", flush=True)
        return done
    if not quiet:
        plan({"training": config})
    return experiments.run(config, progress=progress, checkpoint=_checkpoint(ctx))


def run_labelled(configs: Mapping[str, Any], *, progress: bool = True,
                 ctx: NotebookContext | None = None) -> dict[str, dict]:
    """``{label: record}`` for ``{label: RunConfig}``, training only what the store lacks, after
    printing the :func:`plan` (what is stored, what will train and how long it should take). The
    runs train as ``reproduce`` trains them (``experiments.run_many``): the seeds and learning rates
    of one setting packed over one shared frozen backbone where they can be."""
    todo = plan(configs).to_train
    for label, cfg in configs.items():
        if label in todo:
            print(f"training {label}: {cfg.describe()}", flush=True)
    records = experiments.run_many(list(configs.values()), progress=progress, checkpoint=_checkpoint(ctx))
    by_key = {r["key"]: r for r in records}
    return {label: by_key[cfg.key] for label, cfg in configs.items()}


run, run_many = run_or_load, run_labelled      # the names the notebooks call


# ---------------------------------------------------------------------------------------------
# the paper's tables, from the same definitions as `python -m fptlib reproduce`


def _context(ctx: NotebookContext | None) -> NotebookContext:
    ctx = ctx or NotebookContext.current
    if ctx is None:
        raise RuntimeError("no notebook context: call fptlib.notebook.setup() first (the notebook's first code cell)")
    return ctx


def table_configs(name: str, *, rows=None, columns=None, ctx: NotebookContext | None = None) -> list:
    """``experiments.table(name, ctx.profile, ctx.backbone)``: the configurations ``python -m fptlib
    reproduce NAME`` runs at this profile, or only those of the named ``rows`` / ``columns`` (the
    paper's labels; a subset of the same definitions, never new configurations)."""
    ctx = _context(ctx)
    return report.subset_configs(name, ctx.profile, ctx.backbone, rows, columns)


def run_table(name: str, *, rows=None, columns=None, ctx: NotebookContext | None = None,
              progress: bool = True) -> dict[str, dict]:
    """Train (or load) the runs of a paper table at this profile (:func:`table_configs`), after
    printing the :func:`plan`. Returns ``{"row, column (lr, seed)": record}``."""
    configs = table_configs(name, rows=rows, columns=columns, ctx=ctx)
    if not configs:
        raise ValueError(f"table {name!r} has no configurations at this profile for rows={rows}, columns={columns}")
    return run_labelled(labelled(configs), progress=progress, ctx=ctx)


def show_table(name: str, *, rows=None, columns=None, ctx: NotebookContext | None = None) -> report.Table:
    """``report.paper_table(name, ctx.profile)``: the same table ``reproduce`` prints, with the
    paper's numbers, what really ran and the trivial baselines. With ``rows`` / ``columns``, only
    those cells (and their tasks' baselines), and the table says which subset it shows."""
    ctx = _context(ctx)
    return report.table_subset(name, ctx.profile, ctx.backbone, rows, columns)


def show_evidence(name: str, *, rows=None, columns=None, ctx: NotebookContext | None = None) -> report.Table | str:
    """The same cells at the evidence profile, from the committed records (``results/evidence/``,
    backbone ``experiments.EVIDENCE_BACKBONE``): read, never trained here. Shown beside a quick
    table, which only checks that the code runs; at the evidence profile the table above is it."""
    ctx = _context(ctx)
    if ctx.profile == files.EVIDENCE and ctx.backbone == experiments.EVIDENCE_BACKBONE:
        return "This notebook runs at the evidence profile: the table above is the evidence."
    return report.evidence_table(name, rows, columns)


def notebook_claims(notebook: str, *, ctx: NotebookContext | None = None) -> report.Table:
    """The rows of ``report.claims(ctx.profile)`` for the paper's claims that ``notebook`` (e.g.
    ``"08_pretraining"``) shows: the verdict computed from the stored records. At the quick profile,
    whose runs only check that the code runs, the verdicts of the committed evidence
    (``report.evidence_claims``)."""
    ctx = _context(ctx)
    if not any(c.notebook == notebook for c in paper.CLAIMS):
        raise ValueError(f"no claim of the paper is shown in notebook {notebook!r}: "
                         f"known: {sorted({c.notebook for c in paper.CLAIMS})}")
    if ctx.profile == "quick":          # quick runs give no verdict: the committed evidence does
        return report.evidence_claims(notebook)
    return report.claims(ctx.profile, directory=experiments.store_dir(ctx.profile), backbone=ctx.backbone,
                         notebook=notebook)


claims = notebook_claims       # the name the notebooks call; ``report.claims`` is every claim's table


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
    shown = notebook_claims(notebook, ctx=ctx)
    lines = [f"**What the evidence shows** ({len(shown.rows)} claims, {shown.title.split('(')[-1].rstrip(')')}):", ""]
    papers, why = "the paper's numbers", "why (computed from the records)"
    lines += [f"* **{r['verdict']}**: {r['claim']}. Paper: {r[papers]}. {r[why]}" for r in shown.rows]
    _show_markdown("\n".join(lines))
    if ctx.profile == "quick":
        profile, store, bb = files.EVIDENCE, files.committed_evidence_dir(), experiments.EVIDENCE_BACKBONE
    else:
        profile, store, bb = ctx.profile, experiments.store_dir(ctx.profile), ctx.backbone
    groups, floors = report.claim_seeds(mine, profile, store, bb)
    return viz.plot_seeds(groups, baselines=floors, title=f"{notebook}: each seed of the compared settings\n"
                          f"(profile {profile}, backbone {bb})")


def _show_markdown(text: str) -> None:
    try:
        from IPython.display import Markdown, display
        display(Markdown(text))
    except ImportError:          # outside Jupyter
        print(text)
