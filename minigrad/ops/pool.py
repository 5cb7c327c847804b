"""2-D pooling on NCHW arrays (``_C.*_pool2d_*``, csrc/pool.cpp), PyTorch's semantics with
``ceil_mode=False``: window (i, j) covers rows i s_h - p_h + [0, k_h) and columns
j s_w - p_w + [0, k_w)."""

from __future__ import annotations

import numpy as np

from .. import _C
from .._args import pair
from ..autograd import Function


def check_pool2d(op, x, kernel_size, stride, padding) -> tuple:
    """Validates a pooling input and window; returns the output shape (N, C, H_out, W_out)."""
    if x.dtype.type not in (np.float32, np.float64):
        raise TypeError(f"{op}: input must be float32 or float64, got {x.dtype}")
    if x.ndim != 4:
        raise ValueError(f"{op}: expects input (N, C, H, W), got shape {x.shape}")
    # The window rules (ranges, window within the padded input, sizes bounded) have one home,
    # pool_geometry in csrc/bind/pool.cpp: the kernels index with these sizes.
    return tuple(_C.pool2d_output_shape(x.shape, kernel_size, stride, padding, op=op))


def window_options(op, kernel_size, stride, padding) -> dict:
    """PyTorch's defaults: the stride is the kernel size unless given."""
    kernel = pair(kernel_size, "kernel_size", op)
    return dict(
        kernel_size=kernel,
        stride=kernel if stride is None else pair(stride, "stride", op),
        padding=pair(padding, "padding", op),
    )


class MaxPool2d(Function):
    """Y[n,c,i,j] = max over the window of X[n,c] (padding never wins).

    dX[n,c,h,w] = sum of dY[n,c,i,j] over the windows whose (first) maximum is at (h, w):
    the forward records each window's argmax, the backward routes dY through it."""

    def forward(self, x, *, kernel_size, stride, padding) -> np.ndarray:
        out_shape = check_pool2d("MaxPool2d", x, kernel_size, stride, padding)
        x = np.ascontiguousarray(x)
        y = np.empty(out_shape, dtype=x.dtype)
        self.indices = np.empty(out_shape, dtype=np.int64)
        self.window, self.x_shape = (kernel_size, stride, padding), x.shape
        _C.max_pool2d_forward(x, y, self.indices, *self.window)
        return y

    def backward(self, g) -> np.ndarray:
        gx = np.empty(self.x_shape, dtype=g.dtype)
        _C.max_pool2d_backward(np.ascontiguousarray(g), gx, self.indices, *self.window)
        return gx


class AvgPool2d(Function):
    """Y[n,c,i,j] = (1 / (k_h k_w)) sum over the window of X[n,c], padding counting as zeros
    (count_include_pad).   dX[n,c,h,w] = sum over windows containing (h, w) of dY[n,c,i,j] / (k_h k_w)."""

    def forward(self, x, *, kernel_size, stride, padding) -> np.ndarray:
        out_shape = check_pool2d("AvgPool2d", x, kernel_size, stride, padding)
        y = np.empty(out_shape, dtype=x.dtype)
        self.window, self.x_shape = (kernel_size, stride, padding), x.shape
        _C.avg_pool2d_forward(np.ascontiguousarray(x), y, *self.window)
        return y

    def backward(self, g) -> np.ndarray:
        gx = np.empty(self.x_shape, dtype=g.dtype)
        _C.avg_pool2d_backward(np.ascontiguousarray(g), gx, *self.window)
        return gx


class AdaptiveAvgPool2d(Function):
    """Y[n,c,i,j] = mean of X[n,c] over rows [floor(i H / H_out), ceil((i+1) H / H_out)) and
    columns [floor(j W / W_out), ceil((j+1) W / W_out)); output (1, 1) is global average pooling.
    dX[n,c,h,w] = sum over the cells containing (h, w) of dY[n,c,i,j] / (cell area)."""

    def forward(self, x, *, output_size) -> np.ndarray:
        if x.dtype.type not in (np.float32, np.float64):
            raise TypeError(f"AdaptiveAvgPool2d: input must be float32 or float64, got {x.dtype}")
        if x.ndim != 4:
            raise ValueError(f"AdaptiveAvgPool2d: expects input (N, C, H, W), got shape {x.shape}")
        ho, wo = (x.shape[2 + i] if s is None else s for i, s in enumerate(output_size))
        if not (1 <= ho <= x.shape[2] and 1 <= wo <= x.shape[3]):
            raise ValueError(
                f"AdaptiveAvgPool2d: output size {(ho, wo)} must be between 1 and the input's "
                f"spatial size, input {x.shape}"
            )
        y = np.empty((*x.shape[:2], ho, wo), dtype=x.dtype)
        self.x_shape = x.shape
        _C.adaptive_avg_pool2d_forward(np.ascontiguousarray(x), y)
        return y

    def backward(self, g) -> np.ndarray:
        gx = np.empty(self.x_shape, dtype=g.dtype)
        _C.adaptive_avg_pool2d_backward(np.ascontiguousarray(g), gx)
        return gx
