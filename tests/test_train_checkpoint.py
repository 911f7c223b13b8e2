"""Checkpoints are plain data (loaded with weights_only=True); pickled code, empty files, folders,
other schemas and stale temporaries get clear errors; resume refuses any difference; Ctrl-C saves."""
import os
import signal
import time

import pytest
import torch

from fptlib.train import TrainConfig, Trainer
from fptlib.train import checkpoint as ckpt
from fptlib.train.checkpoint import CheckpointMismatch, TrainingInterrupted
from test_train_toy import ToyModel, ToyTask, one_thread  # noqa: F401


def _cfg(tmp_path, **kw):
    base = dict(steps=10, lr=3e-3, batch_size=8, eval_every=5, device="cpu", progress=False, log_every=5,
                checkpoint_dir=str(tmp_path))
    base.update(kw)
    return TrainConfig(**base)


class _Payload:
    """Unpickling this runs code: it creates the marker file."""
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_checkpoint_payload_is_plain_data_loadable_with_weights_only(tmp_path):
    Trainer(ToyModel(), ToyTask(), _cfg(tmp_path, steps=5)).fit()
    path = tmp_path / ckpt.CHECKPOINT_NAME
    saved = torch.load(path, map_location="cpu", weights_only=True)    # raises on anything not plain
    assert saved["step"] == 5 and isinstance(saved["rng"]["python"], dict)
    # and the RNG states round-trip exactly
    import random

    import numpy as np
    before = ckpt.rng_state()
    a = (random.random(), np.random.rand(), torch.rand(1))
    ckpt.set_rng_state(before)
    assert (random.random(), np.random.rand()) == a[:2] and torch.equal(torch.rand(1), a[2])


def test_saving_something_not_plain_is_refused_naming_it(tmp_path):
    with pytest.raises(TypeError, match=r"rng\.numpy.*ndarray"):
        ckpt.atomic_save({"rng": {"numpy": __import__("numpy").zeros(3)}}, tmp_path / "c.pt")
    assert not (tmp_path / "c.pt").exists()


def test_a_pickled_payload_in_a_checkpoint_is_refused_without_running(tmp_path):
    marker = tmp_path / "marker"
    torch.save({"format": 1, "step": 3, "evil": _Payload(marker)}, tmp_path / ckpt.CHECKPOINT_NAME)
    with pytest.raises(ValueError) as err:
        Trainer(ToyModel(), ToyTask(), _cfg(tmp_path)).fit()
    assert not marker.exists()
    msg = str(err.value)
    assert str(tmp_path / ckpt.CHECKPOINT_NAME) in msg and "not plain data" in msg and "delete" in msg


@pytest.mark.parametrize("kind", ["empty", "directory", "garbage", "schema", "list"])
def test_unusable_checkpoints_name_the_path_and_the_fix(tmp_path, kind):
    path = tmp_path / ckpt.CHECKPOINT_NAME
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "directory":
        path.mkdir()
    elif kind == "garbage":
        path.write_bytes(b"\x00not a torch file" * 10)
    elif kind == "schema":
        torch.save({"weights": torch.zeros(2)}, path)      # someone else's state dict
    else:
        torch.save([1, 2, 3], path)
    with pytest.raises(ValueError) as err:
        Trainer(ToyModel(), ToyTask(), _cfg(tmp_path)).fit()
    msg = str(err.value)
    assert str(path) in msg and ("delete" in msg or "remove" in msg), msg


def test_stale_temporary_checkpoints_are_removed_but_fresh_ones_kept(tmp_path):
    stale = tmp_path / ".checkpoint.pt.abc123.tmp"
    stale.write_bytes(b"half a checkpoint")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    fresh = tmp_path / ".checkpoint.pt.def456.tmp"      # another process may be writing it now
    fresh.write_bytes(b"being written")
    other = tmp_path / "notes.txt"
    other.write_text("mine")
    Trainer(ToyModel(), ToyTask(), _cfg(tmp_path, steps=5)).fit()
    assert not stale.exists() and fresh.exists() and other.exists()


def test_resume_past_the_requested_steps_is_refused(tmp_path):
    Trainer(ToyModel(), ToyTask(), _cfg(tmp_path, steps=10)).fit()
    with pytest.raises(CheckpointMismatch, match=r"step 10.*steps=6"):
        Trainer(ToyModel(), ToyTask(), _cfg(tmp_path, steps=6)).fit()


def test_resume_refuses_another_run_identity(tmp_path):
    """Settings outside the model and optimizer (the run's dropout, its data) travel in run_identity."""
    Trainer(ToyModel(), ToyTask(), _cfg(tmp_path, steps=5, run_identity={"dropout": 0.1})).fit()
    with pytest.raises(CheckpointMismatch, match=r"dropout: 0.1 in the checkpoint, 0.3 now"):
        Trainer(ToyModel(), ToyTask(), _cfg(tmp_path, steps=10, run_identity={"dropout": 0.3})).fit()


def test_fpt_dropout_is_part_of_the_model_identity():
    from fpt_testing import tiny_backbone

    from fptlib.model import FPT
    a = FPT(tiny_backbone("gpt2"), token_dim=2, output_dim=2, dropout=0.1).config_dict()
    b = FPT(tiny_backbone("gpt2"), token_dim=2, output_dim=2, dropout=0.3).config_dict()
    assert a != b and a["dropout"] == 0.1


class _InterruptingTask(ToyTask):
    """Sends this process SIGINT while the batch of step ``at`` is being made."""
    def __init__(self, at):
        super().__init__()
        self.at = at

    def train_batches(self, batch_size, device, seed, start_step=0):
        for i, b in enumerate(super().train_batches(batch_size, device, seed, start_step), start_step):
            if i == self.at:
                os.kill(os.getpid(), signal.SIGINT)
            yield b


@pytest.fixture
def sigint_default():
    """Python's own SIGINT handler during the test: under nohup or in a background job SIGINT is
    ignored, and DeferredInterrupt rightly leaves an ignored SIGINT alone."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_saves_a_checkpoint_at_the_step_and_resumes_exactly(tmp_path, sigint_default):
    straight = ToyModel()
    Trainer(straight, ToyTask(), _cfg(tmp_path / "a", steps=12, eval_every=0, checkpoint_dir=None)).fit()
    with pytest.raises(TrainingInterrupted) as err:
        Trainer(ToyModel(), _InterruptingTask(7), _cfg(tmp_path / "b", steps=12, eval_every=0)).fit()
    assert isinstance(err.value, KeyboardInterrupt) and err.value.step == 8
    assert err.value.checkpoint == tmp_path / "b" / ckpt.CHECKPOINT_NAME and err.value.checkpoint.is_file()
    resumed = ToyModel()
    r = Trainer(resumed, ToyTask(), _cfg(tmp_path / "b", steps=12, eval_every=0)).fit()
    assert r.resumed_from == 8 and r.steps == 12
    for (n, a), (_, b) in zip(straight.named_parameters(), resumed.named_parameters()):
        assert torch.equal(a, b), n
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler     # handler restored
