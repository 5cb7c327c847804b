"""``minigrad.utils.data``: PyTorch's path to the data classes (``torch.utils.data``)."""

from . import data

__all__ = ["data"]
