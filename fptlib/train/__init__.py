"""Training, the engine only: one loop (loop.py) for a run alone (the Trainer) or a pack
(packed.py), checkpoints, DDP and the feature cache."""
from fptlib.train.checkpoint import CheckpointMismatch, TrainingInterrupted
from fptlib.train.trainer import NonFiniteLossError, TrainConfig, Trainer, TrainResult

__all__ = ["CheckpointMismatch", "NonFiniteLossError", "TrainConfig", "TrainResult", "Trainer", "TrainingInterrupted"]
