"""The paper's LSTM baseline: 3 layer-normalised LSTM layers as wide as the transformer they replace.

Each layer is pre-norm and residual, ``x = x + LSTM(LayerNorm(x))``, with a final LayerNorm, the
same skeleton as a GPT-2 block with the attention+MLP pair replaced by an LSTM. It is unidirectional,
so like GPT-2 it reads the answer off the last token.

Group mapping, so the freeze presets apply: hidden-to-hidden weights (the only path by which
tokens exchange information, the LSTM's counterpart of self-attention) are ``attention``;
input-to-hidden weights (per-token transforms) are ``feedforward``; the norms are ``layernorm``.
There are no positional parameters: order is implicit in the recurrence.
"""
from __future__ import annotations

import torch
from torch import nn

from fptlib.backbones.base import Backbone, BackboneOutput

# The default width: GPT-2 small's, the transformer the paper's baseline stands in for.
LSTM_WIDTH = 768
LSTM_LAYERS = 3        # the paper's LSTM baseline: 3 layers


class LSTMBackbone(Backbone):
    family = "lstm"
    causal = True
    max_positions = None
    GROUP_RULES = (
        (r"layers\.\d+\.(?:weight_hh_l0|bias_hh_l0)", "attention"),
        (r"layers\.\d+\.(?:weight_ih_l0|bias_ih_l0)", "feedforward"),
        (r"norms\.\d+\.(?:weight|bias)", "layernorm"),
        (r"final_norm\.(?:weight|bias)", "layernorm"),
    )

    def __init__(self, hidden_size: int = LSTM_WIDTH, num_layers: int = LSTM_LAYERS, dropout: float = 0.1,
                 seed: int | None = 0, name: str = "lstm") -> None:
        super().__init__()
        if seed is not None:
            torch.manual_seed(seed)
        self.name, self.init = name, "random"
        self.source = f"{num_layers}-layer layer-normalised LSTM, width {hidden_size} (no download)"
        self.hidden_size, self.num_layers, self.num_heads = hidden_size, num_layers, 0
        self.layers = nn.ModuleList(nn.LSTM(hidden_size, hidden_size, batch_first=True)
                                    for _ in range(num_layers))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden_size) for _ in range(num_layers))
        self.final_norm = nn.LayerNorm(hidden_size)
        self.drop = nn.Dropout(dropout)
        self.notes.append("LSTM: recurrent (hidden-to-hidden) weights are counted as 'attention', "
                          "input-to-hidden weights as 'feedforward'; no positional parameters")

    def forward(self, embeds, attention_mask=None, output_attentions=False) -> BackboneOutput:
        if output_attentions:
            raise ValueError("the LSTM backbone has no attention weights to return; "
                             "use a transformer backbone to look at attention")
        # Right padding only follows the real tokens, and the LSTM runs left to right,
        # so the states at real positions never see padding: no packing needed.
        x = embeds
        for lstm, norm in zip(self.layers, self.norms):
            out, _ = lstm(norm(x))
            x = x + self.drop(out)
        return BackboneOutput(self.final_norm(x), None)
