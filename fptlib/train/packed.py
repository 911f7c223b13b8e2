"""Packed runs: K configurations trained in one forward/backward over one shared frozen backbone.

FPT's frozen attention and feed-forward weights are the same for every run on a backbone; only
the small trained parts differ (input and output layers, layer norms, positions). A pack of K
runs (differing in seed, learning rate, optimizer settings, the initialisation of their trained
parameters) is therefore trained as one model on the K runs' batches stacked along the batch
dimension: ``[K * B, ...]``, run ``i``'s examples in rows ``i*B .. (i+1)*B - 1``.

Technique ("batch-stacked"): a copy of the template model shares its frozen parameters, and every
module that owns trained parameters is replaced by a packed twin holding K stacked copies:

- ``nn.Linear`` (input and output layers): one batched matmul, run ``i``'s rows by its weights;
- ``nn.Embedding`` (discrete input tables, learned positions): a lookup in run ``i``'s table;
  T5's relative position bias (looked up per query-key pair, not per example) is the same lookup
  from its attention's ``compute_bias``, giving a bias per row ``[K*B, heads, q, k]`` (alone it is
  ``[1, heads, q, k]``, broadcast: the pack materialises one attention-score tensor more, once per
  forward, shared by all layers);
- a bare position table a module owns itself (ViT's ``positions``, read as ``positions[:n]``):
  run ``i``'s rows for run ``i``'s examples;
- layer norms (``LayerNorm``, LLaMA's ``RMSNorm``): the frozen normalisation, then run ``i``'s
  scale and bias.

The frozen body (attention, MLP, the LSTM's recurrences) runs once on the stacked batch, with
padding masks as they are, so every backbone family and the LSTM work unchanged. ``torch.func``'s
``vmap`` over stacked parameters was the other candidate: it fails on padded batches (data-
dependent control flow in the attention-mask code) and on the LSTM (no batching rule for
``aten::lstm``), so it is not used. Presets that train attention or feed-forward weights are
refused: stacking those would copy the backbone K times, which is no cheaper than K runs.

All trained parameters of the pack live in one ``[K, N]`` tensor (their views are rebuilt each
forward), so per-run gradient clipping is one norm over dim 1 and Adam/AdamW is a few element-wise
operations with per-run learning rate, weight decay and step count.

Each run keeps its own data stream (``task.train_batches`` with its own seed, exactly the batches
it would get alone), optimizer state, clipping, evaluation (the fixed evaluation batches repeated
for the K runs, one packed forward, in eval mode), early stop, fp16 loss scale (``PerRunScaler``:
torch.amp.GradScaler's dynamic scale per run, so an overflow in one run skips only that run's
step), and result: a run that reaches its steps or target accuracy, or whose loss becomes NaN,
leaves the pack (the others go on unchanged).

What differs from training alone: batched matmuls sum in another order (float rounding, see
tests/test_packed.py for the size), and dropout masks are drawn for the whole stacked batch from
one generator, so with dropout > 0 a packed run is a different (equally valid) random draw than
the same run alone.

Under DDP (torchrun, ``distributed.py``) every process draws every run's global batch as one
process would and keeps its slice (``distributed.shard`` per run: run i's rows on rank r are the
examples a DDP Trainer of run i gives rank r); after the summed backward the flat gradient [K, N]
is averaged over the processes (one all-reduce), before unscaling, clipping and Adam, so every
process keeps the same parameters, the ones a single process gets on the whole batch. The logged
losses and accuracies are averaged over the processes too (the global batch's, as alone), the
first NaN step is the earliest of any process, and the time budget stops every process when one
runs out, so all stop together. Rank 0 evaluates and sends its results to the others (the stop
decisions are rank 0's by construction), shows progress and writes the checkpoint. With dropout
each process draws the masks of its own slice (as under the DDP Trainer).
"""
from __future__ import annotations

import copy
import dataclasses
import time
import types
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as torch_dist
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from fptlib.train import checkpoint as ckpt
from fptlib.train import distributed
from fptlib.env import seed_everything
from fptlib.train.trainer import (CUDA_GRAPH_MODES, NonFiniteLossError, TrainConfig, Trainer, TrainResult, _jsonable,
                                  compile_mode, model_identity, task_identity)

TECHNIQUE = "batch-stacked"
PACKABLE_GROUPS = frozenset({"input", "output", "layernorm", "positions"})
# settings every run of a pack shares (one stacked batch, one evaluation schedule, one device)
SHARED_SETTINGS = ("batch_size", "grad_accum", "eval_every", "eval_splits", "eval_limit", "eval_batch_size",
                   "time_budget_s", "device", "amp", "compile", "log_every", "checkpoint_every")
# settings a run may have of its own
RUN_SETTINGS = ("lr", "optimizer", "weight_decay", "grad_clip", "seed", "steps", "target_accuracy", "target_split")
PACK_CHECKPOINT_KEYS = ("format", "identity", "fingerprint", "runs", "step", "rng", "active", "flat", "exp_avg",
                        "exp_avg_sq", "opt_steps")
BETAS, EPS = (0.9, 0.999), 1e-8       # torch.optim.Adam's defaults, which the Trainer uses
# Measured by bench/bench_packed.py (bench/RESULTS.md, "packing default"): on a CPU pack="auto" packs
# CPU_AUTO_PACK runs of a task whose sequences are at most CPU_PACK_MAX_TOKENS long (Bit XOR's 10
# tokens: packed was faster) and trains longer ones one at a time (64-token digits: not faster).
CPU_AUTO_PACK = 4
CPU_PACK_MAX_TOKENS = 10


class PackError(ValueError):
    """These runs (or this model) cannot be trained as one pack; the message says why and what to do."""


@dataclass
class PackedTrainResult(TrainResult):
    """A TrainResult plus who the run was packed with (``packed``: technique, size, index, the runs)."""
    packed: dict = field(default_factory=dict)


# -- the packed model -------------------------------------------------------------------------
class _Pack:
    """What the packed modules read at each forward: the stacked views and the run of every row."""

    def __init__(self):
        self.params: dict[str, torch.Tensor] = {}
        self.k = 1
        self.rows = 1       # examples per run in the current forward

    def run_index(self, device) -> torch.Tensor:
        return torch.arange(self.k, device=device).repeat_interleave(self.rows)

    def per_example(self, per_run: torch.Tensor) -> torch.Tensor:
        """``[K, ...]`` one value per run -> ``[K*rows, ...]``: run i's value for each of its rows."""
        k, rows = self.k, self.rows
        return per_run[:, None].expand(k, rows, *per_run.shape[1:]).reshape(k * rows, *per_run.shape[1:])


def _probe(weight: torch.Tensor) -> nn.Parameter:
    """An empty frozen parameter of ``weight``'s dtype and device: the model reads its layers' dtype
    from ``next(layer.parameters())``, and the packed twins hold no parameters of their own."""
    return nn.Parameter(weight.detach().new_empty(0), requires_grad=False)


class PackedLinear(nn.Module):
    def __init__(self, pack: _Pack, prefix: str, linear: nn.Linear):
        super().__init__()
        self.pack, self.prefix, self.has_bias = pack, prefix, linear.bias is not None
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.dtype_probe = _probe(linear.weight)

    def forward(self, x):
        w = self.pack.params[f"{self.prefix}.weight"]                  # [K, out, in]
        xs = x.reshape(w.shape[0], -1, x.shape[-1])                     # run i's rows are block i
        if self.has_bias:
            y = torch.baddbmm(self.pack.params[f"{self.prefix}.bias"][:, None], xs, w.transpose(1, 2))
        else:
            y = torch.bmm(xs, w.transpose(1, 2))
        return y.reshape(*x.shape[:-1], w.shape[1])


class PackedEmbedding(nn.Module):
    """Run i's rows look up run i's table. Indices with batch dimension 1 (position ids) serve
    every row. The padding row gets no gradient, as nn.Embedding(padding_idx=...) does."""

    def __init__(self, pack: _Pack, prefix: str, table: nn.Embedding):
        super().__init__()
        self.pack, self.prefix, self.padding_idx = pack, prefix, table.padding_idx
        self.num_embeddings, self.embedding_dim = table.num_embeddings, table.embedding_dim   # read by backbones
        self.dtype_probe = _probe(table.weight)

    def tables(self) -> torch.Tensor:
        """The K runs' tables [K, V, dim]."""
        w = self.pack.params[f"{self.prefix}.weight"]
        if self.padding_idx is not None and w.requires_grad:
            pad = self.padding_idx
            w.register_hook(lambda g: g.index_fill(1, torch.tensor([pad], device=g.device), 0))
        return w

    def forward(self, ids):
        k, rows = self.pack.k, self.pack.rows
        if ids.dim() < 2 or ids.shape[0] not in (1, k * rows):
            raise PackError(f"{self.prefix!r} is looked up with indices of shape {tuple(ids.shape)}, not one row "
                            f"per example: its per-run tables cannot be stacked; train these runs unpacked "
                            f"(pack=False) (a table looked up otherwise needs a packed lookup of its own, as "
                            f"packed.py gives T5's relative position bias)")
        w = self.tables()
        if ids.shape[0] == 1 and k * rows > 1:      # position ids: one lookup per run, shared by its rows
            return self.pack.per_example(w[:, ids[0]])
        run = self.pack.run_index(ids.device).view(k * rows, *([1] * (ids.dim() - 1)))
        return w[run, ids]


class PackedRows(nn.Module):
    """A trained tensor its module indexes along dim 0 and adds to every example (ViT's position
    table, read as ``positions[:length]``): ``rows[index]`` is run i's ``[index]`` for run i's rows,
    ``[K*rows, ...]``. ``shape`` is one run's (read by ``max_positions``)."""

    def __init__(self, pack: _Pack, name: str, parameter: nn.Parameter):
        super().__init__()
        self.pack, self.name, self.shape = pack, name, parameter.shape
        self.dtype_probe = _probe(parameter)

    def __getitem__(self, index):
        return self.pack.per_example(self.pack.params[self.name][:, index])


def _packed_compute_bias(self, query_length, key_length, device=None, past_seen_tokens=0):
    """Hugging Face ``T5Attention.compute_bias`` (transformers 5.x) for a pack: the same bucket
    indices [q, k], looked up in run i's bias table for run i's rows: ``[K*rows, heads, q, k]``
    (Hugging Face's is ``[1, heads, q, k]``, broadcast over the batch; the attention adds either to
    its scores, and the first layer's bias is passed on to the others)."""
    table = self.relative_attention_bias                                # a PackedEmbedding
    device = device if device is not None else table.dtype_probe.device
    context = torch.arange(query_length, dtype=torch.long, device=device)[:, None] + past_seen_tokens
    memory = torch.arange(key_length, dtype=torch.long, device=device)[None, :]
    buckets = self._relative_position_bucket(memory - context, bidirectional=not self.is_decoder,
                                             num_buckets=self.relative_attention_num_buckets,
                                             max_distance=self.relative_attention_max_distance)
    values = table.tables()[:, buckets]                                # [K, q, k, heads]
    return table.pack.per_example(values.permute(0, 3, 1, 2))


class PackedNorm(nn.Module):
    """The frozen normalisation of a layer norm (its affine set to 1 and 0), then run i's affine."""

    def __init__(self, pack: _Pack, prefix: str, norm: nn.Module, bias: bool):
        super().__init__()
        self.pack, self.prefix, self.has_bias = pack, prefix, bias
        self.norm = norm
        with torch.no_grad():
            norm.weight = nn.Parameter(torch.ones_like(norm.weight), requires_grad=False)
            if bias:
                norm.bias = nn.Parameter(torch.zeros_like(norm.bias), requires_grad=False)

    def forward(self, x):
        w = self.pack.params[f"{self.prefix}.weight"]                  # [K, dim]
        y = self.norm(x)
        ys = y.reshape(w.shape[0], -1, y.shape[-1])
        out = ys * w[:, None]
        if self.has_bias:
            out = out + self.pack.params[f"{self.prefix}.bias"][:, None]
        return out.reshape(y.shape)


def _is_norm(module: nn.Module) -> bool:
    own = dict(module.named_parameters(recurse=False))
    return ("norm" in type(module).__name__.lower() and "weight" in own and set(own) <= {"weight", "bias"}
            and own["weight"].dim() == 1)


def _packed_twin(pack: _Pack, prefix: str, module: nn.Module) -> nn.Module:
    own = dict(module.named_parameters(recurse=False))
    trained = {n for n, p in own.items() if p.requires_grad}
    if trained != set(own):
        raise PackError(f"module {prefix!r} ({type(module).__name__}) trains {sorted(trained)} but not "
                        f"{sorted(set(own) - trained)}: packing stacks whole modules; train it unpacked (pack=False)")
    if isinstance(module, nn.Linear):
        return PackedLinear(pack, prefix, module)
    if isinstance(module, nn.Embedding):
        return PackedEmbedding(pack, prefix, module)
    return PackedNorm(pack, prefix, module, "bias" in own)


def _pack_bare_positions(pack: _Pack, prefix: str, module: nn.Module, groups: dict) -> None:
    """Replace the trained parameters ``module`` owns itself (not through a layer) by PackedRows:
    only position tables (ViT's ``positions``), which the module reads as rows added to every example."""
    for name, p in list(module.named_parameters(recurse=False)):
        full = f"{prefix}.{name}" if prefix else name
        if not p.requires_grad:
            continue
        if groups.get(full) != "positions" or p.dim() != 2:
            raise PackError(f"cannot pack the trained parameters of {prefix!r} ({type(module).__name__}): packed "
                            f"runs stack linear input/output layers, embedding tables, layer norms and position "
                            f"tables only; train it unpacked (pack=False)")
        delattr(module, name)
        setattr(module, name, PackedRows(pack, full, p))


class PackedModel(nn.Module):
    """``template`` with its frozen parameters shared and its trained modules replaced by packed
    twins. ``forward(flat, x, mask)``: ``flat`` [K, N] the stacked trained parameters, ``x`` the
    K runs' batches stacked along dim 0; returns the stacked logits."""

    def __init__(self, template: nn.Module):
        super().__init__()
        groups = template.param_group_map() if hasattr(template, "param_group_map") else {}
        trained = [(n, p) for n, p in template.named_parameters() if p.requires_grad]
        beyond = sorted({groups[n] for n, _ in trained if n in groups} - PACKABLE_GROUPS)
        if beyond:
            raise PackError(f"the freeze preset trains {beyond}: packed runs share every backbone weight except "
                            f"{sorted(PACKABLE_GROUPS)} (presets up to 'fpt'); train this preset unpacked (pack=False)")
        self.names = [n for n, _ in trained]
        self.shapes = [tuple(p.shape) for _, p in trained]
        self.sizes = [p.numel() for _, p in trained]
        memo = {id(p): p for p in template.parameters() if not p.requires_grad}   # shared, not copied
        self.model = copy.deepcopy(template, memo)
        self.pack = _Pack()
        owners = {n.rpartition(".")[0] for n in self.names}
        for prefix in sorted(owners, key=len, reverse=True):
            parent_name, _, attr = prefix.rpartition(".")
            parent, module = self.model.get_submodule(parent_name), self.model.get_submodule(prefix)
            if not isinstance(module, (nn.Linear, nn.Embedding)) and not _is_norm(module):
                _pack_bare_positions(self.pack, prefix, module, groups)
                continue
            setattr(parent, attr, _packed_twin(self.pack, prefix, module))
            if attr == "relative_attention_bias" and hasattr(parent, "compute_bias"):   # T5's attention
                parent.compute_bias = types.MethodType(_packed_compute_bias, parent)

    def flatten(self, model: nn.Module) -> torch.Tensor:
        """One run's trained parameters as a row [N] (the pack's layout)."""
        params = dict(model.named_parameters())
        return torch.cat([params[n].detach().reshape(-1) for n in self.names])

    def unflatten_into(self, row: torch.Tensor, model: nn.Module) -> None:
        params = dict(model.named_parameters())
        with torch.no_grad():
            for name, chunk in zip(self.names, torch.split(row, self.sizes)):
                params[name].copy_(chunk.view_as(params[name]))

    def forward(self, flat: torch.Tensor, x: torch.Tensor, mask: torch.Tensor | None = None):
        k = flat.shape[0]
        self.pack.k, self.pack.rows = k, x.shape[0] // k
        chunks = torch.split(flat, self.sizes, dim=1)
        self.pack.params = {n: c.view(k, *s) for n, c, s in zip(self.names, chunks, self.shapes)}
        try:
            return self.model(x, attention_mask=mask) if mask is not None else self.model(x)
        finally:
            self.pack.params = {}


# -- the optimizer: Adam / AdamW per run on the stacked rows ----------------------------------
def adam_step(flat, grad, exp_avg, exp_avg_sq, steps, lr, weight_decay=None, decoupled=None, skip=None) -> None:
    """torch.optim.Adam(W)'s single-tensor update, per row: ``lr`` [K], ``steps`` [K] the step
    count after this update, ``weight_decay`` [K] (None: no run decays), ``decoupled`` [K] bool (AdamW).
    ``skip`` [K] bool (None: no run skips): those rows keep their parameters and Adam state, as a
    run alone does when its GradScaler skips ``optimizer.step()``."""
    kept = None if skip is None else [t.clone() for t in (flat, exp_avg, exp_avg_sq)]
    _adam_update(flat, grad, exp_avg, exp_avg_sq, steps, lr, weight_decay, decoupled)
    if kept is not None:
        for t, old in zip((flat, exp_avg, exp_avg_sq), kept):
            t.copy_(torch.where(skip[:, None], old, t))


def _adam_update(flat, grad, exp_avg, exp_avg_sq, steps, lr, weight_decay, decoupled) -> None:
    b1, b2 = BETAS
    col = lambda t: t[:, None].to(flat.dtype)  # noqa: E731   (scalars per run in float64, like Python's)
    if weight_decay is not None:
        grad = torch.where(decoupled[:, None], grad, grad + col(weight_decay) * flat)
        flat.mul_(torch.where(decoupled[:, None], 1 - col(lr * weight_decay), 1.0))
    exp_avg.lerp_(grad, 1 - b1)
    exp_avg_sq.mul_(b2).addcmul_(grad, grad, value=1 - b2)
    step_size = lr / (1 - b1 ** steps)
    denom = (exp_avg_sq.sqrt() / col((1 - b2 ** steps).sqrt())).add_(EPS)
    flat.addcdiv_(exp_avg, denom.div_(col(step_size)), value=-1)


def clip_rows(grad: torch.Tensor, max_norm: torch.Tensor) -> None:
    """clip_grad_norm_ per run: rows with a norm above ``max_norm`` [K] (inf: no clipping) scale down."""
    norm = grad.norm(dim=1)
    grad.mul_(torch.clamp(max_norm / (norm + 1e-6), max=1.0)[:, None])


class PerRunScaler:
    """torch.amp.GradScaler's dynamic loss scale, one per run of a pack (fp16 autocast). Run i's
    loss is multiplied by ``scale[i]`` before the summed backward; the runs' trained parameters are
    disjoint rows, so run i's gradient row is scaled by ``scale[i]`` alone and is unscaled by it.
    A run whose gradient holds inf/NaN skips its step and halves its scale; after ``INTERVAL``
    good steps in a row its scale doubles. Disabled (no fp16): every method leaves things as they are."""
    INIT, GROWTH, BACKOFF, INTERVAL = 2.0 ** 16, 2.0, 0.5, 2000      # GradScaler's defaults

    def __init__(self, k: int, device, enabled: bool, scale=None, growth_tracker=None):
        self.enabled = enabled
        self.scale = (torch.full((k,), self.INIT, device=device) if scale is None else scale.to(device))
        self.growth_tracker = (torch.zeros(k, dtype=torch.int32, device=device) if growth_tracker is None
                               else growth_tracker.to(device))

    def scale_losses(self, losses: torch.Tensor) -> torch.Tensor:
        return losses * self.scale if self.enabled else losses

    def unscale_(self, grad: torch.Tensor) -> torch.Tensor | None:
        """Divide each run's gradient row [K, N] by its scale, in place; per run True where the
        row held inf or NaN (checked before unscaling, as GradScaler does), None when disabled."""
        if not self.enabled:
            return None
        found_inf = ~torch.isfinite(grad).all(dim=1)
        grad.mul_(self.scale.double().reciprocal().float()[:, None])
        return found_inf

    def update(self, found_inf: torch.Tensor | None) -> None:
        """GradScaler.update per run (torch's _amp_update_scale_): back off after an overflow,
        grow after INTERVAL good steps (unless the grown scale is not finite)."""
        if found_inf is None:
            return
        good = self.growth_tracker + 1
        due = ~found_inf & (good == self.INTERVAL)
        grown = self.scale * self.GROWTH
        self.scale = torch.where(found_inf, self.scale * self.BACKOFF,
                                 torch.where(due & torch.isfinite(grown), grown, self.scale))
        self.growth_tracker = torch.where(found_inf | due, torch.zeros_like(good), good)

    def keep(self, index: torch.Tensor) -> None:
        self.scale, self.growth_tracker = self.scale[index], self.growth_tracker[index]

    def state(self) -> dict:
        return {"loss_scale": self.scale.cpu(), "growth_tracker": self.growth_tracker.cpu()}


# -- the trainer ------------------------------------------------------------------------------
class _Active:
    """The runs still in the pack: position p of every tensor and list belongs to run ``runs[p]``."""

    def __init__(self, runs, flat, exp_avg, exp_avg_sq, opt_steps, scaler: PerRunScaler):
        self.runs, self.flat, self.exp_avg, self.exp_avg_sq, self.opt_steps = runs, flat, exp_avg, exp_avg_sq, opt_steps
        self.scaler = scaler

    def start(self, configs, task, step: int, device) -> None:
        """Per-run data streams from ``step`` (the batches each run gets alone), sums and settings."""
        c0 = configs[0]
        self.batches = [task.train_batches(c0.batch_size, device, configs[i].seed, start_step=step * c0.grad_accum)
                        for i in self.runs]
        k = len(self.runs)
        self.loss_sum, self.acc_sum = torch.zeros(k, device=device), torch.zeros(k, device=device)
        self.first_bad = torch.full((k,), -1, dtype=torch.long, device=device)
        self.windows = [0] * k          # steps since each run's last history entry
        self.settings(configs)

    def settings(self, configs) -> None:
        """Per run: lr, weight decay (None when no run decays), AdamW or not, clipping norm."""
        cs, dev = [configs[i] for i in self.runs], self.flat.device
        per_run = lambda values, dtype=torch.float32: torch.tensor(values, device=dev, dtype=dtype)  # noqa: E731
        self.lr = per_run([c.lr for c in cs], torch.float64)
        self.wd = per_run([c.weight_decay for c in cs], torch.float64) if any(c.weight_decay for c in cs) else None
        self.decoupled = per_run([c.optimizer == "adamw" for c in cs], torch.bool)
        self.clip = per_run([c.grad_clip if c.grad_clip is not None else float("inf") for c in cs])

    def agree(self, ctx: distributed.DistContext) -> None:
        """Under DDP: the sums of losses and accuracies averaged over the processes (each summed
        its slice's means, so the average is the global batch's; sums already averaged stay as
        they are), the first NaN step the earliest of any process. Then ``read`` gives the same on
        every process."""
        if not ctx.enabled:
            return
        sums = torch.stack([self.loss_sum, self.acc_sum])
        torch_dist.all_reduce(sums)
        self.loss_sum, self.acc_sum = (sums / ctx.world_size).unbind(0)
        never = torch.iinfo(torch.long).max
        bad = torch.where(self.first_bad < 0, never, self.first_bad)
        torch_dist.all_reduce(bad, op=torch_dist.ReduceOp.MIN)
        self.first_bad = torch.where(bad == never, -1, bad)

    def read(self, due: set[int]) -> list[tuple]:
        """Per position (loss, accuracy, first NaN step or -1), loss and accuracy averaged over the
        run's window for the positions ``due`` (where the run alone would log; their window starts
        again) and None for the others, which keep theirs. One host read."""
        values = torch.stack([self.loss_sum, self.acc_sum, self.first_bad.float()]).tolist()
        out = []
        for p, w in enumerate(self.windows):
            logged = p in due and w > 0
            out.append((values[0][p] / w if logged else None, values[1][p] / w if logged else None, int(values[2][p])))
        index = torch.tensor(sorted(due), device=self.flat.device, dtype=torch.long)
        self.loss_sum[index] = 0
        self.acc_sum[index] = 0
        self.windows = [0 if p in due else w for p, w in enumerate(self.windows)]
        return out

    def keep(self, positions: list[int], configs) -> None:
        """Drop the other runs (finished) from the pack: their rows, optimizer states and streams."""
        if len(positions) == len(self.runs):
            return
        index = torch.tensor(positions, device=self.flat.device, dtype=torch.long)
        self.flat, self.exp_avg, self.exp_avg_sq = (
            t.detach()[index].clone() for t in (self.flat, self.exp_avg, self.exp_avg_sq))
        self.opt_steps, self.loss_sum, self.acc_sum, self.first_bad = (
            t[index] for t in (self.opt_steps, self.loss_sum, self.acc_sum, self.first_bad))
        self.scaler.keep(index)
        self.runs, self.batches, self.windows = (
            [xs[p] for p in positions] for xs in (self.runs, self.batches, self.windows))
        self.settings(configs)

    def state(self) -> dict:
        return {"active": self.runs, "flat": self.flat.detach().cpu(), "exp_avg": self.exp_avg.cpu(),
                "exp_avg_sq": self.exp_avg_sq.cpu(), "opt_steps": self.opt_steps.cpu(), **self.scaler.state()}



def describe_run(config: TrainConfig) -> dict:
    return {k: getattr(config, k) for k in ("seed", "lr", "optimizer", "weight_decay", "grad_clip", "steps")}


def check_packable(models, task, configs) -> None:
    """Refuse (PackError) runs that cannot share one stacked forward; the message names the difference."""
    if len(models) != len(configs) or not models:
        raise PackError(f"a pack needs one model per config, got {len(models)} models and {len(configs)} configs")
    first = configs[0]
    for i, c in enumerate(configs[1:], 1):
        diffs = [f"{k}: {getattr(first, k)!r} vs {getattr(c, k)!r}" for k in SHARED_SETTINGS
                 if getattr(first, k) != getattr(c, k)]
        if diffs:
            raise PackError(f"run {i} cannot join the pack of run 0: packed runs share {', '.join(SHARED_SETTINGS)}; "
                            f"they differ in {'; '.join(diffs)}")
        if c.checkpoint_dir is not None:
            raise PackError("a packed run has no checkpoint_dir of its own: give PackedTrainer(checkpoint_dir=...)")
    ident = model_identity(models[0])
    for i, m in enumerate(models[1:], 1):
        if model_identity(m) != ident:
            diffs = ckpt.config_differences(_jsonable(ident), _jsonable(model_identity(m)))
            raise PackError(f"run {i}'s model differs from run 0's ({'; '.join(diffs[:5])}): a pack shares one "
                            f"model configuration")
        differs = frozen_difference(models[0], m)
        if differs:
            raise PackError(f"run {i}'s frozen weights differ from run 0's (e.g. {differs}): a pack shares one frozen "
                            f"backbone. A randomly initialised backbone built with another seed is another "
                            f"backbone; pack only runs whose backbone is the same (e.g. pretrained)")


def frozen_difference(source: nn.Module, model: nn.Module) -> str | None:
    """The name of a frozen parameter of ``model`` that differs from (or is missing in) ``source``, else None."""
    frozen = {n: p for n, p in source.named_parameters() if not p.requires_grad}
    mine = {n: p for n, p in model.named_parameters() if not p.requires_grad}
    for name in sorted(set(frozen) | set(mine)):
        a, b = frozen.get(name), mine.get(name)
        if a is None or b is None or (a is not b and not torch.equal(a, b.to(a.device))):
            return name
    return None


def share_frozen(source: nn.Module, model: nn.Module) -> None:
    """Make ``model`` use ``source``'s frozen parameter tensors (after checking they are equal),
    so that K models built for a pack hold one copy of the backbone, not K."""
    differs = frozen_difference(source, model)
    if differs:
        raise PackError(f"frozen weights differ from the first run's (e.g. {differs}): a pack shares one "
                        f"frozen backbone")
    frozen = {n: p for n, p in source.named_parameters() if not p.requires_grad}
    for prefix, module in model.named_modules():
        for name, param in list(module.named_parameters(recurse=False)):
            full = f"{prefix}.{name}" if prefix else name
            if not param.requires_grad:
                setattr(module, name, frozen[full])


class PackedTrainer:
    """``PackedTrainer(models, task, configs).fit()`` -> one result per run: the TrainResult the
    Trainer would return (a PackedTrainResult, with who it was packed with), or the
    NonFiniteLossError of a run whose loss became NaN (the other runs are not affected).

    ``models``: one per run, built exactly as each run alone would be (so the trained parameters
    start where they would); their frozen weights must be equal. ``configs``: one TrainConfig per
    run; runs may differ in RUN_SETTINGS, share SHARED_SETTINGS. The trained parameters are written
    back into each model. ``checkpoint_dir``: the pack's checkpoint (resume gives the same pack)."""

    def __init__(self, models, task, configs, *, checkpoint_dir: str | None = None, resume: bool = True,
                 progress: bool | None = None):
        models, configs = list(models), list(configs)
        check_packable(models, task, configs)
        self.models, self.task, self.configs = models, task, configs
        c = configs[0]
        # a Trainer of run 0 for the settings every run shares: its checks of splits, device, amp, autocast
        self.evaluator = Trainer(models[0], task, dataclasses.replace(c, compile=False, progress=False))
        for i, cfg in enumerate(configs):
            split = cfg.target_split or (self.evaluator.splits[0] if self.evaluator.splits else None)
            if cfg.target_accuracy is not None and split not in self.evaluator.splits:
                raise ValueError(f"run {i}: target_split {split!r} is not evaluated: choose one of "
                                 f"{list(self.evaluator.splits)}")
        self.dist = self.evaluator.dist       # under torchrun: batch_size divides by the processes (checked there)
        self.device = self.evaluator.device
        self.amp_dtype = self.evaluator.amp_dtype
        self.splits = self.evaluator.splits
        self.checkpoint_dir, self.resume = checkpoint_dir, resume
        self.progress = (c.progress if progress is None else progress) and self.dist.is_main
        self.net = PackedModel(models[0]).to(self.device)
        self.compile_mode = compile_mode(c, self.device, task, self.dist.world_size)
        self.forward = self.net
        if self.compile_mode is not None:
            mode = None if self.compile_mode == "default" else self.compile_mode
            self.forward = torch.compile(self.net, mode=mode)
        # CUDA graphs (as in the Trainer) are told where each forward-backward pass begins; a run
        # leaving the pack changes the shapes, and the graphs are recorded again for the new K
        self._mark_step = self.compile_mode in CUDA_GRAPH_MODES and self.device.type == "cuda"

    # -- checkpoints ------------------------------------------------------------------------
    def identity(self) -> dict:
        return _jsonable({"packed": TECHNIQUE, "model": model_identity(self.models[0]),
                          "task": task_identity(self.task), "runs": [c.identity() for c in self.configs]})

    def _path(self) -> Path | None:
        return Path(self.checkpoint_dir) / ckpt.CHECKPOINT_NAME if self.checkpoint_dir else None

    # -- evaluation -------------------------------------------------------------------------
    @torch.no_grad()
    def _evaluate_rows(self, rows: torch.Tensor) -> list[dict[str, dict]]:
        """Mean loss and accuracy per split for K runs' parameters ``rows`` [K, N] at once: every
        fixed evaluation batch repeated K times, one packed forward, in eval mode, under a forked
        RNG (evaluating never changes the training trajectory); as Trainer.evaluate per run."""
        c, task, dev, k = self.configs[0], self.task, self.device, rows.shape[0]
        was_training = self.net.training
        self.net.eval()
        out = [{} for _ in range(k)]
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
            for split in self.splits:
                loss_sum = torch.zeros(k, device=dev, dtype=torch.float64)
                acc_sum = torch.zeros(k, device=dev, dtype=torch.float64)
                n = 0
                for batch in task.eval_batches(split, c.eval_batch_size or max(c.batch_size, 64), dev, c.eval_limit):
                    batch = batch.to(dev)
                    mask = None if batch.mask is None else batch.mask.repeat(k, 1)
                    with self.evaluator._autocast():
                        logits = self.net(rows, batch.x.repeat(k, *([1] * (batch.x.dim() - 1))), mask).float()
                    logits = logits.view(k, -1, *logits.shape[1:])
                    b = batch.y.shape[0]
                    loss_sum += torch.stack([task.loss(logits[p], batch.y) for p in range(k)]).double() * b
                    acc_sum += torch.stack([task.accuracy(logits[p], batch.y) for p in range(k)]).double() * b
                    n += b
                if n == 0:
                    raise ValueError(f"split {split!r} of task {getattr(task, 'name', '?')!r} produced no examples")
                for p, (loss, acc) in enumerate(zip(loss_sum.tolist(), acc_sum.tolist())):
                    out[p][split] = {"loss": loss / n, "accuracy": acc / n, "examples": n}
        self.net.train(was_training)
        return out

    def _evaluate_agreed(self, rows: torch.Tensor) -> list[dict[str, dict]]:
        """``_evaluate_rows``; under DDP rank 0 evaluates and every process gets its results, so the
        records and the stop decisions drawn from them are the same on every process."""
        return distributed.from_main(self._evaluate_rows(rows) if self.dist.is_main else None, self.dist)

    def _evaluate(self, indices: list[int], rows: torch.Tensor, runs: list[dict], t_start: float) -> list[bool]:
        """Evaluate runs ``indices`` (parameters ``rows``) and record it in their evals and best;
        per run, True when it reached its target accuracy."""
        reached = []
        for i, metrics in zip(indices, self._evaluate_agreed(rows)):
            run, c = runs[i], self.configs[i]
            entry = {"step": run["step"], "samples": run["samples"], "wall_s": time.perf_counter() - t_start, **metrics}
            for split in self.splits:
                if split not in run["best"] or entry[split]["accuracy"] > run["best"][split]["accuracy"]:
                    run["best"][split] = {**entry[split], "step": run["step"]}
            run["evals"].append(entry)
            target_split = c.target_split or self.splits[0]
            hit = c.target_accuracy is not None and entry[target_split]["accuracy"] >= c.target_accuracy
            if hit and run["steps_to_target"] is None:
                run["steps_to_target"] = run["step"]
            reached.append(hit)
        return reached

    # -- the loop ---------------------------------------------------------------------------
    def fit(self) -> list:
        configs, task, dev, c0 = self.configs, self.task, self.device, self.configs[0]
        seed_everything(c0.seed)          # dropout: one generator for the stacked batch, seeded by run 0's seed
        fingerprint = ckpt.frozen_fingerprint(self.models[0])
        runs = [{"step": 0, "samples": 0, "history": [], "evals": [], "best": {}, "steps_to_target": None,
                 "stopped": None, "row": None, "error": None} for _ in configs]
        flat = torch.stack([self.net.flatten(m).to(dev) for m in self.models])
        fp16 = self.amp_dtype == torch.float16
        pack = _Active(list(range(len(configs))), flat, torch.zeros_like(flat), torch.zeros_like(flat),
                       torch.zeros(len(configs), device=dev, dtype=torch.float64),
                       PerRunScaler(len(configs), dev, fp16))
        step, wall_s, train_s, resumed_from = 0, 0.0, 0.0, None
        path = self._path()
        if path is not None and self.resume and path.is_file():
            saved = ckpt.load(path, required=PACK_CHECKPOINT_KEYS)
            ckpt.check_compatible(path, saved["identity"], self.identity(), saved["fingerprint"], fingerprint)
            runs, step = saved["runs"], saved["step"]
            pack = _Active(saved["active"], *(saved[k].to(dev) for k in ("flat", "exp_avg", "exp_avg_sq", "opt_steps")),
                           PerRunScaler(len(saved["active"]), dev, fp16, saved.get("loss_scale"),
                                        saved.get("growth_tracker")))    # absent in checkpoints before fp16 packs
            wall_s, train_s, resumed_from = saved["wall_s"], saved["train_s"], step
            ckpt.set_rng_state(saved["rng"])
        pack.start(configs, task, step, dev)
        ckpt_every = (c0.checkpoint_every or c0.eval_every) if path is not None else 0
        bar = tqdm(total=max(c.steps for c in configs), initial=step,
                   desc=f"{getattr(task, 'name', 'train')} x{len(configs)}", disable=not self.progress,
                   dynamic_ncols=True, leave=True)
        t_start = time.perf_counter() - wall_s
        t_train = time.perf_counter()

        def save() -> None:
            if path is not None and self.dist.is_main:
                ckpt.atomic_save({"format": ckpt.FORMAT, "identity": self.identity(), "fingerprint": fingerprint, "runs": runs,
                                  "step": step, "wall_s": time.perf_counter() - t_start, "train_s": train_s,
                                  "rng": ckpt.rng_state(), **pack.state()}, path)

        self.net.train()
        try:
            while pack.runs:
                self._step(pack, step)
                step += 1
                for i in pack.runs:
                    runs[i]["step"] = step
                    runs[i]["samples"] += c0.batch_size * c0.grad_accum

                ends = {p for p, i in enumerate(pack.runs) if step >= configs[i].steps}
                do_eval = self.splits and c0.eval_every and step % c0.eval_every == 0
                do_ckpt = ckpt_every and step % ckpt_every == 0
                out_of_time = (c0.time_budget_s is not None       # agreed: every process stops at once
                               and self._anyone(time.perf_counter() - t_start >= c0.time_budget_s))
                everyone = step % c0.log_every == 0 or do_eval or do_ckpt or out_of_time
                if not (everyone or ends):
                    continue
                due = set(range(len(pack.runs))) if everyone else ends
                pack.agree(self.dist)
                for p, (loss, accuracy, bad_step) in enumerate(pack.read(due)):    # the one host sync
                    run = runs[pack.runs[p]]
                    if bad_step >= 0:
                        run["stopped"] = "nan"
                        run["error"] = Trainer._nan_message(types.SimpleNamespace(
                            config=configs[pack.runs[p]], amp_dtype=self.amp_dtype), bad_step)
                        ends.discard(p)
                    elif loss is not None:
                        run["history"].append({"step": step, "samples": run["samples"], "loss": loss,
                                               "wall_s": time.perf_counter() - t_start, "accuracy": accuracy})
                if step < bar.total:
                    bar.update(step - bar.n)
                else:          # the last step: shown once, by bar.close() (an update would print it twice)
                    bar.n = step
                train_s += time.perf_counter() - t_train
                alive = [p for p, i in enumerate(pack.runs) if runs[i]["stopped"] != "nan"]
                to_eval = [p for p in alive if p not in ends] if do_eval else []
                reached = dict(zip(to_eval, self._evaluate([pack.runs[p] for p in to_eval], pack.flat.detach()[to_eval],
                                                           runs, t_start) if to_eval else []))
                for p in alive:
                    run = runs[pack.runs[p]]
                    if p in ends:
                        self._finish(run, pack, p, "steps")
                    elif reached.get(p):
                        self._finish(run, pack, p, "target")
                    elif out_of_time:
                        self._finish(run, pack, p, "time")
                pack.keep([p for p, i in enumerate(pack.runs) if runs[i]["stopped"] is None], configs)
                if do_ckpt:
                    save()
                t_train = time.perf_counter()
        finally:
            bar.close()
        train_s += time.perf_counter() - t_train
        return self._results(runs, resumed_from, t_start, train_s, save)

    def _anyone(self, flag: bool) -> bool:
        """True on every process when ``flag`` is True on any (one all-reduce under DDP)."""
        if not self.dist.enabled:
            return flag
        t = torch.tensor([int(flag)], device=self.device)
        torch_dist.all_reduce(t, op=torch_dist.ReduceOp.MAX)
        return bool(t.item())

    @staticmethod
    def _finish(run: dict, pack: "_Active", position: int, stopped: str) -> None:
        run["stopped"] = stopped
        run["row"] = pack.flat[position].detach().cpu().clone()
        if pack.scaler.enabled:
            run["loss_scale"] = pack.scaler.scale[position].item()

    def _step(self, pack: "_Active", step: int) -> None:
        """One optimizer step of every run in the pack: forward/backward on the stacked batches,
        per-run loss scaling under fp16 (a run whose gradient overflowed skips its update), clipping
        and Adam; losses, accuracies and the first NaN step summed on the device."""
        c0, task, dev, k = self.configs[0], self.task, self.device, len(pack.runs)
        pack.flat.requires_grad_(True)
        for _ in range(c0.grad_accum):
            if self._mark_step:
                torch.compiler.cudagraph_mark_step_begin()
            x, y, mask = stack_batches([distributed.shard(next(b), self.dist) for b in pack.batches], task)
            with self.evaluator._autocast():
                logits = self.forward(pack.flat, x.to(dev), None if mask is None else mask.to(dev)).float()
            logits = logits.view(k, -1, *logits.shape[1:])
            losses = torch.stack([task.loss(logits[p], y[p]) for p in range(k)])
            (pack.scaler.scale_losses(losses).sum() / c0.grad_accum).backward()
            losses = losses.detach()
            pack.loss_sum += losses
            pack.acc_sum += torch.stack([task.accuracy(logits[p].detach(), y[p]) for p in range(k)])
            pack.first_bad.masked_fill_(~torch.isfinite(losses) & (pack.first_bad < 0), step + 1)
        pack.windows = [w + c0.grad_accum for w in pack.windows]
        grad, pack.flat = pack.flat.grad, pack.flat.detach()
        if self.dist.enabled:            # the mean over the processes' slices: the global batch's gradient
            torch_dist.all_reduce(grad)
            grad.div_(self.dist.world_size)
        found_inf = pack.scaler.unscale_(grad)              # None without fp16
        clip_rows(grad, pack.clip)
        pack.opt_steps += 1 if found_inf is None else ~found_inf
        adam_step(pack.flat, grad, pack.exp_avg, pack.exp_avg_sq, pack.opt_steps, pack.lr, pack.wd, pack.decoupled,
                  skip=found_inf)
        pack.scaler.update(found_inf)

    def _results(self, runs, resumed_from, t_start, train_s, save) -> list:
        final = [i for i, run in enumerate(runs)       # the final evaluations (unless one was at the last step)
                 if run["stopped"] != "nan" and not (run["evals"] and run["evals"][-1]["step"] == run["step"])]
        if self.splits and final:
            self._evaluate(final, torch.stack([runs[i]["row"] for i in final]).to(self.device), runs, t_start)
        out = []
        for i, run in enumerate(runs):
            c = self.configs[i]
            if run["stopped"] == "nan":
                out.append(NonFiniteLossError(run["error"]))
                continue
            self.net.unflatten_into(run["row"].to(self.device), self.models[i])
            final = {s: run["evals"][-1][s] for s in self.splits} if run["evals"] else {}
            others = [{"index": j, **describe_run(self.configs[j])} for j in range(len(self.configs)) if j != i]
            out.append(PackedTrainResult(
                steps=run["step"], samples=run["samples"], wall_s=time.perf_counter() - t_start, train_s=train_s,
                history=run["history"], evals=run["evals"], final=final, best=run["best"], stopped=run["stopped"],
                steps_to_target=run["steps_to_target"], resumed_from=resumed_from, device=str(self.device),
                amp=str(self.amp_dtype).replace("torch.", "") if self.amp_dtype else "off",
                compile=self.compile_mode or "off", config=c.to_dict(),
                packed={"technique": TECHNIQUE, "runs": len(self.configs), "index": i, "with": others}))
        save()
        return out


def stack_batches(parts, task):
    """The K runs' batches as one: x [K*B, ...], y [K, B, ...], mask [K*B, W] or None. Padded
    batches of different widths are right-padded to the widest (pad_id, or 0 for continuous
    tokens; mask 0), which leaves every real token's result unchanged."""
    masks = [b.mask for b in parts]
    if masks[0] is None:
        return torch.cat([b.x for b in parts]), torch.stack([b.y for b in parts]), None
    width = max(m.shape[1] for m in masks)
    xs, ms = [], []
    for b in parts:
        extra = width - b.mask.shape[1]
        per_token = b.x.shape[1] // b.mask.shape[1]
        pad = [0, 0] * (b.x.dim() - 2) + [0, extra * per_token]
        value = task.pad_id if task.pad_id is not None and not b.x.is_floating_point() else 0
        xs.append(F.pad(b.x, pad, value=value) if extra else b.x)
        ms.append(F.pad(b.mask, [0, extra], value=0) if extra else b.mask)
    return torch.cat(xs), torch.stack([b.y for b in parts]), torch.cat(ms)


def auto_pack_size(runs: int, device, *, per_run_bytes: int | None = None, free_bytes: int | None = None,
                   fraction: float = 0.7, tokens: int | None = None) -> int:
    """How many runs to pack: on CUDA as many as ``fraction`` of the free memory holds (one run's
    step costs ``per_run_bytes``, measured by ``measure_run_bytes``); on a CPU ``CPU_AUTO_PACK``
    where bench/bench_packed.py measured packing faster: sequences of at most ``CPU_PACK_MAX_TOKENS``
    (``tokens``: the task's length; longer ones: 1); 1 means do not pack."""
    device = torch.device(device)
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    if device.type != "cuda":
        if tokens is not None and tokens > CPU_PACK_MAX_TOKENS:
            return 1
        return max(1, min(runs, CPU_AUTO_PACK))
    if per_run_bytes is None or per_run_bytes <= 0:
        raise ValueError("on CUDA the pack size is chosen by memory: give per_run_bytes (measure_run_bytes)")
    if free_bytes is None:
        free_bytes, _ = torch.cuda.mem_get_info(device)
    return max(1, min(runs, int(fraction * free_bytes // per_run_bytes)))


def measure_run_bytes(model, task, config: TrainConfig) -> int:
    """Peak CUDA memory one packed run's training step adds (a pack of one, one step, then freed)."""
    device = torch.device(config.device if config.device != "auto" else "cuda")
    if device.type != "cuda":
        raise ValueError("measure_run_bytes measures CUDA memory; on a CPU auto_pack_size needs no measurement")
    net = PackedModel(model).to(device)
    flat = net.flatten(model).to(device)[None].requires_grad_(True)
    batch = next(task.train_batches(config.batch_size, device, config.seed))
    torch.cuda.synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    logits = net(flat, batch.x, batch.mask).float()
    task.loss(logits, batch.y).backward()
    torch.cuda.synchronize(device)
    used = torch.cuda.max_memory_allocated(device) - before + 3 * flat.numel() * 4   # + grad and Adam's 2 states
    del net, flat, logits
    return int(used)
