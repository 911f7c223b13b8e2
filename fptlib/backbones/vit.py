"""The ViT family (the paper's "ViT initialisation" row) from Hugging Face ``ViTModel``.

Conventions, following the authors' code (timm's ``vit_base_patch16_224`` driven block by block):

- inputs arrive as token embeddings from FPT's input layer: ViT's patch projection, its CLS token
  and its own positional table (1 CLS row + a 14x14 grid of patch rows, tied to images of 224x224)
  are never used; they form the ``unused`` group;
- no CLS token is prepended: FPT reads the last token(s), as with every other backbone;
- positions come from a new table of 1024 rows, zero-initialised, added to the embeddings before
  the blocks (the authors' ``vit_pos_embed``); it is the ``positions`` group and extends like the
  other families' tables;
- the blocks and the final layer norm are ViT's: pre-norm blocks, bidirectional attention.

Pretrained weights: ``google/vit-base-patch16-224``, ViT-B/16 pretrained on ImageNet-21k and
fine-tuned on ImageNet-1k at 224x224. In 2021 timm's ``vit_base_patch16_224`` (the authors'
call) loaded exactly that Google release; ``google/vit-base-patch16-224-in21k`` is the
pretraining-only checkpoint, which the paper did not use.
"""
from __future__ import annotations

import torch
from torch import nn

from fptlib.backbones.hf import _L, HFBackbone, extended_rows

NEW_POSITIONS = 1024   # rows of the new positional table, as in the authors' code


class ViTBackbone(HFBackbone):
    family = "vit"
    causal = False
    MODEL_CLASS, CONFIG_CLASS = "ViTModel", "ViTConfig"
    BODY_KWARGS = {"add_pooling_layer": False}
    GROUP_RULES = (
        (r"positions", "positions"),
        (rf"model\.embeddings\.(?:cls_token|position_embeddings|patch_embeddings\.projection\.{_L})",
         "unused"),
        (rf"model\.layers\.\d+\.layernorm_(?:before|after)\.{_L}", "layernorm"),
        (rf"model\.layernorm\.{_L}", "layernorm"),
        (rf"model\.layers\.\d+\.attention\.[qkvo]_proj\.{_L}", "attention"),
        (rf"model\.layers\.\d+\.mlp\.fc[12]\.{_L}", "feedforward"),
    )
    DROPOUT_KEYS = ("hidden_dropout_prob", "attention_probs_dropout_prob")
    unused_what = "ViT's input side: its patch projection, CLS token and image positional table"

    def __init__(self, model, **kw) -> None:
        super().__init__(model, **kw)
        self.positions = nn.Parameter(torch.zeros(NEW_POSITIONS, self.hidden_size,
                                                  dtype=model.layernorm.weight.dtype))
        self.notes.append(f"no CLS token is prepended (the output reads the last token); "
                          f"positions come from a new zero-initialised table of {NEW_POSITIONS} "
                          f"rows, as in the authors' code, not from ViT's 197-row image table")

    @property
    def max_positions(self) -> int:
        return self.positions.shape[0]

    def _layers(self):
        return self.model.layers

    def _grow_position_table(self, n: int) -> None:
        rows = extended_rows(self.positions, n)
        self.positions = nn.Parameter(rows, requires_grad=self.positions.requires_grad)

    def _run(self, embeds, attention_mask, output_attentions: bool):
        from transformers.masking_utils import create_bidirectional_mask

        hidden = self.model.embeddings.dropout(embeds + self.positions[:embeds.shape[1]])
        mask = create_bidirectional_mask(config=self.config, inputs_embeds=hidden,
                                         attention_mask=attention_mask)
        captured: list[torch.Tensor] = []
        hooks = [layer.attention.register_forward_hook(lambda m, i, out: captured.append(out[1]))
                 for layer in self._layers()] if output_attentions else []
        try:
            for layer in self._layers():
                hidden = layer(hidden, mask)
        finally:
            for hook in hooks:
                hook.remove()
        return self.model.layernorm(hidden), (tuple(captured) if output_attentions else None)
