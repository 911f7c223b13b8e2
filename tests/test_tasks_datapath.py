"""The training data path never reads the device back: batch widths come from the CPU lengths."""
import itertools

import pytest
import torch

from fptlib.tasks import listops as lo
from fptlib.tasks.dataset import Split
from fptlib.tasks.images import ImageTask

HOST_READS = {"item", "__int__", "__index__", "__float__", "__bool__", "tolist", "cpu", "numpy"}


class DeviceOnly(torch.Tensor):
    """A tensor standing for one on a GPU: any read back to the host (a sync there) fails."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") in HOST_READS:
            raise AssertionError(f"the data path read a device tensor back to the host ({func.__name__})")
        return super().__torch_function__(func, types, args, kwargs or {})


def plain(t):
    return None if t is None else t.as_subclass(torch.Tensor)


@pytest.mark.parametrize("tokenization", ["paper", "corrected"])
def test_padded_batches_take_their_width_from_the_cpu_lengths(tmp_path, tokenization):
    opts = dict(n_train=64, n_val=16, n_test=16, min_length=10, max_length=60, data_dir=tmp_path,
                tokenization=tokenization)
    reference = lo.ListOps(**opts)
    expected = (list(itertools.islice(reference.train_batches(8, "cpu", seed=3), 12))
                + list(reference.eval_batches("val", 5, "cpu")))

    task = lo.ListOps(**opts)
    guarded = {name: Split(s.x, s.y, s.lengths.clone().as_subclass(DeviceOnly))
               for name, s in task.splits().items()}
    task.split = lambda name, device="cpu": guarded[name]
    got = (list(itertools.islice(task.train_batches(8, "cpu", seed=3), 12))
           + list(task.eval_batches("val", 5, "cpu")))
    assert len(got) == len(expected)
    for a, b in zip(expected, got):
        for u, v in ((a.x, b.x), (a.y, b.y), (a.mask, b.mask)):
            assert u.dtype == plain(v).dtype and torch.equal(u, plain(v))


def test_image_normalisation_is_built_once_per_device():
    task = ImageTask("digits", n_train=64)
    first = task._normalisation(torch.device("cpu"))
    batch = next(task.train_batches(8, "cpu", seed=0))
    assert batch.x.shape == (8, 16, 4)
    again = task._normalisation(torch.device("cpu"))
    assert all(a is b for a, b in zip(first, again))
    assert [t.tolist() for t in first] == [[[[[0.0]]]], [[[[1.0]]]]]
