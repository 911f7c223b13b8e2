"""Training: the Trainer, checkpoints, DDP, the feature cache and learning-rate sweeps."""
from fptlib.train.checkpoint import CheckpointMismatch, TrainingInterrupted
from fptlib.train.trainer import NonFiniteLossError, TrainConfig, Trainer, TrainResult

__all__ = ["CheckpointMismatch", "NonFiniteLossError", "TrainConfig", "TrainResult", "Trainer", "TrainingInterrupted"]
