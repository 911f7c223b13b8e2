"""fptlib: Frozen Pretrained Transformers, small and readable.

    from fptlib import FPT, load_backbone
    backbone = load_backbone("minilm")            # or "gpt2", init="random" / "statistics"
    model = FPT(backbone, token_dim=1, output_dim=2, output_tokens=5, freeze="fpt")
    print(model.describe())
    task = tasks.get("bit-xor")
    result = Trainer(FPT.for_task(task, backbone), task, TrainConfig(steps=300)).fit()

See docs/ARCHITECTURE.md for how the modules fit together.
"""
__version__ = "0.1.0"

from fptlib.backbones import (Backbone, BackboneUnavailable, backbone_names, default_backbone,
                              load_backbone)
from fptlib.freeze import GROUPS, PRESETS, FreezeSpec
from fptlib.model import FPT, FrozenPretrainedTransformer
from fptlib.train import TrainConfig, Trainer, TrainResult
from fptlib import tasks  # noqa: E402  (fptlib.tasks.get / names / available)

__all__ = [
    "FPT", "FrozenPretrainedTransformer", "Backbone", "BackboneUnavailable", "FreezeSpec",
    "GROUPS", "PRESETS", "TrainConfig", "TrainResult", "Trainer", "backbone_names",
    "default_backbone", "load_backbone", "tasks",
]
