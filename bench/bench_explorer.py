#!/usr/bin/env python
"""How long one explorer redraw takes at a given string length: ``render`` + PNG, as the widget does.

    python bench/bench_explorer.py --n 32 --backbone minilm --repeats 5

Builds the three explorer models' attentions on real backbone weights (the language-pretrained
backbone with untrained input/output layers for every panel: drawing time does not depend on
what the weights learned, so nothing is trained here), then times the widget's callback path,
``explorer.render(...)`` followed by ``explorer.figure_png(...)``, for a head change, a layer
change and the mean over heads. Prints a markdown table with the hardware and load average; the
results go in bench/RESULTS.md. The browser adds the PNG transfer and paint on top of this.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=32, help="bits per string (2n tokens)")
    ap.add_argument("--backbone", default="minilm")
    ap.add_argument("--examples", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    from fptlib import explorer as ex
    from fptlib.backbones.registry import load_backbone
    from fptlib.model import FPT
    from fptlib.tasks.bits import BitXOR

    task = BitXOR(n=args.n, eval_size=args.examples)
    model = FPT.for_task(task, load_backbone(args.backbone, dropout=0.0)).eval()
    models = ex.XorModels(args.n, {kind: model for kind in ex.KINDS})
    item = ex.xor_attention(models, examples=args.examples)
    data = {args.n: item}
    layer, head, _ = ex.default_head(item)
    heads = item.shape[2]
    settings = {
        "head change": [dict(layer=layer, head=(head + k) % heads) for k in range(args.repeats)],
        "layer change": [dict(layer=k % item.shape[0], head=head) for k in range(args.repeats)],
        "mean over heads": [dict(layer=layer, head=head, mean_heads=True)] * args.repeats,
    }
    ex.figure_png(ex.render(data, args.n))   # warm-up: fonts, caches
    load_before = os.getloadavg()[0]
    rows = []
    for what, runs in settings.items():
        times = []
        for s in runs:
            t = time.perf_counter()
            png = ex.figure_png(ex.render(data, args.n, **s))
            times.append(time.perf_counter() - t)
        rows.append((what, statistics.median(times), max(times), len(png)))
    load_after = os.getloadavg()[0]

    print(f"hardware : {platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads; "
          f"torch {torch.__version__}")
    print(f"load avg : {load_before:.2f} before, {load_after:.2f} after (1-minute)")
    print(f"setup    : backbone {args.backbone} ({item.shape[0]} layers x {item.shape[2]} heads), n={args.n} "
          f"({2 * args.n} tokens), {args.examples} examples, 3 panels, {args.repeats} redraws per row")
    print("\n| redraw | median s | max s | PNG bytes |\n|---|---|---|---|")
    for what, med, worst, size in rows:
        print(f"| {what} | {med:.3f} | {worst:.3f} | {size} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
