"""2-D convolution on NCHW arrays, computed by ``_C.conv2d_forward`` / ``_C.conv2d_backward``
(csrc/conv.cpp picks a kernel per shape and pass: direct, channel-vectorised or im2col + GEMM; see csrc/conv.h).

Like every deep-learning library, "convolution" here is cross-correlation: the kernel is not
flipped."""
from __future__ import annotations

import numpy as np

from .. import _C
from ..autograd import Function


def pair(value, name: str, op: str) -> tuple:
    """An int or a 2-sequence of ints as ``(height, width)``; each at most ``_C.MAX_SIZE``
    (2**48, the compiled kernels' size bound), so it also fits their 64-bit arithmetic."""
    result = None
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        result = int(value), int(value)
    else:
        try:
            first, second = value
            if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (first, second)):
                result = int(first), int(second)
        except (TypeError, ValueError):
            pass
    if result is None:
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    if max(result) > _C.MAX_SIZE:
        raise ValueError(f"{op}: {name} {result} is too large (sizes must lie in [0, 2**48])")
    return result


def conv2d_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """floor((size + 2 padding - dilation (kernel - 1) - 1) / stride) + 1."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def check_conv2d(x, w, b, stride, padding, dilation, groups) -> tuple:
    """Validates the operands of Conv2d and returns the output shape; errors name the shapes."""
    if x.dtype != w.dtype or x.dtype.type not in (np.float32, np.float64) or (b is not None and b.dtype != x.dtype):
        raise TypeError(f"Conv2d: input, weight (and bias) must all be float32 or all float64, got "
                        f"{x.dtype}, {w.dtype}" + (f", {b.dtype}" if b is not None else ""))
    if x.ndim != 4 or w.ndim != 4:
        raise ValueError(f"Conv2d: expects input (N, C_in, H, W) and weight (C_out, C_in/groups, kH, kW), "
                         f"got input {x.shape} and weight {w.shape}")
    if min(stride) < 1 or min(dilation) < 1 or min(padding) < 0 or groups < 1:
        raise ValueError(f"Conv2d: stride {stride} and dilation {dilation} must be >= 1, padding {padding} "
                         f">= 0 and groups {groups} >= 1")
    n, c_in, h, wd = x.shape
    c_out, c_group, kh, kw = w.shape
    if c_out % groups or c_group * groups != c_in or kh < 1 or kw < 1:
        raise ValueError(f"Conv2d: weight {w.shape} does not fit input {x.shape} with groups={groups} "
                         f"(weight must be (C_out, C_in/groups, kH, kW) with C_out divisible by groups)")
    if b is not None and b.shape != (c_out,):
        raise ValueError(f"Conv2d: bias must have shape ({c_out},) for weight {w.shape}, got {b.shape}")
    ho = conv2d_output_size(h, kh, stride[0], padding[0], dilation[0])
    wo = conv2d_output_size(wd, kw, stride[1], padding[1], dilation[1])
    if ho < 1 or wo < 1:
        raise ValueError(f"Conv2d: kernel {w.shape[2:]} with dilation {dilation} is larger than input "
                         f"{x.shape} padded by {padding}")
    # The kernels' size rule (padded planes, workspace: csrc/check.h Sizes) has one home, in C++;
    # checked here before the output is allocated.
    return tuple(_C.conv2d_output_shape(x.shape, w.shape, stride, padding, dilation, groups, op="Conv2d"))


class Conv2d(Function):
    """Y[n,o,i,j] = b[o] + sum_{c,u,v} W[o,c,u,v] X[n, g(o) C_g + c, i s_h - p_h + u d_h, j s_w - p_w + v d_w]

    (X is zero outside the image; output channel o belongs to group g(o) and reads that
    group's C_g = C_in / groups input channels.) Every term W X of the sum sends dY back:

        dX[n, c', h, w] = sum over (o, i, j, u, v) that read X[n, c', h, w] of dY[n,o,i,j] W[o,c,u,v]
                          (a transposed convolution of dY)
        dW[o,c,u,v]     = sum_{n,i,j} dY[n,o,i,j] X[n, g(o) C_g + c, i s_h - p_h + u d_h, j s_w - p_w + v d_w]
        db[o]           = sum_{n,i,j} dY[n,o,i,j]
    """

    def forward(self, x, w, b=None, *, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
        out_shape = check_conv2d(x, w, b, stride, padding, dilation, groups)
        x, w = np.ascontiguousarray(x), np.ascontiguousarray(w)
        b = None if b is None else np.ascontiguousarray(b)
        self.x, self.w, self.has_bias = x, w, b is not None
        self.geometry = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
        y = np.empty(out_shape, dtype=x.dtype)
        _C.conv2d_forward(x, w, b, y, **self.geometry)
        return y

    def backward(self, g):
        x, w = self.x, self.w
        needs = self.needs_input_grad
        gx = np.empty_like(x) if needs[0] else None  # the first layer's input needs none
        gw = np.empty_like(w) if needs[1] else None
        gb = np.empty(w.shape[0], dtype=w.dtype) if self.has_bias and needs[2] else None
        _C.conv2d_backward(x, w, np.ascontiguousarray(g, dtype=x.dtype), gx, gw, gb, **self.geometry)
        return (gx, gw, gb) if self.has_bias else (gx, gw)
