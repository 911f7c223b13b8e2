"""ESTIMATE, not a measurement: minutes each long notebook (02-12) trains on a T4 at the evidence profile.

    python bench/colab_estimate.py                       # the defaults justified below
    python bench/colab_estimate.py --floor-ms 40 --mfu 0.2

No T4 was used. Per run: ``steps x (launch floor + FLOPs per step / (peak x MFU))`` plus its
evaluations, from the library's own definitions: the runs are the notebooks' (``NOTEBOOKS``: the
tables, rows and columns of their ``run_table`` calls, through ``notebook.table_configs``; notebook
12 through ``explorer.xor_configs``), each run key counted once per notebook, with the Bit Memory
pretraining an init run needs; FLOPs per example are ``bench_trainer.model_flops_per_sample`` on the
real model's shapes (built on the ``meta`` device: nothing is downloaded or allocated); the peak is
``bench_trainer.PEAK_FLOPS["T4"]`` (65 TFLOP/s dense fp16: a T4 has no bf16, the Trainer uses fp16).

Assumptions (each a command-line option):
- launch floor 30 ms per training step: bench/RESULTS.md "GPU: NVIDIA H200, 2026-11-26" measured
  about 20 ms per eager step of GPT-2 small at batch 16 (Python and kernel launches, MFU 1.8%), and
  evidence runs (< 5,000 steps) stay eager; x 1.5 for Colab's host (a 2-vCPU Xeon at about 2.2 GHz
  against the H200 machine's server CPU, single-thread speed 1.3-2x lower) and GradScaler's extra
  kernels (fp16 on a T4);
- an evaluation batch (forward only, batch max(16, 64)) pays a third of that floor;
- MFU 30% of the fp16 peak for the FLOP part: assumed (a 70 W card that throttles below its boost
  clock, small matrices of 160-1,024 rows);
- floor and FLOPs are added (CPU launches and GPU work partly overlap, so this leans long);
- 5 s per run for building the model and the Trainer, and plan()'s warm-up per kind of run;
- training FLOPs: the library's 2 x forward for frozen blocks, 3 x forward where the blocks train
  (full, +feedforward, +attention, +both; the LSTM), 1 x forward for output-only (no backward
  through the backbone; dataset tasks cache features instead, not modelled separately).
Packed: runs of one ``experiments.pack_group`` (seeds and learning rates of a setting on a pretrained
backbone whose preset trains the input layer) train together: the launch floor is paid once per pack
step, FLOPs x K; evaluations stay per run. Output-only runs never pack (``run_many``). The real
number for a machine is printed by ``notebook.plan()`` from a measured warm-up before any long run.
"""
from __future__ import annotations

import argparse
import functools
import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_trainer import PEAK_FLOPS, model_flops_per_sample  # noqa: E402

from fptlib import experiments, explorer, tasks  # noqa: E402
from fptlib.backbones import load_backbone  # noqa: E402
from fptlib.notebook import NotebookContext, table_configs  # noqa: E402

PROFILE, BACKBONE = "evidence", "gpt2"       # what a GPU selects (choose_profile, default_backbone)
# what each notebook trains: (table, subset) as in its run_table calls (tests/test_colab_estimate.py
# checks this against the notebooks); 07: ctx.config("homology") when TAPE's data is there (a
# download; no evidence table has it); 12: explorer.xor_configs at each ATTENTION_LENGTHS
NOTEBOOKS = {
    "02_bit_memory": (("table1", dict(rows="FPT", columns="bit-memory")),),
    "03_bit_xor": (("table1", dict(rows="FPT", columns="bit-xor")),),
    "04_listops": (("table1", dict(rows="FPT", columns="listops")),),
    "05_images": (("table1", dict(rows="FPT", columns="mnist")), ("table1", dict(rows="FPT", columns="cifar10"))),
    "06_cifar10_lra": (("table1", dict(rows="FPT", columns="cifar10-lra")),),
    "07_homology": (("homology", {}),),
    "08_pretraining": (("init", {}),),          # show_table("compute") reads the same runs
    "09_architecture": (("architecture", {}), ("table1", {})),
    "10_parameters": (("ladder", {}), ("layernorm", {}), ("more_than_fpt", {}), ("depth", {}), ("model_size", {})),
    "11_honest_comparisons": (("lr_critique", {}), ("tuned_lr", {})),     # its sweep_each reruns the same keys
    "12_attention_explorer": (("attention", {}),),
    "13_time_series": (("timeseries", {}),),
}
LONG_MINUTES = 75          # "about an hour": a notebook above this, even packed, needs a smaller profile


@dataclass(frozen=True)
class Assumptions:
    floor_s: float = 0.030          # launch floor of one eager training step
    eval_floor_s: float = 0.010     # launch floor of one evaluation batch
    peak: float = PEAK_FLOPS["T4"]
    mfu: float = 0.30
    overhead_s: float = 5.0         # per run: model, Trainer, warm-up


@dataclass(frozen=True)
class Cost:
    """What fixes one run's time: training steps and FLOPs per step, evaluation batches and FLOPs each."""
    steps: int
    step_flops: float
    eval_batches: int
    eval_flops: float


def run_seconds(cost: Cost, a: Assumptions, pack: int = 1) -> float:
    """Seconds of one run; in a pack of ``pack`` runs its share: the launch floor divided by the pack."""
    flop_rate = a.peak * a.mfu
    train = cost.steps * (a.floor_s / pack + cost.step_flops / flop_rate)
    return a.overhead_s + train + cost.eval_batches * (a.eval_floor_s + cost.eval_flops / flop_rate)


def entry_configs(name: str, subset: dict, profile: str = PROFILE, backbone: str = BACKBONE) -> list:
    """The runs of one ``NOTEBOOKS`` entry, with the Bit Memory pretraining before each run that needs one."""
    if name == "homology":
        configs = [experiments.config("homology", profile, backbone)]
    elif name == "attention":
        configs = [c for n in explorer.LENGTHS[profile] for c in explorer.xor_configs(n, profile, backbone).values()]
    else:
        ctx = NotebookContext(profile=profile, device="cuda", backbone=backbone, backbone_reason="estimate",
                              results_dir=Path("."))
        configs = table_configs(name, ctx=ctx, **subset)
    return [x for c in configs for x in ([experiments.pretraining_config(c)] if c.init == "bit-memory" else []) + [c]]


def notebook_configs(notebook: str, profile: str = PROFILE, backbone: str = BACKBONE) -> list:
    """The distinct runs ``notebook`` trains from an empty store, Bit Memory pretrainings included."""
    out = {}
    for name, subset in NOTEBOOKS[notebook]:
        for c in entry_configs(name, subset, profile, backbone):
            out.setdefault(c.key, c)
    return list(out.values())


@functools.lru_cache(maxsize=None)
def _forward_flops(backbone: str, layers: int | None, hidden_size: int | None, tokens: float) -> float:
    with torch.device("meta"):      # shapes only: no weights downloaded, no memory used
        bb = load_backbone(backbone, init="random", layers=layers, hidden_size=hidden_size)
    return model_flops_per_sample(SimpleNamespace(backbone=bb), tokens) / 2   # the library's training = 2 x forward


@functools.lru_cache(maxsize=None)
def task_shape(task: str, options: tuple, batch_size: int) -> tuple[float, dict[str, int] | None]:
    """(tokens per example, {eval split: examples}) of a task; discrete tasks: the mean padded length
    of 8 training batches. Without the data here: the max_len option and None (eval_limit is used)."""
    try:
        t = tasks.get(task, **dict(options))
    except FileNotFoundError:
        if "max_len" not in dict(options):
            raise
        cls = tasks.registry.TASKS[task][0]
        return float(dict(options)["max_len"]), {s: None for s in cls.eval_splits}
    if t.input_kind == "continuous":
        tokens = float(t.max_len)
    else:
        stream = t.train_batches(batch_size, "cpu", seed=0)
        tokens = sum(next(stream).x.shape[1] for _ in range(8)) / 8
    sizes = {s: sum(len(b.y) for b in t.eval_batches(s, 1024, "cpu")) for s in t.eval_splits}
    return tokens, sizes


def cost(c) -> Cost:
    tokens, sizes = task_shape(c.task, c.task_options, c.batch_size)
    forward = _forward_flops(c.backbone, c.layers if c.backbone != "lstm" else None, c.hidden_size, tokens)
    trains_blocks = experiments.trains_blocks(c) or c.backbone == "lstm"
    factor = 1 if c.freeze == experiments.OUTPUT_ONLY else 3 if trains_blocks else 2    # x forward
    eval_bs = max(c.batch_size, 64)          # the Trainer's evaluation batch
    examples = [min(n, c.eval_limit) if n and c.eval_limit else (n or c.eval_limit) for n in sizes.values()]
    evals = (c.steps - 1) // c.eval_every + 1 if c.eval_every else 1
    return Cost(c.steps, factor * forward * c.batch_size * c.grad_accum,
                evals * sum(-(-n // eval_bs) for n in examples), forward * eval_bs)


def minutes(configs, a: Assumptions, packed: bool) -> float:
    groups: dict[str, list] = {}
    for c in configs:
        groups.setdefault(experiments.pack_group(c) if packed and c.freeze != experiments.OUTPUT_ONLY else c.key,
                          []).append(c)
    return sum(run_seconds(cost(c), a, len(g)) for g in groups.values() for c in g) / 60


def estimate(a: Assumptions) -> list[dict]:
    rows, seen = [], set()
    for nb in NOTEBOOKS:
        configs = notebook_configs(nb)
        new = [c for c in configs if c.key not in seen]
        seen |= {c.key for c in configs}
        tokens = [task_shape(c.task, c.task_options, c.batch_size)[0] for c in configs]
        rows.append(dict(notebook=nb, runs=len(configs), steps=sum(c.steps for c in configs),
                         tokens=(min(tokens), max(tokens)), alone=minutes(configs, a, False),
                         packed=minutes(configs, a, True), new_runs=len(new), in_order=minutes(new, a, True)))
    return rows


def verdict(rows: list[dict]) -> list[str]:
    """Sentences computed from the rows: which notebooks fit about an hour, and what would fit the rest."""
    long = [r for r in rows if r["packed"] > LONG_MINUTES]
    out = [f"Notebooks within {LONG_MINUTES} min packed: {sum(r['packed'] <= LONG_MINUTES for r in rows)} of "
           f"{len(rows)}; one run at a time: {sum(r['alone'] <= LONG_MINUTES for r in rows)} of {len(rows)}."]
    for r in long:
        out.append(f"{r['notebook']} exceeds {LONG_MINUTES} min even packed ({r['packed']:.0f} min): about "
                   f"{60 / r['packed']:.2f} x its steps, or fewer runs (seeds, lr grid, rows), would fit an hour.")
    for r in rows:
        if r["alone"] > LONG_MINUTES >= r["packed"]:
            out.append(f"{r['notebook']} fits only with its seeds packed: {r['alone']:.0f} min one run at a time.")
    if not long:
        out.append(f"The estimate supports 'about an hour per long notebook on a T4' when seeds are packed "
                   f"(longest: {max(rows, key=lambda r: r['packed'])['notebook']}, "
                   f"{max(r['packed'] for r in rows):.0f} min).")
    return out


def markdown(rows: list[dict], a: Assumptions) -> str:
    lines = [f"ESTIMATE from stated assumptions, not a measurement (no T4 was used): profile {PROFILE}, backbone "
             f"{BACKBONE}; launch floor {1000 * a.floor_s:g} ms per step, {1000 * a.eval_floor_s:g} ms per "
             f"evaluation batch, MFU {100 * a.mfu:g}% of {a.peak / 1e12:g} TFLOP/s, {a.overhead_s:g} s per run. "
             f"Packed: the runs of one experiments.pack_group train as one pack, as experiments.run_many does. 07 trains "
             f"only where TAPE's data was downloaded (tokens: its max_len, an upper bound).",
             "",
             "| notebook | runs to train | total steps | tokens per example | min, one run at a time | "
             "min, seeds packed | new runs / min packed, 02-12 in order with one store |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lo, hi = r["tokens"]
        tokens = f"{lo:.0f}" if round(lo) == round(hi) else f"{lo:.0f}-{hi:.0f}"
        lines.append(f"| {r['notebook']} | {r['runs']} | {r['steps']:,} | {tokens} | {r['alone']:.0f} | "
                     f"{r['packed']:.0f} | {r['new_runs']} / {r['in_order']:.0f} |")
    return "\n".join(lines + [""] + verdict(rows))


def breakdown(notebook: str, a: Assumptions) -> str:
    """Runs and minutes per entry of one notebook (a run shared with an earlier entry counted there)."""
    lines = [f"{notebook}, ESTIMATE per table (runs / steps / min one at a time / min packed):"]
    seen = set()
    for name, subset in NOTEBOOKS[notebook]:
        configs = list({c.key: c for c in entry_configs(name, subset) if c.key not in seen}.values())
        seen |= {c.key for c in configs}
        lines.append(f"  {name}{' ' + str(subset) if subset else ''}: {len(configs)} / {sum(c.steps for c in configs):,} / "
                     f"{minutes(configs, a, False):.0f} / {minutes(configs, a, True):.0f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    d = Assumptions()
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--floor-ms", type=float, default=1000 * d.floor_s, help="launch floor per training step")
    ap.add_argument("--eval-floor-ms", type=float, default=1000 * d.eval_floor_s, help="per evaluation batch")
    ap.add_argument("--mfu", type=float, default=d.mfu, help="fraction of the T4's fp16 peak reached")
    ap.add_argument("--overhead-s", type=float, default=d.overhead_s, help="per run: build, warm-up")
    ap.add_argument("--breakdown", choices=tuple(NOTEBOOKS), help="also: runs and minutes per table of one notebook")
    args = ap.parse_args(argv)
    a = Assumptions(args.floor_ms / 1000, args.eval_floor_ms / 1000, d.peak, args.mfu, args.overhead_s)
    print(markdown(estimate(a), a))
    if args.breakdown:
        print("\n" + breakdown(args.breakdown, a))
    return 0


if __name__ == "__main__":
    sys.exit(main())
