"""Samples per second: fptlib's Trainer vs a plain loop in the authors' style, one process, one run.

    python bench/bench_trainer.py                      # default backbone, image task, 64 tokens
    python bench/bench_trainer.py --backbone gpt2 --task cifar10 --steps 200   # the GPU target
    python bench/bench_trainer.py ... --compile off    # bf16 eager, for comparison

The reference loop is written the way the FPT authors' code trains: fp32, every batch built
from NumPy on the host and copied to the device, and ``loss.item()`` / accuracy ``.item()`` (a
host synchronisation) every step. The Trainer keeps data on the device, syncs only every
``log_every`` steps, and uses bf16 autocast (fp16 + scaler on older GPUs), a fused optimizer
and on CUDA what ``compile="auto"`` picks for a long run (CUDA graphs for fixed-shape tasks;
``--compile`` chooses another). Both train the same model (same initial weights) with the
same task, batch size and number of steps; the first ``--warmup`` steps are not timed.

On a GPU the script also prints model FLOP utilisation: model FLOPs per sample (forward
2*P*T + attention 4*layers*T^2*d; training = 2x forward, since frozen weights need no weight
gradients) times samples/s, over the card's dense bf16 peak. Record the output, with the
machine and its load, in bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import copy
import math
import os
import sys
import time

import torch

from fptlib import env, experiments, tasks
from fptlib.backbones import load_backbone
from fptlib.model import FPT
from fptlib.train import TrainConfig, Trainer
from fptlib.commands import parse_options
from fptlib.train.trainer import AUTO_COMPILE_STEPS, COMPILE_FLAGS, compile_mode

# dense bf16 (fp16 for cards without bf16) peak FLOP/s, from the vendors' data sheets
PEAK_FLOPS = {"H200": 989e12, "H100 SXM": 989e12, "H100 80GB HBM3": 989e12, "H100 PCIe": 756e12, "H100": 756e12,
              "A100": 312e12, "L4": 121e12, "A10": 125e12, "T4": 65e12, "V100": 125e12, "RTX 4090": 165e12,
              "RTX 3090": 71e12}


def pick_task(name: str | None, options: dict | None = None):
    """The paper's 32x32 image setting (64 tokens of 4x4 patches): CIFAR-10 when present, else
    Fashion-MNIST resized to 32x32 (real images, same token count), else the 8x8 digits."""
    if name:
        return tasks.get(name, **(options or {}))
    status = tasks.available()
    if status["cifar10"]["ready"]:
        return tasks.get("cifar10")
    if status["fashion-mnist"]["ready"]:
        return tasks.get("fashion-mnist", image_size=32, patch_size=4)
    return tasks.get("digits")


def reference_loop(model, task, steps: int, warmup: int, batch_size: int, lr: float, device) -> tuple[float, float]:
    """The authors' style: fp32, NumPy batches every step, .item() every step.
    Returns (samples/s, last training loss)."""
    torch.set_float32_matmul_precision("highest")     # plain fp32, as the authors' code ran
    model.to(device).train()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    stream = task.train_batches(batch_size, "cpu", seed=0)
    t0 = None
    for step in range(warmup + steps):
        if step == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        b = next(stream)
        x_np, y_np = b.x.numpy(), b.y.numpy()                    # batches arrive as NumPy arrays
        x, y = torch.from_numpy(x_np).to(device), torch.from_numpy(y_np).to(device)
        mask = None if b.mask is None else b.mask.to(device)
        logits = model(x, attention_mask=mask) if mask is not None else model(x)
        loss = task.loss(logits, y)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        _ = loss.item(), task.accuracy(logits, y).item()        # host sync every step
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch_size / (time.perf_counter() - t0), loss.item()


def trainer_rate(model, task, steps: int, warmup: int, batch_size: int, lr: float, device,
                 compile_) -> tuple[float, float, str, str]:
    """The Trainer's samples/s between the end of the warm-up and the last step (its history),
    its mean training loss over the timed steps, and the amp and compile modes it used."""
    cfg = TrainConfig(steps=warmup + steps, lr=lr, batch_size=batch_size, eval_every=0, eval_splits=(),
                      log_every=warmup, device=str(device), progress=False, compile=compile_)
    res = Trainer(model, task, cfg).fit()
    at = {h["step"]: h for h in res.history}
    a, b = at[warmup], at[warmup + steps]
    return (b["samples"] - a["samples"]) / (b["wall_s"] - a["wall_s"]), b["loss"], res.amp, res.compile


def model_flops_per_sample(model, seq_len: int) -> float:
    bb = model.backbone
    blocks = sum(p.numel() for n, p in bb.named_parameters()
                 if bb.parameter_groups().get(n) in ("attention", "feedforward"))
    forward = 2 * blocks * seq_len + 4 * bb.num_layers * seq_len ** 2 * bb.hidden_size
    return 2 * forward


def peak_flops(device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, value in PEAK_FLOPS.items():
        if key in name:
            return value
    return None


def setup(args):
    """(device, backbone name, task, model, tokens per example) from the common options; seeds 0."""
    if args.threads:
        torch.set_num_threads(args.threads)
    device = env.pick_device(args.device)
    name = experiments.resolve_backbone(args.backbone)
    task = pick_task(args.task, dict(parse_options(args.task_option)))
    torch.manual_seed(0)
    model = FPT.for_task(task, load_backbone(name, init=args.init))
    seq_len = next(task.train_batches(1, "cpu", seed=0)).x.reshape(1, -1).shape[1] // (task.token_dim or 1) \
        if task.input_kind == "continuous" else task.max_len
    return device, name, task, model, seq_len


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backbone", default=None, help="default: the registry's rule (GPT-2 on a GPU, else MiniLM)")
    ap.add_argument("--init", default="pretrained")
    ap.add_argument("--task", default=None, help="default: the 32x32 image setting (see pick_task)")
    ap.add_argument("--task-option", action="append", default=[], metavar="KEY=VALUE",
                    help="task option, repeatable (e.g. image_size=32); values parsed as by `fptlib train --option`")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--compile", default="auto", choices=tuple(COMPILE_FLAGS),
                    help="Trainer's torch.compile. auto (default): what compile='auto' picks for a long run "
                         "(CUDA graphs for fixed-shape tasks on CUDA; off on CPU); on = the default mode; "
                         "reduce-overhead = CUDA graphs")
    ap.add_argument("--repeats", type=int, default=2, help="alternating runs of each loop; the best is reported")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (CPU); default torch's")
    args = ap.parse_args(argv)
    device, name, task, model, seq_len = setup(args)
    if args.compile == "auto":
        # what TrainConfig(compile="auto") picks for a long run (this benchmark's few hundred steps
        # would otherwise stay eager): CUDA graphs for fixed-shape tasks on CUDA, eager on a CPU
        long_run = TrainConfig(steps=AUTO_COMPILE_STEPS, batch_size=args.batch_size, compile="auto")
        compile_ = compile_mode(long_run, device, task) or False
    else:
        compile_ = COMPILE_FLAGS[args.compile]
    load_before = os.getloadavg()
    refs, ours_runs, losses = [], [], []
    for _ in range(args.repeats):      # alternate, so a change of machine load hits both loops alike
        rate, ref_loss = reference_loop(copy.deepcopy(model), task, args.steps, args.warmup, args.batch_size,
                                        args.lr, device)
        refs.append(rate)
        rate, our_loss, amp, used = trainer_rate(copy.deepcopy(model), task, args.steps, args.warmup, args.batch_size,
                                      args.lr, device, compile_)
        ours_runs.append(rate)
        losses.append((ref_loss, our_loss))
    ref, ours = max(refs), max(ours_runs)
    load_after = os.getloadavg()

    print(f"hardware : {env.hardware(device)}; torch {torch.__version__}; {torch.get_num_threads()} threads")
    print(f"load avg : {load_before[0]:.2f} before, {load_after[0]:.2f} after (1-minute)")
    print(f"setup    : backbone {name} ({args.init}), task {task.name} [{task.data_source}], "
          f"{seq_len} tokens, batch {args.batch_size}, {args.steps} timed steps after {args.warmup} warm-up")
    print(f"trainer  : amp {amp}, compile {used} "
          f"(--compile {args.compile})")
    print()
    print("| loop | samples/s | ms/step |")
    print("|---|---|---|")
    for label, rate in (("reference (authors' style: fp32, NumPy batches, sync every step)", ref),
                        ("fptlib Trainer", ours)):
        print(f"| {label} | {rate:.1f} | {1000 * args.batch_size / rate:.1f} |")
    print(f"\nratio Trainer / reference: {ours / ref:.2f}x (best of {args.repeats} alternating runs each; "
          f"all runs: reference {', '.join(f'{r:.1f}' for r in refs)}, Trainer {', '.join(f'{r:.1f}' for r in ours_runs)})")
    print(f"training loss (sanity: both finite and alike): reference {losses[-1][0]:.3f} (last step), "
          f"Trainer {losses[-1][1]:.3f} (mean of the timed steps)")
    if not all(map(math.isfinite, (x for pair in losses for x in pair))):
        print("FAILED: a training loss was not finite")
        return 1
    peak = peak_flops(device)
    if device.type == "cuda":
        flops = model_flops_per_sample(model, seq_len)
        for label, rate in (("reference", ref), ("Trainer", ours)):
            mfu = f"{100 * flops * rate / peak:.1f}%" if peak else "peak unknown for this card"
            print(f"MFU {label}: {mfu} ({flops * rate / 1e12:.2f} TFLOP/s model FLOPs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
