"""Attention maps of a frozen transformer, and how much of them lands on the bits that matter.

The paper's most striking picture (section 3.5) is Bit XOR: the self-attention weights are frozen,
yet after training only the input layer, layer norms, positions and output layer, heads attend from
each output position to exactly the two input bits that the XOR there needs. This module turns that
picture into numbers:

* :func:`extract_attentions` runs a model on inputs and returns every layer's and head's attention
  as one float32 CPU tensor ``[layers, batch, heads, L, L]`` (rows = the attending token, columns =
  the attended token; each row sums to one).
* :func:`partner_share` is the share of attention from output position ``i`` (token ``n + i``) on
  its partner bit, token ``i`` of the other string, per layer and head; :func:`self_share` is the
  share on the token itself. They are kept apart: looking at yourself moves no information.
* :func:`share_chance` is what either share would be if attention were uniform over the tokens an
  output can see (causal backbones: only earlier ones), the yardstick the shares have to beat.
* :func:`ablate_heads` silences heads (a hook on the attention output before the output
  projection) to test whether the model *needs* the head the pictures point at.

Bit XOR token order (``fptlib.tasks`` ``bit-xor``): string a (tokens ``0 .. n-1``), then string b
(tokens ``n .. 2n-1``); the output layer reads the last ``n`` tokens, so output ``i`` sits on token
``n + i`` and needs tokens ``i`` and ``n + i``.
"""
from __future__ import annotations

from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor, nn


# ----------------------------------------------------------------------------- extraction

def _backbone_of(model: nn.Module):
    """The Backbone inside an FPT (``model.backbone``), or the model itself if it is one."""
    if hasattr(model, "family") and hasattr(model, "num_heads"):
        return model
    return getattr(model, "backbone", None)


def _check_has_attention(model: nn.Module) -> None:
    bb = _backbone_of(model)
    if bb is None:
        return
    if getattr(bb, "family", None) == "lstm" or getattr(bb, "num_heads", 1) == 0:
        raise ValueError(
            f"backbone {getattr(bb, 'name', type(bb).__name__)!r} is an LSTM: it has no attention "
            "to extract. Use a transformer backbone (gpt2, bert/minilm, llama) for attention maps.")


def _run_with_attentions(model: nn.Module, x: Tensor, attention_mask: Tensor | None):
    """Call the model asking for attentions; return whatever per-layer sequence it gives."""
    if hasattr(model, "forward_with_attentions"):
        out = model.forward_with_attentions(x, attention_mask=attention_mask)
    else:  # a bare Backbone (x are embeddings) or another module following the same keyword
        out = model(x, attention_mask=attention_mask, output_attentions=True)
    if hasattr(out, "attentions"):
        return out.attentions
    if isinstance(out, (tuple, list)) and len(out) == 2:
        return out[1]
    raise TypeError(
        f"{type(model).__name__} returned {type(out).__name__}; expected (logits, attentions) from "
        "forward_with_attentions or an output with an .attentions field")


def _usable(attentions) -> bool:
    """True when every layer came back with a weight tensor (sdpa/flash kernels return none)."""
    return (attentions is not None and len(attentions) > 0
            and all(isinstance(a, Tensor) for a in attentions))


def _hf_models(model: nn.Module) -> list[nn.Module]:
    """Hugging Face models inside ``model`` whose attention kernel can be switched."""
    return [m for m in model.modules()
            if hasattr(m, "set_attn_implementation") and hasattr(getattr(m, "config", None),
                                                                 "_attn_implementation")]


@torch.no_grad()
def extract_attentions(model: nn.Module, x: Tensor, attention_mask: Tensor | None = None) -> Tensor:
    """Every layer's and head's attention for inputs ``x``: float32 CPU ``[layers, B, heads, L, L]``.

    Works on an FPT (through ``forward_with_attentions``) or on a bare Backbone (``x`` are then the
    input embeddings). The model runs in eval mode (no dropout, so rows sum to one) without
    gradients; its training flag is restored afterwards. Fused attention kernels (PyTorch's sdpa,
    flash attention) never materialise the weights, so when a backbone answers without them the
    Hugging Face models inside are switched to the "eager" kernel for this call and switched back.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module (an FPT or a Backbone), got {type(model).__name__}")
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor of model inputs, got {type(x).__name__}")
    _check_has_attention(model)
    param = next(model.parameters(), None)
    if param is not None:
        x = x.to(param.device)
        attention_mask = None if attention_mask is None else attention_mask.to(param.device)

    was_training = model.training
    model.eval()
    switched: list[tuple[nn.Module, str]] = []
    try:
        attentions = _run_with_attentions(model, x, attention_mask)
        if not _usable(attentions):
            for m in _hf_models(model):
                old = m.config._attn_implementation
                if old != "eager":
                    m.set_attn_implementation("eager")
                    switched.append((m, old))
            if switched:
                attentions = _run_with_attentions(model, x, attention_mask)
        if not _usable(attentions):
            raise RuntimeError(
                f"{type(model).__name__} returned no attention weights even with the eager kernel; "
                "its backbone must return per-layer attentions when output_attentions=True")
    finally:
        for m, old in reversed(switched):
            m.set_attn_implementation(old)
        model.train(was_training)
    return torch.stack([a.detach().float().cpu() for a in attentions])


# ----------------------------------------------------------------------------- partner and self shares

def check_attentions(attn) -> Tensor:
    """Validate an attention stack ``[layers, B, heads, L, L]``; return it as a float tensor."""
    if not isinstance(attn, Tensor):
        raise TypeError(f"attentions must be a torch.Tensor [layers, batch, heads, L, L], "
                        f"got {type(attn).__name__} (use extract_attentions(model, x))")
    if attn.dim() != 5 or attn.shape[-1] != attn.shape[-2]:
        raise ValueError(f"attentions must have shape [layers, batch, heads, L, L], got {tuple(attn.shape)}; "
                         "stack per-layer [batch, heads, L, L] tensors with torch.stack")
    return attn.float()


def check_n_bits(n_bits) -> int:
    """Validate a Bit XOR string length (bits per string, a positive int); return it."""
    if isinstance(n_bits, bool) or not isinstance(n_bits, int) or n_bits < 1:
        raise ValueError(f"n_bits must be a positive int (the length of each bit string), got {n_bits!r}")
    return n_bits


def _check_n_bits(attn: Tensor, n_bits) -> int:
    """:func:`check_n_bits`, and the attentions must cover the ``2 * n_bits`` Bit XOR tokens."""
    check_n_bits(n_bits)
    L = attn.shape[-1]
    if L != 2 * n_bits:
        raise ValueError(f"Bit XOR with n_bits={n_bits} has {2 * n_bits} tokens (string a, then string b) "
                         f"but the attentions cover {L}; pass the n_bits the task was built with")
    return n_bits


def _output_rows(attn: Tensor, n_bits) -> tuple[Tensor, int]:
    """The rows of the output tokens ``n .. 2n-1`` as shares of each row's total: ``[layers, B, heads, n, L]``."""
    attn = check_attentions(attn)
    n = _check_n_bits(attn, n_bits)
    rows = attn[..., n:, :]
    return rows / rows.sum(-1, keepdim=True).clamp_min(1e-12), n


def partner_share(attn: Tensor, n_bits: int) -> Tensor:
    """Share of attention from output position ``i`` on its partner bit: ``[layers, heads]``.

    Output ``i`` is token ``n + i`` (bit i of string b); its partner is token ``i``, bit i of the
    *other* string, the one token it must fetch from elsewhere for the XOR. Averaged over ``i`` and
    the examples; 1 means the head looks only at the partner bits.
    """
    rows, n = _output_rows(attn, n_bits)
    i = torch.arange(n)
    return rows[..., i, i].mean(dim=(1, 3))


def self_share(attn: Tensor, n_bits: int) -> Tensor:
    """Share of attention from output position ``i`` (token ``n + i``) on itself: ``[layers, heads]``.

    Kept apart from :func:`partner_share`: a head that only looks at its own token also "covers"
    one of the two bits the XOR needs, without moving any information between the strings.
    """
    rows, n = _output_rows(attn, n_bits)
    i = torch.arange(n)
    return rows[..., i, n + i].mean(dim=(1, 3))


def share_chance(n_bits: int, causal: bool) -> float:
    """The partner (and the self) share of uniform attention over the tokens each output can see.

    Both are one token out of the visible ones, so they share one value: ``1 / 2n`` for a
    bidirectional backbone; for a causal one token ``n + i`` sees only tokens ``0 .. n + i``, so the
    value is the mean over ``i`` of ``1 / (n + i + 1)`` (the partner, token ``i``, is always among them).
    """
    check_n_bits(n_bits)
    if not isinstance(causal, bool):
        raise TypeError(f"causal must be True or False (backbone.causal), got {causal!r}")
    if not causal:
        return 1.0 / (2 * n_bits)
    return sum(1.0 / (n_bits + i + 1) for i in range(n_bits)) / n_bits


@dataclass
class BitShares:
    """Partner and self shares of one model on one string length, with their chance values."""
    n_bits: int
    causal: bool
    partner: Tensor        # [layers, heads]
    itself: Tensor         # [layers, heads] the self share
    partner_chance: float
    self_chance: float

    @classmethod
    def of(cls, attn: Tensor, n_bits: int, causal: bool) -> "BitShares":
        chance = share_chance(n_bits, causal)
        return cls(n_bits, causal, partner_share(attn, n_bits), self_share(attn, n_bits), chance, chance)

    @property
    def top(self) -> tuple[int, int]:
        """(layer, head) with the highest partner share: the head the pictures open on."""
        return top_head(self.partner)


def top_head(partner: Tensor) -> tuple[int, int]:
    """(layer, head) of the largest value of a ``[layers, heads]`` partner share (first on ties)."""
    if not isinstance(partner, Tensor) or partner.dim() != 2:
        raise ValueError("partner must be a [layers, heads] tensor from partner_share, "
                         f"got {getattr(partner, 'shape', type(partner).__name__)}")
    layer, head = divmod(int(partner.argmax()), partner.shape[1])
    return layer, head


def is_causal(model: nn.Module) -> bool:
    """Whether the model's backbone attends only backwards (GPT-2, LLaMA) or both ways (BERT)."""
    bb = _backbone_of(model)
    if bb is None or not hasattr(bb, "causal"):
        raise TypeError(f"cannot tell whether {type(model).__name__} is causal: pass an FPT or a Backbone")
    return bool(bb.causal)


# ----------------------------------------------------------------------------- head ablation

ABLATION_MODES = ("zero", "mean")


def output_projection(model: nn.Module, layer: int) -> nn.Module:
    """The attention output projection of ``layer``: its input is the heads' outputs side by side.

    GPT-2: ``h[layer].attn.c_proj``; BERT/MiniLM: ``encoder.layer[layer].attention.output.dense``;
    LLaMA/SmolLM2: ``layers[layer].self_attn.o_proj``. Head ``h`` is the slice
    ``h * d .. (h + 1) * d`` of that input's last dimension (``d`` = its width / heads).
    """
    bb = _backbone_of(model)
    _check_has_attention(model)
    family = getattr(bb, "family", None)
    body = getattr(bb, "model", None)
    if family == "gpt2":
        blocks, path = body.h, "attn.c_proj"
    elif family == "bert":
        blocks, path = body.encoder.layer, "attention.output.dense"
    elif family == "llama":
        blocks, path = body.layers, "self_attn.o_proj"
    else:
        raise ValueError(f"head ablation knows the gpt2, bert and llama families; got backbone family {family!r}")
    if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < len(blocks):
        raise ValueError(f"layer={layer!r} is out of range: the backbone has {len(blocks)} layers, use 0..{len(blocks) - 1}")
    return blocks[layer].get_submodule(path)


@contextmanager
def ablate_heads(model: nn.Module, layer: int, heads: Iterable[int], mode: str = "zero"):
    """Within the ``with`` block, the chosen heads of ``layer`` contribute nothing of their own.

    A forward pre-hook on :func:`output_projection` rewrites those heads' slices of the projection's
    input: ``mode="zero"`` sets them to zero (the head is removed, the projection's bias stays);
    ``mode="mean"`` replaces each by its mean over the batch's examples and positions (the head
    keeps its average contribution but no longer depends on the input). Every other head's slice
    passes through untouched. The hook is removed on leaving the block, whatever happens.
    """
    if mode not in ABLATION_MODES:
        raise ValueError(f"unknown ablation mode {mode!r}; known: {', '.join(ABLATION_MODES)}")
    proj = output_projection(model, layer)
    n_heads = _backbone_of(model).num_heads
    heads = sorted(set(heads))
    bad = [h for h in heads if isinstance(h, bool) or not isinstance(h, int) or not 0 <= h < n_heads]
    if bad or not heads:
        raise ValueError(f"heads must be a non-empty set of head indices 0..{n_heads - 1}; got {heads!r}")

    def hook(module, args):
        x, *rest = args
        d = x.shape[-1] // n_heads
        x = x.clone()
        for h in heads:
            part = x[..., h * d:(h + 1) * d]
            if mode == "zero":
                part.zero_()
            else:
                part.copy_(part.mean(dim=tuple(range(part.dim() - 1)), keepdim=True).expand_as(part))
        return (x, *rest)

    handle = proj.register_forward_pre_hook(hook)
    try:
        yield proj
    finally:
        handle.remove()
