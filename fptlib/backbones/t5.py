"""The T5 encoder (the paper's section on other backbones) from Hugging Face ``T5EncoderModel``.

T5 has no positional table: each attention layer adds a learned *relative position bias* (one
scalar per head and distance bucket, stored in the first block and shared by all blocks). That
bias is T5's only positional parameter, so it forms the ``positions`` group; there is nothing to
extend for long sequences. Layer norms are RMS norms (a scale, no bias).
"""
from __future__ import annotations

from fptlib.backbones.hf import HFBackbone

_W = r"weight"   # T5's linear layers and norms have no bias


class T5Backbone(HFBackbone):
    family = "t5"
    causal = False
    max_positions = None   # relative position bias: no positional table
    MODEL_CLASS, CONFIG_CLASS = "T5EncoderModel", "T5Config"
    GROUP_RULES = (
        (r"model\.(?:shared|encoder\.embed_tokens)\.weight", "unused"),
        (r"model\.encoder\.block\.\d+\.layer\.0\.SelfAttention\.relative_attention_bias\.weight",
         "positions"),
        (rf"model\.encoder\.block\.\d+\.layer\.0\.SelfAttention\.[qkvo]\.{_W}", "attention"),
        (rf"model\.encoder\.block\.\d+\.layer\.[01]\.layer_norm\.{_W}", "layernorm"),
        (rf"model\.encoder\.final_layer_norm\.{_W}", "layernorm"),
        (rf"model\.encoder\.block\.\d+\.layer\.1\.DenseReluDense\.(?:wi|wi_0|wi_1|wo)\.{_W}",
         "feedforward"),
    )
    DROPOUT_KEYS = ("dropout_rate",)

    def __init__(self, model, **kw) -> None:
        super().__init__(model, **kw)
        self.notes.append("relative position bias: no positional table (nothing to extend); "
                          "the 'positions' group is the bias of each head and distance bucket")
        self.notes.append("RMS layer norms: a scale and no bias")

    def _layers(self):
        return self.model.encoder.block

    def _run(self, embeds, attention_mask, output_attentions: bool):
        kwargs = {"output_attentions": True} if output_attentions else {}
        out = self.model(inputs_embeds=embeds, attention_mask=attention_mask, **kwargs)
        return out.last_hidden_state, out.attentions

    def extend_positions(self, n: int) -> None:
        # Relative positions need no table; nothing to extend (and nothing to refuse).
        return
