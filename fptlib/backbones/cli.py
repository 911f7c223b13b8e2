"""``python -m fptlib backbones`` and ``python -m fptlib describe``."""
from __future__ import annotations

import json

from fptlib.backbones.families import FAMILIES
from fptlib.backbones.hub import BackboneUnavailable, hub_reachable
from fptlib.backbones.registry import INITS, KNOWN, load_backbone, pretrained_available
from fptlib.cli import positive_int
from fptlib.freeze import PRESETS
from fptlib.model import FPT


def register(sub) -> None:
    p = sub.add_parser("backbones", help="list the known backbones and whether each loads here now")
    p.add_argument("--json", action="store_true", help="one machine-readable object")
    p.set_defaults(func=cmd_backbones)

    p = sub.add_parser("describe", help="parameter counts per group, trainable or frozen")
    p.add_argument("--backbone", default="gpt2", help="a known name or a Hugging Face id/folder")
    p.add_argument("--init", default="pretrained", choices=INITS, help=" | ".join(INITS))
    p.add_argument("--preset", default="fpt", help=f"one of {', '.join(PRESETS)} or groups "
                   "joined by '+'")
    p.add_argument("--token-dim", type=positive_int, default=48,
                   help="size of a continuous token (default 48: CIFAR-10 4x4x3 patches)")
    p.add_argument("--vocab", type=positive_int, default=None,
                   help="discrete tokens: vocabulary size (replaces --token-dim; default: none, continuous tokens)")
    p.add_argument("--tokens", type=positive_int, default=64, help="sequence length (positions used)")
    p.add_argument("--classes", type=positive_int, default=10, help="logits per output token")
    p.add_argument("--output-tokens", type=positive_int, default=1, help="number of last tokens read")
    p.add_argument("--layers", type=positive_int, default=None, help="keep only the first k blocks (default: all)")
    p.add_argument("--extend-positions", action="store_true",
                   help="grow the backbone's positional table for --tokens longer than it")
    p.add_argument("--in-layers", type=int, nargs="+", default=[], metavar="WIDTH",
                   help="hidden widths of an MLP input head (default: one linear layer)")
    p.add_argument("--out-layers", type=int, nargs="+", default=[], metavar="WIDTH",
                   help="hidden widths of an MLP output head (default: one linear layer)")
    p.add_argument("--json", action="store_true", help="one machine-readable object")
    p.set_defaults(func=cmd_describe)


def cmd_backbones(args) -> int:
    online = hub_reachable()
    rows = []
    for known in KNOWN.values():
        ok, how = pretrained_available(known.name, check_hub=online)
        random_ok = bool(known.config) or known.name in ("lstm", "minilm", "smollm2")
        rows.append({"name": known.name, "family": known.family,
                     "description": known.description, "pretrained_loadable": ok,
                     "how": how, "random_init_offline": random_ok})
    if args.json:
        print(json.dumps({"hub_reachable": online, "backbones": rows}, indent=2))
        return 0
    print(f"Hugging Face hub reachable: {'yes' if online else 'no'}")
    print(f"{'name':<12} {'family':<10} {'pretrained':<10} {'random':<7} description / how")
    for r in rows:
        print(f"{r['name']:<12} {r['family']:<10} {'yes' if r['pretrained_loadable'] else 'no':<10} "
              f"{'yes' if r['random_init_offline'] else 'config':<7} {r['description']}")
        print(f"{'':<41} -> {r['how']}")
    print(f"Any Hugging Face model id or local folder of the {', '.join(FAMILIES)} families "
          f"also works.")
    return 0


def cmd_describe(args) -> int:
    note = None
    try:
        backbone = load_backbone(args.backbone, init=args.init, layers=args.layers)
    except BackboneUnavailable as err:
        if args.init != "pretrained":
            raise
        # Counting parameters needs only shapes: fall back to the same architecture, random init.
        backbone = load_backbone(args.backbone, init="random", layers=args.layers)
        note = (f"pretrained weights unavailable ({err}); counts below come from the same "
                f"architecture built from its config with random weights (identical shapes)")
    inputs = {"vocab_size": args.vocab} if args.vocab is not None else {"token_dim": args.token_dim}
    model = FPT(backbone, output_dim=args.classes, output_tokens=args.output_tokens,
                freeze=args.preset, max_len=args.tokens,
                extend_positions=args.extend_positions, in_layer_sizes=args.in_layers,
                out_layer_sizes=args.out_layers, **inputs)
    description = model.describe(seq_len=args.tokens)
    if args.json:
        data = description.to_dict()
        data["setting"] = {**inputs, "tokens": args.tokens, "classes": args.classes,
                           "output_tokens": args.output_tokens, "preset": model.freeze.name}
        if note:
            data["notes"].insert(0, note)
        print(json.dumps(data, indent=2))
    else:
        if note:
            print(f"note: {note}")
        print(description)
    return 0
