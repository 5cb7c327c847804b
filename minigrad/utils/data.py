"""``torch.utils.data``'s names for minigrad's data classes (the one copy is ``minigrad.data``)."""

from ..data import DataLoader, Dataset, DistributedSampler, Subset, TensorDataset, default_collate, random_split

__all__ = ["DataLoader", "Dataset", "DistributedSampler", "Subset", "TensorDataset", "default_collate", "random_split"]
