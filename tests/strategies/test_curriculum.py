"""Curriculum: the pool per epoch follows the pacing function; once full every example is seen."""

import math

import numpy as np
import pytest

from minigrad import models
from minigrad.data import DataLoader, TensorDataset
from minigrad.strategies.curriculum import (
    CurriculumSampler,
    difficulty_from_model,
    linear_pacing,
    root_pacing,
    step_pacing,
)


def test_pacing_functions():
    assert [linear_pacing(0.2, 4)(e) for e in range(6)] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0, 1.0])
    assert root_pacing(0.2, 3)(0) == pytest.approx(0.2) and root_pacing(0.2, 3)(3) == 1.0
    assert root_pacing(0.2, 3)(1) == pytest.approx(math.sqrt(0.04 + 0.96 / 3))
    assert [step_pacing(0.25, 2, 2)(e) for e in range(6)] == [0.25, 0.25, 0.5, 0.5, 1.0, 1.0]


def test_pool_size_per_epoch_follows_the_pacing_and_holds_the_easiest():
    difficulty = np.random.default_rng(0).permutation(40).astype(float)  # example i has difficulty d[i]
    sampler = CurriculumSampler(difficulty, linear_pacing(0.25, 3))
    loader = DataLoader(TensorDataset(np.arange(40)), batch_size=7, sampler=sampler)
    expected_sizes = [10, 20, 30, 40, 40]
    for size in expected_sizes:
        assert len(sampler) == size and len(loader) == math.ceil(size / 7)
        seen = np.concatenate([b[0].data for b in loader])
        assert len(seen) == size and len(set(seen.tolist())) == size
        np.testing.assert_array_equal(np.sort(difficulty[seen]), np.arange(size))  # the `size` easiest
    assert sampler.epoch == len(expected_sizes)


def test_every_example_once_per_epoch_when_the_pool_is_full_and_order_changes():
    sampler = CurriculumSampler(np.arange(30.0)[::-1], step_pacing(0.5, 2, 1))
    list(sampler)  # epoch 0: half
    orders = [list(sampler) for _ in range(2)]
    for order in orders:
        assert sorted(order) == list(range(30))
    assert orders[0] != orders[1]  # shuffled within the pool


def test_unshuffled_curriculum_is_sorted_easy_to_hard():
    assert list(CurriculumSampler([3.0, 1.0, 2.0, 0.5], shuffle=False)) == [3, 1, 2, 0]


def test_difficulty_from_model_is_the_per_example_loss():
    model = models.mlp([4, 3])
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    y = np.array([0, 1, 2, 0, 1])
    scores = difficulty_from_model(model, x, y, batch_size=2)
    logits = x @ model[0].weight.data.T + model[0].bias.data
    log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    np.testing.assert_allclose(scores, -log_p[np.arange(5), y], rtol=1e-5)


def test_bad_pacing_is_reported():
    with pytest.raises(ValueError, match="must return a fraction in"):
        len(CurriculumSampler(np.arange(3.0), lambda e: 0.0))
    with pytest.raises(ValueError, match="starting fraction"):
        linear_pacing(0, 3)


def test_class_balanced_pool_takes_the_easiest_share_of_every_class():
    labels = np.array([0] * 8 + [1] * 4)
    difficulty = np.concatenate([np.arange(8.0), np.arange(4.0) + 100])  # class 1 is all harder
    sampler = CurriculumSampler(difficulty, linear_pacing(0.5, 1), labels=labels)
    pool = sorted(sampler)
    assert pool == [0, 1, 2, 3, 8, 9]  # half of each class, the easiest of each
    assert sorted(CurriculumSampler(difficulty, linear_pacing(0.5, 1))) == list(range(6))  # unbalanced: class 0 only
