"""Winograd convolution (csrc/winograd.h): the matrices satisfy the minimal-filtering identity,
every ISA's vectorised tile transforms equal the reference twin at awkward tile counts, and
the float32 error against a float64 direct convolution stays inside the documented bounds."""

import os

import numpy as np
import pytest

from minigrad import _C

from isolated import run_python

KINDS = {  # kind: (side of X, side of L X L^T) for tile m
    "input": (lambda m: m + 2, lambda m: m + 2),
    "weight": (lambda m: 3, lambda m: m + 2),
    "output": (lambda m: m + 2, lambda m: m),
    "grad_output": (lambda m: m, lambda m: m + 2),
    "grad_weight": (lambda m: m + 2, lambda m: 3),
}


def correlate_valid(d, g):
    """The plain 2-D correlation of tile d with the 3x3 kernel g (no padding)."""
    rows, cols = d.shape[0] - 2, d.shape[1] - 2
    return np.array([[np.sum(d[i : i + 3, j : j + 3] * g) for j in range(cols)] for i in range(rows)])


@pytest.mark.parametrize("m", [2, 4])
def test_the_identity_holds_in_float64(m):
    """Y = A^T [(G g G^T) * (B^T d B)] A is the correlation of the (m+2)^2 tile d with g."""
    rng = np.random.default_rng(m)
    d, g = rng.standard_normal((1, m + 2, m + 2)), rng.standard_normal((1, 3, 3))
    u = _C.ref.winograd_transform("weight", m, g)
    v = _C.ref.winograd_transform("input", m, d)
    y = _C.ref.winograd_transform("output", m, u * v)[0]
    np.testing.assert_allclose(y, correlate_valid(d[0], g[0]), rtol=0, atol=1e-12)


@pytest.mark.parametrize("m", [2, 4])
def test_the_weight_gradient_identity_holds_in_float64(m):
    """dW = G^T [(A dY A^T) * V] G: the gradient of sum(Y * dY) over the kernel, i.e. the
    correlation of the tile with the output gradient."""
    rng = np.random.default_rng(10 + m)
    d, gy = rng.standard_normal((1, m + 2, m + 2)), rng.standard_normal((1, m, m))
    v = _C.ref.winograd_transform("input", m, d)
    dg = _C.ref.winograd_transform("grad_weight", m, _C.ref.winograd_transform("grad_output", m, gy) * v)[0]
    expected = np.array([[np.sum(d[0, a : a + m, b : b + m] * gy[0]) for b in range(3)] for a in range(3)])
    np.testing.assert_allclose(dg, expected, rtol=0, atol=1e-12)


def test_a_known_f2_input_transform():
    """B^T d B for F(2x2, 3x3) by hand: row 0 of B^T is (1, 0, -1, 0), so entry (0, 0) is
    d00 - d02 - d20 + d22."""
    d = np.arange(16, dtype=np.float64).reshape(1, 4, 4)
    v = _C.ref.winograd_transform("input", 2, d)
    assert v[0, 0, 0] == d[0, 0, 0] - d[0, 0, 2] - d[0, 2, 0] + d[0, 2, 2] == 0.0
    assert v[0, 1, 1] == d[0, 1, 1] + d[0, 1, 2] + d[0, 2, 1] + d[0, 2, 2] == 5 + 6 + 9 + 10
    np.testing.assert_array_equal(_C.winograd_transform("input", 2, d), v)


def check_transforms_against_reference():
    rng = np.random.default_rng(0)
    for kind, (side_in, side_out) in KINDS.items():
        for m in (2, 4):
            for count in (0, 1, 3, 7, 8, 15, 16, 17, 40):  # around every vector width
                for dtype, tol in ((np.float32, 1e-6), (np.float64, 1e-14)):
                    tiles = rng.standard_normal((count, side_in(m), side_in(m))).astype(dtype)
                    got, expected = _C.winograd_transform(kind, m, tiles), _C.ref.winograd_transform(kind, m, tiles)
                    assert got.dtype == dtype and got.shape == (count, side_out(m), side_out(m))
                    scale = max(1.0, float(np.abs(expected).max(initial=0)))
                    np.testing.assert_allclose(
                        got, expected, rtol=0, atol=tol * scale, err_msg=f"{kind} F({m}) x{count}"
                    )


def test_transforms_against_reference():
    check_transforms_against_reference()


ISAS = ["generic", "avx2", "avx512"]


@pytest.mark.parametrize("isa", ISAS)
def test_transforms_on_each_isa_path(isa):
    available = ISAS[: ISAS.index(_C.backend_info()["cpu_isa"]) + 1]
    if isa not in available:
        pytest.skip(f"this CPU/OS offers only {available}")
    here = os.path.dirname(os.path.abspath(__file__))
    code = (
        f"import sys; sys.path.insert(0, {here!r}); import test_winograd as t; from minigrad import _C; "
        f"assert _C.backend_info()['isa'] == {isa!r}; t.check_transforms_against_reference()"
    )
    result = run_python(code, MINIGRAD_ISA=isa)
    assert result.returncode == 0, result.stderr[-3000:]


def test_transform_arguments_are_checked():
    with pytest.raises(ValueError, match="kind must be"):
        _C.winograd_transform("fft", 2, np.zeros((1, 4, 4)))
    with pytest.raises(ValueError, match="tile must be 2 or 4"):
        _C.winograd_transform("input", 6, np.zeros((1, 8, 8)))
    with pytest.raises(ValueError, match="tiles"):
        _C.winograd_transform("input", 4, np.zeros((1, 4, 4)))  # F(4x4) input tiles are 6x6
    with pytest.raises(TypeError, match="float32 or float64"):
        _C.winograd_transform("input", 2, np.zeros((1, 4, 4), np.int32))


# Relative error (max |error| / max |exact|) against a float64 direct convolution, measured
# over the shapes below (unit-normal data, He-scaled weights; csrc/README.md, "Winograd"):
#   float32 direct:  forward 1.1e-6, dX 1.5e-6, dW 1.9e-7 (mostly the inputs' own rounding)
#   float32 F(2x2):  forward 4.7e-7, dX 5.7e-7, dW 5.1e-7
#   float32 F(4x4):  forward 6.8e-6, dX 9.3e-6, dW 4.9e-6
#   float64 F(2x2) <= 2.4e-15, F(4x4) <= 1.4e-14 (direct float64 against itself on another path: 2.6e-15)
# The bounds asserted leave 2.5-4x of headroom.
ERROR_BOUNDS = {"winograd_f2": 2e-6, "winograd_f4": 2.5e-5}
FLOAT64_BOUNDS = {"winograd_f2": 1e-14, "winograd_f4": 5e-14}
ACCURACY_SHAPES = [  # (x shape, channels out, padding): ResNet's layers and awkward planes
    ((8, 16, 32, 32), 16, 1),
    ((16, 32, 16, 16), 32, 1),
    ((32, 64, 8, 8), 64, 1),
    ((4, 128, 8, 8), 128, 1),
    ((3, 5, 11, 9), 7, 0),
    ((2, 24, 13, 17), 40, 2),
    ((2, 600, 5, 7), 13, 1),  # deeper than one pass of the GEMM (512 floats, 256 doubles)
    ((37, 8, 16, 16), 12, 1),  # dW: four chunks of 128 tiles on the dot kernel, the last on the GEMM
    ((3, 5, 32, 32), 6, 0),  # 32-wide rows read whole, two images a vector, and one image alone
]


@pytest.mark.parametrize("algo", sorted(ERROR_BOUNDS))
def test_float32_error_against_a_float64_direct_convolution(algo):
    rng = np.random.default_rng(7)
    worst = {}
    for xs, co, pad in ACCURACY_SHAPES:
        x64, w64 = rng.standard_normal(xs), rng.standard_normal((co, xs[1], 3, 3)) / np.sqrt(9 * xs[1])
        ys = _C.conv2d_output_shape(xs, w64.shape, (1, 1), (pad, pad), (1, 1), 1)
        gy64 = rng.standard_normal(ys)
        exact = [np.empty(ys), np.empty(xs), np.empty(w64.shape)]
        _C.conv2d_forward(x64, w64, None, exact[0], padding=(pad, pad), algo="direct")
        _C.conv2d_backward(x64, w64, gy64, exact[1], exact[2], None, padding=(pad, pad), algo="direct")
        same = [np.empty(ys), np.empty(xs), np.empty(w64.shape)]
        _C.conv2d_forward(x64, w64, None, same[0], padding=(pad, pad), algo=algo)
        _C.conv2d_backward(x64, w64, gy64, same[1], same[2], None, padding=(pad, pad), algo=algo)
        for name, g, e in zip(("y64", "dx64", "dw64"), same, exact):
            worst[name] = max(worst.get(name, 0.0), float(np.abs(g - e).max() / np.abs(e).max()))
        x, w, gy = (a.astype(np.float32) for a in (x64, w64, gy64))
        got = [np.empty(ys, np.float32), np.empty(xs, np.float32), np.empty(w.shape, np.float32)]
        _C.conv2d_forward(x, w, None, got[0], padding=(pad, pad), algo=algo)
        _C.conv2d_backward(x, w, gy, got[1], got[2], None, padding=(pad, pad), algo=algo)
        for name, g, e in zip(("y", "dx", "dw"), got, exact):
            worst[name] = max(worst.get(name, 0.0), float(np.abs(g - e).max() / np.abs(e).max()))
    float32 = [worst[name] for name in ("y", "dx", "dw")]
    float64 = [worst[name] for name in ("y64", "dx64", "dw64")]
    assert all(0 < err <= ERROR_BOUNDS[algo] for err in float32), (algo, worst)
    assert all(err <= FLOAT64_BOUNDS[algo] for err in float64), (algo, worst)


@pytest.mark.parametrize("algo", sorted(ERROR_BOUNDS))
def test_empty_channels_and_batches(algo):
    # no input channel (the output is the bias alone), no output channel, no image: every
    # buffer is written as the direct kernels write it, and nothing divides by the empty size
    for xs, ws in (((2, 0, 4, 4), (4, 0, 3, 3)), ((2, 3, 4, 4), (0, 3, 3, 3)), ((0, 3, 4, 4), (4, 3, 3, 3))):
        x, w = np.ones(xs, np.float32), np.ones(ws, np.float32)
        b = np.arange(ws[0], dtype=np.float32)
        ys = _C.conv2d_output_shape(xs, ws, (1, 1), (1, 1), (1, 1), 1)
        results = []
        for run in ("direct", algo):
            y = np.full(ys, np.nan, np.float32)
            gx, gw = np.full(xs, np.nan, np.float32), np.full(ws, np.nan, np.float32)
            gb = np.full(ws[0], np.nan, np.float32)
            _C.conv2d_forward(x, w, b, y, padding=(1, 1), algo=run)
            _C.conv2d_backward(x, w, np.ones(ys, np.float32), gx, gw, gb, padding=(1, 1), algo=run)
            results.append((y, gx, gw, gb))
        for got, want in zip(results[1], results[0]):
            np.testing.assert_array_equal(got, want)
        if xs[1] == 0:
            np.testing.assert_array_equal(results[1][0], np.broadcast_to(b[None, :, None, None], ys))
