"""One epoch of output-only training: over cached frozen features vs through the frozen model.

    python bench/bench_features.py                       # MiniLM (offline), 32x32 images, 1024 examples
    python bench/bench_features.py --backbone gpt2 --task cifar10 --n-train 4096 --device cuda

Both sides train the same output layer (``freeze="output_only"``, same initial weights) for one
epoch (``n_train // batch_size`` steps) with the ordinary Trainer, evaluation off:

- uncached: ``Trainer(model, task)``: every step runs the input layer and the frozen backbone;
- cached: ``fit_output_only(model, task)``: one pass encodes every training example (timed
  separately, "caching pass"), then the epoch runs over the cache ("cached epoch").

The speed-up is uncached epoch / cached epoch (the paper reports 500-2000x for epochs after the
first); the caching pass costs about one uncached epoch, so the cache pays for itself from the
second epoch on. Record the output, with the machine and its load, in bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import copy
import os
import sys

import torch

from fptlib import env, tasks
from fptlib.backbones import load_backbone
from fptlib.model import FPT
from fptlib.train import TrainConfig, Trainer
from fptlib.train.features import fit_output_only


def pick_task(name: str | None, n_train: int):
    """The paper's 32x32 image setting (64 tokens): CIFAR-10 when present, else Fashion-MNIST
    padded to 32x32 (real images), else the 8x8 digits. Augmentation off on both sides."""
    sizes = dict(n_train=n_train, n_val=64, n_test=64, augment=False)
    if name:
        return tasks.get(name, **sizes)
    status = tasks.available()
    if status["cifar10"]["ready"]:
        return tasks.get("cifar10", **sizes)
    if status["fashion-mnist"]["ready"]:
        return tasks.get("fashion-mnist", image_size=32, patch_size=4, **sizes)
    return tasks.get("digits", **sizes)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbone", default="minilm")
    p.add_argument("--init", default="pretrained")
    p.add_argument("--task", default=None, help="an image task (default: CIFAR-10, else Fashion-MNIST, else digits)")
    p.add_argument("--n-train", type=int, default=1024, help="training examples (one epoch)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads on a CPU (default 1)")
    args = p.parse_args(argv)
    if args.device == "cpu":
        torch.set_num_threads(args.threads)

    task = pick_task(args.task, args.n_train)
    backbone = load_backbone(args.backbone, init=args.init)
    model = FPT.for_task(task, backbone, freeze="output_only")
    steps = len(task.splits()["train"]) // args.batch_size
    config = TrainConfig(steps=steps, batch_size=args.batch_size, eval_splits=(), device=args.device,
                         amp="off", compile=False, progress=False)

    load_before = os.getloadavg()
    cached_model = copy.deepcopy(model)
    uncached = Trainer(model, task, config).fit()
    cached = fit_output_only(cached_model, task, config)
    load_after = os.getloadavg()

    print(f"hardware : {env.hardware(args.device)}; torch {torch.__version__}; {torch.get_num_threads()} threads")
    print(f"load avg : {load_before[0]:.2f} before, {load_after[0]:.2f} after (1-minute)")
    print(f"setup    : backbone {args.backbone} ({args.init}), task {task.name} [{task.data_source}], "
          f"{task.max_len} tokens, output-only, one epoch = {steps} steps of {args.batch_size} "
          f"({steps * args.batch_size} examples), amp off, eager")
    print()
    print("| pass | seconds | ms/step |")
    print("|---|---|---|")
    for label, seconds in (("uncached epoch (frozen model every step)", uncached.train_s),
                           ("caching pass (once, every training example)", cached.feature_s),
                           ("cached epoch (output layer over the cache)", cached.train_s)):
        print(f"| {label} | {seconds:.3f} | {1000 * seconds / steps:.2f} |")
    print()
    speedup = uncached.train_s / cached.train_s
    print(f"speed-up of an epoch, cached vs uncached: {speedup:.0f}x (target >= 100x; the paper "
          f"reports 500-2000x)")
    print(f"verdict  : target {'met' if speedup >= 100 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
