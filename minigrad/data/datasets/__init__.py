"""Datasets that work offline: scikit-learn's digits, procedurally generated shapes, and
readers for MNIST-style IDX files and CIFAR-10 python batches in a local directory.

Every dataset is a :class:`~minigrad.data.TensorDataset` of float32 images (N, C, H, W) with
values in [0, 1] and int64 class labels, with ``classes`` naming the labels.
"""

from .cifar import CIFAR10
from .digits import Digits
from .mnist import KMNIST, MNIST, FashionMNIST, read_idx
from .shapes import Shapes

__all__ = ["CIFAR10", "Digits", "FashionMNIST", "KMNIST", "MNIST", "Shapes", "read_idx"]
