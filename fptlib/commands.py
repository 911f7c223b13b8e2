"""``python -m fptlib demo | train | reproduce | sweep | results``.

- ``demo``: the README's main job. FPT on Bit XOR with the default backbone, a progress bar,
  the final accuracy, and the first layers' attention saved as a picture.
- ``train``: one run from the command line; ``--json`` prints its results record.
- ``reproduce TABLE --profile quick|evidence|full``: every run of a paper table, skipping finished ones
  (evidence: into the tracked ``results/evidence/`` with its manifest).
- ``sweep``: a learning-rate sweep with validation-based selection over seeds.
- ``results [TABLE]``: the stored records as markdown, beside the paper's numbers; ``results --claims``:
  the paper's claims with verdicts computed from the records.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from fptlib import env, experiments, files, paper, report, results, sweeps, tasks
from fptlib.backbones.registry import default_backbone
from fptlib.cli import positive_int
from fptlib.experiments import PROFILES
from fptlib.files import atomic_write
from fptlib.train.distributed import context
from fptlib.train.packed import CPU_AUTO_PACK, CPU_PACK_MAX_TOKENS
from fptlib.train.trainer import COMPILE_FLAGS, TrainConfig

PROFILE_HELP = "quick | evidence | full (default: $FPT_PROFILE, else evidence on a GPU and quick without one)"
BACKBONE_HELP = "backbone name (python -m fptlib backbones lists them; default: the registry's rule)"


def _paper_hp(name: str) -> str:
    """The paper's values of one hyperparameter over its tasks, e.g. ``0.001 (homology: 0.0001)``."""
    values = {task: hp[name] for task, hp in paper.HYPERPARAMETERS.items()}
    common = max(set(values.values()), key=list(values.values()).count)
    other = ", ".join(f"{task} {v:g}" for task, v in values.items() if v != common)
    return f"{common:g}" + (f"; {other}" if other else "")


def _parse_value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None}.get(text.lower(), text)


def parse_options(items: list[str] | None) -> tuple[tuple[str, object], ...]:
    """``["n=8", "patch=10"]`` -> (("n", 8), ("patch", 10))."""
    out = {}
    for item in items or ():
        if "=" not in item:
            raise ValueError(f"option {item!r} must look like NAME=VALUE (e.g. --option n=8)")
        key, value = item.split("=", 1)
        out[key.strip()] = _parse_value(value.strip())
    return tuple(sorted(out.items()))


def _backbone(args) -> str:
    """The backbone to use, printed with the reason it was chosen (the registry's default rule)."""
    name, why = default_backbone(args.backbone if args.backbone != "default" else None)
    print(f"backbone: {name} ({why})", file=sys.stderr, flush=True)
    return name


def _profile(args) -> str:
    """``--profile``, else the one profile rule (``experiments.choose_profile``), printed with its reason."""
    if args.profile:
        return args.profile
    name, why = experiments.choose_profile(env.pick_device(getattr(args, "device", "auto")))
    print(f"profile: {name} ({why})", file=sys.stderr, flush=True)
    return name


def _config_from_args(args):
    """A RunConfig from ``experiments.config``: the paper's settings, the profile's, then the flags."""
    backbone = _backbone(args)
    changes = {k: v for k, v in dict(init=args.init, freeze=args.freeze, steps=args.steps, lr=args.lr,
                                     batch_size=args.batch_size, grad_accum=args.grad_accum, seed=args.seed,
                                     eval_every=args.eval_every, layers=args.layers,
                                     dropout=args.dropout, in_layers=args.in_layers and tuple(args.in_layers),
                                     out_layers=args.out_layers and tuple(args.out_layers)).items()
               if v is not None}
    if getattr(args, "extend_positions", False):
        changes["extend_positions"] = True
    if args.option:
        changes["task_options"] = dict(parse_options(args.option))
    if args.backbone_override:
        changes["backbone_overrides"] = parse_options(args.backbone_override)
    return experiments.config(args.task, _profile(args), backbone, **changes)


def _add_run_flags(p):
    INITS = experiments.INITS
    p.add_argument("--task", required=True, help="task name (python -m fptlib tasks lists them)")
    p.add_argument("--backbone", default=None, help=BACKBONE_HELP)
    p.add_argument("--init", default=None, choices=INITS,
                   help=" | ".join(INITS) + " (default: the table row's, else pretrained)")
    p.add_argument("--freeze", default=None,
                   help="freeze preset, e.g. fpt, output_only, +layernorm, full (default: fpt)")
    p.add_argument("--profile", default=None, choices=PROFILES, help=PROFILE_HELP)
    p.add_argument("--steps", type=positive_int, default=None,
                   help="optimizer steps (default: the profile's for the task, experiments.PROFILE_SETTINGS)")
    p.add_argument("--lr", type=float, default=None,
                   help=f"learning rate (default: the paper's for the task: {_paper_hp('lr')})")
    p.add_argument("--batch-size", type=positive_int, default=None,
                   help="examples per step (default: the profile's for the task, the paper's at full: "
                        f"{_paper_hp('batch_size')})")
    p.add_argument("--grad-accum", type=positive_int, default=None,
                   help=f"micro-batches per optimizer step (default: {TrainConfig.grad_accum})")
    p.add_argument("--seed", type=int, default=None, help=f"random seed (default: {TrainConfig.seed})")
    p.add_argument("--eval-every", type=int, default=None,
                   help="evaluate on validation and test every N steps (default: the profile's for the task)")
    p.add_argument("--layers", type=int, default=None,
                   help="keep only the first k blocks of the backbone (default: all)")
    p.add_argument("--dropout", type=float, default=None, help="dropout of the backbone and input (default 0.1)")
    p.add_argument("--in-layers", type=int, nargs="+", default=None, metavar="WIDTH",
                   help="hidden widths of an MLP input head, e.g. --in-layers 128 128 (default: one linear layer)")
    p.add_argument("--out-layers", type=int, nargs="+", default=None, metavar="WIDTH",
                   help="hidden widths of an MLP output head (default: one linear layer)")
    p.add_argument("--option", action="append", metavar="NAME=VALUE",
                   help="task option, e.g. n=8 (repeatable; default: the profile's options for the task)")
    p.add_argument("--backbone-override", action="append", metavar="NAME=VALUE",
                   help="backbone config field, e.g. n_layer=2 (random init; repeatable; default: none)")
    _add_common(p)


def _add_compile(p):
    p.add_argument("--compile", default="auto", choices=tuple(COMPILE_FLAGS),
                   help="torch.compile: auto (CUDA runs of >= 5000 steps; CUDA graphs where batch shapes are "
                        "fixed), on, off, or a torch.compile mode")


def _compile(args):
    return COMPILE_FLAGS[args.compile]


def _add_common(p):
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps")
    p.add_argument("--results-dir", default=None, help="results store (default: $FPT_RESULTS_DIR or <repo>/results)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


# -- commands ---------------------------------------------------------------------------------

def _threads(device: str) -> None:
    note = env.tune_cpu_threads(env.pick_device(device))
    if note:
        print(f"note: {note}", file=sys.stderr, flush=True)


def cmd_train(args) -> int:
    _threads(args.device)
    cfg = _config_from_args(args)
    if not args.json:
        print(f"training: {cfg.describe()}", flush=True)
    record, _ = experiments.train(cfg, directory=args.results_dir, progress=not args.no_progress,
                                  device=args.device, checkpoint=args.checkpoint_dir or False,
                                  store=not args.no_store, compile=_compile(args))
    if not context().is_main:
        return 0
    if args.json:
        print(json.dumps(record, indent=1))
    else:
        _print_summary(record)
    return 0


def _print_summary(record: dict) -> None:
    for split, m in record["final"].items():
        print(f"final {split} accuracy: {100 * m['accuracy']:.1f}% (loss {m['loss']:.4f})")
    print(f"{record['steps']} steps, {record['samples']} samples, {record['wall_time_s']:.1f} s on "
          f"{record['hardware']}; {results.provenance(record, data=True)}")
    if record.get("key"):
        print(f"record: {record['key']}")


def cmd_demo(args) -> int:
    _threads(args.device)
    backbone = _backbone(args)
    cfg = experiments.config("bit-xor", "quick", backbone, row="demo", column="bit-xor", steps=args.steps)
    if cfg.backbone == "lstm":      # found now, not after training
        raise ValueError("the demo draws attention maps and the LSTM has no attention: use a transformer "
                         "backbone (python -m fptlib backbones lists them)")
    out = files.check_output_file(args.out, "--out")
    experiments.check_outputs([cfg], args.results_dir)
    print(f"FPT demo: {cfg.describe()}", flush=True)
    record, model = experiments.train(cfg, directory=args.results_dir, progress=not args.no_progress,
                                      device=args.device, checkpoint=False)
    _print_summary(record)
    path = save_attention_picture(model, cfg, out)
    print(f"attention of every layer and head on one example: {path}")
    return 0


def save_attention_picture(model, cfg, out: Path) -> Path:
    """Attention of one Bit XOR test example, every layer x head, written atomically to a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    from fptlib.attention import extract_attentions      # the plots import matplotlib: only here
    from fptlib.viz import bit_labels, plot_attention_grid

    task = tasks.get(cfg.task, **dict(cfg.task_options))
    batch = next(task.eval_batches("test", 4, "cpu"))
    attn = extract_attentions(model.cpu(), batch.x)
    fig = plot_attention_grid(attn, example=0, tokens=bit_labels(batch.x[0], task.n))
    try:
        atomic_write(out, lambda f: fig.savefig(f, dpi=110, bbox_inches="tight", format="png"),
                     binary=True)
    finally:
        plt.close(fig)
    return out


def cmd_reproduce(args) -> int:
    _threads(args.device)
    changes = {"steps": args.steps} if args.steps is not None else {}
    if args.backbone_override:
        changes["backbone_overrides"] = parse_options(args.backbone_override)
    profile = _profile(args)
    records = experiments.reproduce(args.table, profile, backbone=args.backbone, directory=args.results_dir,
                                    progress=not args.no_progress, device=args.device,
                                    compile=_compile(args), pack=_pack(args),
                                    retrain_weightless=args.retrain_weightless, **changes)
    chosen = sweeps.select_each(records)
    if chosen:
        print("\nlearning rates chosen on validation (mean best-val accuracy over seeds); test at that lr:")
        for (row, column), (lr, summary) in chosen.items():
            print(f"  {row} / {column}: lr {lr:g}, test {summary.text()}")
    print()
    store = experiments.store_dir(profile, args.results_dir)      # evidence: results/evidence/
    print(report.table_markdown(args.table, profile, directory=store, backbone=args.backbone, **changes))
    return 0


def cmd_sweep(args) -> int:
    for flag, value, instead in (("--lr", args.lr, "--lrs LR [LR ...]"), ("--seed", args.seed, "--seeds SEED [SEED ...]")):
        if value is not None:
            raise ValueError(f"sweep: {flag} {value:g} would be ignored, a sweep runs every learning rate and seed "
                             f"it is given: use {instead}")
    _threads(args.device)
    cfg = _config_from_args(args)
    lrs = tuple(args.lrs) if args.lrs else experiments.LR_GRID[cfg.profile]
    res = sweeps.sweep(cfg, lrs=lrs, seeds=tuple(args.seeds), directory=args.results_dir,
                       progress=not args.no_progress, device=args.device, pack=_pack(args))
    print()
    print(res.markdown())
    return 0


def cmd_results(args) -> int:
    if args.claims and not args.profile:        # verdicts need records: the committed ones by default
        args.profile = report.evidence_profile()
        args.backbone = args.backbone or experiments.EVIDENCE_BACKBONE
        print(f"profile: {args.profile}, backbone {args.backbone} (the profile whose records are committed; "
              f"--profile quick|evidence|full for another)", file=sys.stderr, flush=True)
    profile = _profile(args) if (args.claims or args.progress or args.table) else None
    store = experiments.store_dir(profile, args.results_dir) if profile else args.results_dir   # evidence: results/evidence/
    if args.claims or args.progress:
        if args.table or (args.claims and args.progress):
            raise SystemExit("results: give one of a TABLE, --claims or --progress")
        what = report.claims if args.claims else report.progress
        shown = what(profile, directory=store, backbone=args.backbone)
    elif args.table:
        shown = report.named_table(args.table, profile, directory=store, backbone=args.backbone)
    else:
        shown = report.summary(results.load(args.results_dir), wide=args.wide)
    print(_render(shown, args))
    return 0


def _render(shown, args) -> str:
    """A report table as the terminal shows it (fitted to ``--width`` columns), or as markdown
    (``--markdown``; ``--wide``: markdown with every column)."""
    if isinstance(shown, str):
        return shown
    if args.wide:
        return report.Table(shown.rows, title=shown.title, digits=shown.digits, notes=shown.notes).markdown()
    return shown.markdown() if args.markdown else shown.text(args.width)


def _add_pack(p) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--pack", type=int, default=None, metavar="K",
                       help="train up to K compatible runs at once over one shared frozen backbone "
                            "(default: automatic: by memory on CUDA; on a CPU, where bench/bench_packed.py "
                            f"measured it faster, {CPU_AUTO_PACK} runs of sequences up to {CPU_PACK_MAX_TOKENS} "
                            "tokens, longer ones one at a time)")
    group.add_argument("--no-pack", action="store_true", help="train the runs one at a time")


def _pack(args):
    """The ``pack`` argument of experiments.run_many from --pack K / --no-pack."""
    if args.no_pack:
        return False
    if args.pack is not None and args.pack < 1:
        raise SystemExit(f"--pack must be a positive number of runs, got {args.pack}")
    return "auto" if args.pack is None else args.pack


def register(subparsers) -> None:
    p = subparsers.add_parser("demo", help="FPT on Bit XOR with the default backbone; saves an attention picture")
    p.add_argument("--backbone", default=None, help=BACKBONE_HELP)
    p.add_argument("--steps", type=positive_int, default=300, help="optimizer steps on Bit XOR")
    p.add_argument("--out", default="fpt_demo_attention.png", help="PNG for the attention picture")
    _add_common(p)
    p.set_defaults(func=cmd_demo)

    p = subparsers.add_parser("train", help="train one model on one task and store its result")
    _add_run_flags(p)
    p.add_argument("--json", action="store_true", help="print the results record as JSON")
    p.add_argument("--checkpoint-dir", default=None,
                   help="resumable checkpoints here (rerun to resume; default: none, a rerun starts afresh)")
    p.add_argument("--no-store", action="store_true", help="do not write the record to the results store")
    p.add_argument("--extend-positions", action="store_true",
                   help="grow the backbone's positional table for inputs longer than it")
    _add_compile(p)
    p.set_defaults(func=cmd_train)

    tables = ", ".join(experiments.names())
    p = subparsers.add_parser("reproduce", help="run a paper table's experiments (skips finished runs)")
    p.add_argument("table", help=f"one of: {tables}; or a run set (no paper table: the explorer's models, Table 1's bit columns with tuned learning rates, the time series, one epoch of the image stand-in): {', '.join(experiments.RUN_SETS)}")
    p.add_argument("--profile", default=None, choices=PROFILES, help=PROFILE_HELP)
    p.add_argument("--backbone", default=None, help=BACKBONE_HELP)
    p.add_argument("--steps", type=positive_int, default=None,
                   help="override every run's steps (a shorter smoke run; default: each run's own)")
    p.add_argument("--backbone-override", action="append", metavar="NAME=VALUE",
                   help="backbone config field for every run, e.g. n_layer=2 (random inits; repeatable; default: none)")
    p.add_argument("--retrain-weightless", action="store_true",
                   help="also train again the stored runs whose trained weights are not here (a clone holds only the "
                        "committed ones, e.g. the explorer's seed-0 models), keeping them; their records are replaced")
    _add_common(p)
    _add_compile(p)
    _add_pack(p)
    p.set_defaults(func=cmd_reproduce)

    p = subparsers.add_parser("sweep", help="learning-rate sweep, validation-based selection, several seeds")
    _add_run_flags(p)
    p.add_argument("--lrs", type=float, nargs="+", default=None, help="learning rates to sweep (default: the "
                   "profile's grid, " + "; ".join(f"{k}: {', '.join(f'{lr:g}' for lr in v)}"
                                                   for k, v in experiments.LR_GRID.items()) + ")")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of every learning rate")
    _add_pack(p)
    p.set_defaults(func=cmd_sweep)
    _register_results(subparsers, tables)


def _register_results(subparsers, tables: str) -> None:
    p = subparsers.add_parser("results", help="stored results as markdown, beside the paper's numbers")
    p.add_argument("table", nargs="?", default=None, help=f"a paper table ({tables}) or a run set "
                   f"({', '.join(experiments.RUN_SETS)}); none: every record")
    p.add_argument("--claims", action="store_true",
                   help="the paper's claims with verdicts computed from the profile's records")
    p.add_argument("--progress", action="store_true",
                   help="per table and run set: runs stored and left, and the CPU-hours left (estimate)")
    p.add_argument("--profile", default=None, choices=PROFILES,
                   help=PROFILE_HELP + "; --claims: default evidence, the profile whose records are committed")
    p.add_argument("--backbone", default=None, help="the backbone whose runs to show (default: the registry's rule; "
                   f"--claims: {experiments.EVIDENCE_BACKBONE}, the committed evidence's)")
    p.add_argument("--results-dir", default=None, help="results store (default: $FPT_RESULTS_DIR or <repo>/results)")
    view = p.add_mutually_exclusive_group()
    view.add_argument("--width", type=positive_int, default=report.TERMINAL_WIDTH,
                      help="fit the table to a terminal this many columns wide, wrapping its cells")
    view.add_argument("--markdown", action="store_true", help="markdown (the README's and Jupyter's form)")
    view.add_argument("--wide", action="store_true",
                      help="markdown with every column (data source, hardware, the claims' reasons), any width")
    p.set_defaults(func=cmd_results)
