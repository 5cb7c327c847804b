"""Each transform against hand-computed expectations (or PyTorch's interpolate, or colorsys)."""

import colorsys

import numpy as np
import pytest

import minigrad as mg
from minigrad.data import transforms as T


def _images(n=3, c=1, h=5, w=6, seed=0):
    return np.random.default_rng(seed).random((n, c, h, w)).astype(np.float32)


def test_horizontal_flip_is_exact_and_follows_one_draw_per_image():
    x = _images(8)
    np.testing.assert_array_equal(T.RandomHorizontalFlip(1.0)(x), x[..., ::-1])
    np.testing.assert_array_equal(T.RandomHorizontalFlip(0.0)(x), x)
    out = T.RandomHorizontalFlip(0.5)(x, np.random.default_rng(4))
    flipped = np.random.default_rng(4).random(8) < 0.5
    assert 0 < flipped.sum() < 8
    for i in range(8):
        np.testing.assert_array_equal(out[i], x[i, :, :, ::-1] if flipped[i] else x[i])


def test_random_crop_offsets_and_padding():
    x = _images(4, c=2, h=5, w=6)
    out = T.RandomCrop((4, 3), padding=2, fill=-1.0)(x, np.random.default_rng(9))
    rng = np.random.default_rng(9)
    top, left = rng.integers(0, 5 + 4 - 4 + 1, 4), rng.integers(0, 6 + 4 - 3 + 1, 4)
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)), constant_values=-1.0)
    assert out.shape == (4, 2, 4, 3)
    for i in range(4):
        np.testing.assert_array_equal(out[i], padded[i, :, top[i] : top[i] + 4, left[i] : left[i] + 3])
    np.testing.assert_array_equal(T.RandomCrop((5, 6))(x), x)  # full-size crop without padding
    with pytest.raises(ValueError, match="larger than the padded image"):
        T.RandomCrop(9, padding=1)(x)


def test_standardize_uses_training_statistics_only():
    train = np.array([[[[0.0, 2.0]], [[1.0, 1.0]]], [[[4.0, 6.0]], [[3.0, 3.0]]]], dtype=np.float32)  # (2,2,1,2)
    val = np.full((1, 2, 1, 2), 3.0, dtype=np.float32)
    scale = T.Standardize().fit(train)
    # channel 0 values 0,2,4,6: mean 3, population std sqrt(5); channel 1: 1,1,3,3: mean 2, std 1
    np.testing.assert_allclose(scale.mean, [3.0, 2.0])
    np.testing.assert_allclose(scale.std, [np.sqrt(5.0), 1.0])
    np.testing.assert_allclose(scale(val)[0, :, 0, 0], [0.0, 1.0], atol=1e-7)
    np.testing.assert_allclose(scale(train)[1, 0, 0], [1 / np.sqrt(5), 3 / np.sqrt(5)], rtol=1e-6)
    restored = T.Standardize().load_state_dict(scale.state_dict())
    np.testing.assert_array_equal(restored(val), scale(val))
    with pytest.raises(RuntimeError, match="not fitted"):
        T.Standardize()(val)


def test_standardize_per_feature_keeps_constant_features_finite():
    train = np.array([[1.0, 5.0], [3.0, 5.0]], dtype=np.float32)
    scale = T.Standardize(per="feature").fit(train)
    np.testing.assert_allclose(scale(train), [[-1.0, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(
        T.Standardize(mean=[2.0, 5.0], std=[1.0, 2.0], per="feature")(train), [[-1.0, 0.0], [1.0, 0.0]]
    )


def test_minmax_scale_maps_the_training_range():
    train = np.array([[2.0, -1.0], [6.0, 1.0]], dtype=np.float32)
    scale = T.MinMaxScale(feature_range=(-1, 1)).fit(train)
    np.testing.assert_allclose(scale(train), [[-1.0, -1.0], [1.0, 1.0]])
    np.testing.assert_allclose(scale(np.array([[4.0, 0.0]], dtype=np.float32)), [[0.0, 0.0]])


def test_resize_matches_pytorch_bilinear():
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle for bilinear resizing")
    x = _images(2, c=2, h=8, w=5)
    for size in [(28, 28), (3, 4), (8, 11)]:
        expected = torch.nn.functional.interpolate(
            torch.from_numpy(x), size=size, mode="bilinear", align_corners=False
        ).numpy()
        np.testing.assert_allclose(T.Resize(size)(x), expected, atol=1e-6)


def test_random_resized_crop_is_a_resized_box():
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle for bilinear resizing")
    x = _images(6, c=3, h=10, w=12)
    transform = T.RandomResizedCrop(7, scale=(0.2, 0.9), ratio=(0.5, 2.0))
    out = transform(x, np.random.default_rng(2))
    top, left, h, w = transform.boxes(6, 10, 12, np.random.default_rng(2))
    assert out.shape == (6, 3, 7, 7)
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= 10).all() and (left + w <= 12).all()
    assert ((h * w >= 0.2 * 120 * 0.8) & (h * w <= 0.9 * 120 * 1.2)).all()  # area, up to rounding
    for i in range(6):
        box = torch.from_numpy(x[i : i + 1, :, top[i] : top[i] + h[i], left[i] : left[i] + w[i]].copy())
        expected = torch.nn.functional.interpolate(box, size=(7, 7), mode="bilinear", align_corners=False)
        np.testing.assert_allclose(out[i : i + 1], expected.numpy(), atol=1e-6)
    whole = T.RandomResizedCrop(10, scale=(1, 1), ratio=(1, 1))(x[:, :, :, :10])
    np.testing.assert_allclose(whole, x[:, :, :, :10], atol=1e-6)


def test_affine_rotation_translation_and_identity():
    x = _images(1, h=4, w=4)
    np.testing.assert_allclose(T.affine(x, [90], [[0, 0]], [1]), np.rot90(x, 1, axes=(2, 3)), atol=1e-6)
    shifted = T.affine(x, [0], [[1, 2]], [1])  # one right, two down, zero fill
    expected = np.zeros_like(x)
    expected[..., 2:, 1:] = x[..., :2, :3]
    np.testing.assert_allclose(shifted, expected, atol=1e-6)
    np.testing.assert_allclose(T.affine(x, [0], [[0, 0]], [1]), x, atol=1e-6)
    # scale 2 about the centre of a 3x3 image: the centre pixel stays, neighbours come from half-way
    y = np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3)
    zoomed = T.affine(y, [0], [[0, 0]], [2])
    assert zoomed[0, 0, 1, 1] == 4 and zoomed[0, 0, 1, 2] == pytest.approx(4.5)


def test_random_affine_translation_only_moves_whole_pixels():
    x = _images(5, h=6, w=6)
    out = T.RandomAffine(translate=(0.34, 0.34))(x, np.random.default_rng(1))
    rng = np.random.default_rng(1)
    rng.uniform(0, 0, size=5)  # the (zero) angles come first
    shifts = np.round(rng.uniform(-np.array([0.34 * 6] * 2), [0.34 * 6] * 2, size=(5, 2)))
    assert np.abs(shifts).max() == 2
    for i in range(5):
        np.testing.assert_allclose(out[i : i + 1], T.affine(x[i : i + 1], [0], [shifts[i]], [1]), atol=1e-6)


def test_colour_adjustments():
    rgb = _images(2, c=3, h=3, w=3, seed=5)
    np.testing.assert_allclose(
        T.adjust_brightness(rgb, [2.0, 0.5]), np.clip(rgb * np.array([2.0, 0.5]).reshape(2, 1, 1, 1), 0, 1), rtol=1e-6
    )
    grey = 0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]
    np.testing.assert_allclose(T.adjust_saturation(rgb, [0.0, 0.0]), np.repeat(grey[:, None], 3, 1), rtol=1e-6)
    np.testing.assert_allclose(T.adjust_saturation(rgb, [1.0, 1.0]), rgb, rtol=1e-6)
    means = grey.mean(axis=(1, 2)).reshape(2, 1, 1, 1)
    np.testing.assert_allclose(
        T.adjust_contrast(rgb, [0.5, 0.0]),
        np.clip(
            np.array([0.5, 0.0]).reshape(2, 1, 1, 1) * rgb + np.array([0.5, 1.0]).reshape(2, 1, 1, 1) * means, 0, 1
        ),
        rtol=1e-6,
    )
    shifted = T.adjust_hue(rgb, [0.25, -0.4])
    for n, shift in enumerate([0.25, -0.4]):
        for i in range(3):
            for j in range(3):
                h, s, v = colorsys.rgb_to_hsv(*rgb[n, :, i, j].astype(np.float64))
                np.testing.assert_allclose(shifted[n, :, i, j], colorsys.hsv_to_rgb((h + shift) % 1, s, v), atol=1e-6)


def test_color_jitter_draws_factors_per_image():
    rgb = _images(4, c=3, h=2, w=2)
    out = T.ColorJitter(brightness=0.5)(rgb, np.random.default_rng(0))
    factors = np.random.default_rng(0).uniform(0.5, 1.5, size=4)
    np.testing.assert_allclose(out, np.clip(rgb * factors.reshape(4, 1, 1, 1), 0, 1), rtol=1e-6)
    with pytest.raises(ValueError, match="RGB"):
        T.ColorJitter(saturation=0.5)(_images(1, c=1))


def test_gaussian_noise_and_compose_and_tensors():
    x = _images(2)
    out = T.GaussianNoise(0.3)(x, np.random.default_rng(8))
    np.testing.assert_allclose(out, x + 0.3 * np.random.default_rng(8).standard_normal(x.shape, dtype=np.float32))
    both = T.Compose([T.RandomHorizontalFlip(1.0), T.GaussianNoise(0.0)])
    np.testing.assert_array_equal(both(x), x[..., ::-1])
    tensor_out = T.RandomHorizontalFlip(1.0)(mg.tensor(x))
    assert isinstance(tensor_out, mg.Tensor)
    np.testing.assert_array_equal(tensor_out.numpy(), x[..., ::-1])


def test_transforms_without_rng_draw_from_the_global_generator():
    x = _images(2)
    mg.manual_seed(11)
    a = T.GaussianNoise(1.0)(x)
    mg.manual_seed(11)
    np.testing.assert_array_equal(T.GaussianNoise(1.0)(x), a)


def test_test_time_views_are_the_ten_crops():
    x = _images(2, h=4, w=4)
    views = T.test_time_views(x, flip=True, shift=1)
    assert len(views) == 10 and all(v.shape == x.shape for v in views)
    np.testing.assert_array_equal(views[0], x)
    np.testing.assert_array_equal(views[1][..., 1:, 1:], x[..., :3, :3])  # moved down-right by one
    np.testing.assert_array_equal(views[4][..., :3, :3], x[..., 1:, 1:])  # moved up-left by one
    np.testing.assert_array_equal(views[5], x[..., ::-1])
    assert len(T.test_time_views(x, flip=False)) == 1
