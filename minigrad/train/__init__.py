"""Training: the loop (``fit``/``Trainer``), callbacks, history, metrics and checkpoints."""

from .callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    LRSchedulerCallback,
    ModelCheckpoint,
    PrintEpochs,
    ProgressBar,
)
from .checkpoint import load_checkpoint, restore_checkpoint, save_checkpoint
from .evaluation import evaluate, predict, predict_tta
from .history import History
from .metrics import accuracy, confusion_matrix, top_k_accuracy
from .trainer import PRECISIONS, Trainer, TrainingDiverged, fit

__all__ = [
    "PRECISIONS",
    "CSVLogger",
    "Callback",
    "EarlyStopping",
    "History",
    "LRSchedulerCallback",
    "ModelCheckpoint",
    "PrintEpochs",
    "ProgressBar",
    "Trainer",
    "TrainingDiverged",
    "accuracy",
    "confusion_matrix",
    "evaluate",
    "fit",
    "load_checkpoint",
    "predict",
    "predict_tta",
    "restore_checkpoint",
    "save_checkpoint",
    "top_k_accuracy",
]
