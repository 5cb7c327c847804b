"""Data: datasets, batching and transforms.

``Dataset``/``TensorDataset``/``Subset``/``random_split`` describe and split samples
(``standardized_split``: a validation hold-out plus z-scores fitted on the training part);
``DataLoader`` turns them into batches of Tensors (optionally built by background threads);
``transforms`` normalises and augments whole batches; ``datasets`` has offline data sets.
"""

from . import transforms
from .dataset import Dataset, Subset, TensorDataset, random_split, standardized_split
from .datasets import CIFAR10, KMNIST, MNIST, Digits, FashionMNIST, Shapes, read_idx
from .distributed import DistributedSampler
from .loader import DataLoader, default_collate

__all__ = [
    "CIFAR10",
    "DataLoader",
    "Dataset",
    "Digits",
    "DistributedSampler",
    "FashionMNIST",
    "KMNIST",
    "MNIST",
    "Shapes",
    "Subset",
    "TensorDataset",
    "default_collate",
    "random_split",
    "read_idx",
    "standardized_split",
    "transforms",
]
