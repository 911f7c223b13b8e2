"""Backbones: GPT-2 / BERT / LLaMA families from Hugging Face, offline packages, the LSTM baseline."""
from fptlib.backbones.base import BACKBONE_GROUPS, Backbone, BackboneOutput
from fptlib.backbones.hub import BackboneUnavailable, hub_reachable
from fptlib.backbones.registry import (INITS, KNOWN, backbone_from_config, backbone_names, default_backbone,
                                       load_backbone, pretrained_available)

__all__ = [
    "BACKBONE_GROUPS", "Backbone", "BackboneOutput", "BackboneUnavailable", "INITS", "KNOWN",
    "backbone_from_config", "backbone_names", "default_backbone", "hub_reachable", "load_backbone", "pretrained_available",
]
