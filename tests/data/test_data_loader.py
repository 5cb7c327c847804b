"""DataLoader and dataset splitting: coverage, order, reproducibility, workers."""

import numpy as np
import pytest

import minigrad as mg
from minigrad.data import DataLoader, Dataset, Subset, TensorDataset, random_split, transforms


def _dataset(n=23):
    x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    return TensorDataset(x, np.arange(n))


def _epoch(loader):
    return [(x.numpy().copy(), y.numpy().copy()) for x, y in loader]


def test_every_sample_exactly_once_per_epoch_and_orders_differ():
    loader = DataLoader(_dataset(), batch_size=5, shuffle=True)
    first, second = (np.concatenate([y for _, y in _epoch(loader)]) for _ in range(2))
    assert sorted(first.tolist()) == list(range(23)) and sorted(second.tolist()) == list(range(23))
    assert not np.array_equal(first, second)
    assert [len(y) for _, y in _epoch(loader)] == [5, 5, 5, 5, 3]


def test_inputs_travel_with_their_targets():
    for x, y in DataLoader(_dataset(), batch_size=4, shuffle=True):
        np.testing.assert_array_equal(x.numpy()[:, 0], 3 * y.numpy())
        assert x.dtype == np.float32 and y.dtype == np.int64


def test_shuffle_order_reproducible_under_manual_seed():
    mg.manual_seed(7)
    a = _epoch(DataLoader(_dataset(), batch_size=4, shuffle=True))
    mg.manual_seed(7)
    b = _epoch(DataLoader(_dataset(), batch_size=4, shuffle=True))
    expected = np.random.default_rng(7).permutation(23)
    np.testing.assert_array_equal(np.concatenate([y for _, y in a]), expected)
    for (_xa, ya), (_xb, yb) in zip(a, b):
        np.testing.assert_array_equal(ya, yb)


def test_no_shuffle_is_sequential_and_drop_last_drops_the_short_batch():
    loader = DataLoader(_dataset(), batch_size=5, drop_last=True)
    batches = _epoch(loader)
    assert len(loader) == 4 and len(batches) == 4
    np.testing.assert_array_equal(np.concatenate([y for _, y in batches]), np.arange(20))
    assert len(DataLoader(_dataset(), batch_size=5)) == 5


@pytest.mark.parametrize("num_workers", [1, 3])
def test_workers_give_the_same_batches_as_no_workers(num_workers):
    augment = transforms.Compose([transforms.RandomHorizontalFlip(), transforms.GaussianNoise(0.1)])
    images = np.random.default_rng(1).random((37, 1, 4, 4)).astype(np.float32)
    data = TensorDataset(images, np.arange(37))
    mg.manual_seed(3)
    plain = [_epoch(DataLoader(data, batch_size=4, shuffle=True, transform=augment)) for _ in range(2)]
    mg.manual_seed(3)
    threaded = [
        _epoch(DataLoader(data, batch_size=4, shuffle=True, transform=augment, num_workers=num_workers, prefetch=1))
        for _ in range(2)
    ]
    for epoch_a, epoch_b in zip(plain, threaded):
        assert len(epoch_a) == len(epoch_b) == 10
        for (xa, ya), (xb, yb) in zip(epoch_a, epoch_b):
            np.testing.assert_array_equal(ya, yb)
            np.testing.assert_array_equal(xa, xb)
    assert not np.array_equal(plain[0][0][0], images[plain[0][0][1]])  # the augmentation did act


def test_leaving_a_threaded_epoch_early_stops_cleanly():
    loader = DataLoader(_dataset(200), batch_size=2, num_workers=2)
    for i, _ in enumerate(loader):
        if i == 3:
            break
    assert len(_epoch(loader)) == 100


class _ListDataset(Dataset):
    """No __getitems__: the loader collates sample by sample."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return np.full(2, i, dtype=np.float32), i


def test_sampler_and_collate_fn_and_plain_datasets():
    loader = DataLoader(_ListDataset(10), batch_size=3, sampler=[9, 0, 4, 4])
    (x1, y1), (x2, y2) = _epoch(loader)
    np.testing.assert_array_equal(y1, [9, 0, 4])
    np.testing.assert_array_equal(x1, [[9, 9], [0, 0], [4, 4]])
    np.testing.assert_array_equal(y2, [4])
    assert len(loader) == 2

    def collate(samples):
        return np.array([s[1] * 10 for s in samples])

    ((batch,),) = [b for b in DataLoader(_ListDataset(3), batch_size=3, collate_fn=collate)]
    np.testing.assert_array_equal(batch.numpy(), [0, 10, 20])


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(_dataset(), batch_size=0)
    with pytest.raises(ValueError, match="shuffle=True or a sampler"):
        DataLoader(_dataset(), shuffle=True, sampler=[0])
    with pytest.raises(ValueError, match="num_workers"):
        DataLoader(_dataset(), num_workers=-1)
    with pytest.raises(ValueError, match="differ in length"):
        TensorDataset(np.zeros(3), np.zeros(4))


def test_random_split_is_a_seeded_partition():
    data = _dataset(10)
    parts = random_split(data, [7, 3], seed=5)
    assert [len(p) for p in parts] == [7, 3]
    order = np.random.default_rng(5).permutation(10)
    np.testing.assert_array_equal(parts[0].indices, order[:7])
    np.testing.assert_array_equal(parts[1].indices, order[7:])
    again = random_split(data, [0.7, 0.3], seed=5)
    np.testing.assert_array_equal(again[0].indices, parts[0].indices)
    assert [len(p) for p in random_split(data, [0.34, 0.33, 0.33], seed=0)] == [4, 3, 3]
    np.testing.assert_array_equal(parts[1][0][1], order[7])
    x, y = parts[1].__getitems__([2, 0])
    np.testing.assert_array_equal(y, order[[9, 7]])
    with pytest.raises(ValueError, match="summing"):
        random_split(data, [5, 6])
    with pytest.raises(IndexError, match="outside"):
        Subset(data, [10])
