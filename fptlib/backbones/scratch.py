"""Bodies that replace the language model, for Tan et al.'s ablations (NeurIPS 2024, "Are Language
Models Actually Useful for Time Series Forecasting?"): the input layer feeds the output layer through

- ``none``: nothing (their "w/o LLM"): the identity, no parameters, no positions;
- ``one-attention``: one multi-head self-attention layer, randomly initialised and trained (their
  "LLM2Attn"), on the token embeddings plus a learned positional table: ``x + pos -> MHA``, no residual,
  no layer norm, no feed-forward, as theirs (``nn.MultiheadAttention``).

Their third ablation, one transformer block ("LLM2Trsf"), is a backbone already: a random-init
backbone truncated to one block (``load_backbone(name, "random", layers=1)``), trained in full.
"""
from __future__ import annotations

import torch
from torch import nn

from fptlib.backbones.base import Backbone, BackboneOutput

SCRATCH_BODIES = ("none", "one-attention")
SCRATCH_POSITIONS = 512       # rows of the attention layer's positional table
SCRATCH_HEADS = 12            # heads of the one attention layer (GPT-2's and MiniLM's count)


class ScratchBackbone(Backbone):
    family = "scratch"
    causal = False
    GROUP_RULES = ((r"positions", "positions"), (r"attn\..+", "attention"))

    def __init__(self, kind: str, hidden_size: int, *, num_heads: int = SCRATCH_HEADS,
                 dropout: float = 0.1, seed: int | None = 0) -> None:
        super().__init__()
        if kind not in SCRATCH_BODIES:
            raise ValueError(f"unknown body {kind!r}; known: {', '.join(SCRATCH_BODIES)}")
        if not isinstance(hidden_size, int) or hidden_size < 1:
            raise ValueError(f"hidden_size must be a positive integer, got {hidden_size!r}")
        if kind == "one-attention" and hidden_size % num_heads:
            raise ValueError(f"hidden_size {hidden_size} is not a multiple of {num_heads} heads")
        if seed is not None:
            torch.manual_seed(seed)
        self.name, self.kind, self.init, self.hidden_size = kind, kind, "random", hidden_size
        if kind == "none":
            self.num_layers, self.num_heads, self.max_positions = 0, 0, None
            self.source = "no body: the input layer feeds the output layer (Tan et al.'s w/o LLM)"
        else:
            self.num_layers, self.num_heads, self.max_positions = 1, num_heads, SCRATCH_POSITIONS
            self.positions = nn.Parameter(torch.randn(SCRATCH_POSITIONS, hidden_size) * 0.02)
            self.attn = nn.MultiheadAttention(hidden_size, num_heads, dropout=dropout, batch_first=True)
            self.source = (f"one multi-head attention layer ({num_heads} heads, width {hidden_size}) "
                           f"with learned positions, random init (Tan et al.'s LLM2Attn)")

    def forward(self, embeds, attention_mask=None, output_attentions=False) -> BackboneOutput:
        if self.kind == "none":
            if output_attentions:
                raise ValueError("the 'none' body has no attention to return")
            return BackboneOutput(embeds, None)
        length = embeds.shape[1]
        if length > self.max_positions:
            raise ValueError(f"got {length} tokens; the attention layer has {self.max_positions} positions")
        x = embeds + self.positions[:length]
        padding = None if attention_mask is None else attention_mask == 0
        out, weights = self.attn(x, x, x, key_padding_mask=padding, need_weights=output_attentions,
                                 average_attn_weights=False)
        return BackboneOutput(out, (weights,) if output_attentions else None)
