"""Trivial baselines are computed from each split's data."""
import json

import numpy as np
import pytest
import torch

from fptlib.tasks.base import Batch, Task
from fptlib.tasks.baselines import baselines, chance, copy_query, majority, pixel_logistic_regression
from fptlib.tasks.bits import BitMemory, BitXOR


class Fixed(Task):
    """A hand-made task: the given labels, one example each, features that reveal them or not."""

    name, input_kind, token_dim, max_len, output_dim = "fixed", "continuous", 4, 1, 3

    def __init__(self, labels, informative=True, train=None):
        self.labels = torch.tensor(labels)
        self.train = torch.tensor(train if train is not None else labels)
        gen = torch.Generator().manual_seed(0)
        noise = torch.randn(len(labels), 4, generator=gen)
        self.x = noise + (3 * torch.nn.functional.one_hot(self.labels, 4).float() if informative else 0)
        self.image_size = 2          # treated as an image task (pixel baseline applies)

    def eval_batches(self, split, batch_size, device, limit=None):
        self.check_split(split)
        labels = self.train if split == "train" and len(self.train) == len(self.labels) else self.labels
        n = len(labels) if limit is None else min(limit, len(labels))
        for i in range(0, n, batch_size):
            yield Batch(self.x[i:min(n, i + batch_size)], labels[i:min(n, i + batch_size)])


def test_majority_is_the_share_of_the_most_common_class_of_the_split():
    task = Fixed([0, 1, 1, 2, 1, 0, 1, 1])
    b = majority(task, "test")
    assert b.accuracy == pytest.approx(5 / 8) and "class 1" in b.how
    assert chance(task).accuracy == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="no split"):
        majority(task, "nope")


def test_majority_class_is_chosen_on_the_training_split_never_on_test():
    """Train mostly class 2, test mostly class 1: the constant is class 2, scored on test (1/8),
    not the test split's own most common class (5/8)."""
    task = Fixed([0, 1, 1, 2, 1, 0, 1, 1], train=[2, 2, 2, 0, 1, 2, 2, 2])
    b = majority(task, "test")
    assert b.accuracy == pytest.approx(1 / 8) and "class 2" in b.how and "training split" in b.how


def test_bit_tasks_chance_is_per_bit_and_majority_near_half():
    task = BitXOR(n=5, eval_size=2000)
    assert chance(task).accuracy == 0.5
    assert 0.47 < majority(task).accuracy < 0.53


def test_bit_memory_copy_baseline_is_about_75_percent_at_mask_half():
    task = BitMemory(n_bits=100, n_patterns=5, patch=10, mask_p=0.5, eval_size=200)
    assert copy_query(task).accuracy == pytest.approx(0.75, abs=0.01)
    none_masked = BitMemory(n_bits=100, n_patterns=5, patch=10, mask_p=0.0, eval_size=50)
    assert copy_query(none_masked).accuracy == 1.0
    assert [b.name for b in baselines(task)] == ["chance", "majority class", "copy the visible bits"]


def test_pixel_logistic_regression_learns_informative_pixels_only():
    labels = [i % 3 for i in range(300)]
    good = pixel_logistic_regression(Fixed(labels), n_train=300)
    bad = pixel_logistic_regression(Fixed(labels, informative=False), n_train=300)
    assert good.accuracy > 0.9 and bad.accuracy < good.accuracy
    assert [b.name for b in baselines(Fixed(labels))][-1] == "pixel logistic regression"


def test_real_offline_digits_get_every_baseline_from_their_split():
    from fptlib import tasks
    task = tasks.get("digits")
    found = {b.name: b for b in baselines(task)}
    assert set(found) == {"chance", "majority class", "pixel logistic regression"}
    assert 0.1 <= found["majority class"].accuracy < 0.2
    assert found["pixel logistic regression"].accuracy > 0.8       # 8x8 digits are nearly linearly separable


def test_a_logistic_regression_stopped_early_says_so_instead_of_warning(recwarn):
    from fptlib.tasks import baselines as b
    labels = [i % 3 for i in range(300)]
    old, b.LOGREG_ITERATIONS = b.LOGREG_ITERATIONS, 1
    try:
        base = pixel_logistic_regression(Fixed(labels, informative=False), n_train=300)
    finally:
        b.LOGREG_ITERATIONS = old
    assert "stopped at 1 iterations before converging" in base.how
    assert not [w for w in recwarn if "converge" in str(w.message)]


def test_the_pixel_regression_is_read_back_from_the_cache_for_the_same_tensors_only(tmp_path, monkeypatch):
    from fptlib.tasks import baselines as b
    monkeypatch.setenv("FPT_DATA_DIR", str(tmp_path))
    labels = [i % 3 for i in range(300)]
    first = pixel_logistic_regression(Fixed(labels), n_train=300)
    assert (tmp_path / "cache" / "pixel-logreg.json").is_file()

    def no_fit(*args, **kw):
        raise AssertionError("fitted again")
    monkeypatch.setattr(b, "_fit_logreg", no_fit)
    again = pixel_logistic_regression(Fixed(labels), n_train=300)
    assert again == first                                   # same accuracy, same words
    with pytest.raises(AssertionError, match="fitted again"):      # other pixels: another key
        pixel_logistic_regression(Fixed(labels, informative=False), n_train=300)
    with pytest.raises(AssertionError, match="fitted again"):      # other settings: another key
        pixel_logistic_regression(Fixed(labels), n_train=300, seed=1)
    with pytest.raises(AssertionError, match="fitted again"):      # the cache turned off
        pixel_logistic_regression(Fixed(labels), n_train=300, cache=False)


def test_a_broken_cache_file_is_fitted_again_and_rewritten(tmp_path, monkeypatch):
    monkeypatch.setenv("FPT_DATA_DIR", str(tmp_path))
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "pixel-logreg.json").write_text("{not json")
    labels = [i % 3 for i in range(300)]
    base = pixel_logistic_regression(Fixed(labels), n_train=300)
    assert base.accuracy > 0.9
    assert json.loads((tmp_path / "cache" / "pixel-logreg.json").read_text())


def test_the_logistic_regression_is_the_same_whatever_the_blas_thread_count():
    """nbval compares the fitted baseline's number: it must not move with the machine's threads. The
    fit runs on one BLAS thread whatever the caller set, to a tolerance where the predictions settle."""
    import threadpoolctl
    from fptlib.tasks import baselines as b
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 40))
    y = (x[:, :3] @ np.array([1.0, -2.0, 0.5]) + 0.8 * rng.normal(size=600) > 0).astype(int)
    seen = []
    for threads in (1, 2):
        with threadpoolctl.threadpool_limits(limits=threads):
            clf, stopped = b.fit_logistic_regression(x, y)
            inside = threadpoolctl.threadpool_info()
        seen.append((clf.coef_.copy(), clf.predict(x), stopped))
        assert all(p["num_threads"] == threads for p in inside if p["user_api"] == "blas")   # restored after
    assert np.array_equal(seen[0][1], seen[1][1]) and np.allclose(seen[0][0], seen[1][0], atol=1e-9)
    assert not seen[0][2] and clf.tol == b.LOGREG_TOL and clf.n_iter_[0] < b.LOGREG_ITERATIONS
