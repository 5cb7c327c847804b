"""Optimisers and learning-rate schedules, as ``torch.optim``; every ``step()`` is one fused C++
call per parameter group (see ``optimizer.py``)."""

from . import lr_scheduler
from .adadelta import Adadelta
from .adagrad import Adagrad
from .adam import Adam, AdamW, NAdam
from .clip import clip_grad_norm_, clip_grad_value_
from .optimizer import Optimizer
from .presets import OPTIMIZERS, create, default_lr
from .rmsprop import RMSprop
from .sgd import SGD
from .switch import SwitchOptimizer

__all__ = [
    "Optimizer",
    "SGD",
    "Adagrad",
    "RMSprop",
    "Adadelta",
    "Adam",
    "AdamW",
    "NAdam",
    "SwitchOptimizer",
    "clip_grad_norm_",
    "clip_grad_value_",
    "lr_scheduler",
    "OPTIMIZERS",
    "create",
    "default_lr",
]
