"""Test helpers importable from every test module (``from fpt_testing import ...``).

Kept out of conftest.py: notebooks/ has a conftest.py too, and ``import conftest`` would be
ambiguous.
"""
from __future__ import annotations


def tiny_backbone(family: str, seed: int = 0, dropout: float = 0.1):
    """A 2-layer, 32-wide backbone of ``family`` with random weights (no download)."""
    from transformers import (BertConfig, GPT2Config, LlamaConfig, LongformerConfig, T5Config,
                              ViTConfig)

    from fptlib.backbones import backbone_from_config, load_backbone

    if family == "gpt2":
        config = GPT2Config(n_layer=2, n_embd=32, n_head=2, n_positions=64, vocab_size=16,
                            bos_token_id=0, eos_token_id=0)
    elif family == "bert":
        config = BertConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=2,
                            intermediate_size=64, max_position_embeddings=64, vocab_size=16)
    elif family == "llama":
        config = LlamaConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=2,
                             num_key_value_heads=1, intermediate_size=64, vocab_size=16)
    elif family == "vit":
        config = ViTConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=2,
                           intermediate_size=64, image_size=8, patch_size=4)
    elif family == "t5":
        config = T5Config(num_layers=2, d_model=32, d_kv=16, num_heads=2, d_ff=64, vocab_size=16)
    elif family == "longformer":   # 64 positions after the two padding rows, windows of 4 tokens
        config = LongformerConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=2,
                                  intermediate_size=64, max_position_embeddings=66,
                                  attention_window=4, vocab_size=16, pad_token_id=1)
    elif family == "lstm":
        return load_backbone("lstm", init="random", hidden_size=32, layers=2, seed=seed, dropout=dropout)
    else:
        raise ValueError(family)
    return backbone_from_config(config, name=f"tiny-{family}", seed=seed, dropout=dropout)


class MarkerPayload:
    """A hostile pickle: unpickling it runs ``open(marker, "w")``, creating the marker file.

    A loader that refuses it without running code leaves the marker absent."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))
