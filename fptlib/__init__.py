"""fptlib: Frozen Pretrained Transformers, small and readable.

    from fptlib import FPT, load_backbone
    backbone = load_backbone("minilm")            # or "gpt2", init="random" / "statistics"
    model = FPT(backbone, token_dim=1, output_dim=2, output_tokens=5, freeze="fpt")
    print(model.describe())

See docs/ARCHITECTURE.md for how the modules fit together.
"""
__version__ = "0.1.0"

from fptlib.backbones import (Backbone, BackboneUnavailable, backbone_names, default_backbone,
                              load_backbone)
from fptlib.freeze import GROUPS, PRESETS, FreezeSpec
from fptlib.model import FPT, FrozenPretrainedTransformer

__all__ = [
    "FPT", "FrozenPretrainedTransformer", "Backbone", "BackboneUnavailable", "FreezeSpec",
    "GROUPS", "PRESETS", "backbone_names", "default_backbone", "load_backbone",
]
