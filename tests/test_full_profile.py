"""Every configuration of every table at the ``full`` profile, executed for two steps on this CPU.

A GPU user's first long run must not die on a path never run. So each full config goes through
the real ``experiments.train`` (build, Trainer or feature cache, evaluation, checkpoint, record)
with only two swaps:

- the backbone: a tiny random config of the SAME family (``TINY_OVERRIDES``: 2 blocks, width 32,
  or as many blocks as the config keeps with ``layers``); "pretrained" and "statistics" need the
  real weights, so those runs are built from the random config instead; "bit-memory" runs its
  pretraining (shrunk the same way) and loads it, as on a GPU;
- the data: small fixture files in the real formats under ``$FPT_DATA_DIR`` (LRA's ListOps TSV,
  CIFAR-10's python pickle, MNIST's idx, TAPE's lmdb) and, for image tasks, validation and test
  splits small enough for them (``n_val``/``n_test``).

Steps become 2, with one evaluation (on at most ``EVAL_LIMIT`` examples); batch sizes, learning
rates, freezing, task options and everything else stay the full profile's. About 22 CPU-seconds
here before the tables carried seeds; now about 42 s for 138 distinct runs (the first seed of
each setting: the others take the same path; ViT, T5 and Longformer rows included).
"""
import dataclasses
import math
import struct

import numpy as np

from fptlib import experiments
from fptlib.backbones.registry import KNOWN
from fptlib.tasks import listops
from test_tasks_homology import record, write_lmdb
from test_tasks_images import write_cifar
from test_train_toy import one_thread  # noqa: F401

EVAL_LIMIT = 8
# a tiny random config per family (depth set separately): the same architecture, far smaller
_BERT_LIKE = {"hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 64}
TINY_OVERRIDES = {
    "gpt2": ({"n_embd": 32, "n_head": 2}, "n_layer"),
    "bert": (_BERT_LIKE, "num_hidden_layers"),
    "vit": (_BERT_LIKE, "num_hidden_layers"),
    "llama": ({**_BERT_LIKE, "num_key_value_heads": 1}, "num_hidden_layers"),
    "longformer": ({**_BERT_LIKE, "attention_window": 4}, "num_hidden_layers"),
    "t5": ({"d_model": 32, "d_kv": 16, "num_heads": 2, "d_ff": 64}, "num_layers"),
}
IMAGE_SPLITS = {"cifar10": {"n_val": 10}, "cifar10-lra": {"n_val": 10}, "mnist": {"n_val": 10},
                "fashion-mnist": {"n_val": 10}}


def write_idx(path, array):
    """An IDX file (MNIST's format): magic, dimensions, then uint8 data."""
    array = np.asarray(array, np.uint8)
    path.write_bytes(struct.pack(">HBB", 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
                     + array.tobytes())


def write_fixtures(root):
    """Small files in each full task's real format (random contents: a format check, not the data)."""
    rng = np.random.default_rng(0)
    write_cifar(root / "cifar-10-batches-py", n=20)
    for name in ("MNIST", "FashionMNIST"):
        raw = root / name / "raw"
        raw.mkdir(parents=True)
        for split, n in (("train", 40), ("t10k", 20)):
            write_idx(raw / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
            write_idx(raw / f"{split}-labels-idx1-ubyte", np.arange(n) % 10)
    folder = root / "lra_release" / "listops-1000"
    folder.mkdir(parents=True)
    rows = [("( [MAX 2 9 ( [MIN 4 7 ] ) 0 ] )", 9), ("( [MIN 3 ( [MAX 1 8 ] ) 5 ] )", 3),
            ("( [SM 4 5 ] )", 9), ("( [MED 1 2 7 ] )", 2)] * 4
    for fname in listops.LRA_FILES.values():
        listops.write_tsv(folder / fname, rows)
    write_lmdb(root, rows=lambda split: [record(i, "MKVLAGSHMDE"[: 4 + i], i % 3) for i in range(8)])


def tiny(cfg: experiments.RunConfig) -> experiments.RunConfig:
    """``cfg`` with a tiny random backbone of its family, two steps and small evaluations."""
    changes = dict(steps=2, eval_every=2, eval_limit=EVAL_LIMIT)
    depth = max(2, cfg.layers or 0)
    if cfg.backbone == "lstm":
        changes.update(hidden_size=32)
    else:
        sizes, depth_field = TINY_OVERRIDES[KNOWN[cfg.backbone].family]
        changes.update(backbone_overrides=tuple(sorted({**sizes, depth_field: depth}.items())))
    if cfg.init in ("pretrained", "statistics"):
        changes.update(init="random")
    if cfg.task in IMAGE_SPLITS:
        changes.update(task_options=tuple(sorted({**dict(cfg.task_options), **IMAGE_SPLITS[cfg.task]}.items())))
    return dataclasses.replace(cfg, **changes)


def full_configs():
    every = [c for name in experiments.names() for c in experiments.table(name, "full", backbone="gpt2")]
    first_seed = experiments.SEEDS["full"][0]      # the other seeds take the same path
    return every, {c.key: c for c in map(tiny, every) if c.seed == first_seed}


def test_every_full_profile_config_builds_and_takes_two_steps(tmp_path, monkeypatch):
    monkeypatch.setenv("FPT_DATA_DIR", str(tmp_path / "data"))
    write_fixtures(tmp_path / "data")
    pretraining = experiments.pretraining_config
    monkeypatch.setattr(experiments.catalogue, "pretraining_config", lambda cfg: tiny(pretraining(cfg)))

    every, runs = full_configs()
    assert {c.profile for c in every} == {"full"} and len(runs) > 50
    families = {KNOWN[c.backbone].family if c.backbone in KNOWN else c.backbone for c in runs.values()}
    assert {"gpt2", "bert", "lstm"} <= families
    for cfg in runs.values():
        assert cfg.profile == "full"
        try:
            record, _ = experiments.train(cfg, directory=tmp_path / "results", progress=False, device="cpu")
        except Exception as err:                               # name the config that failed
            raise AssertionError(f"{cfg.table} {cfg.row} / {cfg.column}: {cfg.describe()}: {err!r}") from err
        assert record["steps"] == 2, cfg.describe()
        assert all(math.isfinite(h["loss"]) for h in record["history"]), cfg.describe()
        assert record["final"], cfg.describe()
        if cfg.freeze == "output_only" and cfg.task not in ("bit-xor", "bit-memory"):
            assert "feature_cache" in record, cfg.describe()
