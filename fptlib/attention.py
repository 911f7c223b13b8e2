"""Attention maps of a frozen transformer, and how much of them lands on the bits that matter.

The paper's most striking picture (section 3.5) is Bit XOR: the self-attention weights are frozen,
yet after training only the input layer, layer norms, positions and output layer, heads attend from
each output position to exactly the two input bits that the XOR there needs. This module turns that
picture into numbers:

* :func:`extract_attentions` runs a model on inputs and returns every layer's and head's attention
  as one float32 CPU tensor ``[layers, batch, heads, L, L]`` (rows = the attending token, columns =
  the attended token; each row sums to one).
* :func:`matching_bit_score` is the share of attention from output position ``i`` that falls on the
  two tokens ``i`` and ``n + i`` (bit ``i`` of string a and of string b), per layer and head.
* :func:`matching_bit_chance` is what that share would be if attention were uniform over the
  positions a token can see, the yardstick the score has to beat.

Bit XOR token order (``fptlib.tasks`` ``bit-xor``): string a (tokens ``0 .. n-1``), then string b
(tokens ``n .. 2n-1``); the output layer reads the last ``n`` tokens, so output ``i`` sits on token
``n + i`` and needs tokens ``i`` and ``n + i``.
"""
from __future__ import annotations

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


# ----------------------------------------------------------------------------- matching-bit score

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


def matching_bit_score(attn: Tensor, n_bits: int) -> Tensor:
    """Share of attention from each output position on the two bits its XOR needs: ``[layers, heads]``.

    Output ``i`` is token ``n + i``; it needs token ``i`` (bit i of a) and token ``n + i`` (bit i of
    b, itself). The share is taken of each row's total (one after softmax), averaged over ``i`` and
    over the examples. 1 means the head looks only at the right bits.
    """
    attn = check_attentions(attn)
    n = _check_n_bits(attn, n_bits)
    i = torch.arange(n)
    rows = attn[..., n + i, :]                                        # [layers, B, heads, n, L]
    hit = rows[..., i, i] + rows[..., i, n + i]                       # [layers, B, heads, n]
    share = hit / rows.sum(-1).clamp_min(1e-12)
    return share.mean(dim=(1, 3))


def chance_value(n_bits: int, causal: bool) -> float:
    """The matching-bit share of uniform attention over the positions each output token can see.

    A causal backbone lets token ``n + i`` see ``n + i + 1`` positions (both needed bits among
    them); a bidirectional one sees all ``2n``.
    """
    check_n_bits(n_bits)
    if not isinstance(causal, bool):
        raise TypeError(f"causal must be True or False (backbone.causal), got {causal!r}")
    if not causal:
        return 2.0 / (2 * n_bits)
    return sum(2.0 / (n_bits + i + 1) for i in range(n_bits)) / n_bits


def matching_bit_chance(attn: Tensor, n_bits: int, causal: bool) -> Tensor:
    """:func:`chance_value` laid out like :func:`matching_bit_score`'s result, ``[layers, heads]``."""
    attn = check_attentions(attn)
    _check_n_bits(attn, n_bits)        # chance_value checks n_bits alone; this also checks the token count
    return torch.full((attn.shape[0], attn.shape[2]), chance_value(n_bits, causal))


@dataclass
class MatchingReport:
    """Matching-bit scores of one model on one string length, with the chance yardstick."""
    n_bits: int
    causal: bool
    score: Tensor          # [layers, heads]
    chance: float

    @property
    def best(self) -> tuple[int, int, float]:
        """(layer, head, score) of the head that looks most at the matching bits."""
        flat = int(self.score.argmax())
        layer, head = divmod(flat, self.score.shape[1])
        return layer, head, float(self.score[layer, head])

    @property
    def best_over_chance(self) -> float:
        return self.best[2] / self.chance


def is_causal(model: nn.Module) -> bool:
    """Whether the model's backbone attends only backwards (GPT-2, LLaMA) or both ways (BERT)."""
    bb = _backbone_of(model)
    if bb is None or not hasattr(bb, "causal"):
        raise TypeError(f"cannot tell whether {type(model).__name__} is causal: pass an FPT or a Backbone")
    return bool(bb.causal)
