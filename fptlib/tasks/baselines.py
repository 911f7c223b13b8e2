"""Trivial baselines: what a model that learned nothing useful scores on a task's split.

Every table of the course shows these beside the runs, so that "72%" can be read against what a
constant or a linear read-out already gets. Each is computed from the split's data, never quoted:

* ``chance``: uniform guessing, 1 / classes (per bit for the bit tasks);
* ``majority``: the constant prediction of the training split's most common class, scored on this
  split (chosen on training labels, never on the test labels it is scored on);
* ``copy`` (Bit Memory): copy the visible bits of the masked query and guess the training split's
  most common bit where a bit is masked: about 75% at the paper's masking probability of 0.5, with
  no memory of the five strings at all;
* ``pixel logistic regression`` (image tasks): a linear classifier on the raw, normalised pixels
  (scikit-learn), trained on the first ``n_train`` training images.

The pixel regression takes seconds (about 13 on a 2-core CPU for 5,000 images), and every notebook
kernel that shows an image table asks for it again, so its result is kept in the data folder
(``cache/pixel-logreg.json``) under a hash of the very tensors it was fitted and scored on, its
settings and scikit-learn's version: a cached accuracy is the one the fit gives, never a stale one.
"""
from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from fptlib.tasks.base import Task
from fptlib.tasks.bits import BitMemory, BitTask

BATCH = 512
LOGREG_TRAIN = 5000      # training images for the pixel logistic regression (the 5k MNIST set: all)
# Fitted to a tight tolerance on one BLAS thread, so that the accuracy is the same on any machine: at
# scikit-learn's default tolerance (1e-4) lbfgs stopped after ~300 iterations at a point that moved with
# the BLAS thread count (Fashion-MNIST stand-in, 2,000 test images: 80.85% on 1 thread, 80.60% on 2);
# at 1e-6 it runs ~900 iterations to 80.95% on both (1e-7: 80.95% too), about 25 s on one thread.
LOGREG_TOL = 1e-6
LOGREG_ITERATIONS = 10_000   # a cap far above what LOGREG_TOL needs; reaching it is said in ``how``


# baselines that fit a model to the data: a reference to compare with, not a floor below which a
# run has learned nothing; ``stats.verdict`` names a side at or below either kind, and only the
# trivial ones (chance, majority, copying) mark a constant output as collapsed
FITTED = ("pixel logistic regression",)


@dataclass(frozen=True)
class Baseline:
    name: str
    accuracy: float          # fraction on ``split``
    split: str
    how: str


def _split_tensors(task: Task, split: str, limit: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    for batch in task.eval_batches(split, BATCH, "cpu", limit=limit):
        if batch.mask is not None:
            raise ValueError(f"{task.name}: padded inputs have no pixel baseline")
        xs.append(batch.x.reshape(len(batch), -1))
        ys.append(batch.y)
    if not ys:
        raise ValueError(f"{task.name}: split {split!r} is empty")
    return torch.cat(xs), torch.cat(ys)


def _labels(task: Task, split: str, limit: int | None) -> torch.Tensor:
    return torch.cat([b.y.reshape(-1) for b in task.eval_batches(split, BATCH, "cpu", limit=limit)])


def classes_per_output(task: Task) -> int:
    """Classes each prediction chooses from: 2 per bit for the bit tasks, else ``output_dim``."""
    return 2 if isinstance(task, BitTask) else task.output_dim


def chance(task: Task, split: str = "test") -> Baseline:
    k = classes_per_output(task)
    return Baseline("chance", 1.0 / k, split, f"uniform guess among {k} classes")


def majority(task: Task, split: str = "test", limit: int | None = None) -> Baseline:
    """Always predict the most common class of the *training* split (never chosen on test), scored on ``split``."""
    train = _labels(task, "train", None)
    top = int(torch.bincount(train, minlength=classes_per_output(task)).argmax())
    y = _labels(task, task.check_split(split), limit)
    return Baseline("majority class", float((y == top).float().mean()), split,
                    f"always class {top}, the most common in the training split ({len(train)} labels); "
                    f"scored on {len(y)} {split} predictions")


def copy_query(task: BitMemory, split: str = "test", limit: int | None = None) -> Baseline:
    """Bit Memory: copy the query's visible bits, guess the training split's most common bit for the masked ones."""
    guess_masked = int(torch.bincount(_labels(task, "train", None), minlength=2).argmax())
    correct = total = 0
    for batch in task.eval_batches(task.check_split(split), BATCH, "cpu", limit=limit):
        query = batch.x[:, -task.n_bits:]
        guess = torch.where(query == 0, torch.full_like(batch.y, guess_masked), (query > 0).long())
        correct += int((guess == batch.y).sum())
        total += batch.y.numel()
    return Baseline("copy the visible bits", correct / total, split,
                    f"copy the masked query, guess {guess_masked} where masked (the training split's most "
                    f"common bit; mask p={task.mask_p}); no memory used")


def _cache_file() -> Path:
    from fptlib.tasks.download import data_dir
    return data_dir() / "cache" / "pixel-logreg.json"


def _fit_key(tensors, *settings) -> str:
    """A hash of the fit's inputs: the tensors' bytes, shapes and types, and its settings."""
    h = hashlib.sha256(json.dumps([str(s) for s in settings]).encode())
    for t in tensors:
        t = t.contiguous()
        h.update(f"{tuple(t.shape)} {t.dtype}".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def _read_cache(path: Path) -> dict:
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):      # none yet, or unreadable: fit again
        return {}
    return found if isinstance(found, dict) else {}


def fit_logistic_regression(x, y, seed: int = 0):
    """(classifier, stopped): scikit-learn's LogisticRegression fitted on arrays ``x`` (float64) and
    ``y`` to ``LOGREG_TOL`` on one BLAS thread (``threadpoolctl``, scikit-learn's own dependency), so
    that its predictions do not depend on the machine's thread count; ``stopped``: it reached
    ``LOGREG_ITERATIONS`` before the tolerance (scikit-learn's ConvergenceWarning, kept, not printed)."""
    from sklearn.exceptions import ConvergenceWarning     # optional dependency: fptlib[data]
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    clf = LogisticRegression(max_iter=LOGREG_ITERATIONS, tol=LOGREG_TOL, random_state=seed)
    with warnings.catch_warnings(record=True) as caught, threadpool_limits(limits=1):
        warnings.simplefilter("always", ConvergenceWarning)
        clf.fit(x, y)
    return clf, any(issubclass(w.category, ConvergenceWarning) for w in caught)


def _fit_logreg(x_train, y_train, x_eval, y_eval, seed: int) -> tuple[float, bool]:
    clf, stopped = fit_logistic_regression(x_train.double().numpy(), y_train.numpy(), seed)
    return float((clf.predict(x_eval.double().numpy()) == y_eval.numpy()).mean()), stopped


def pixel_logistic_regression(task: Task, split: str = "test", n_train: int = LOGREG_TRAIN,
                              limit: int | None = None, seed: int = 0, cache: bool = True) -> Baseline:
    """A linear classifier on the normalised pixels (no augmentation), trained on the first
    ``n_train`` training images. With ``cache``, a fit of the same tensors and settings is read
    from the data folder's ``cache/pixel-logreg.json`` (see the module doc) instead of repeated."""
    import sklearn

    x_train, y_train = _split_tensors(task, "train", n_train)
    x_eval, y_eval = _split_tensors(task, task.check_split(split), limit)
    key = _fit_key((x_train, y_train, x_eval, y_eval), LOGREG_ITERATIONS, LOGREG_TOL, "1 thread", seed,
                   sklearn.__version__)
    path = _cache_file()
    hit = _read_cache(path).get(key) if cache else None
    if isinstance(hit, dict) and {"accuracy", "stopped"} <= set(hit):
        acc, stopped = float(hit["accuracy"]), bool(hit["stopped"])
    else:
        acc, stopped = _fit_logreg(x_train, y_train, x_eval, y_eval, seed)
        if cache:
            from fptlib.files import atomic_write_text
            entries = _read_cache(path)
            entries[key] = {"accuracy": acc, "stopped": stopped, "task": task.name,
                            "train": len(y_train), split: len(y_eval)}
            try:
                atomic_write_text(path, json.dumps(entries, indent=1, sort_keys=True))
            except OSError:            # a read-only data folder: the fit is simply not kept
                pass
    note = f" (stopped at {LOGREG_ITERATIONS} iterations before converging)" if stopped else ""
    return Baseline("pixel logistic regression", acc, split,
                    f"scikit-learn LogisticRegression on raw pixels, {len(y_train)} training images{note}")


def baselines(task: Task, split: str = "test", *, limit: int | None = None,
              pixels: bool = True) -> list[Baseline]:
    """Every trivial baseline that applies to ``task`` on ``split``."""
    out = [chance(task, split), majority(task, split, limit)]
    if isinstance(task, BitMemory):
        out.append(copy_query(task, split, limit))
    if pixels and getattr(task, "image_size", None) is not None:
        out.append(pixel_logistic_regression(task, split, limit=limit))
    return out
