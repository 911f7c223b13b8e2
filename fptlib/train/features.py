"""A feature cache for the output-layer-only ("reservoir") ablation.

When only the output layer trains, everything before it (the random input layer and the frozen
transformer) is a fixed function of the input. Its outputs at the positions the output layer
reads can be computed once and the output layer then trained for many epochs over the cache: the
paper reports epochs after the first run 500 to 2000 times faster.

The cache is computed in eval mode (no dropout), so it is the reservoir setting exactly; a run of
the ordinary Trainer with ``freeze="output_only"`` differs only by the dropout it applies.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm


@dataclass
class Features:
    """Cached inputs of the output layer: ``h`` [N, k, hidden] (k output tokens) and targets ``y``."""
    h: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return self.h.shape[0]


@dataclass
class CachedFitResult:
    epochs: int
    feature_s: float                   # seconds to compute every cache (the one full pass)
    epoch_s: float                     # mean seconds per epoch over the cache
    history: list[dict] = field(default_factory=list)   # per epoch: train loss, eval accuracies
    final: dict[str, dict] = field(default_factory=dict)
    best: dict[str, dict] = field(default_factory=dict)

    @property
    def speedup(self) -> float:
        """How much faster an epoch over the cache is than the pass that filled it."""
        return self.feature_s / self.epoch_s if self.epoch_s > 0 else float("inf")


def check_output_only(model) -> None:
    trained = {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad}
    if trained != {"output"}:
        raise ValueError(f"the feature cache is valid only when the output layer alone trains "
                         f"(freeze='output_only'); this model also trains {sorted(trained - {'output'})}")


@torch.no_grad()
def compute_features(model, batches, device=None) -> Features:
    """Run the frozen part once (eval mode) and keep what the output layer receives."""
    check_output_only(model)
    device = device or next(model.parameters()).device
    captured: list[torch.Tensor] = []
    hook = model.output.register_forward_hook(lambda mod, inp, out: captured.append(inp[0].detach()))
    was_training = model.training
    model.eval()
    hs, ys = [], []
    try:
        for batch in batches:
            batch = batch.to(device)
            model(batch.x, attention_mask=batch.mask) if batch.mask is not None else model(batch.x)
            hs.append(captured.pop())
            ys.append(batch.y)
    finally:
        hook.remove()
        model.train(was_training)
    return Features(torch.cat(hs), torch.cat(ys))


def _logits(model, h: torch.Tensor) -> torch.Tensor:
    logits = model.output(h)
    return logits[:, 0] if getattr(model, "output_tokens", 1) == 1 else logits


@torch.no_grad()
def evaluate_cached(model, task, feats: Features, batch_size: int = 256) -> dict:
    loss = acc = 0.0
    for i in range(0, len(feats), batch_size):
        h, y = feats.h[i:i + batch_size], feats.y[i:i + batch_size]
        logits = _logits(model, h).float()
        loss += task.loss(logits, y).item() * len(y)
        acc += task.accuracy(logits, y).item() * len(y)
    return {"loss": loss / len(feats), "accuracy": acc / len(feats), "examples": len(feats)}


def fit_output_layer(model, task, *, n_train: int, epochs: int = 10, batch_size: int = 16, lr: float = 1e-3,
                     grad_clip: float | None = 1.0, seed: int = 0, eval_splits=None, eval_limit: int | None = None,
                     device=None, progress: bool = True) -> CachedFitResult:
    """Train ``model.output`` over cached features of ``n_train`` training examples (the first
    ``n_train`` of the task's training stream for ``seed``), evaluating after every epoch."""
    if n_train < batch_size or epochs < 1:
        raise ValueError(f"need n_train >= batch_size and epochs >= 1 (got n_train={n_train}, "
                         f"batch_size={batch_size}, epochs={epochs})")
    device = torch.device(device) if device else next(model.parameters()).device
    model.to(device)
    splits = tuple(eval_splits or task.eval_splits)
    t0 = time.perf_counter()
    stream = task.train_batches(batch_size, device, seed)
    train = compute_features(model, (next(stream) for _ in range(n_train // batch_size)), device)
    evals = {s: compute_features(model, task.eval_batches(s, max(batch_size, 64), device, limit=eval_limit), device)
             for s in splits}
    feature_s = time.perf_counter() - t0

    params = list(model.output.parameters())
    opt = torch.optim.Adam(params, lr=lr)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    result = CachedFitResult(epochs=epochs, feature_s=feature_s, epoch_s=0.0)
    spent = 0.0
    for epoch in tqdm(range(1, epochs + 1), desc="epochs over cached features", disable=not progress):
        t = time.perf_counter()
        order = torch.randperm(len(train), generator=gen).to(device)
        total = torch.zeros((), device=device)
        for i in range(0, len(order) - batch_size + 1, batch_size):
            idx = order[i:i + batch_size]
            loss = task.loss(_logits(model, train.h[idx]).float(), train.y[idx])
            loss.backward()
            if grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(params, grad_clip)
            opt.step()
            opt.zero_grad(set_to_none=True)
            total += loss.detach()
        spent += time.perf_counter() - t
        entry = {"epoch": epoch, "loss": total.item() / max(1, len(order) // batch_size)}
        for s, f in evals.items():
            entry[s] = evaluate_cached(model, task, f)
            if s not in result.best or entry[s]["accuracy"] > result.best[s]["accuracy"]:
                result.best[s] = {**entry[s], "epoch": epoch}
        result.history.append(entry)
    result.epoch_s = spent / epochs
    result.final = {s: result.history[-1][s] for s in splits}
    return result
