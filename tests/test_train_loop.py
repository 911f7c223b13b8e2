"""The one training loop (fptlib/train/loop.py) keeps every promise for a pack as for a run alone.

- Ctrl-C finishes the step, saves a checkpoint and raises TrainingInterrupted with the step and
  the checkpoint (the command line turns it into "resume with: ..."); a second Ctrl-C (a
  KeyboardInterrupt in the middle of a step) names the last checkpoint written.
- A run or a pack killed at any point (before its first checkpoint, after runs left the pack,
  during the final evaluation, after ``fit`` while its records are written) resumes from its
  checkpoint and ends bit-identical to the uninterrupted one: every trained parameter equal
  (torch.equal), every metric and history entry equal (only the wall-clock times differ).
- A checkpoint written before the loop saved its log window still resumes.
"""
import ast
import os
import signal
from pathlib import Path

import pytest
import torch

from fpt_testing import tiny_backbone
from fptlib import cli, tasks
from fptlib.model import FPT
from fptlib.train import TrainConfig, Trainer, TrainingInterrupted
from fptlib.train import checkpoint as ckpt
from fptlib.train.packed import PackedTrainer
from test_train_toy import ToyModel, ToyTask, one_thread  # noqa: F401

TRAIN = Path(__file__).resolve().parent.parent / "fptlib" / "train"


class Killed(Exception):
    """A process killed (the exception stands for the kill; nothing after it runs)."""


class Faulty:
    """The task, but when the training stream of ``seed`` (any seed: None) makes the batch of
    step ``at`` (0-based), it raises Killed ("kill"), sends this process SIGINT ("sigint": Ctrl-C)
    or raises KeyboardInterrupt ("keyboard": a second Ctrl-C, in the middle of a step)."""

    def __init__(self, task, at, what="kill", seed=None):
        self._task, self._at, self._what, self._seed = task, at, what, seed

    def __getattr__(self, name):
        return getattr(self._task, name)

    def train_batches(self, batch_size, device, seed, start_step=0):
        for step, batch in enumerate(self._task.train_batches(batch_size, device, seed, start_step), start_step):
            if step == self._at and self._seed in (None, seed):
                if self._what == "sigint":
                    os.kill(os.getpid(), signal.SIGINT)
                else:
                    raise Killed if self._what == "kill" else KeyboardInterrupt
            yield batch


@pytest.fixture
def sigint_default():
    """Python's own SIGINT handler (under nohup SIGINT is ignored, and DeferredInterrupt leaves it so)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def _killed_in_final_evaluation(monkeypatch, engine):
    """The third evaluation of these runs is the final one (after steps 10 and 20): kill there."""
    real, calls = engine.evaluate_runs, [0]

    def evaluate_runs(self, indices):
        calls[0] += 1
        if calls[0] == 3:
            raise Killed
        return real(self, indices)
    monkeypatch.setattr(engine, "evaluate_runs", evaluate_runs)


def _comparable(result) -> dict:
    """A result without its wall-clock times, where it resumed from and its checkpoint folder."""
    d = result.to_dict()
    for key in ("wall_s", "train_s", "resumed_from"):
        d.pop(key)
    d["config"].pop("checkpoint_dir")
    for entries in (d["history"], d["evals"]):
        for e in entries:
            e.pop("wall_s")
    return d


def _assert_identical(models_a, results_a, models_b, results_b):
    for a, b, ra, rb in zip(models_a, models_b, results_a, results_b):
        for (n, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
            assert torch.equal(p, q), n
        assert _comparable(ra) == _comparable(rb)


# -- packs --------------------------------------------------------------------------------------
def _bits():
    return tasks.get("bit-xor", n=5, eval_size=100)


def _pack_configs():
    """Run 2 stops at its target at step 10, run 1 at its steps at 15, run 0 goes on to 30;
    checkpoints every 5 steps, logs every 4, evaluations every 10; dropout on (RNG states matter)."""
    base = dict(batch_size=8, eval_every=10, checkpoint_every=5, log_every=4, eval_limit=100, device="cpu",
                progress=False)
    return [TrainConfig(steps=30, seed=0, lr=1e-3, **base), TrainConfig(steps=15, seed=1, lr=3e-3, **base),
            TrainConfig(steps=30, seed=2, lr=1e-3, optimizer="adamw", weight_decay=0.1, target_accuracy=0.01, **base)]


def _pack(task, folder):
    models = []
    for seed in (0, 1, 2):
        torch.manual_seed(seed)         # the trained parts from the run's seed, the backbone the same for all
        models.append(FPT.for_task(task, tiny_backbone("gpt2", seed=0, dropout=0.1), dropout=0.1))
    torch.manual_seed(123)              # another process state must not matter
    return models, PackedTrainer(models, task, _pack_configs(), checkpoint_dir=str(folder) if folder else None).fit()


@pytest.mark.parametrize("at", [3, 12, 17, 28, "final", "records"])
def test_a_pack_killed_at_any_point_resumes_to_the_uninterrupted_pack(tmp_path, monkeypatch, at):
    task = _bits()
    straight_models, straight = _pack(task, tmp_path / "straight")
    assert [r.stopped for r in straight] == ["steps", "steps", "target"] and straight[2].steps == 10
    folder = tmp_path / "killed"
    with monkeypatch.context() as patch, pytest.raises(Killed):
        if at == "final":
            _killed_in_final_evaluation(patch, PackedTrainer)
        if at == "records":         # fit ends; the first record is written, the process dies before the second
            for i, _ in enumerate(_pack(task, folder)[1]):
                if i == 1:
                    raise Killed
        _pack(task if isinstance(at, str) else Faulty(task, at), folder)
    models, resumed = _pack(task, folder)
    _assert_identical(straight_models, straight, models, resumed)
    expected = {3: None, 12: 10, 17: 15, 28: 25, "final": 30, "records": 30}[at]
    assert [r.resumed_from for r in resumed] == [expected] * 3


def test_ctrl_c_on_a_pack_saves_and_says_the_step_and_how_to_resume(tmp_path, sigint_default, capsys):
    task = _bits()
    straight_models, straight = _pack(task, tmp_path / "straight")
    folder = tmp_path / "pack"
    with pytest.raises(TrainingInterrupted) as err:     # Ctrl-C while run 1's batch of step 6 is made
        _pack(Faulty(task, 5, "sigint", seed=1), folder)
    assert isinstance(err.value, KeyboardInterrupt) and err.value.step == 6
    assert err.value.checkpoint == folder / ckpt.CHECKPOINT_NAME and err.value.checkpoint.is_file()
    assert "interrupted at step 6" in str(err.value) and "resumes from step 6" in str(err.value)
    assert "Ctrl-C: stopping after this step" in capsys.readouterr().err
    said = cli.interrupted_message(err.value, ["reproduce", "table1"])
    assert said == (f"interrupted at step 6; resume with: python -m fptlib reproduce table1 "
                    f"(checkpoint {err.value.checkpoint})")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler     # handler restored
    # step 6 is no logging step: the open log window was saved, so even the history is the same
    models, resumed = _pack(task, folder)
    _assert_identical(straight_models, straight, models, resumed)
    assert [r.resumed_from for r in resumed] == [6, 6, 6]


def test_a_second_ctrl_c_in_a_pack_names_the_last_checkpoint(tmp_path):
    task = _bits()
    straight_models, straight = _pack(task, tmp_path / "straight")
    folder = tmp_path / "pack"
    with pytest.raises(TrainingInterrupted) as err:     # mid-step: nothing saved now, the step-10 checkpoint stands
        _pack(Faulty(task, 12, "keyboard", seed=0), folder)
    assert err.value.step == 10 and err.value.checkpoint == folder / ckpt.CHECKPOINT_NAME
    models, resumed = _pack(task, folder)
    _assert_identical(straight_models, straight, models, resumed)
    with pytest.raises(TrainingInterrupted) as err:     # a pack without a checkpoint says so
        _pack(Faulty(task, 3, "keyboard"), None)
    assert err.value.checkpoint is None and "kept no checkpoint" in cli.interrupted_message(err.value, ["reproduce"])


def test_a_pack_checkpoint_without_a_log_window_still_resumes(tmp_path):
    """Checkpoints written before the loop saved its log window (always at a logged step) resume."""
    task = _bits()
    straight_models, straight = _pack(task, tmp_path / "straight")
    folder = tmp_path / "old"
    with pytest.raises(Killed):
        _pack(Faulty(task, 12), folder)
    path = folder / ckpt.CHECKPOINT_NAME
    saved = ckpt.load(path, required=PackedTrainer.CHECKPOINT_KEYS)
    del saved["window"]
    ckpt.atomic_save(saved, path)
    models, resumed = _pack(task, folder)
    _assert_identical(straight_models, straight, models, resumed)


def test_a_pack_stops_at_its_time_budget_with_a_checkpoint_and_final_evaluation(tmp_path):
    task = _bits()
    configs = [TrainConfig(steps=10**6, seed=s, batch_size=8, eval_every=0, eval_limit=100, time_budget_s=0.5,
                           device="cpu", progress=False) for s in (0, 1)]
    models = [FPT.for_task(task, tiny_backbone("gpt2", seed=0, dropout=0.0), dropout=0.0) for _ in configs]
    results = PackedTrainer(models, task, configs, checkpoint_dir=str(tmp_path)).fit()
    assert [r.stopped for r in results] == ["time", "time"] and 0 < results[0].steps == results[1].steps < 10**6
    assert all(r.evals[-1]["step"] == r.steps and r.final["val"]["examples"] == 100 for r in results)
    saved = ckpt.load(tmp_path / ckpt.CHECKPOINT_NAME, required=PackedTrainer.CHECKPOINT_KEYS)
    assert saved["step"] == results[0].steps and [run["stopped"] for run in saved["runs"]] == ["time", "time"]


# -- a run alone ----------------------------------------------------------------------------------
def _toy_config(folder, **kw):
    base = dict(steps=30, lr=3e-3, batch_size=8, eval_every=10, checkpoint_every=5, log_every=4, device="cpu",
                progress=False, checkpoint_dir=str(folder))
    return TrainConfig(**{**base, **kw})


def _alone(task, folder):
    model = ToyModel()
    torch.manual_seed(123)
    return [model], [Trainer(model, task, _toy_config(folder)).fit()]


@pytest.mark.parametrize("at", [3, 12, 28, "final", "records"])
def test_a_run_killed_at_any_point_resumes_to_the_uninterrupted_run(tmp_path, monkeypatch, at):
    straight_models, straight = _alone(ToyTask(), tmp_path / "straight")
    folder = tmp_path / "killed"
    with monkeypatch.context() as patch, pytest.raises(Killed):
        if at == "final":
            _killed_in_final_evaluation(patch, Trainer)
        if at == "records":
            _alone(ToyTask(), folder)
            raise Killed
        _alone(ToyTask() if isinstance(at, str) else Faulty(ToyTask(), at), folder)
    models, resumed = _alone(ToyTask(), folder)
    _assert_identical(straight_models, straight, models, resumed)
    assert resumed[0].resumed_from == {3: None, 12: 10, 28: 25, "final": 30, "records": 30}[at]


def test_ctrl_c_alone_resumes_with_the_same_history(tmp_path, sigint_default):
    straight_models, straight = _alone(ToyTask(), tmp_path / "straight")
    folder = tmp_path / "run"
    with pytest.raises(TrainingInterrupted) as err:
        _alone(Faulty(ToyTask(), 5, "sigint"), folder)
    assert err.value.step == 6 and err.value.checkpoint.is_file()
    models, resumed = _alone(ToyTask(), folder)
    _assert_identical(straight_models, straight, models, resumed)
    # a checkpoint without the log window (an older one, written at a logged step) resumes too
    with pytest.raises(Killed):
        _alone(Faulty(ToyTask(), 12), tmp_path / "old")
    path = tmp_path / "old" / ckpt.CHECKPOINT_NAME
    saved = ckpt.load(path)
    del saved["window"]
    ckpt.atomic_save(saved, path)
    models, resumed = _alone(ToyTask(), tmp_path / "old")
    _assert_identical(straight_models, straight, models, resumed)


# -- the shape of the code ----------------------------------------------------------------------
def test_train_files_and_functions_stay_small_and_keep_to_their_own_members():
    """No file in fptlib/train over 600 lines, no function over 60; no engine reaches into another
    class's private members (the packed trainer once called Trainer._nan_message)."""
    for path in sorted(TRAIN.glob("*.py")):
        text = path.read_text()
        assert len(text.splitlines()) <= 600, path.name
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                assert node.end_lineno - node.lineno + 1 <= 60, f"{path.name}: {node.name}"
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                owner = ast.unparse(node.value)
                assert owner in ("self", "cls") or owner.startswith("self."), f"{path.name}: {owner}.{node.attr}"
