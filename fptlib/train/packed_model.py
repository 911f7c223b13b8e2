"""The packed model: K runs' trained parameters stacked, one frozen backbone shared, and the
per-run optimizer arithmetic (Adam/AdamW, clipping, fp16 loss scales) on the stacked rows.

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
operations with per-run learning rate, weight decay and step count. The training loop of a pack
is ``packed.PackedTrainer`` (an engine of ``loop.Loop``).
"""
from __future__ import annotations

import copy
import types

import torch
import torch.nn.functional as F
from torch import nn

PACKABLE_GROUPS = frozenset({"input", "output", "layernorm", "positions"})
BETAS, EPS = (0.9, 0.999), 1e-8       # torch.optim.Adam's defaults, which the Trainer uses


class PackError(ValueError):
    """These runs (or this model) cannot be trained as one pack; the message says why and what to do."""


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
