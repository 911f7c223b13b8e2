"""Longformer (the paper's section on other backbones) from Hugging Face ``LongformerModel``.

Long sequences without extending positions: ``allenai/longformer-base-4096`` has 4096 learned
positions (RoBERTa-style: two leading rows of its 4098-row table are padding rows, not positions)
and sliding-window attention (512 tokens per layer, its own ``attention_window``), so a layer's
cost grows linearly with the length. Only local attention is used (no global tokens), so the last
token, which FPT reads, sees ``attention_window / 2`` tokens back per layer. The model pads every
sequence to a multiple of the window itself, masking the padding out.
"""
from __future__ import annotations

import torch

from fptlib.backbones.hf import _L, HFBackbone, _extended_table


class LongformerBackbone(HFBackbone):
    family = "longformer"
    causal = False
    MODEL_CLASS, CONFIG_CLASS = "LongformerModel", "LongformerConfig"
    BODY_KWARGS = {"add_pooling_layer": False}
    _LAYER = r"model\.encoder\.layer\.\d+"
    GROUP_RULES = (
        (r"model\.embeddings\.word_embeddings\.weight", "unused"),
        (r"model\.embeddings\.position_embeddings\.weight", "positions"),
        (r"model\.embeddings\.token_type_embeddings\.weight", "other"),
        (rf"model\.embeddings\.LayerNorm\.{_L}", "layernorm"),
        (rf"{_LAYER}\.attention\.self\.(?:query|key|value)\.{_L}", "attention"),
        # projections of global attention: no token attends globally here, so never used
        (rf"{_LAYER}\.attention\.self\.(?:query|key|value)_global\.{_L}", "unused"),
        (rf"{_LAYER}\.attention\.output\.dense\.{_L}", "attention"),
        (rf"{_LAYER}\.attention\.output\.LayerNorm\.{_L}", "layernorm"),
        (rf"{_LAYER}\.intermediate\.dense\.{_L}", "feedforward"),
        (rf"{_LAYER}\.output\.dense\.{_L}", "feedforward"),
        (rf"{_LAYER}\.output\.LayerNorm\.{_L}", "layernorm"),
    )
    DROPOUT_KEYS = ("hidden_dropout_prob", "attention_probs_dropout_prob")
    unused_what = ("the backbone's token embedding table and its global-attention projections "
                   "(no token attends globally)")

    def __init__(self, model, **kw) -> None:
        super().__init__(model, **kw)
        window = model.config.attention_window
        self.notes.append(f"sliding-window attention ({window} tokens), local only (no global "
                          f"tokens); attention weights are banded and not returned")
        self.notes.append("the padding rows of the positional table are counted in 'positions' "
                          "but never used as positions")

    @property
    def _keep(self) -> int:
        """Leading rows of the positional table that are not positions (the padding rows)."""
        return self.model.config.pad_token_id + 1

    @property
    def max_positions(self) -> int:
        return self.model.embeddings.position_embeddings.num_embeddings - self._keep

    def _layers(self):
        return self.model.encoder.layer

    def _grow_position_table(self, n: int) -> None:
        emb = self.model.embeddings
        emb.position_embeddings = _extended_table(emb.position_embeddings, n, keep=self._keep)
        self.model.config.max_position_embeddings = n + self._keep

    def _run(self, embeds, attention_mask, output_attentions: bool):
        if output_attentions:
            raise ValueError("Longformer's sliding-window attention gives banded weights "
                             "[B, heads, L, window + 1], not [B, heads, L, L] maps: attention "
                             "extraction is not supported for this family; use gpt2, bert or vit")
        batch, length = embeds.shape[:2]
        # explicit positions: the model's own padding (to a multiple of the window) then takes
        # the padding row, so every real token's position is a learned row
        positions = torch.arange(length, device=embeds.device) + self._keep
        return self.model(inputs_embeds=embeds, attention_mask=attention_mask,
                          position_ids=positions.expand(batch, -1)).last_hidden_state, None
