"""The interface every backbone offers to the FPT model.

A backbone is the frozen body of FPT: it takes token embeddings ``[B, L, hidden]`` (never token ids:
its own token embedding table is unused) and returns hidden states of the same shape, and, when
asked, the attention weights of every layer.

Each backbone names the group of every one of its parameters (``parameter_groups``), written out
per family with anchored patterns rather than guessed from substrings, so a freeze preset means the
same thing on every architecture; a parameter no rule covers is an error, not a silent default.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import nn

# Backbone-side groups. ``unused`` marks the token embedding table: inputs arrive through
# ``inputs_embeds``, so it gets no gradient and is never trained nor counted as trainable.
BACKBONE_GROUPS = ("layernorm", "positions", "attention", "feedforward", "other", "unused")


@dataclass
class BackboneOutput:
    hidden: torch.Tensor                        # [B, L, hidden]
    attentions: tuple[torch.Tensor, ...] | None  # num_layers x [B, heads, L, L], or None


class Backbone(nn.Module):
    """Base class: subclasses set the attributes below and implement ``forward``."""

    name: str = "?"
    family: str = "?"
    init: str = "pretrained"     # "pretrained" | "random" | "statistics" | e.g. "checkpoint"
    hidden_size: int
    num_layers: int
    num_heads: int
    max_positions: int | None    # rows of a learned positional table; None when there is none
    causal: bool
    source: str = ""             # where the weights came from, in words
    unused_what: str = "the backbone's token embedding table"   # the "unused" group, in words
    # True when an all-zero token embedding stays exactly zero through every layer (no positional
    # embedding is added, attention is causal) while each layer normalises it: RMSNorm's gradient at
    # zero is 1/sqrt(eps), so the gradient grows ~1000x per layer and overflows in a deep model.
    # FPT then gives its linear input layer a nonzero bias (``model.nonzero_bias_``).
    zero_embedding_unsafe: bool = False

    # family -> list of (anchored regex over the parameter name, group); set by subclasses
    GROUP_RULES: tuple[tuple[str, str], ...] = ()

    def __init__(self) -> None:
        super().__init__()
        self.notes: list[str] = []

    def forward(self, embeds: torch.Tensor, attention_mask: torch.Tensor | None = None,
                output_attentions: bool = False) -> BackboneOutput:
        raise NotImplementedError

    def parameter_groups(self) -> dict[str, str]:
        """Map every parameter name (as in ``named_parameters()``) to its group."""
        rules = [(re.compile(pattern), group) for pattern, group in self.GROUP_RULES]
        groups = {}
        for name, _ in self.named_parameters():
            for pattern, group in rules:
                if pattern.fullmatch(name):
                    groups[name] = group
                    break
            else:
                raise ValueError(
                    f"parameter {name!r} of the {self.family} backbone matches no group rule; "
                    f"add an explicit rule to {type(self).__name__}.GROUP_RULES")
        return groups

    def extend_positions(self, n: int) -> None:
        raise ValueError(f"the {self.family} backbone has no learned positional table to extend")

    def describe_source(self) -> str:
        return f"{self.name} ({self.family}, {self.init} init){': ' + self.source if self.source else ''}"
