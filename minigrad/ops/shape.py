"""Ops that move values around without arithmetic: reshape, permute, indexing, concat, pad,
expand. Backward moves the gradient back the same way."""

from __future__ import annotations

import numpy as np

from ..autograd import Function


class Reshape(Function):
    """z = x viewed with a new shape (same element order).   dx = dz reshaped back."""

    reads = ()  # backward reads no input or output values: in-place changes are fine

    moves_bytes = True  # bfloat16 arrays pass as they are (minigrad/amp.py)

    is_view = True

    def forward(self, x, shape) -> np.ndarray:
        self.shape = x.shape
        try:
            return x.reshape(shape)
        except ValueError:
            raise ValueError(
                f"Reshape: cannot reshape a tensor of shape {x.shape} ({x.size} elements) into shape {tuple(shape)}"
            ) from None

    def backward(self, g) -> np.ndarray:
        return g.reshape(self.shape)


class Permute(Function):
    """z = x with its axes reordered.   dx = dz with the inverse order."""

    reads = ()  # backward reads no input or output values: in-place changes are fine

    moves_bytes = True  # bfloat16 arrays pass as they are (minigrad/amp.py)

    is_view = True  # an order that keeps the layout (1-D, identity) returns x itself

    def forward(self, x, axes) -> np.ndarray:
        if sorted(a % max(x.ndim, 1) for a in axes) != list(range(x.ndim)):
            raise ValueError(f"Permute: {tuple(axes)} is not a permutation of the {x.ndim} axes of {x.shape}")
        self.inverse = np.argsort([a % x.ndim for a in axes])
        return np.ascontiguousarray(x.transpose(axes))

    def backward(self, g) -> np.ndarray:
        return g.transpose(self.inverse)


def _is_advanced(index) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(p, (list, np.ndarray)) for p in parts)


class GetItem(Function):
    """z = x[index] for ints, slices, None, Ellipsis and integer/boolean arrays.
    dx = zeros with dz scattered back; repeated indices add up (scatter-add)."""

    reads = ()  # backward reads no input or output values: in-place changes are fine

    moves_bytes = True  # bfloat16 arrays pass as they are (minigrad/amp.py)

    is_view = True

    def forward(self, x, index) -> np.ndarray:
        self.shape, self.dtype, self.index = x.shape, x.dtype, index
        try:
            out = x[index]
        except IndexError as error:
            raise IndexError(f"GetItem: {error} (tensor shape {x.shape})") from None
        return np.asarray(out)

    def backward(self, g) -> np.ndarray:
        dx = np.zeros(self.shape, self.dtype)
        if _is_advanced(self.index):
            np.add.at(dx, self.index, g)
        else:
            dx[self.index] = g
        return dx


class Gather(Function):
    """z[..., i, ...] = x[..., index[..., i, ...], ...] along ``axis`` (numpy's take_along_axis,
    PyTorch's gather).   dx = zeros with dz added back at the gathered places (scatter-add)."""

    reads = ()  # backward reads no input or output values: in-place changes are fine

    moves_bytes = True  # bfloat16 arrays pass as they are (minigrad/amp.py)

    def forward(self, x, index, axis=0) -> np.ndarray:
        if index.ndim != x.ndim:
            raise ValueError(f"Gather: index {index.shape} must have as many dimensions as the input {x.shape}")
        if index.dtype.kind not in "iu":
            raise TypeError(f"Gather: index must hold integers, got {index.dtype}")
        self.shape, self.dtype, self.index, self.axis = x.shape, x.dtype, index, axis
        try:
            return np.take_along_axis(x, index, axis=axis)
        except (IndexError, ValueError) as error:
            raise IndexError(f"Gather: {error} (input {x.shape}, index {index.shape}, dim {axis})") from None

    def backward(self, g) -> np.ndarray:
        dx = np.zeros(self.shape, self.dtype)
        grid = list(np.indices(self.index.shape, sparse=True))
        grid[self.axis] = self.index
        np.add.at(dx, tuple(grid), g)
        return dx


class Concat(Function):
    """z = [x_1, x_2, ...] joined along an axis.   dx_k = the slice of dz that x_k filled."""

    reads = ()  # backward reads no input or output values: in-place changes are fine

    moves_bytes = True  # bfloat16 arrays pass as they are (minigrad/amp.py)

    def forward(self, *xs, axis=0) -> np.ndarray:
        if not xs:
            raise ValueError("Concat: needs at least one tensor")
        self.axis = axis % xs[0].ndim if xs[0].ndim else 0
        self.splits = np.cumsum([x.shape[self.axis] for x in xs])[:-1]
        try:
            return np.concatenate(xs, axis=axis)
        except ValueError as error:
            raise ValueError(f"Concat: {error}; shapes {[x.shape for x in xs]}") from None

    def backward(self, g) -> tuple[np.ndarray, ...]:
        return tuple(np.split(g, self.splits, axis=self.axis))


class Pad(Function):
    """z = x surrounded by a constant.  ``pad_width`` as numpy: ((before, after), ...).
    dx = the centre of dz."""

    reads = ()  # backward reads no input or output values: in-place changes are fine

    moves_bytes = True  # bfloat16 arrays pass as they are (minigrad/amp.py)

    def forward(self, x, pad_width, value=0.0) -> np.ndarray:
        self.centre = tuple(slice(b, b + n) for (b, _), n in zip(pad_width, x.shape))
        return np.pad(x, pad_width, mode="constant", constant_values=value)

    def backward(self, g) -> np.ndarray:
        return g[self.centre]


class Expand(Function):
    """z = x broadcast to a larger shape.   dx = dz summed over the broadcast axes (the
    engine's unbroadcast does that)."""

    reads = ()  # backward reads no input or output values: in-place changes are fine

    moves_bytes = True  # bfloat16 arrays pass as they are (minigrad/amp.py)

    def forward(self, x, shape) -> np.ndarray:
        shape = tuple(x.shape[i - (len(shape) - x.ndim)] if s == -1 else s for i, s in enumerate(shape))
        try:
            return np.broadcast_to(x, shape).copy()  # a fresh, writeable array even for the same shape
        except ValueError:
            raise ValueError(f"Expand: cannot expand shape {x.shape} to {shape}") from None

    def backward(self, g) -> np.ndarray:
        return g
