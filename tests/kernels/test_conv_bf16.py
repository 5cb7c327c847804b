"""Autocast's bfloat16 convolution (``_C.conv2d_forward_bf16`` / ``conv2d_backward_bf16``:
bfloat16 input, weight and dY; float32 bias and weight gradients; output and dX float32 or
bfloat16) against the float64 convolution of the same bfloat16 values (the scalar reference
``_C.ref.conv2d_*`` in float64); the bfloat16 outputs are the float32 ones rounded once.

Both multiply exactly and accumulate in float32 (ours) or float64 (the reference), so each
result lies within (terms + 2) * 2^-24 * sum |products| of the reference, summed over the
terms of that output. The shapes take every road inside: stride-1 layers on the shifted image
rows (with dilation, with no padding, with more padding than the kernel reaches, which sends dX
to im2col), 1x1 pointwise, stride 2 (on AMX tiles from 16 input channels, split into phases)
and groups on im2col; every bfloat16 GEMM road the CPU
offers runs them in its own process, at 1 thread and at all, with bitwise equal results.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import minigrad
from minigrad import _C

from isolated import run_python

ml_dtypes = pytest.importorskip("ml_dtypes")
BF16 = np.dtype(ml_dtypes.bfloat16)
ROAD_ORDER = ["float32", "avx512_bf16", "amx"]
UNIT = 2.0**-24

# (n, ci, h, w, co, kh, kw, stride, padding, dilation, groups)
SHAPES = [
    (2, 3, 9, 9, 4, 3, 3, 1, 1, 1, 1),
    (3, 16, 8, 8, 16, 3, 3, 1, 1, 1, 1),  # AMX: the 80-pixel grid ends on a half block of 16
    (2, 5, 7, 6, 3, 3, 3, 1, 0, 1, 1),
    (2, 4, 9, 9, 5, 3, 3, 1, 2, 2, 1),
    (2, 4, 6, 6, 3, 1, 1, 1, 1, 1, 1),  # padding beyond the kernel's reach: dX on im2col
    (2, 16, 6, 6, 32, 1, 1, 1, 0, 1, 1),
    (3, 8, 8, 8, 16, 3, 3, 2, 1, 1, 1),
    (2, 16, 6, 6, 32, 1, 1, 2, 0, 1, 1),
    (2, 8, 7, 7, 8, 3, 3, 1, 1, 1, 2),
    (1, 33, 5, 40, 20, 2, 3, 1, (0, 1), 1, 1),
    (2, 20, 5, 5, 48, 3, 3, 1, 1, 1, 1),  # three tiles of output channels: two, then one
    (11, 16, 6, 7, 24, 3, 3, 1, 1, 1, 1),  # AMX dW: images in several chunks, the last partial
    (3, 16, 9, 7, 20, 3, 3, 2, 1, 1, 1),  # strided on AMX: the image split into phases
    (2, 17, 11, 10, 16, 3, 3, 2, 2, 2, 1),  # phases with dilation, an odd channel count
    (2, 32, 8, 8, 32, 1, 1, 2, 0, 1, 1),  # the ResNet shortcut (dX: odd rows unreached, zero)
    (2, 16, 5, 6, 16, 1, 1, 1, 1, 1, 1),  # padding beyond the reach on AMX: dX as one phase
    (2, 24, 9, 8, 16, 3, 2, 3, 1, 1, 1),  # stride 3: some phases reached by one tap only
    # stride 2 on AMX over rows wider than the 32 columns its layout moves at a time, with a
    # ragged last block: padded (column 0 in the odd phase) and not, an odd channel count
    (2, 16, 5, 37, 16, 3, 3, 2, 1, 1, 1),
    (2, 17, 6, 34, 32, 3, 3, 2, 0, 1, 1),
    (3, 16, 32, 32, 16, 3, 3, 1, 1, 1, 1),  # 32 KB images: the AMX forward fetches the next one
    (2, 16, 7, 9, 16, 1, 5, 1, (0, 2), 1, 1),  # AMX dW of 16 -> 16 channels, taps in threes: 3 + 2
]


def bits(x):
    return x.astype(BF16).view(np.uint16)


def wide(x_bits):
    return x_bits.view(BF16).astype(np.float64)


def geometry(stride, padding, dilation, groups):
    pad = padding if isinstance(padding, tuple) else (padding, padding)
    return dict(stride=(stride, stride), padding=pad, dilation=(dilation, dilation), groups=groups)


def reference(x, w, b, gy, geo):
    """Forward, dX, dW, db in float64 on the bfloat16 values, and each one's scale (the same
    sums on absolute values)."""
    xs, ws = wide(x), wide(w)
    ys = tuple(_C.conv2d_output_shape(xs.shape, ws.shape, **geo))
    out = {}
    for name, (xa, wa, ga) in {"value": (xs, ws, wide(gy)), "scale": (abs(xs), abs(ws), abs(wide(gy)))}.items():
        y = np.empty(ys)
        _C.ref.conv2d_forward(xa, wa, b.astype(np.float64) if name == "value" else abs(b.astype(np.float64)), y, **geo)
        gx, gw, gb = np.empty(xs.shape), np.empty(ws.shape), np.empty(ws.shape[0])
        _C.ref.conv2d_backward(xa, wa, ga, gx, gw, gb, **geo)
        out[name] = (y, gx, gw, gb)
    return out


def sweep() -> int:
    rng = np.random.default_rng(0)
    all_threads = minigrad.get_num_threads()
    checked = 0
    for n, ci, h, w_, co, kh, kw, stride, padding, dilation, groups in SHAPES:
        geo = geometry(stride, padding, dilation, groups)
        x = bits(rng.standard_normal((n, ci, h, w_)).astype(np.float32))
        w = bits(rng.standard_normal((co, ci // groups, kh, kw)).astype(np.float32))
        b = rng.standard_normal(co).astype(np.float32)
        ys = tuple(_C.conv2d_output_shape(x.shape, w.shape, **geo))
        gy = bits(rng.standard_normal(ys).astype(np.float32))
        ref = reference(x, w, b, gy, geo)
        terms = {
            "y": ci // groups * kh * kw + 1,
            "gx": co * kh * kw,
            "gw": n * ys[2] * ys[3],
            "gb": n * ys[2] * ys[3],
        }
        runs = []
        for threads in (1, all_threads):
            minigrad.set_num_threads(threads)
            y = np.full(ys, np.nan, np.float32)
            _C.conv2d_forward_bf16(x, w, b, y, **geo)
            gx, gw, gb = (
                np.full(x.shape, np.nan, np.float32),
                np.full(w.shape, np.nan, np.float32),
                np.empty(co, np.float32),
            )
            _C.conv2d_backward_bf16(x, w, gy, gx, gw, gb, **geo)
            for name, got, want, scale in zip(("y", "gx", "gw", "gb"), (y, gx, gw, gb), ref["value"], ref["scale"]):
                bound = (terms[name] + 2) * UNIT * scale + 1e-30
                err = np.abs(got - want)
                assert (err <= bound).all(), (
                    f"{name} of {(n, ci, h, w_, co, kh, kw, stride, padding, dilation, groups)} at {threads} threads: "
                    f"error {err.max():.3g} > bound"
                )
            # bfloat16 outputs (what autocast asks for): the float32 results rounded once
            y16, gx16 = np.empty(ys, np.uint16), np.empty(x.shape, np.uint16)
            _C.conv2d_forward_bf16(x, w, b, y16, **geo)
            _C.conv2d_backward_bf16(x, w, gy, gx16, None, None, **geo)
            np.testing.assert_array_equal(y16, bits(y), err_msg="bfloat16 output")
            np.testing.assert_array_equal(gx16, bits(gx), err_msg="bfloat16 grad_input")
            # dX with dW in the same call (AMX runs dX inside dW's loop over images)
            gx16_both, gw_both = np.empty(x.shape, np.uint16), np.full(w.shape, np.nan, np.float32)
            _C.conv2d_backward_bf16(x, w, gy, gx16_both, gw_both, None, **geo)
            np.testing.assert_array_equal(gx16_both, gx16, err_msg="bfloat16 grad_input beside grad_weight")
            np.testing.assert_array_equal(gw_both, gw, err_msg="grad_weight beside a bfloat16 grad_input")
            runs.append((y, gx, gw, gb))
            checked += 1
        minigrad.set_num_threads(all_threads)
        for first, second in zip(*runs):
            np.testing.assert_array_equal(first, second, err_msg="1 thread vs all")
    return checked


def available_roads():
    best = minigrad.backend_info()["cpu_bf16_kernel"]
    return ROAD_ORDER[: ROAD_ORDER.index(best) + 1]


@pytest.mark.parametrize("road", ROAD_ORDER)
def test_every_road_matches_the_float64_convolution(road):
    if road not in available_roads():
        pytest.skip(f"this CPU/OS does not offer {road} (best: {minigrad.backend_info()['cpu_bf16_kernel']})")
    code = (
        "import sys, minigrad; sys.path.insert(0, sys.argv[1]); import test_conv_bf16; "
        "assert minigrad.backend_info()['bf16_kernel'] == sys.argv[2]; print(test_conv_bf16.sweep())"
    )
    proc = run_python(code, os.path.dirname(__file__), road, timeout=300, MINIGRAD_BF16_KERNEL=road)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert int(proc.stdout) == 2 * len(SHAPES)


def test_gradients_not_asked_for_are_not_written():
    x, w = bits(np.ones((1, 2, 4, 4), np.float32)), bits(np.ones((3, 2, 3, 3), np.float32))
    gy = bits(np.ones((1, 3, 2, 2), np.float32))
    gw = np.empty((3, 2, 3, 3), np.float32)
    _C.conv2d_backward_bf16(x, w, gy, None, gw, None)
    np.testing.assert_array_equal(gw, np.full(gw.shape, 4.0, np.float32))


def test_rounded_outputs_keep_nan_infinity_and_round_past_the_largest_to_infinity():
    """The bfloat16 output's rounding (in the epilogue, 16 values at a time on AVX-512) against
    ml_dtypes': a 1x1 convolution of ones whose bias lands every channel on an edge case,
    planes of 8 x 8 (a masked half vector) and 5 x 21 (a full vector and a ragged one)."""
    edges = [np.nan, np.inf, -np.inf, 3.4e38, -3.3e38, 1e-40, -0.0, 1.0 + 2.0**-8, 1.0 + 3 * 2.0**-8]
    co = 16 + len(edges)  # AMX from 16 input channels; the rest of the bias ordinary values
    bias = np.concatenate([np.float32(edges), np.linspace(-3, 3, 16)]).astype(np.float32)
    for h, w_ in ((8, 8), (5, 21)):
        x = bits(np.zeros((2, 16, h, w_), np.float32))
        w = bits(np.zeros((co, 16, 1, 1), np.float32))
        y, y16 = np.empty((2, co, h, w_), np.float32), np.empty((2, co, h, w_), np.uint16)
        _C.conv2d_forward_bf16(x, w, bias, y, relu=False)
        _C.conv2d_forward_bf16(x, w, bias, y16, relu=False)
        want = y.astype(BF16).view(np.uint16)
        nan = np.isnan(y)
        np.testing.assert_array_equal(y16[~nan], want[~nan])
        assert np.isnan(y16.view(BF16)[nan]).all() and nan[:, 0].all()
        assert (y16.view(BF16)[:, 3] == np.inf).all()  # past the largest finite: infinite


def test_bad_arguments_name_the_argument():
    x, w = np.zeros((1, 2, 4, 4), np.uint16), np.zeros((3, 2, 3, 3), np.uint16)
    with pytest.raises(TypeError, match="conv2d_forward_bf16: input must be uint16, got float32"):
        _C.conv2d_forward_bf16(x.astype(np.float32), w, None, np.empty((1, 3, 2, 2), np.float32))
    with pytest.raises(TypeError, match="out must be float32"):
        _C.conv2d_forward_bf16(x, w, None, np.empty((1, 3, 2, 2), np.float64))
    with pytest.raises(ValueError, match="out has shape"):
        _C.conv2d_forward_bf16(x, w, None, np.empty((1, 3, 3, 3), np.float32))
    with pytest.raises(ValueError, match="grad_output has shape"):
        _C.conv2d_backward_bf16(x, w, np.zeros((1, 3, 3, 3), np.uint16), None, None, None)


def test_convert_rounds_like_ml_dtypes_both_ways():
    rng = np.random.default_rng(3)
    x = rng.standard_normal(10_001).astype(np.float32) * np.float32(1e3)
    x[:6] = [np.float32(1.0) + np.float32(2.0**-8), np.inf, -np.inf, np.float32(3.4e38), np.float32(1e-40), -0.0]
    out = np.empty(x.shape, np.uint16)
    _C.convert(x, out)
    np.testing.assert_array_equal(out, x.astype(BF16).view(np.uint16))
    back = np.empty(x.shape, np.float32)
    _C.convert(out, back)
    np.testing.assert_array_equal(back, out.view(BF16).astype(np.float32))
    x[7] = np.nan
    _C.convert(x, out)
    assert np.isnan(out.view(BF16)[7])
    with pytest.raises(ValueError, match="dst has shape"):
        _C.convert(x, np.empty(3, np.uint16))


def test_the_profile_names_the_road_each_pass_takes():
    """conv2d_bf16_algorithm reports the road csrc/conv.cpp's one chooser picks for each pass."""
    amx = minigrad.backend_info()["bf16_kernel"] == "amx"
    name = _C.conv2d_bf16_algorithm
    # few input channels: tiles for the forward from 2 channels, for dW from 8
    assert name((8, 3, 32, 32), (16, 3, 3, 3), padding=(1, 1)) == ("bf16_amx" if amx else "bf16_shifted")
    assert name((8, 1, 28, 28), (6, 1, 5, 5), padding=(2, 2)) == "bf16_shifted"
    assert name((8, 3, 32, 32), (16, 3, 3, 3), padding=(1, 1), pass_="grad_weight") == "bf16_shifted"
    assert name((8, 8, 16, 16), (16, 8, 3, 3), padding=(1, 1), pass_="grad_weight") == (
        "bf16_amx" if amx else "bf16_shifted"
    )
    assert name((8, 16, 32, 32), (32, 16, 3, 3), stride=(2, 2), padding=(1, 1), pass_="grad_input") == (
        "bf16_amx_phases" if amx else "bf16_im2col"
    )
    assert name((8, 16, 32, 32), (16, 16, 3, 3), padding=(1, 1), pass_="grad_weight") == (
        "bf16_amx" if amx else "bf16_shifted"
    )
    assert name((8, 8, 7, 7), (8, 4, 3, 3), groups=2) == "bf16_im2col"
    # strides past 4 would make planes of mostly empty phases: the GEMM takes them
    assert name((1, 16, 5, 5), (16, 16, 1, 1), stride=(4, 4)) == ("bf16_amx" if amx else "bf16_im2col")
    assert name((1, 16, 5, 5), (16, 16, 1, 1), stride=(1000, 1000)) == "bf16_im2col"
    with pytest.raises(ValueError, match="conv2d_bf16_algorithm: pass_ must be"):
        name((1, 16, 5, 5), (16, 16, 1, 1), pass_="sideways")
