"""Output-only ("reservoir") training over cached frozen features.

When only the output layer trains, everything before it (the random input layer and the frozen
transformer) is a fixed function of the input. ``fit_output_only`` computes, once, what the output
layer receives for every training example and for the evaluated splits, then trains the output
layer with the ordinary ``Trainer`` on those features: the same optimizer, clipping, step
schedule, evaluations and checkpoints, and the same batches in the same order as an uncached run
(the task's seeded ``StepSampler``). The paper reports epochs after the first 500 to 2000 times
faster; ``bench/bench_features.py`` measures it here.

What differs from an uncached output-only run, and is said in the result's ``notes``:

- augmentation is off: every training example is encoded once, un-augmented;
- dropout before the output layer (after the input layer, inside the backbone) is off: the cache
  is computed in eval mode, the reservoir setting exactly. Dropout inside an MLP output head
  (``out_layer_sizes``) still applies, since that head is what trains.

With augmentation off and dropout 0 the cached run trains the same output layer as the uncached
one, up to float rounding (tests/test_train_features.py).
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from fptlib import env
from fptlib.tasks.base import Batch
from fptlib.tasks.sampling import StepSampler
from fptlib.train import distributed
from fptlib.train.trainer import Trainer, TrainConfig, TrainResult


@dataclass
class Features:
    """Cached inputs of the output layer: ``h`` [N, k, hidden] (k output tokens) and targets ``y``."""
    h: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return self.h.shape[0]


@dataclass
class CachedTrainResult(TrainResult):
    """A ``TrainResult`` of a run over cached features, plus the one pass that filled the cache.

    ``wall_s`` includes ``feature_s``; ``train_s`` is the training over the cache alone."""
    feature_s: float = 0.0               # seconds to compute every cache (the one full pass)
    cached_examples: dict[str, int] = field(default_factory=dict)   # per split
    notes: list[str] = field(default_factory=list)


def check_output_only(model) -> None:
    trained = {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad}
    if trained != {"output"}:
        raise ValueError(f"the feature cache is valid only when the output layer alone trains "
                         f"(freeze='output_only'); this model also trains {sorted(trained - {'output'})}")


@torch.no_grad()
def compute_features(model, batches, device=None, amp_dtype=None) -> Features:
    """Run the frozen part once (eval mode) and keep what the output layer receives (as fp32)."""
    check_output_only(model)
    device = device or next(model.parameters()).device
    captured: list[torch.Tensor] = []
    hook = model.output.register_forward_hook(lambda mod, inp, out: captured.append(inp[0].detach()))
    was_training = model.training
    model.eval()
    autocast = (torch.autocast(torch.device(device).type, dtype=amp_dtype) if amp_dtype is not None
                else contextlib.nullcontext())
    hs, ys = [], []
    try:
        for batch in batches:
            batch = batch.to(device)
            with autocast:
                model(batch.x, attention_mask=batch.mask) if batch.mask is not None else model(batch.x)
            hs.append(captured.pop().float())
            ys.append(batch.y)
    finally:
        hook.remove()
        model.train(was_training)
    return Features(torch.cat(hs), torch.cat(ys))


class OutputHead(nn.Module):
    """The trained part of an output-only FPT: cached features ``[B, k, hidden]`` -> logits.

    Holds the model's own output layer, so training it trains the model."""

    def __init__(self, model) -> None:
        super().__init__()
        self.output = model.output
        self.output_tokens = model.output_tokens
        self._config = {**model.config_dict(), "features": "cached (eval mode, no augmentation)"}

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        logits = self.output(h)
        return logits[:, 0] if self.output_tokens == 1 else logits

    def config_dict(self) -> dict:
        return self._config


class CachedTask:
    """A task's training and evaluation streams served from cached features.

    Training batches follow the task's own schedule (``StepSampler`` over the training split, with
    its length bucketing for padded data): step ``s`` holds the same examples as in an uncached run.
    """

    def __init__(self, task, train: Features, evals: dict[str, Features], lengths=None) -> None:
        self.task, self.train, self.evals, self.lengths = task, train, evals, lengths
        for key in ("name", "data_source", "options", "input_kind", "token_dim", "vocab_size",
                    "max_len", "output_tokens", "output_dim", "hparams"):
            setattr(self, key, getattr(task, key, None))
        self.eval_splits = tuple(evals)
        self.pad_id = None        # cached features have one fixed shape

    def loss(self, logits, y):
        return self.task.loss(logits, y)

    def accuracy(self, logits, y):
        return self.task.accuracy(logits, y)

    def train_batches(self, batch_size: int, device, seed: int, start_step: int = 0):
        sampler = StepSampler(len(self.train), batch_size, seed, lengths=self.lengths)
        step = start_step
        while True:
            idx = sampler.indices(step).to(self.train.h.device)
            yield Batch(self.train.h[idx], self.train.y[idx])
            step += 1

    def eval_batches(self, split: str, batch_size: int, device, limit: int | None = None):
        feats = self.evals[split]
        n = len(feats) if limit is None else min(limit, len(feats))
        for i in range(0, n, batch_size):
            j = min(i + batch_size, n)
            yield Batch(feats.h[i:j], feats.y[i:j])


def has_training_set(task) -> bool:
    """Whether ``task`` trains on a finite training set (a dataset task) that can be cached, as
    opposed to drawing fresh examples at every step (the bit tasks)."""
    return hasattr(task, "splits") and hasattr(task, "batch_of")


def training_examples(task, batch_size: int, device):
    """Every training example of a dataset task once, un-augmented, in batches of similar length,
    and the order (CPU indices) in which they come."""
    if not has_training_set(task):
        raise ValueError(f"task {getattr(task, 'name', task)!r} draws fresh examples at every step, so "
                         f"there is no training set to cache; train it output-only with the ordinary "
                         f"Trainer (freeze='output_only')")
    host = task.splits()["train"]
    order = torch.arange(len(host))
    if host.lengths is not None:    # similar lengths together: each batch padded to its longest only
        order = torch.argsort(host.lengths, stable=True)

    def batches():
        for idx in order.split(batch_size):
            yield task.batch_of("train", idx, device)
    return batches(), order


def fit_output_only(model, task, config: TrainConfig | None = None, **overrides) -> CachedTrainResult:
    """Train ``model``'s output layer (freeze ``output_only``) on cached frozen features.

    Takes the same ``TrainConfig`` as ``Trainer`` and returns a ``TrainResult`` (a
    ``CachedTrainResult`` with the caching time and notes). The model's output layer is trained
    in place. Only dataset tasks (a finite training set) can be cached.
    """
    config = dataclasses.replace(config or TrainConfig(), **overrides)
    check_output_only(model)
    device = distributed.device_for(distributed.context(), config.device)
    amp_dtype = env.amp_dtype(config.amp, device)
    model.to(device)
    bs = config.eval_batch_size or max(config.batch_size, 64)
    splits = tuple(task.eval_splits if config.eval_splits is None else config.eval_splits)

    t0 = time.perf_counter()
    batches, order = training_examples(task, bs, device)
    bar = tqdm(batches, desc="caching features", total=math.ceil(len(order) / bs), unit="batch", leave=False,
               disable=not config.progress)
    sorted_feats = compute_features(model, bar, device, amp_dtype)
    train = Features(torch.empty_like(sorted_feats.h), torch.empty_like(sorted_feats.y))
    index = order.to(sorted_feats.h.device)
    train.h[index], train.y[index] = sorted_feats.h, sorted_feats.y     # back to index order
    evals = {s: compute_features(model, task.eval_batches(s, bs, device, limit=config.eval_limit),
                                 device, amp_dtype) for s in splits}
    feature_s = time.perf_counter() - t0

    host = task.splits()["train"]
    cached = CachedTask(task, train, evals, lengths=host.lengths)
    result = Trainer(OutputHead(model), cached, dataclasses.replace(config, device=str(device))).fit()
    notes = ["output layer trained on cached frozen features: training augmentation off, and no "
             "dropout before the output layer (features computed once in eval mode)"]
    if getattr(task, "augment", False):
        notes.append(f"task {task.name!r} augments its training images in ordinary runs; this run "
                     f"saw each image un-augmented")
    fields = {f.name: getattr(result, f.name) for f in dataclasses.fields(TrainResult)}
    fields["wall_s"] += feature_s
    return CachedTrainResult(**fields, feature_s=feature_s, notes=notes,
                             cached_examples={"train": len(train), **{s: len(f) for s, f in evals.items()}})
