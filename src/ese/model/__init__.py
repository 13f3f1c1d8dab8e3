"""The LSTMP acoustic model (ESE.md section 1): layer and model, training, checkpoints, decoding
and PER scoring."""

from ese.model.checkpoint import load_checkpoint, save_checkpoint
from ese.model.decode import evaluate, posteriors, transcribe
from ese.model.lstmp import AcousticModel, LSTMPLayer
from ese.model.scoring import EditCounts, per_counts, score
from ese.model.train import TrainResult, train_model

__all__ = [
    "AcousticModel", "EditCounts", "LSTMPLayer", "TrainResult", "evaluate", "load_checkpoint",
    "per_counts", "posteriors", "save_checkpoint", "score", "train_model", "transcribe",
]
