"""Family name -> wrapper class, and building a family's bare body from a config (no download)."""
from __future__ import annotations

from torch import nn

from fptlib.backbones.hf import BertBackbone, GPT2Backbone, HFBackbone, LlamaBackbone
from fptlib.backbones.longformer import LongformerBackbone
from fptlib.backbones.t5 import T5Backbone
from fptlib.backbones.vit import ViTBackbone

# keys are the transformers ``model_type`` of each family's config
FAMILIES: dict[str, type[HFBackbone]] = {
    "gpt2": GPT2Backbone,
    "bert": BertBackbone,
    "llama": LlamaBackbone,
    "vit": ViTBackbone,
    "t5": T5Backbone,
    "longformer": LongformerBackbone,
}


def model_class(family: str):
    """The transformers class of the bare body for a family."""
    import transformers

    return getattr(transformers, FAMILIES[family].MODEL_CLASS)


def config_class(family: str):
    """The transformers config class of a family."""
    import transformers

    return getattr(transformers, FAMILIES[family].CONFIG_CLASS)


def family_of(config) -> str:
    model_type = getattr(config, "model_type", None)
    if model_type in FAMILIES:
        return model_type
    raise ValueError(
        f"model type {model_type!r} is not supported: fptlib maps the parameters of the "
        f"{', '.join(FAMILIES)} families explicitly. Use a model of one of those families.")


def build_body(family: str, config) -> nn.Module:
    """A randomly initialised body from a config (no download)."""
    return model_class(family)(config, **FAMILIES[family].BODY_KWARGS)
