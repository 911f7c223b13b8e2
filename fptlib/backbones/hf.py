"""GPT-2, BERT and LLaMA families from Hugging Face transformers, driven through ``inputs_embeds``.

One wrapper class per family; each writes out which of its parameters belong to which group.
The wrapped model is the bare body (``GPT2Model``, ``BertModel`` without pooler, ``LlamaModel``).
ViT, T5 and Longformer (the paper's other backbones) have a file each on the same base class;
``families.py`` maps family names to these classes.
"""
from __future__ import annotations

import contextlib

import torch
from torch import nn

from fptlib.backbones.base import Backbone, BackboneOutput

_L = r"(?:weight|bias)"  # a parameter of a linear or norm layer


class HFBackbone(Backbone):
    """Common code: attention extraction, eager switching, positional-table extension."""

    # config attribute names per family
    DROPOUT_KEYS: tuple[str, ...] = ()
    MODEL_CLASS = CONFIG_CLASS = ""     # names in ``transformers`` of the bare body and its config
    BODY_KWARGS: dict = {}              # for building the body, e.g. no pooler

    def __init__(self, model: nn.Module, *, name: str, init: str, source: str = "") -> None:
        super().__init__()
        self.model = model
        self.name, self.init, self.source = name, init, source
        cfg = model.config
        self.hidden_size = cfg.hidden_size
        self.num_layers = cfg.num_hidden_layers
        self.num_heads = cfg.num_attention_heads

    @property
    def config(self):
        return self.model.config

    @contextlib.contextmanager
    def _eager_attention(self):
        """Attention weights exist only in the eager implementation (SDPA/flash never form them).

        Switch to eager for the call and back afterwards, so training keeps the fast kernels.
        """
        before = self.model.config._attn_implementation
        if before == "eager":
            yield
            return
        self.model.set_attn_implementation("eager")
        try:
            yield
        finally:
            self.model.set_attn_implementation(before)

    def _run(self, embeds, attention_mask, output_attentions: bool):
        """(last hidden state, attentions or None) of the wrapped model on ``embeds``."""
        kwargs = dict(inputs_embeds=embeds, attention_mask=attention_mask, use_cache=False)
        if output_attentions:
            kwargs["output_attentions"] = True
        out = self.model(**kwargs)
        return out.last_hidden_state, out.attentions

    def forward(self, embeds, attention_mask=None, output_attentions=False) -> BackboneOutput:
        if not output_attentions:
            return BackboneOutput(self._run(embeds, attention_mask, False)[0], None)
        with self._eager_attention():
            hidden, attentions = self._run(embeds, attention_mask, True)
        attentions = tuple(attentions or ())
        if len(attentions) != self.num_layers:
            raise RuntimeError(
                f"{self.name}: expected attention weights from {self.num_layers} layers, got "
                f"{len(attentions)}; this transformers version may not return them for "
                f"attn_implementation={self.model.config._attn_implementation!r}")
        return BackboneOutput(hidden, attentions)

    def _layers(self) -> nn.ModuleList:
        raise NotImplementedError

    def _grow_position_table(self, n: int) -> None:
        raise NotImplementedError

    def extend_positions(self, n: int) -> None:
        """Grow the learned positional table to ``n`` rows (no-op when it is long enough)."""
        old = self.max_positions
        if n <= old:
            return
        self._grow_position_table(n)
        self.notes.append(f"positional table extended from {old} to {n} rows "
                          f"(new rows copied cyclically from the pretrained ones)")

    def truncate_layers(self, k: int) -> None:
        """Keep only the first ``k`` blocks (the paper's depth experiments)."""
        layers = self._layers()
        if not 1 <= k <= len(layers):
            raise ValueError(f"cannot keep {k} layers of a {len(layers)}-layer {self.family} "
                             f"backbone; choose 1..{len(layers)}")
        if k == len(layers):        # the whole model: nothing cut, nothing to note
            return
        del layers[k:]
        self.num_layers = k
        self.model.config.num_hidden_layers = k
        self.notes.append(f"truncated to its first {k} layers")


def extended_rows(old: torch.Tensor, n: int, keep: int = 0) -> torch.Tensor:
    """``keep`` leading rows of ``old`` as they are, then ``n`` rows cycling over the rest.

    Copying existing rows (rather than random ones) keeps every new position's vector in the
    distribution the frozen layers were trained on; training the positions then tells them apart.
    ``keep`` covers special rows that are not positions (RoBERTa-style padding rows).
    """
    with torch.no_grad():
        index = keep + torch.arange(n, device=old.device) % (old.shape[0] - keep)
        return torch.cat([old[:keep], old[index]]).clone()


def _extended_table(old: nn.Embedding, n: int, keep: int = 0) -> nn.Embedding:
    """A positional table of ``keep + n`` rows (see ``extended_rows``)."""
    rows = extended_rows(old.weight, n, keep)
    new = nn.Embedding(rows.shape[0], rows.shape[1], padding_idx=old.padding_idx,
                       device=rows.device, dtype=rows.dtype)
    with torch.no_grad():
        new.weight.copy_(rows)
    new.weight.requires_grad_(old.weight.requires_grad)
    return new


class GPT2Backbone(HFBackbone):
    MODEL_CLASS, CONFIG_CLASS = "GPT2Model", "GPT2Config"
    family = "gpt2"
    causal = True
    GROUP_RULES = (
        (r"model\.wte\.weight", "unused"),
        (r"model\.wpe\.weight", "positions"),
        (rf"model\.h\.\d+\.ln_[12]\.{_L}", "layernorm"),
        (rf"model\.ln_f\.{_L}", "layernorm"),
        (rf"model\.h\.\d+\.attn\.(?:c_attn|c_proj)\.{_L}", "attention"),
        (rf"model\.h\.\d+\.mlp\.(?:c_fc|c_proj)\.{_L}", "feedforward"),
    )
    DROPOUT_KEYS = ("resid_pdrop", "embd_pdrop", "attn_pdrop")

    @property
    def max_positions(self) -> int:
        return self.model.wpe.num_embeddings

    def _layers(self):
        return self.model.h

    def _grow_position_table(self, n: int) -> None:
        self.model.wpe = _extended_table(self.model.wpe, n)
        self.model.config.n_positions = n


class BertBackbone(HFBackbone):
    MODEL_CLASS, CONFIG_CLASS = "BertModel", "BertConfig"
    BODY_KWARGS = {"add_pooling_layer": False}
    family = "bert"
    causal = False
    GROUP_RULES = (
        (r"model\.embeddings\.word_embeddings\.weight", "unused"),
        (r"model\.embeddings\.position_embeddings\.weight", "positions"),
        # a single learned row added to every token (segment A): frozen like the body
        (r"model\.embeddings\.token_type_embeddings\.weight", "other"),
        (rf"model\.embeddings\.LayerNorm\.{_L}", "layernorm"),
        (rf"model\.encoder\.layer\.\d+\.attention\.self\.(?:query|key|value)\.{_L}", "attention"),
        (rf"model\.encoder\.layer\.\d+\.attention\.output\.dense\.{_L}", "attention"),
        (rf"model\.encoder\.layer\.\d+\.attention\.output\.LayerNorm\.{_L}", "layernorm"),
        (rf"model\.encoder\.layer\.\d+\.intermediate\.dense\.{_L}", "feedforward"),
        (rf"model\.encoder\.layer\.\d+\.output\.dense\.{_L}", "feedforward"),
        (rf"model\.encoder\.layer\.\d+\.output\.LayerNorm\.{_L}", "layernorm"),
    )
    DROPOUT_KEYS = ("hidden_dropout_prob", "attention_probs_dropout_prob")

    @property
    def max_positions(self) -> int:
        return self.model.embeddings.position_embeddings.num_embeddings

    def _layers(self):
        return self.model.encoder.layer

    def _grow_position_table(self, n: int) -> None:
        emb = self.model.embeddings
        emb.position_embeddings = _extended_table(emb.position_embeddings, n)
        device = emb.position_ids.device
        emb.position_ids = nn.Buffer(torch.arange(n, device=device).expand((1, -1)), persistent=False)
        emb.token_type_ids = nn.Buffer(torch.zeros((1, n), dtype=torch.long, device=device),
                                       persistent=False)
        self.model.config.max_position_embeddings = n


class LlamaBackbone(HFBackbone):
    MODEL_CLASS, CONFIG_CLASS = "LlamaModel", "LlamaConfig"
    family = "llama"
    causal = True
    GROUP_RULES = (
        (r"model\.embed_tokens\.weight", "unused"),
        (rf"model\.layers\.\d+\.self_attn\.[qkvo]_proj\.{_L}", "attention"),
        (rf"model\.layers\.\d+\.mlp\.(?:gate|up|down)_proj\.{_L}", "feedforward"),
        (r"model\.layers\.\d+\.(?:input|post_attention)_layernorm\.weight", "layernorm"),
        (r"model\.norm\.weight", "layernorm"),
    )
    DROPOUT_KEYS = ("attention_dropout",)
    max_positions = None  # rotary: positions are computed, not learned
    zero_embedding_unsafe = True   # nothing is added to the embeddings; RMSNorm at every layer

    def __init__(self, model, **kw) -> None:
        super().__init__(model, **kw)
        self.notes.append("rotary position encoding: no positional parameters, so the "
                          "'positions' group is empty and trains nothing")
        self.notes.append("RMSNorm: layer norms have a scale and no bias")

    def _layers(self):
        return self.model.layers

    def extend_positions(self, n: int) -> None:
        # Rotary positions need no table; nothing to extend (and nothing to refuse).
        return
