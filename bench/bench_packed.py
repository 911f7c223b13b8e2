"""Samples per second: K runs packed into one forward/backward vs the same K runs one after another.

    python bench/bench_packed.py --runs 4 --backbone minilm --task bit-xor --batch-size 8 --threads 1
    python bench/bench_packed.py --runs 8 --backbone gpt2 --init random --task mnist-5k \
        --task-option image_size=32 --batch-size 16 --steps 200 --warmup 20      # the GPU target

Both sides train the same K runs (the same initial weights, runs differing in seed, hence data,
and learning rate) for the same steps on the same batches: sequentially, K ``Trainer.fit()`` calls;
packed, one ``PackedTrainer.fit()``. Evaluation is off; the first ``--warmup`` steps of every run
are not timed. The rate is run-samples per second: K x batch x steps over the time the K runs
took (sequential: the sum of their times). The two sides alternate (``--repeats``) so that a change
of machine load hits both; the best of each is reported and every run printed. ``--vmap`` adds
the other technique considered, ``torch.func.vmap`` over stacked trained parameters (unpadded
tasks only), timed on the same K runs' forward, backward and Adam steps.

On a GPU also model FLOP utilisation (see bench_trainer.py for the FLOP count). Record the output,
with the machine and its load, in bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_trainer import model_flops_per_sample, peak_flops, setup  # noqa: E402

from fptlib import env  # noqa: E402
from fptlib.train import TrainConfig, Trainer  # noqa: E402
from fptlib.train.packed import PackedTrainer  # noqa: E402

LRS = (1e-3, 3e-4, 3e-3, 1e-4, 2e-3, 5e-4, 1e-2, 2e-4)


def configs(args, device) -> list[TrainConfig]:
    return [TrainConfig(steps=args.warmup + args.steps, lr=LRS[i % len(LRS)], seed=i, batch_size=args.batch_size,
                        eval_every=0, eval_splits=(), log_every=args.warmup, device=str(device), progress=False,
                        compile=False) for i in range(args.runs)]


def timed(history: list[dict], warmup: int, steps: int) -> tuple[float, int]:
    """(seconds, samples) between the end of the warm-up and the last step, from a run's history."""
    at = {h["step"]: h for h in history}
    a, b = at[warmup], at[warmup + steps]
    return b["wall_s"] - a["wall_s"], b["samples"] - a["samples"]


def sequential_rate(template, task, cfgs, args) -> float:
    seconds = samples = 0
    for cfg in cfgs:
        r = Trainer(copy.deepcopy(template), task, cfg).fit()
        s, n = timed(r.history, args.warmup, args.steps)
        seconds, samples = seconds + s, samples + n
    return samples / seconds


def packed_rate(template, task, cfgs, args) -> float:
    results = PackedTrainer([copy.deepcopy(template) for _ in cfgs], task, cfgs).fit()
    s, _ = timed(results[0].history, args.warmup, args.steps)
    return sum(timed(r.history, args.warmup, args.steps)[1] for r in results) / s


def vmap_rate(template, task, cfgs, args, device) -> float:
    """torch.func.vmap over the stacked trained parameters, frozen ones shared (in_dims=None)."""
    from torch.func import functional_call, stack_module_state, vmap

    from fptlib.train.packed import adam_step
    models = [copy.deepcopy(template).to(device) for _ in cfgs]
    names = [n for n, p in template.named_parameters() if p.requires_grad]
    stacked, _ = stack_module_state(models)
    trained = {n: stacked[n].detach().requires_grad_(True) for n in names}
    frozen = {n: p for n, p in models[0].named_parameters() if not p.requires_grad}
    buffers = dict(models[0].named_buffers())
    states = {n: (torch.zeros_like(p), torch.zeros_like(p)) for n, p in trained.items()}
    lr = torch.tensor([c.lr for c in cfgs], device=device, dtype=torch.float64)
    k = len(cfgs)
    steps = torch.zeros(k, device=device, dtype=torch.float64)

    def loss(params, x, y):
        return task.loss(functional_call(models[0], ({**params, **frozen}, buffers), (x,)), y)
    batched = vmap(loss, in_dims=(0, 0, 0), randomness="different")
    streams = [task.train_batches(args.batch_size, device, c.seed) for c in cfgs]
    t0 = None
    for step in range(args.warmup + args.steps):
        if step == args.warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        parts = [next(s) for s in streams]
        losses = batched(trained, torch.stack([b.x for b in parts]), torch.stack([b.y for b in parts]))
        losses.sum().backward()
        steps += 1
        with torch.no_grad():
            for n, p in trained.items():
                g = p.grad.reshape(k, -1)
                adam_step(p.view(k, -1), g, *(s.view(k, -1) for s in states[n]), steps, lr)
                p.grad = None
    if device.type == "cuda":
        torch.cuda.synchronize()
    return k * args.batch_size * args.steps / (time.perf_counter() - t0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=4, help="K, the runs packed together")
    ap.add_argument("--backbone", default=None, help="default: the registry's rule (GPT-2 on a GPU, else MiniLM)")
    ap.add_argument("--init", default="pretrained")
    ap.add_argument("--task", default="bit-xor")
    ap.add_argument("--task-option", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--repeats", type=int, default=6, help="alternating runs of each side; the best is reported")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (CPU); default torch's")
    ap.add_argument("--vmap", action="store_true", help="also time torch.func.vmap over stacked parameters")
    args = ap.parse_args(argv)
    device, name, task, template, seq_len = setup(args)
    cfgs = configs(args, device)
    load_before = os.getloadavg()
    sides = {"sequential": [], "packed": [], "vmap": []}
    for _ in range(args.repeats):       # alternate, so a change of machine load hits every side alike
        sides["sequential"].append(sequential_rate(template, task, cfgs, args))
        sides["packed"].append(packed_rate(template, task, cfgs, args))
        if args.vmap:
            sides["vmap"].append(vmap_rate(template, task, cfgs, args, device))
    load_after = os.getloadavg()
    best = {k: max(v) for k, v in sides.items() if v}

    print(f"hardware : {env.hardware(device)}; torch {torch.__version__}; {torch.get_num_threads()} threads")
    print(f"load avg : {load_before[0]:.2f} before, {load_after[0]:.2f} after (1-minute)")
    print(f"setup    : backbone {name} ({args.init}), task {task.name} [{task.data_source}], up to {seq_len} tokens, "
          f"{args.runs} runs (seeds 0..{args.runs - 1}, lr {', '.join(f'{c.lr:g}' for c in cfgs)}), batch "
          f"{args.batch_size} per run, {args.steps} timed steps after {args.warmup} warm-up, fp32, eager")
    print()
    print("| loop | run-samples/s | ms per step of all runs |")
    print("|---|---|---|")
    labels = {"sequential": f"{args.runs} runs one after another (Trainer)",
              "packed": f"{args.runs} runs packed (PackedTrainer, batch-stacked)",
              "vmap": f"{args.runs} runs, torch.func.vmap over stacked parameters (forward/backward/Adam only)"}
    for key, rate in best.items():
        print(f"| {labels[key]} | {rate:.1f} | {1000 * args.runs * args.batch_size / rate:.1f} |")
    print(f"\nratio packed / sequential: {best['packed'] / best['sequential']:.2f}x (best of {args.repeats} "
          f"alternating runs each; all runs: " + "; ".join(f"{k} {', '.join(f'{r:.1f}' for r in v)}"
                                                         for k, v in sides.items() if v) + ")")
    for key in [k for k in ("packed", "vmap") if sides[k]]:
        paired = sorted(a / b for a, b in zip(sides[key], sides["sequential"]))
        print(f"ratio {key} / sequential per repeat (neighbours in time): median {statistics.median(paired):.2f}x, "
              f"range {paired[0]:.2f}-{paired[-1]:.2f}x; best / best {best[key] / best['sequential']:.2f}x")
    peak = peak_flops(device)
    if device.type == "cuda":
        flops = model_flops_per_sample(template, seq_len)
        for key, rate in best.items():
            mfu = f"{100 * flops * rate / peak:.1f}%" if peak else "peak unknown for this card"
            print(f"MFU {key}: {mfu} ({flops * rate / 1e12:.2f} TFLOP/s model FLOPs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
