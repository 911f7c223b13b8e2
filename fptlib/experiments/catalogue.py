"""The paper's tables and the course's other run sets as configurations (the table catalogue).

Every table keeps the paper's protocol at every profile (its task in each column, or a stand-in
named in ``STAND_INS``; the column stays the paper's); labels the paper has no value for are
``VARIANTS`` (ListOps with brackets kept, output-only at other depths), and rows a profile cannot
run here are in ``NOT_RUN`` with the reason. ``table(name, profile)`` lists a table's runs, each
labelled with its row and column, once per seed of the profile. Where the paper's backbone
(GPT-2) cannot be loaded, the tables use the default backbone (``fptlib.backbones.default_backbone``)
and every record names the backbone it really used.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Callable

from fptlib import paper
from fptlib.backbones.registry import hidden_size_of, num_layers_of
from fptlib.experiments.settings import (EVIDENCE_TASKS, FULL_TRANSFORMER_LAYERS, LISTOPS_CORRECTED,
                                         LISTOPS_CORRECTED_OFFLINE_MAX_LEN, LR_GRID, LSTM_LR, QUICK_TASKS, SEEDS,
                                         FULL_TASKS, STAND_INS, TARGETS, TIMESERIES_LAYERS, TIMESERIES_TASK,
                                         RunConfig, check_profile, choose_profile, config, resolve_backbone)

def _base(column: str, profile: str, backbone: str, **changes) -> RunConfig:
    """A table column's run: :func:`config` for the column's task or its stand-in at ``profile``
    (``STAND_INS``); task options of the stand-in and of ``changes`` are merged."""
    task, stand_in = STAND_INS[profile].get(column, (column, {}))
    options = {**dict(stand_in.get("task_options") or {}), **dict(changes.pop("task_options", None) or {})}
    kw = {**stand_in, **changes}
    if options:
        kw["task_options"] = options
    return config(task, profile, backbone, **kw)


def _tasks(profile: str, quick: tuple[str, ...] = QUICK_TASKS,
           evidence: tuple[str, ...] = EVIDENCE_TASKS) -> tuple[str, ...]:
    return {"quick": quick, "evidence": evidence}.get(profile, FULL_TASKS)


# the quick profile keeps the notebooks' total CPU time small: the ablation tables use two tasks
QUICK_ABLATION_TASKS = ("bit-xor", "mnist")


def _label(cfg: RunConfig, table: str, row: str, column: str) -> RunConfig:
    return dataclasses.replace(cfg, table=table, row=row, column=column)


def _with_listops_variant(profile: str, columns, label: str = "listops"):
    """(paper column, label, changes) for each column; ListOps twice: the paper's tokenization
    (brackets dropped) and the corrected one (brackets kept), labelled ``VARIANTS``."""
    corrected = dict(task_options=LISTOPS_CORRECTED, extend_positions=True) if profile == "full" else \
        dict(task_options={**LISTOPS_CORRECTED, "max_len": LISTOPS_CORRECTED_OFFLINE_MAX_LEN})
    for t in columns:
        yield t, label if t == "listops" else t, {}
        if t == "listops":
            yield t, f"{label} (brackets kept)", corrected


def _lstm(cfg: RunConfig, **changes) -> RunConfig:
    """The paper's LSTM baseline in place of the transformer: as wide as the backbone it replaces
    (768 for GPT-2 small, 384 for MiniLM), lr 3e-4. The transformer's config overrides do not
    apply to it (the LSTM has no config), so they are left out of its settings and key."""
    width = hidden_size_of(cfg.backbone)
    width = None if width == 768 else width      # None: the LSTM's default, 768
    return dataclasses.replace(cfg, backbone="lstm", init="random", lr=LSTM_LR, hidden_size=width,
                               backbone_overrides=(), **changes)


# evidence: every offline column (the notebooks show each task's Table 1 cell)
TABLE1_EVIDENCE_TASKS = EVIDENCE_TASKS


def _table1(profile, bb):
    out = []
    for t, col, changes in _with_listops_variant(profile, _tasks(profile, evidence=TABLE1_EVIDENCE_TASKS)):
        base = _base(t, profile, bb, **changes)
        out.append(_label(base, "table1", "FPT", col))
        # "Full transformer": the same architecture, randomly initialised, every weight trained;
        # 3 blocks for CIFAR-10 and C10 LRA as the paper ran it
        full = dataclasses.replace(base, init="random", freeze="full", layers=FULL_TRANSFORMER_LAYERS.get(t))
        out.append(_label(full, "table1", "Full transformer", col))
        out.append(_label(_lstm(base, freeze="full"), "table1", "Full LSTM", col))
    return out


# the initialisation study (issue #12 a): Bit XOR, Bit Memory and one image task at evidence
INIT_EVIDENCE_TASKS = ("bit-memory", "bit-xor", "cifar10")


def _init(profile, bb):
    out = []
    for t in _tasks(profile, QUICK_ABLATION_TASKS, INIT_EVIDENCE_TASKS):
        base = _base(t, profile, bb)
        out.append(_label(base, "init", "language", t))
        out.append(_label(dataclasses.replace(base, init="random"), "init", "random", t))
        if t != "bit-memory":
            out.append(_label(dataclasses.replace(base, init="bit-memory"), "init", "Bit Memory pretrained", t))
        if profile == "full":    # ImageNet ViT-B/16 weights: a download (NOT_RUN says so offline)
            out.append(_label(_base(t, profile, "vit"), "init", "ViT", t))
        out.append(_label(dataclasses.replace(base, init="statistics"), "init", "statistics only", t))
    return out


def _architecture(profile, bb):
    base = _base("cifar10", profile, bb, init="random")
    return [_label(base, "architecture", "frozen random transformer", "cifar10"),
            _label(_lstm(base), "architecture", "frozen random LSTM", "cifar10")]


def _compute(profile, bb):
    out = []
    for t in _tasks(profile, QUICK_ABLATION_TASKS, INIT_EVIDENCE_TASKS):
        # the runs of table 1 / the init table; steps to reach TARGETS[t] are read from their evaluations
        base = dataclasses.replace(_base(t, profile, bb), target=TARGETS[t])
        out.append(_label(base, "compute", "language", t))
        out.append(_label(dataclasses.replace(base, init="random"), "compute", "random", t))
    return out


def _model_size(profile, bb):
    if profile == "full":
        t = "cifar10"
        sizes = (("small", "gpt2"), ("medium", "gpt2-medium"), ("large", "gpt2-large"))
        return [_label(_base(t, profile, name, init=init), "model_size", row, col)
                for row, name in sizes for col, init in (("language", "pretrained"), ("random", "random"))]
    # quick and evidence: depth of the offline backbone stands in for size (2, 4 and all of MiniLM's
    # 6 layers; "all" shares its run with the init table), on the CIFAR-10 column's stand-in
    t = "cifar10"
    out = []
    for row, k in (("small", 2), ("medium", 4), ("large", None)):
        for col, init in (("language", "pretrained"), ("random", "random")):
            out.append(_label(_base(t, profile, bb, init=init, layers=k), "model_size", row, col))
    return out


LADDER = (("output only", "output_only"), ("+ layer norm", "+layernorm"), ("+ input", "+input"),
          ("+ positions", "fpt"))


def _ladder(profile, bb):
    reported = paper.get("ladder").values     # the paper ran the random ladder on five tasks only
    out = []
    for t in _tasks(profile, QUICK_ABLATION_TASKS, ("bit-xor", "cifar10")):
        for init in ("pretrained", "random"):
            if f"{t} {init}" not in reported or (profile == "quick" and init == "random" and t != "bit-xor"):
                continue        # quick: the random ladder on Bit XOR only (the paper's starkest row)
            for col, preset in LADDER:
                cfg = _base(t, profile, bb, init=init, freeze=preset)
                out.append(_label(cfg, "ladder", f"{t} {init}", col))
    return out


def _layernorm(profile, bb):
    return [_label(_base("cifar10", profile, bb, init=init, freeze=preset), "layernorm", init, col)
            for init in ("pretrained", "random")
            for col, preset in (("layer norm frozen", "input+output+positions"), ("layer norm trained", "fpt"))]


def _more_than_fpt(profile, bb):
    rows = (("FPT", "fpt"), ("+ feed-forward", "+feedforward"), ("+ attention", "+attention"), ("+ both", "+both"))
    return [_label(_base(t, profile, bb, freeze=preset), "more_than_fpt", row, t)
            for t in _tasks(profile, QUICK_ABLATION_TASKS, ("cifar10",)) for row, preset in rows]


def _backbones(profile, bb):
    # offline: the default backbone in the row of its family (MiniLM is a small BERT, not GPT-2);
    # T5 and Longformer pretrained are downloads (NOT_RUN says so)
    names = (("GPT-2", "gpt2"), ("BERT", "bert-base"), ("T5", "t5"), ("Longformer", "longformer")) \
        if profile == "full" else ((("BERT" if bb in ("minilm", "bert-base") else "GPT-2"), bb),)
    columns = ("listops",) if profile == "quick" else ("cifar10", "listops")
    return [_label(_base(t, profile, name), "backbones", row, t) for row, name in names for t in columns]


def _depth(profile, bb):
    """ListOps with ``+layernorm`` at 1/2/6 blocks, and the output-only ("reservoir") rows at 1/2/6/12
    blocks (capped at the backbone's depth; the whole backbone's row is labelled by its real depth),
    pretrained and random; the ``+layernorm`` rows in both tokenizations (at evidence the paper's
    only, to fit the CPU budget: ``NOT_RUN`` says so); and C10 LRA output-only."""
    total = num_layers_of(bb)
    ln_depths = (1, 2) if profile == "quick" else tuple(k for k in (1, 2, 6) if k <= total)
    reservoir = tuple(k for k in (1, 2, 6, 12) if k < total) + (total,)
    if profile == "quick":
        reservoir = tuple(k for k in reservoir if k <= 2) + (total,)
    out = []
    for _, col_tok, changes in _with_listops_variant(profile, ("listops",), label=""):
        if changes and profile == "evidence":        # the brackets-kept twin rows: left out (NOT_RUN)
            continue
        for init in ("pretrained", "random"):
            col = f"{init}{col_tok}"
            for k in ln_depths:
                out.append(_label(_base("listops", profile, bb, init=init, layers=k, freeze="+layernorm", **changes),
                                  "depth", f"{k} layer{'s' if k > 1 else ''}", col))
            for k in (reservoir if not changes else ()):     # reservoir rows: the paper's tokenization
                layers = None if k == total else k      # the whole backbone: its run in other tables
                out.append(_label(_base("listops", profile, bb, init=init, layers=layers, freeze="output_only",
                                        **changes), "depth", f"{k} layer{'s' if k > 1 else ''}, output only", col))
    for init in ("pretrained", "random"):
        out.append(_label(_base("cifar10-lra", profile, bb, init=init, freeze="output_only"),
                          "depth", "C10 LRA, output only", init))
    return out


CRITIQUE_ROWS = (("frozen random", "random", "fpt"), ("frozen pretrained", "pretrained", "fpt"),
                 ("unfrozen random", "random", "full"), ("unfrozen pretrained", "pretrained", "full"))
# quick: a short real sweep (a check that the grid runs); evidence and full: the profile's budget
CRITIQUE_QUICK = dict(steps=50, eval_every=25)
CRITIQUE_EVIDENCE_TASKS = ("listops", "cifar10")     # the budget: NOT_RUN names the others
CRITIQUE_EVIDENCE = dict(steps=400, eval_every=50)   # half the evidence budget per run, twice the runs


def _lr_critique(profile, bb):
    """Each (model, task) over the profile's learning-rate grid (``LR_GRID``) at batch 8, the
    critique's; the seeds come from :func:`table`. ``sweeps.select_by_validation`` chooses each
    setting's lr on mean validation accuracy over seeds."""
    columns = CRITIQUE_EVIDENCE_TASKS if profile == "evidence" else ("listops", "mnist", "cifar10", "cifar10-lra")
    extra = {"quick": CRITIQUE_QUICK, "evidence": CRITIQUE_EVIDENCE}.get(profile, {})
    return [_label(_base(t, profile, bb, init=init, freeze=preset, batch_size=8, lr=lr, **extra),
                   "lr_critique", row, t)
            for t in columns for row, init, preset in CRITIQUE_ROWS for lr in LR_GRID[profile]]


def _with_seeds(define: Callable[[str, str], list[RunConfig]]) -> Callable[[str, str], list[RunConfig]]:
    """A table definition whose every setting runs once per seed of the profile (``SEEDS``)."""
    @functools.wraps(define)
    def seeded(profile: str, backbone: str) -> list[RunConfig]:
        return [dataclasses.replace(c, seed=s) for c in define(profile, backbone) for s in SEEDS[profile]]
    return seeded


# The explorer's models (notebook 12, issue (g) of the evidence): Bit XOR at several string lengths,
# language-pretrained and random, the attention of whose heads the explorer shows. At n=5 these are
# the very runs of the init table (one key); longer strings get more steps and stop at 99% validation.
ATTENTION_LENGTHS = {"quick": (5, 8), "evidence": (5, 8, 16, 32), "full": (5, 16, 64, 256)}
ATTENTION_LONGER = {"evidence": dict(steps=1500, eval_every=100, target_accuracy=0.99)}
ATTENTION_INITS = ("pretrained", "random")


def attention_config(n_bits: int, init: str, profile: str | None = None, backbone: str | None = None,
                     **changes) -> RunConfig:
    """The Bit XOR run at string length ``n_bits`` whose attention the explorer shows."""
    profile = check_profile(profile or choose_profile()[0])
    longer = ATTENTION_LONGER.get(profile, {}) if n_bits != paper.BIT_XOR_BITS else {}
    labels = dict(table="attention", row=init, column=f"n={n_bits}")
    options = {"n": n_bits} if n_bits != paper.BIT_XOR_BITS else {}     # the profile's own run at 5 bits
    return config("bit-xor", profile, backbone, init=init, task_options=options, **{**labels, **longer, **changes})


def _attention(profile, bb):
    return [attention_config(n, init, profile, bb) for n in ATTENTION_LENGTHS[profile] for init in ATTENTION_INITS]


# Table 1's bit and image columns with each model's learning rate chosen on validation (issue #12, 2b):
# Table 1 keeps the paper's learning rates (1e-3 for transformers, 3e-4 for the LSTM); here each of its
# three rows sweeps the profile's grid (``LR_GRID``), the LSTM's with its paper rate added, and
# ``report.cells`` chooses each cell's lr on mean validation accuracy (``sweeps.select_by_validation``).
# The more-than-FPT rows (+ feed-forward, + attention, + both) join them in the columns that table runs
# (at evidence the image stand-in): at the paper's 1e-3 the runs that train every weight collapse, so
# "FPT beats + both" there says little until + both has its own learning rate. The runs at the paper's
# rates are Table 1's and the more-than-FPT table's own runs (one key).
TUNED_COLUMNS = ("bit-memory", "bit-xor", "cifar10")


def tuned_lrs(row: str, profile: str) -> tuple[float, ...]:
    """The learning rates a row of the ``tuned_lr`` run set sweeps at ``profile``."""
    grid = set(LR_GRID[profile])
    return tuple(sorted(grid | {LSTM_LR} if row == "Full LSTM" else grid))


def _tuned_lr(profile, bb):
    more = [c for c in _more_than_fpt(profile, bb) if c.row != "FPT"]      # FPT: Table 1's row, one key
    return [_label(dataclasses.replace(c, lr=lr), "tuned_lr", c.row, c.column)
            for c in _table1(profile, bb) + more if c.column in TUNED_COLUMNS for lr in tuned_lrs(c.row, profile)]


# The image stand-in trained for one epoch in the paper's token count (issue #24, item 6): the evidence
# profile's CIFAR-10 column runs Fashion-MNIST for 600 steps of 16 (about a sixth of an epoch) in 8x8
# patches (16 tokens); here 3,440 steps of 16 (one epoch of the 55,000 training images) in 4x4 patches of
# the 32x32 image: 64 tokens, as the paper's CIFAR-10. FPT (= "language"), its rivals of Table 1 and the
# initialisations; rows in the order they run (the language-vs-random pair first). ``target`` (a label):
# the evaluations give the steps to reach it beside the final accuracy. What it costs: bench/RESULTS.md,
# "Cost model measurements".
IMAGE_EPOCH = dict(task_options={"image_size": 32, "patch_size": 4}, steps=3440, eval_every=344, eval_limit=1000)
IMAGE_EPOCH_ROWS = (("language", "pretrained", "fpt"), ("random", "random", "fpt"),
                    ("Full transformer", "random", "full"), ("Full LSTM", "random", "full"),
                    ("statistics only", "statistics", "fpt"))


def _image_epoch(profile, bb):
    base = dataclasses.replace(_base("cifar10", profile, bb, **IMAGE_EPOCH), target=TARGETS["cifar10"])
    out = []
    for row, init, preset in IMAGE_EPOCH_ROWS:
        if row == "Full LSTM":
            cfg = _lstm(base, freeze="full")
        elif row == "Full transformer":
            cfg = dataclasses.replace(base, init=init, freeze=preset, layers=FULL_TRANSFORMER_LAYERS["cifar10"])
        else:
            cfg = dataclasses.replace(base, init=init, freeze=preset)
        out.append(_label(cfg, "image_epoch", row, "cifar10"))
        if row == "language":        # the same run is Table 1's FPT row
            out.append(_label(cfg, "image_epoch", "FPT", "cifar10"))
    return out


# A second backbone family (issue #24, item 7): the language-vs-random claims on Bit Memory, Bit XOR and
# ListOps again on SmolLM2-135M (LLaMA family, causal like GPT-2; MiniLM is a bidirectional BERT). At the
# evidence profile its first 6 of 30 layers (the CPU budget: each is about twice a MiniLM layer), said in
# every row's setting; at full, all 30. The columns' evidence settings otherwise, three seeds.
SECOND_BACKBONE = "smollm2"
SECOND_BACKBONE_LAYERS = {"quick": 2, "evidence": 6, "full": None}
# Bit XOR first: its runs are also notebook 12's causal models (one key), and the cheapest
SECOND_BACKBONE_TASKS = ("bit-xor", "bit-memory", "listops")


def _second_backbone(profile, bb):
    return [_label(_base(t, profile, SECOND_BACKBONE, init=init, layers=SECOND_BACKBONE_LAYERS[profile]),
                   "second_backbone", row, t)
            for t in SECOND_BACKBONE_TASKS for row, init in (("language", "pretrained"), ("random", "random"))]


# Beyond the paper (issue #27): One Fits All's (GPT4TS) time-series classification on UEA JapaneseVowels
TIMESERIES_ROWS = (
    ("GPT4TS: frozen, language-pretrained", None, "pretrained", "fpt", TIMESERIES_LAYERS),
    ("no language model", "none", "random", "full", None),
    ("one attention layer, from scratch", "one-attention", "random", "full", None),
    ("small transformer, fully trained", None, "random", "full", 2),
    ("frozen, random weights", None, "random", "fpt", TIMESERIES_LAYERS),
    ("one transformer block, from scratch", None, "random", "full", 1),
)   # in the order the evidence ran: cheapest of the claims' rows first (a shared CPU may stop it early)


def _timeseries(profile, bb):
    out = []
    for row, body, init, preset, layers in TIMESERIES_ROWS:
        width = hidden_size_of(bb) if body else None
        base = config(TIMESERIES_TASK, profile, body or bb, init=init, freeze=preset, layers=layers,
                      hidden_size=width)
        out += [_label(dataclasses.replace(base, lr=lr), "timeseries", row, TIMESERIES_TASK)
                for lr in LR_GRID[profile]]
    return out


TABLES: dict[str, Callable[[str, str], list[RunConfig]]] = {name: _with_seeds(define) for name, define in {
    "table1": _table1, "init": _init, "architecture": _architecture, "compute": _compute,
    "model_size": _model_size, "ladder": _ladder, "layernorm": _layernorm, "more_than_fpt": _more_than_fpt,
    "backbones": _backbones, "depth": _depth, "lr_critique": _lr_critique,
}.items()}
# run sets that are no table of the paper, which ``reproduce`` runs like one (the explorer's models;
# Table 1's bit columns with tuned learning rates; the time series; one epoch of the image stand-in;
# the language-vs-random claims on a second backbone family)
RUN_SETS: dict[str, Callable[[str, str], list[RunConfig]]] = {"attention": _with_seeds(_attention),
                                                                 "tuned_lr": _with_seeds(_tuned_lr),
                                                                 "timeseries": _with_seeds(_timeseries),
                                                                 "image_epoch": _with_seeds(_image_epoch),
                                                                 "second_backbone": _with_seeds(_second_backbone)}
# what a table leaves out at a profile, and why: (table, row or column label) -> reason
NOT_RUN: dict[str, dict[tuple[str, str], str]] = {
    **{p: {("init", "ViT"): "the ImageNet ViT-B/16 weights are a download (google/vit-base-patch16-224); "
                            "the full profile runs this row",
           ("backbones", "T5"): "pretrained T5 is a download (google-t5/t5-base); the full profile runs this row",
           ("backbones", "Longformer"): "pretrained Longformer is a download (allenai/longformer-base-4096); "
                                        "the full profile runs this row",
           ("backbones", "GPT-2"): "GPT-2 is a download; the offline backbone sits in the row of its family",
           **{(name, "homology"): "Remote Homology (TAPE) is a download; the full profile runs it"
              for name in ("table1", "init", "compute", "more_than_fpt")}}
       for p in ("quick", "evidence")},
    "full": {},
}
BUDGET = "left out at the evidence profile to fit about 6 hours of a 2-core CPU in all; the full profile runs it"
NOT_RUN["evidence"].update({
    ("lr_critique", "mnist"): BUDGET,
    ("lr_critique", "cifar10-lra"): BUDGET,
    **{("more_than_fpt", t): BUDGET for t in ("bit-memory", "bit-xor", "listops", "mnist", "cifar10-lra")},
    **{("depth", f"{init} (brackets kept)"): BUDGET + " (the paper's tokenization, brackets dropped, is run)"
       for init in ("pretrained", "random")},
    **{("ladder", row): BUDGET for row in paper.get("ladder").values
       if not row.startswith(("bit-xor ", "cifar10 ", "homology "))},
})


def not_run(name: str, profile: str) -> dict[str, str]:
    """Rows or columns of a table that ``profile`` leaves out, each with the reason."""
    name = canonical(name)
    return {label: why for (table_name, label), why in NOT_RUN[check_profile(profile)].items() if table_name == name}


ALIASES = {"table2": "init", "lstm-vs-transformer": "architecture", "steps": "compute",
           "param-groups": "ladder", "more-than-fpt": "more_than_fpt", "model-size": "model_size",
           "lr-critique": "lr_critique", "tuned-lr": "tuned_lr", "image-epoch": "image_epoch",
           "second-backbone": "second_backbone"}


def names(run_sets: bool = False) -> list[str]:
    """The paper's tables that ``reproduce`` knows; with ``run_sets``, also the other run sets."""
    return list(TABLES) + (list(RUN_SETS) if run_sets else [])


def canonical(name: str) -> str:
    name = ALIASES.get(name, name)
    if name not in TABLES and name not in RUN_SETS:
        raise ValueError(f"unknown experiment table {name!r}: known tables are {names()}, other run sets "
                         f"{list(RUN_SETS)} (aliases: {sorted(ALIASES)})")
    return name


def table(name: str, profile: str | None = None, backbone: str | None = None, **changes) -> list[RunConfig]:
    """The run configurations of a paper table at a profile (default: :func:`choose_profile`), each
    labelled with its row and column, once per seed of the profile (``SEEDS``: configs that differ
    only in ``seed`` are one setting's seeds). ``changes`` replace fields of every config (e.g.
    ``steps=50`` for a shorter smoke run; ``seed=`` keeps one seed; ``backbone_overrides`` apply to
    the transformer, not to the LSTM rows)."""
    profile = check_profile(profile or choose_profile()[0])
    name = canonical(name)
    configs = (TABLES.get(name) or RUN_SETS[name])(profile, resolve_backbone(backbone))
    lstm = {k: v for k, v in changes.items() if k != "backbone_overrides"}
    return [dataclasses.replace(c, **(lstm if c.backbone == "lstm" else changes)) for c in configs] \
        if changes else configs


def shipped_weights(profile: str, backbone: str | None = None) -> list[RunConfig]:
    """The runs whose trained weights the course commits (and its wheel ships), because notebook 12
    loads them: every seed of the explorer's models (``attention``) and its causal models (the Bit
    XOR runs of ``second_backbone``). Other runs' weights stay out of git (size)."""
    return table("attention", profile, backbone) + [c for c in table("second_backbone", profile, backbone)
                                                    if c.task == "bit-xor"]


def producing_command(config: RunConfig) -> str:
    """The ``reproduce`` command whose table or run set (at the run's profile and backbone)
    contains ``config``'s run, e.g. SmolLM2's first 6 layers on Bit XOR: ``second_backbone``."""
    for name in names(run_sets=True):
        if any(c.key == config.key for c in table(name, config.profile, config.backbone)):
            backbone = "" if name == "second_backbone" else f" --backbone {config.backbone}"
            return f"python -m fptlib reproduce {name} --profile {config.profile}{backbone}"
    return f"no table or run set holds run {config.key}: train it with experiments.run"


def pretraining_config(config: RunConfig) -> RunConfig:
    """The Bit Memory pretraining run a ``bit-memory`` init builds on: the same architecture,
    randomly initialised, every weight trained on Bit Memory (``experiments.ensure_pretraining``)."""
    base = _base("bit-memory", config.profile, config.backbone, init="random", freeze="full",
                 seed=config.seed, layers=config.layers, backbone_overrides=config.backbone_overrides,
                 dropout=config.dropout)
    return dataclasses.replace(base, table="init", row="Bit Memory pretraining", column="bit-memory")
