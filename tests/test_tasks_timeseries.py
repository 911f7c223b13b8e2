"""Time-series tasks (UCR/UEA through aeon), GPT4TS's head and the scratch bodies (issue #27)."""
from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from fptlib import experiments, tasks
from fptlib.backbones.registry import load_backbone
from fptlib.backbones.scratch import ScratchBackbone
from fptlib.model import FPT
from fptlib.tasks import timeseries

TOY = """% a toy problem written in the archive's .ts format: 2 channels, unequal lengths
@problemName Toy
@timeStamps false
@missing false
@univariate false
@dimensions 2
@equalLength false
@classLabel true up down
@data
1.0,2.0,3.0,4.0,5.0:5.0,4.0,3.0,2.0,1.0:up
2.0,3.0,4.0,5.0:4.0,3.0,2.0,1.0:up
1.5,2.5,3.5,4.5,5.5,6.5:1.0,1.0,1.0,1.0,1.0,1.0:up
9.0,8.0,7.0,6.0,5.0:0.0,1.0,2.0,3.0,4.0:down
8.0,7.0,6.0,5.0:1.0,2.0,3.0,4.0:down
7.0,6.0,5.0,4.0,3.0,2.0:2.0,2.0,2.0,2.0,2.0,2.0:down
"""


@pytest.fixture(scope="module")
def vowels():
    return tasks.get("japanese-vowels")


@pytest.fixture
def archive(tmp_path, monkeypatch):
    """A data folder holding Toy in the archive's layout; the archive's server unreachable."""
    monkeypatch.setattr(timeseries, "reachable", lambda url, timeout=3.0: False)
    folder = tmp_path / timeseries.ARCHIVE_FOLDER / "Toy"
    folder.mkdir(parents=True)
    for split in ("TRAIN", "TEST"):
        (folder / f"Toy_{split}.ts").write_text(TOY)
    return tmp_path


def test_japanese_vowels_from_the_wheel_in_gpt4ts_patches(vowels):
    assert "aeon's wheel" in vowels.data_source
    splits = vowels.splits()
    # 270 train series: 54 carved for validation (20%, 6 per class), 370 test; 29 steps -> 27 tokens
    assert {k: tuple(v.x.shape) for k, v in splits.items()} == {
        "train": (216, 27, 48), "val": (54, 27, 48), "test": (370, 27, 48)}
    assert splits["val"].y.bincount().tolist() == [6] * 9
    assert vowels.model_kwargs()["head"] == "flatten" and vowels.output_dim == 9
    x, _ = vowels.arrays("train")
    assert x.shape == (216, 12, 29)
    real = x[:, 0][x[:, 0] != 0]                       # standardised on train's real steps
    assert abs(real.mean()) < 0.05 and abs(real.std() - 1) < 0.05
    assert (x[:, :, -1] == 0).any()                    # shorter series zero-padded at the end


def test_a_second_set_ships_offline():
    task = tasks.get("basic-motions")
    assert "aeon's wheel" in task.data_source
    assert (task.token_dim, task.max_len, task.output_dim) == (24, 98, 4)


def test_patches_are_gpt4ts_windows_with_channels_in_one_token():
    x = torch.tensor([[[1.0, 2.0, 3.0], [10.0, 20.0, 30.0]]])         # [1 series, 2 channels, 3 steps]
    tokens = timeseries.patches(x, patch_len=2, stride=1)
    # replication pad by one step: 1 2 3 3 / 10 20 30 30; windows of 2 every step, (p m) order
    assert tokens.tolist() == [[[1, 10, 2, 20], [2, 20, 3, 30], [3, 30, 3, 30]]]


def test_archive_path_parses_a_ts_file_through_aeon(archive):
    task = tasks.get("ucr-uea", dataset="Toy", source="archive", data_dir=str(archive), val_fraction=0.4)
    assert "load_classification" in task.data_source
    assert task.classes == ["down", "up"] and task.length == 6 and task.channels == 2
    assert task.max_len == 4 and task.token_dim == 8         # (6 + 1 - 4) // 1 + 1 patches of 4 steps x 2
    x, y = task.arrays("test")
    assert x.shape == (6, 2, 6) and sorted(y.tolist()) == [0, 0, 0, 1, 1, 1]
    assert len(task.splits()["val"]) == 3 and len(task.splits()["train"]) == 3
    assert sorted(task.splits()["val"].y.tolist() + task.splits()["train"].y.tolist()) == [0, 0, 0, 1, 1, 1]


def test_missing_problem_and_missing_aeon_say_how_to_fix(archive, monkeypatch):
    with pytest.raises(FileNotFoundError, match="Nowhere_TRAIN.ts and Nowhere_TEST.ts"):
        tasks.get("ucr-uea", dataset="Nowhere", data_dir=str(archive))
    with pytest.raises(ValueError, match="unknown time-series source 'web'"):
        tasks.get("ucr-uea", dataset="Toy", source="web", data_dir=str(archive))
    monkeypatch.setitem(sys.modules, "aeon.datasets", None)
    with pytest.raises(ImportError, match=r"pip install aeon"):
        tasks.get("ucr-uea", dataset="Toy", source="archive", data_dir=str(archive))


def test_flatten_head_is_gpt4ts_and_counted(vowels):
    model = FPT.for_task(vowels, load_backbone("minilm", layers=6))
    assert model.backbone.num_layers == 6
    batch = next(vowels.train_batches(4, "cpu", 0))
    assert model(batch.x).shape == (4, 9)
    head = model.output
    assert [type(m).__name__ for m in head] == ["GELU", "Flatten", "LayerNorm", "Linear"]
    rows = {g: (total, trained) for g, total, trained in model.describe().rows}
    width = 27 * 384
    assert rows["output"] == (2 * width + width * 9 + 9,) * 2
    assert rows["attention"][1] == 0 and rows["feedforward"][1] == 0 and rows["positions"][1] > 0
    assert "GPT4TS's head" in str(model.describe())
    with pytest.raises(ValueError, match="flattens exactly max_len=27 tokens"):
        model(batch.x[:, :20])
    with pytest.raises(ValueError, match="head='flatten'"):
        FPT(model.backbone, output_dim=3, token_dim=4, head="flatten")


def test_scratch_bodies():
    none = load_backbone("none", init="random", hidden_size=32)
    x = torch.randn(2, 5, 32)
    assert torch.equal(none(x).hidden, x) and not list(none.parameters())
    attn = load_backbone("one-attention", init="random", hidden_size=24)
    out = attn(x[..., :24], output_attentions=True)
    assert out.hidden.shape == (2, 5, 24) and out.attentions[0].shape == (2, 12, 5, 5)
    assert set(attn.parameter_groups().values()) == {"positions", "attention"}
    with pytest.raises(ValueError, match="no layers to keep"):
        load_backbone("one-attention", layers=2)
    with pytest.raises(ValueError, match="unknown body"):
        ScratchBackbone("two-attention", 24)


def test_timeseries_run_set_rows():
    configs = experiments.table("timeseries", "evidence", backbone="minilm")
    rows = {c.row for c in configs}
    assert len(rows) == 6 and len(configs) == 6 * 2 * 3
    gpt4ts = [c for c in configs if c.row.startswith("GPT4TS")]
    assert {(c.backbone, c.init, c.freeze, c.layers) for c in gpt4ts} == {("minilm", "pretrained", "fpt", 6)}
    scratch = {c.backbone: c.hidden_size for c in configs if c.backbone in ("none", "one-attention")}
    assert scratch == {"none": 384, "one-attention": 384}


def test_classical_baselines_fit_on_train_only(vowels):
    out = timeseries.classical(vowels, rocket=False)
    assert out["majority class"]["test"] < 0.2          # 9 classes
    assert out["logistic regression"]["test"] > 0.8
    assert np.isclose(out["majority class"]["val"], 1 / 9)
