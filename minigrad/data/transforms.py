"""Batched data transforms: normalisation and augmentation of whole batches with numpy.

Every transform maps a batch to a batch, ``transform(x, rng=None)``: images are ``(N, C, H, W)``
float arrays (values in [0, 1] before normalisation), feature vectors ``(N, F)``. A Tensor in
gives a Tensor out. Random transforms draw everything for the batch in a few vectorised calls
from ``rng``, which defaults to the global generator (:func:`minigrad.random.generator`); the
``DataLoader`` passes a per-batch generator so batches do not depend on which thread made them.

Normalisation (fitted on the training split only, then applied everywhere):
    Standardize      x' = (x - mean) / std        (z-score, per channel or per feature)
    MinMaxScale      x' = lo + (x - min) (hi - lo) / (max - min)
Augmentation (training only):
    RandomHorizontalFlip, RandomCrop, RandomResizedCrop, ColorJitter, RandomAffine, GaussianNoise
Geometry is sampled with :func:`bilinear_sample`, which also serves :class:`Resize`.
"""

from __future__ import annotations

import math

import numpy as np

from .._args import pair
from ..dtypes import array_of
from ..random import generator
from ..tensor import Tensor


class Transform:
    """Base class: subclasses implement ``apply(x, rng) -> array`` on a numpy batch."""

    def __call__(self, x, rng: np.random.Generator | None = None):
        if isinstance(x, Tensor):
            return Tensor(self.apply(x.data, rng if rng is not None else generator()))
        return self.apply(np.asarray(x), rng if rng is not None else generator())

    def apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self):
        options = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({options})"


def _images(x: np.ndarray, who: str) -> np.ndarray:
    if x.ndim != 4:
        raise ValueError(f"{who} expects a batch of images (N, C, H, W), got shape {x.shape}")
    return x


def _size(value, who: str) -> tuple[int, int]:
    """An output or crop size: a positive int or (height, width)."""
    return pair(value, "size", who, minimum=1)


def _range(value, who: str, centre: float | None = None, low: float = -math.inf) -> tuple[float, float]:
    """``v`` -> (centre - v, centre + v) (or (-v, v)); a pair stays as given."""
    if np.ndim(value) == 0:
        if value < 0:
            raise ValueError(f"{who}: expects a non-negative value, got {value}")
        c = centre if centre is not None else 0.0
        lo, hi = c - value, c + value
        lo = max(lo, low)
    else:
        lo, hi = (float(v) for v in value)
    if not (low <= lo <= hi):
        raise ValueError(f"{who}: invalid range ({lo}, {hi})")
    return float(lo), float(hi)


class Compose(Transform):
    """Applies ``transforms`` one after another."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def apply(self, x, rng) -> np.ndarray:
        for t in self.transforms:
            x = t.apply(x, rng) if isinstance(t, Transform) else np.asarray(t(x, rng))
        return x

    def __repr__(self):
        return "Compose([" + ", ".join(map(repr, self.transforms)) + "])"


# ---------------------------------------------------------------- normalisation
class ToTensor(Transform):
    """torchvision's ToTensor for arrays: uint8 images, (H, W, C) or (H, W) each, become float32
    (C, H, W) in [0, 1] (a batch (N, H, W, C) becomes (N, C, H, W)). Float arrays pass
    unchanged: they are taken to be (C, H, W) already, which is what minigrad's datasets hold
    (images in [0, 1]), so ``Compose([ToTensor(), Normalize(...)])`` means the same on them."""

    def apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if x.dtype != np.uint8:
            return x.astype(np.float32, copy=False) if x.dtype.kind == "f" else x.astype(np.float32)
        if x.ndim == 3:  # a batch of (H, W) images
            x = x[..., None]
        if x.ndim != 4:
            raise ValueError(f"ToTensor: expected uint8 images (H, W) or (H, W, C), got shape {x.shape[1:]}")
        return np.ascontiguousarray(np.moveaxis(x, -1, 1)).astype(np.float32) / np.float32(255)


class Normalize(Transform):
    """x_c = (x_c - mean_c) / std_c per channel (the axis before height and width), as
    torchvision's Normalize; ``mean``/``std`` one value per channel or one for all."""

    def __init__(self, mean, std, inplace: bool = False):
        self.mean, self.std = tuple(np.atleast_1d(mean).tolist()), tuple(np.atleast_1d(std).tolist())
        if len(self.mean) != len(self.std) or any(s == 0 for s in self.std):
            raise ValueError(f"Normalize: mean {self.mean} and std {self.std} must match in length, std non-zero")

    def apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if x.ndim < 3 or len(self.mean) not in (1, x.shape[-3]):
            raise ValueError(f"Normalize: {len(self.mean)} channel values for images of shape {x.shape}")
        shape = (-1, 1, 1)
        mean = np.asarray(self.mean, x.dtype).reshape(shape)
        std = np.asarray(self.std, x.dtype).reshape(shape)
        return (x - mean) / std


class _FittedScaling(Transform):
    """Shared machinery of the scalings whose statistics are fitted on training data.

    ``per="channel"`` reduces over every axis except axis 1 (one statistic per image channel
    or per feature of an (N, F) batch); ``per="feature"`` reduces over axis 0 only (one per
    pixel); ``per="all"`` gives one scalar. The statistics live in ``state_dict()`` so a model
    checkpoint can carry them and evaluation uses the training statistics.
    """

    _state_names: tuple = ()

    def __init__(self, per: str):
        if per not in ("channel", "feature", "all"):
            raise ValueError(f"{type(self).__name__}: per must be 'channel', 'feature' or 'all', got {per!r}")
        self.per = per

    def _axes(self, x) -> tuple:
        if x.ndim < 2 and self.per != "all":
            raise ValueError(f"{type(self).__name__}: expects a batch (N, ...), got shape {x.shape}")
        if self.per == "all":
            return tuple(range(x.ndim))
        if self.per == "feature":
            return (0,)
        return (0,) + tuple(range(2, x.ndim))

    def _stat(self, reduce, x) -> np.ndarray:
        x = np.asarray(array_of(x))
        stat = reduce(x.astype(np.float64), axis=self._axes(x), keepdims=True)[0]
        return stat.reshape(-1) if self.per == "channel" else stat.reshape(()) if self.per == "all" else stat

    def _require_fitted(self):
        if any(getattr(self, name) is None for name in self._state_names):
            raise RuntimeError(
                f"{type(self).__name__} is not fitted: call fit(train_x) on the training "
                f"split first (or load_state_dict)"
            )

    def state_dict(self) -> dict:
        self._require_fitted()
        return {"per": self.per, **{name: np.asarray(getattr(self, name)) for name in self._state_names}}

    def load_state_dict(self, state: dict) -> _FittedScaling:
        self.per = state.get("per", self.per)
        for name in self._state_names:
            setattr(self, name, np.asarray(state[name], dtype=np.float64))
        return self

    def _broadcast(self, stat, x) -> np.ndarray:
        """Stat of shape (C,) / (features...) / () shaped to broadcast against batch ``x``."""
        stat = np.asarray(stat, dtype=x.dtype if x.dtype.kind == "f" else np.float32)
        if self.per == "channel" and stat.ndim == 1:
            return stat.reshape((1, -1) + (1,) * (x.ndim - 2))
        expected = {"feature": x.shape[1:], "channel": (x.shape[1],), "all": ()}[self.per]
        if stat.shape != expected:
            raise ValueError(
                f"{type(self).__name__}: fitted statistics of shape {stat.shape} do not fit a batch of shape {x.shape}"
            )
        return stat


class Standardize(_FittedScaling):
    """z-score: ``x' = (x - mean) / std`` with mean and (population) std of the training data.

    Fit on the training split only (``fit(train_x)``), or give ``mean``/``std`` explicitly;
    features with zero spread keep std 1 (so constant border pixels stay 0, not NaN).
    """

    _state_names = ("mean", "std")

    def __init__(self, mean=None, std=None, per: str = "channel"):
        super().__init__(per)
        self.mean = None if mean is None else np.asarray(mean, dtype=np.float64)
        self.std = None if std is None else np.asarray(std, dtype=np.float64)

    def fit(self, x) -> Standardize:
        self.mean = self._stat(np.mean, x)
        std = self._stat(np.std, x)
        self.std = np.where(std > 0, std, 1.0)
        return self

    def apply(self, x, rng) -> np.ndarray:
        self._require_fitted()
        out = x.astype(np.float32) if x.dtype.kind != "f" else x
        return (out - self._broadcast(self.mean, out)) / self._broadcast(self.std, out)


class MinMaxScale(_FittedScaling):
    """``x' = lo + (x - min)(hi - lo) / (max - min)`` with the training data's min and max,
    mapping the training range onto ``feature_range=(lo, hi)`` (constant features map to lo)."""

    _state_names = ("min", "max")

    def __init__(self, feature_range=(0.0, 1.0), per: str = "channel"):
        super().__init__(per)
        self.feature_range = (float(feature_range[0]), float(feature_range[1]))
        if not self.feature_range[0] < self.feature_range[1]:
            raise ValueError(f"MinMaxScale: feature_range must be increasing, got {feature_range}")
        self.min = self.max = None

    def fit(self, x) -> MinMaxScale:
        self.min, self.max = self._stat(np.min, x), self._stat(np.max, x)
        return self

    def apply(self, x, rng) -> np.ndarray:
        self._require_fitted()
        out = x.astype(np.float32) if x.dtype.kind != "f" else x
        lo, hi = self.feature_range
        span = np.where(self.max > self.min, self.max - self.min, 1.0)
        return lo + (out - self._broadcast(self.min, out)) * self._broadcast((hi - lo) / span, out)


# ---------------------------------------------------------------- geometry
def bilinear_sample(x: np.ndarray, ys: np.ndarray, xs: np.ndarray, fill: float | None = 0.0) -> np.ndarray:
    """Samples images ``x`` (N, C, H, W) at real-valued source coordinates ``ys``, ``xs``
    (N, Ho, Wo), pixel centres at integers, by bilinear interpolation:

        out = (1-a)(1-b) x[y0, x0] + (1-a) b x[y0, x0+1] + a (1-b) x[y0+1, x0] + a b x[y0+1, x0+1]

    with y0 = floor(y), a = y - y0 (likewise b). Neighbours outside the image count as
    ``fill``; ``fill=None`` clamps coordinates to the border instead (edge replication).
    """
    n, c, h, w = x.shape
    if fill is None:
        ys, xs = np.clip(ys, 0, h - 1), np.clip(xs, 0, w - 1)
    y0, x0 = np.floor(ys).astype(np.int64), np.floor(xs).astype(np.int64)
    a, b = (ys - y0).astype(x.dtype), (xs - x0).astype(x.dtype)
    channels_last = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    batch = np.arange(n).reshape(n, 1, 1)
    out = np.zeros((n,) + ys.shape[1:] + (c,), dtype=x.dtype)
    for dy, dx, weight in ((0, 0, (1 - a) * (1 - b)), (0, 1, (1 - a) * b), (1, 0, a * (1 - b)), (1, 1, a * b)):
        yy, xx = y0 + dy, x0 + dx
        inside = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
        values = channels_last[batch, np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)]
        if fill is not None:
            values = np.where(inside[..., None], values, np.asarray(fill, dtype=x.dtype))
        out += weight[..., None] * values
    return out.transpose(0, 3, 1, 2).copy()


def _box_coordinates(top, left, height, width, out_h: int, out_w: int):
    """Source coordinates that resize the box (per sample) onto an out_h x out_w grid,
    half-pixel aligned (align_corners=False) and clamped inside the box."""
    top, left, height, width = (np.asarray(v, dtype=np.float64).reshape(-1, 1, 1) for v in (top, left, height, width))
    ys = top + (np.arange(out_h).reshape(1, -1, 1) + 0.5) * height / out_h - 0.5
    xs = left + (np.arange(out_w).reshape(1, 1, -1) + 0.5) * width / out_w - 0.5
    ys = np.clip(ys, top, top + height - 1)
    xs = np.clip(xs, left, left + width - 1)
    return np.broadcast_to(ys, (ys.shape[0], out_h, out_w)), np.broadcast_to(xs, (xs.shape[0], out_h, out_w))


class Resize(Transform):
    """Bilinear resize to ``size`` (PyTorch's ``interpolate(mode="bilinear", align_corners=False)``
    without antialiasing)."""

    def __init__(self, size):
        self.size = _size(size, "Resize")

    def apply(self, x, rng) -> np.ndarray:
        n, _, h, w = _images(x, "Resize").shape
        ys, xs = _box_coordinates(np.zeros(n), np.zeros(n), np.full(n, h), np.full(n, w), *self.size)
        return bilinear_sample(x, ys, xs, fill=None)


class RandomHorizontalFlip(Transform):
    """Mirrors each image left-right with probability ``p`` (one uniform draw per image)."""

    def __init__(self, p: float = 0.5):
        if not 0 <= p <= 1:
            raise ValueError(f"RandomHorizontalFlip: p must be in [0, 1], got {p}")
        self.p = p

    def apply(self, x, rng) -> np.ndarray:
        flip = rng.random(len(x)) < self.p
        out = x.copy()
        out[flip] = x[flip, ..., ::-1]
        return out


class RandomCrop(Transform):
    """Pads each side by ``padding`` (with ``fill``) and cuts a ``size`` window at a random offset.

    Offsets are drawn as ``top = rng.integers(0, H + 2p - h + 1, N)`` and then ``left`` likewise.
    """

    def __init__(self, size, padding: int = 0, fill: float = 0.0):
        self.size = _size(size, "RandomCrop")
        if int(padding) != padding or padding < 0:
            raise ValueError(f"RandomCrop: padding must be a non-negative integer, got {padding!r}")
        self.padding, self.fill = int(padding), fill

    def apply(self, x, rng) -> np.ndarray:
        n, _, h, w = _images(x, "RandomCrop").shape
        p, (ch, cw) = self.padding, self.size
        if ch > h + 2 * p or cw > w + 2 * p:
            raise ValueError(f"RandomCrop: crop {self.size} larger than the padded image {(h + 2 * p, w + 2 * p)}")
        padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=self.fill) if p else x
        top = rng.integers(0, h + 2 * p - ch + 1, n)
        left = rng.integers(0, w + 2 * p - cw + 1, n)
        return crop(padded, top, left, (ch, cw))


def crop(x: np.ndarray, top, left, size) -> np.ndarray:
    """Cuts the ``size`` window at (``top[i]``, ``left[i]``) out of each image ``x[i]``."""
    ch, cw = _size(size, "crop")
    n = len(x)
    rows = np.asarray(top).reshape(n, 1) + np.arange(ch)
    cols = np.asarray(left).reshape(n, 1) + np.arange(cw)
    gathered = x.transpose(0, 2, 3, 1)[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
    return gathered.transpose(0, 3, 1, 2).copy()


class RandomResizedCrop(Transform):
    """Crops a random box covering a ``scale`` fraction of the image with aspect ratio in
    ``ratio`` (log-uniform), and resizes it bilinearly to ``size`` — scale augmentation.

    Per image, up to 10 proposals (area ~ U(scale) * H * W, log-ratio ~ U(log ratio)) are drawn at
    once; the first that fits is used; if none fits, the largest centred box within ``ratio``.
    """

    attempts = 10

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
        self.size = _size(size, "RandomResizedCrop")
        self.scale, self.ratio = tuple(map(float, scale)), tuple(map(float, ratio))
        if not (0 < self.scale[0] <= self.scale[1] <= 1) or not (0 < self.ratio[0] <= self.ratio[1]):
            raise ValueError(
                f"RandomResizedCrop: need 0 < scale[0] <= scale[1] <= 1 and 0 < ratio[0] <= ratio[1], "
                f"got scale={scale}, ratio={ratio}"
            )

    def boxes(self, n: int, h: int, w: int, rng) -> tuple[np.ndarray, ...]:
        """(top, left, height, width) arrays of the crop boxes for n images of h x w."""
        area = h * w * rng.uniform(*self.scale, size=(n, self.attempts))
        aspect = np.exp(rng.uniform(*np.log(self.ratio), size=(n, self.attempts)))
        bw = np.round(np.sqrt(area * aspect)).astype(np.int64)
        bh = np.round(np.sqrt(area / aspect)).astype(np.int64)
        fits = (bw >= 1) & (bw <= w) & (bh >= 1) & (bh <= h)
        first = np.argmax(fits, axis=1)
        rows = np.arange(n)
        bh, bw = bh[rows, first], bw[rows, first]
        # fallback: the whole image, narrowed to the nearest allowed aspect ratio
        fallback_w = min(w, int(round(h * self.ratio[1]))) if w / h > self.ratio[1] else w
        fallback_h = min(h, int(round(w / self.ratio[0]))) if w / h < self.ratio[0] else h
        none_fit = ~fits.any(axis=1)
        bh, bw = np.where(none_fit, fallback_h, bh), np.where(none_fit, fallback_w, bw)
        top = np.floor(rng.random(n) * (h - bh + 1)).astype(np.int64)
        left = np.floor(rng.random(n) * (w - bw + 1)).astype(np.int64)
        top, left = np.where(none_fit, (h - bh) // 2, top), np.where(none_fit, (w - bw) // 2, left)
        return top, left, bh, bw

    def apply(self, x, rng) -> np.ndarray:
        n, _, h, w = _images(x, "RandomResizedCrop").shape
        ys, xs = _box_coordinates(*self.boxes(n, h, w, rng), *self.size)
        return bilinear_sample(x, ys, xs, fill=None)


def affine(x: np.ndarray, angle, translate, scale, fill: float = 0.0) -> np.ndarray:
    """Rotates each image by ``angle[i]`` degrees counter-clockwise about its centre, scales it by
    ``scale[i]`` and shifts it by ``translate[i] = (dx, dy)`` pixels (right, down).

    Each output pixel p takes the input at the inverse map  c + R(-angle) (p - c - t) / scale,
    c = ((W-1)/2, (H-1)/2), sampled bilinearly; points from outside the image get ``fill``.
    """
    n, _, h, w = _images(x, "affine").shape
    theta = np.deg2rad(np.asarray(angle, dtype=np.float64)).reshape(n, 1, 1)
    t = np.asarray(translate, dtype=np.float64).reshape(n, 2)
    s = np.asarray(scale, dtype=np.float64).reshape(n, 1, 1)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    py = np.arange(h).reshape(1, h, 1) - cy - t[:, 1].reshape(n, 1, 1)
    px = np.arange(w).reshape(1, 1, w) - cx - t[:, 0].reshape(n, 1, 1)
    # image rows grow downwards, so a counter-clockwise turn on screen is clockwise in (x, y)
    cos, sin = np.cos(theta), np.sin(theta)
    xs = cx + (cos * px - sin * py) / s
    ys = cy + (sin * px + cos * py) / s
    return bilinear_sample(x, ys, xs, fill=fill)


class RandomAffine(Transform):
    """Random rotation (``degrees``: d -> U(-d, d), or a (lo, hi) pair), translation
    (``translate=(fx, fy)``: shifts up to fx*W and fy*H pixels) and scaling (``scale=(lo, hi)``)."""

    def __init__(self, degrees=0.0, translate=None, scale=None, fill: float = 0.0):
        self.degrees = _range(degrees, "RandomAffine degrees")
        if translate is not None and (len(translate) != 2 or not all(0 <= f <= 1 for f in translate)):
            raise ValueError(f"RandomAffine: translate must be two fractions in [0, 1], got {translate!r}")
        if scale is not None and not (0 < scale[0] <= scale[1]):
            raise ValueError(f"RandomAffine: scale must be (lo, hi) with 0 < lo <= hi, got {scale!r}")
        self.translate, self.scale, self.fill = translate, scale, fill

    def apply(self, x, rng) -> np.ndarray:
        n, _, h, w = _images(x, "RandomAffine").shape
        angle = rng.uniform(*self.degrees, size=n)
        shift = np.zeros((n, 2))
        if self.translate is not None:
            limits = np.array([self.translate[0] * w, self.translate[1] * h])
            shift = np.round(rng.uniform(-limits, limits, size=(n, 2)))
        scale = rng.uniform(*self.scale, size=n) if self.scale is not None else np.ones(n)
        return affine(x, angle, shift, scale, self.fill)


# ---------------------------------------------------------------- colour and noise
_LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R 601 grey level of an RGB pixel


def _per_image(factor, x) -> np.ndarray:
    return np.asarray(factor, dtype=x.dtype).reshape((-1,) + (1,) * (x.ndim - 1))


def _grey(x: np.ndarray) -> np.ndarray:
    return np.tensordot(_LUMA.astype(x.dtype), x, axes=([0], [1]))[:, None]


def adjust_brightness(x, factor) -> np.ndarray:
    """``clip(f x, 0, 1)`` per image."""
    return np.clip(x * _per_image(factor, x), 0, 1)


def adjust_contrast(x, factor) -> np.ndarray:
    """Blend with the image's mean grey level m: ``clip(f x + (1 - f) m, 0, 1)``."""
    grey = _grey(x) if x.shape[1] == 3 else x
    mean = grey.mean(axis=(1, 2, 3), keepdims=True)
    f = _per_image(factor, x)
    return np.clip(f * x + (1 - f) * mean, 0, 1)


def adjust_saturation(x, factor) -> np.ndarray:
    """Blend with the grey image g: ``clip(f x + (1 - f) g, 0, 1)`` (RGB only)."""
    f = _per_image(factor, x)
    return np.clip(f * x + (1 - f) * _grey(x), 0, 1)


def adjust_hue(x, shift) -> np.ndarray:
    """Rotates the hue (HSV) of RGB images by ``shift`` turns, shift in [-0.5, 0.5]."""
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    value, minimum = x.max(axis=1), x.min(axis=1)
    chroma = value - minimum
    safe = np.where(chroma > 0, chroma, 1)
    hue = np.where(value == r, (g - b) / safe, np.where(value == g, 2 + (b - r) / safe, 4 + (r - g) / safe))
    hue = np.where(chroma > 0, hue / 6, 0)
    hue = (hue + np.asarray(shift, dtype=x.dtype).reshape(-1, 1, 1)) % 1.0
    # HSV -> RGB: channel k takes v - chroma * clip(min(m, 4 - m), 0, 1), m = (k' + 6h) mod 6
    out = np.empty_like(x)
    for channel, offset in enumerate((5, 3, 1)):
        m = (offset + hue * 6) % 6
        out[:, channel] = value - chroma * np.clip(np.minimum(m, 4 - m), 0, 1)
    return out


class ColorJitter(Transform):
    """Random brightness, contrast and saturation factors (b -> U(max(0, 1-b), 1+b)) and hue shift
    (h -> U(-h, h), h <= 0.5) per image, applied in that order. Saturation and hue need RGB."""

    def __init__(self, brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0):
        self.brightness = _range(brightness, "ColorJitter brightness", centre=1.0, low=0.0)
        self.contrast = _range(contrast, "ColorJitter contrast", centre=1.0, low=0.0)
        self.saturation = _range(saturation, "ColorJitter saturation", centre=1.0, low=0.0)
        self.hue = _range(hue, "ColorJitter hue")
        if not -0.5 <= self.hue[0] <= self.hue[1] <= 0.5:
            raise ValueError(f"ColorJitter: hue must lie in [-0.5, 0.5], got {hue!r}")

    def apply(self, x, rng) -> np.ndarray:
        _images(x, "ColorJitter")
        if (self.saturation != (1.0, 1.0) or self.hue != (0.0, 0.0)) and x.shape[1] != 3:
            raise ValueError(f"ColorJitter: saturation and hue need RGB images (N, 3, H, W), got {x.shape}")
        n = len(x)
        factors = [rng.uniform(*r, size=n) for r in (self.brightness, self.contrast, self.saturation, self.hue)]
        if self.brightness != (1.0, 1.0):
            x = adjust_brightness(x, factors[0])
        if self.contrast != (1.0, 1.0):
            x = adjust_contrast(x, factors[1])
        if self.saturation != (1.0, 1.0):
            x = adjust_saturation(x, factors[2])
        if self.hue != (0.0, 0.0):
            x = adjust_hue(x, factors[3])
        return x


class GaussianNoise(Transform):
    """Input-noise injection: ``x + std * z`` with z ~ N(0, 1) elementwise."""

    def __init__(self, std: float):
        if std < 0:
            raise ValueError(f"GaussianNoise: std must be non-negative, got {std}")
        self.std = float(std)

    def apply(self, x, rng) -> np.ndarray:
        dtype = x.dtype if x.dtype.kind == "f" else np.float32
        return x + self.std * rng.standard_normal(x.shape, dtype=dtype)


# ---------------------------------------------------------------- test-time augmentation
def test_time_views(x, flip: bool = True, shift: int = 0) -> list[np.ndarray]:
    """The deterministic views of a batch that multi-crop evaluation averages over.

    The original; with ``shift`` > 0 also the four corner crops of the image padded by ``shift``
    (the image moved by ``shift`` pixels diagonally, zero fill); with ``flip`` the mirror image of
    each view. That is 1, 2, 5 or 10 views (the classic ten-crop).
    """
    x = _images(np.asarray(array_of(x)), "test_time_views")
    n, _, h, w = x.shape
    views = [x]
    if shift:
        padded = np.pad(x, ((0, 0), (0, 0), (shift, shift), (shift, shift)))
        for top, left in ((0, 0), (0, 2 * shift), (2 * shift, 0), (2 * shift, 2 * shift)):
            views.append(np.ascontiguousarray(padded[:, :, top : top + h, left : left + w]))
    if flip:
        views += [np.ascontiguousarray(v[..., ::-1]) for v in views]
    return views
