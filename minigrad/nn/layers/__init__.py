"""The layers, one file per family."""

from .activation import LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from .blocks import BasicBlock, DenseBlock, DenseLayer, Transition
from .conv import AdaptiveAvgPool2d, AvgPool2d, Conv2d, MaxPool2d
from .dropout import DropConnect, DropConnectLinear, Dropout, Dropout2d, GaussianNoise
from .linear import Flatten, Identity, Linear
from .loss import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HuberLoss,
    KLDivLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
    SmoothL1Loss,
)
from .normalization import (
    NORMS,
    BatchNorm1d,
    BatchNorm2d,
    GroupNorm,
    InstanceNorm2d,
    LayerNorm,
    NormReLU,
    SyncBatchNorm,
    norm_layer,
)

__all__ = [
    "LeakyReLU",
    "LogSoftmax",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "BasicBlock",
    "DenseBlock",
    "DenseLayer",
    "Transition",
    "AdaptiveAvgPool2d",
    "AvgPool2d",
    "Conv2d",
    "MaxPool2d",
    "DropConnect",
    "DropConnectLinear",
    "Dropout",
    "Dropout2d",
    "GaussianNoise",
    "Flatten",
    "BCELoss",
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "HuberLoss",
    "KLDivLoss",
    "L1Loss",
    "MSELoss",
    "NLLLoss",
    "SmoothL1Loss",
    "Identity",
    "Linear",
    "BatchNorm1d",
    "BatchNorm2d",
    "SyncBatchNorm",
    "GroupNorm",
    "InstanceNorm2d",
    "LayerNorm",
    "NORMS",
    "NormReLU",
    "norm_layer",
]
