"""2-D convolution on NCHW arrays, computed by ``_C.conv2d_forward`` / ``_C.conv2d_backward``
(csrc/conv.cpp picks a kernel per shape and pass: direct, channel-vectorised, Winograd or
im2col + GEMM; see csrc/conv.h). ``MINIGRAD_CONV_ALGO=direct|chanvec|im2col|winograd`` forces
one wherever it applies (``winograd_f2``/``winograd_f4`` also force the tile); the profile
names the algorithm each call ran, e.g. ``Conv2d[winograd_f4]``.

Like every deep-learning library, "convolution" here is cross-correlation: the kernel is not
flipped."""

from __future__ import annotations

import os

import numpy as np

from .. import _C
from .._args import pair  # noqa: F401  (re-exported: the one int-or-pair parser)
from ..autograd import Function
from ..dtypes import bf16_bits, convert, is_bfloat16


def check_conv2d(x, w, b, stride, padding, dilation, groups) -> tuple:
    """Validates the operands of Conv2d (dtypes, ranks, bias) and returns the output shape;
    errors name the shapes."""
    floating = x.dtype.type in (np.float32, np.float64) or is_bfloat16(x.dtype)
    if x.dtype != w.dtype or not floating or (b is not None and b.dtype != x.dtype):
        raise TypeError(
            f"Conv2d: input, weight (and bias) must all be float32, all float64 or all bfloat16, got "
            f"{x.dtype}, {w.dtype}" + (f", {b.dtype}" if b is not None else "")
        )
    if x.ndim != 4 or w.ndim != 4:
        raise ValueError(
            f"Conv2d: expects input (N, C_in, H, W) and weight (C_out, C_in/groups, kH, kW), "
            f"got input {x.shape} and weight {w.shape}"
        )
    if b is not None and b.shape != (w.shape[0],):
        raise ValueError(f"Conv2d: bias must have shape ({w.shape[0]},) for weight {w.shape}, got {b.shape}")
    # The geometry rules (hyper-parameter ranges, weight fitting input and groups, kernel fitting
    # the padded input, every derived size bounded) have one home, conv_geometry in
    # csrc/bind/conv.cpp: the kernels need each of them to stay in bounds. Asked here, before
    # the output is allocated, with this op's name in the errors.
    return tuple(_C.conv2d_output_shape(x.shape, w.shape, stride, padding, dilation, groups, op="Conv2d"))


# MINIGRAD_CONV_ALGO's values and the kernel names they force ("im2col" is the GEMM path).
CONV_ALGOS = {
    "auto": "auto",
    "direct": "direct",
    "chanvec": "chanvec",
    "im2col": "gemm",
    "gemm": "gemm",
    "winograd": "winograd",
    "winograd_f2": "winograd_f2",
    "winograd_f4": "winograd_f4",
}


def conv_algorithm() -> str:
    """The algorithm ``MINIGRAD_CONV_ALGO`` asks for (read at every call, so tests and scripts
    can switch it), as the kernels name it; "auto" when unset. A shape the forced algorithm
    cannot run (e.g. Winograd on a 5x5 kernel) falls back to im2col + GEMM."""
    name = os.environ.get("MINIGRAD_CONV_ALGO", "auto").strip().lower() or "auto"
    if name not in CONV_ALGOS:
        raise ValueError(f"MINIGRAD_CONV_ALGO must be one of {', '.join(CONV_ALGOS)}, got {name!r}")
    return CONV_ALGOS[name]


class Conv2d(Function):
    """Y[n,o,i,j] = b[o] + sum_{c,u,v} W[o,c,u,v] X[n, g(o) C_g + c, i s_h - p_h + u d_h, j s_w - p_w + v d_w]

    (X is zero outside the image; output channel o belongs to group g(o) and reads that
    group's C_g = C_in / groups input channels.) Every term W X of the sum sends dY back:

        dX[n, c', h, w] = sum over (o, i, j, u, v) that read X[n, c', h, w] of dY[n,o,i,j] W[o,c,u,v]
                          (a transposed convolution of dY)
        dW[o,c,u,v]     = sum_{n,i,j} dY[n,o,i,j] X[n, g(o) C_g + c, i s_h - p_h + u d_h, j s_w - p_w + v d_w]
        db[o]           = sum_{n,i,j} dY[n,o,i,j]
    """

    reads = ("inputs",)  # not the output: it may change in place (y = a * b; y += 1)

    amp = "lower"  # autocast: bfloat16 inputs, float32 accumulation (minigrad/amp.py)

    def forward(self, x, w, b=None, *, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1) -> np.ndarray:
        out_shape = check_conv2d(x, w, b, stride, padding, dilation, groups)
        x, w = np.ascontiguousarray(x), np.ascontiguousarray(w)
        b = None if b is None else np.ascontiguousarray(b)
        self.x, self.w, self.has_bias = x, w, b is not None
        self.geometry = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
        self.algo = conv_algorithm()
        if is_bfloat16(x.dtype):  # autocast: float32 accumulation, rounded once into bfloat16
            y = np.empty(out_shape, dtype=x.dtype)
            bias = None if b is None else convert(b, np.float32)
            _C.conv2d_forward_bf16(bf16_bits(x), bf16_bits(w), bias, bf16_bits(y), **self.geometry)
            if Function.profiler:
                self.label = f"Conv2d[{self._ran('forward')}]"
            return y
        y = np.empty(out_shape, dtype=x.dtype)
        _C.conv2d_forward(x, w, b, y, **self.geometry, algo=self.algo)
        if Function.profiler:
            self.label = f"Conv2d[{self._ran('forward')}]"
        return y

    def _ran(self, pass_: str) -> str:
        """The kernel this pass runs (csrc/conv.cpp's choice), for the profile."""
        g = self.geometry
        shapes = (self.x.shape, self.w.shape, g["stride"], g["padding"], g["dilation"], g["groups"])
        if is_bfloat16(self.x.dtype):
            return _C.conv2d_bf16_algorithm(*shapes, pass_)
        return _C.conv2d_algorithm(*shapes, self.algo, pass_)

    def backward(self, g) -> tuple[np.ndarray | None, ...]:
        x, w = self.x, self.w
        needs = self.needs_input_grad
        if is_bfloat16(x.dtype):  # dX rounded into bfloat16 by the kernel; dW, db float32
            gx = np.empty(x.shape, x.dtype) if needs[0] else None
            gw = np.empty(w.shape, np.float32) if needs[1] else None
            gb = np.empty(w.shape[0], np.float32) if self.has_bias and needs[2] else None
            g = bf16_bits(np.ascontiguousarray(g, dtype=x.dtype))
            _C.conv2d_backward_bf16(bf16_bits(x), bf16_bits(w), g, bf16_bits(gx), gw, gb, **self.geometry)
            self._label_backward(gx, gw)
            return (gx, gw, gb) if self.has_bias else (gx, gw)
        gx = np.empty_like(x) if needs[0] else None  # the first layer's input needs none
        gw = np.empty_like(w) if needs[1] else None
        gb = np.empty(w.shape[0], dtype=w.dtype) if self.has_bias and needs[2] else None
        _C.conv2d_backward(x, w, np.ascontiguousarray(g, dtype=x.dtype), gx, gw, gb, **self.geometry, algo=self.algo)
        self._label_backward(gx, gw)
        return (gx, gw, gb) if self.has_bias else (gx, gw)

    def _label_backward(self, gx, gw) -> None:
        if Function.profiler:
            ran = [
                f"{name}:{self._ran(pass_)}"
                for name, pass_, grad in (("dx", "grad_input", gx), ("dw", "grad_weight", gw))
                if grad is not None
            ]
            self.label = f"Conv2d[{' '.join(ran)}]"
