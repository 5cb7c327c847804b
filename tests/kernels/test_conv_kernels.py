"""conv2d kernels against the scalar reference (_C.ref) and PyTorch on awkward shapes, each
algorithm forced, each instruction-set path (MINIGRAD_ISA, in a subprocess), 1 thread vs all;
and the bindings' argument checks."""

import os

import numpy as np
import pytest

from minigrad import _C

from isolated import run_python

# (x shape, w shape, stride, padding, dilation, groups)
SHAPES = [
    ((2, 1, 28, 28), (6, 1, 5, 5), 1, 2, 1, 1),  # LeNet conv1
    ((3, 6, 14, 14), (16, 6, 5, 5), 1, 0, 1, 1),  # LeNet conv2
    ((1, 3, 7, 13), (5, 3, 3, 3), 1, (1, 2), (2, 1), 1),
    ((2, 3, 13, 7), (7, 3, 3, 2), (2, 1), (1, 0), (1, 2), 1),
    ((1, 2, 1, 1), (3, 2, 1, 1), 1, 0, 1, 1),
    ((1, 2, 2, 2), (3, 2, 3, 3), 1, (2, 1), 1, 1),
    ((2, 13, 7, 17), (2, 13, 3, 3), 1, 1, 1, 1),
    ((2, 17, 9, 9), (9, 17, 3, 3), 1, 2, 2, 1),
    ((2, 7, 31, 33), (5, 7, 3, 5), 1, (0, 2), 1, 1),
    ((2, 5, 9, 9), (13, 5, 1, 1), 1, 0, 1, 1),
    ((2, 5, 9, 9), (13, 5, 1, 1), 2, 0, 1, 1),
    ((2, 4, 9, 7), (6, 2, 3, 3), 1, 1, 1, 2),
    ((1, 4, 7, 9), (4, 1, 3, 3), 2, 1, 1, 4),
    ((0, 2, 5, 5), (3, 2, 3, 3), 1, 1, 1, 1),
    # batches the GEMM path splits into chunks of several images, the last one short
    ((5, 3, 16, 14), (4, 3, 3, 3), 1, 1, 1, 1),
    ((5, 4, 12, 11), (6, 2, 3, 3), 2, (1, 0), 1, 2),
    # stride 3 (dX in 9 phases, some reached by no tap at all when the kernel is 1x1)
    ((2, 3, 9, 11), (5, 3, 3, 2), 3, (2, 0), (1, 2), 1),
    ((1, 2, 5, 5), (3, 2, 1, 1), 3, 0, 1, 1),
    # Winograd: chunks of several images with the last one short, planes that are no multiple
    # of the tile (edge tiles cut), a 1x1 output, padding 0 and 2 (dX pads dY by 2 - p)
    ((37, 17, 8, 8), (19, 17, 3, 3), 1, 1, 1, 1),
    # F(4x4) on planes of 16 and 32 columns, padding 1: AVX2 reads whole rows of tiles by
    # transposes (8, 4 or 2 tiles an image), the last partial vector of a row by gathers
    ((5, 3, 16, 16), (4, 3, 3, 3), 1, 1, 1, 1),
    ((3, 2, 32, 32), (3, 2, 3, 3), 1, 1, 1, 1),
    ((3, 18, 10, 13), (20, 18, 3, 3), 1, 1, 1, 1),
    ((5, 3, 3, 3), (2, 3, 3, 3), 1, 0, 1, 1),
    ((2, 4, 6, 7), (3, 4, 3, 3), 1, (2, 0), 1, 1),
    # wide planes: Winograd's dW products are tall-k (1024 tiles deep), the GEMM's dot road,
    # called by two threads at once, one chunk each
    ((2, 2, 3, 4096), (3, 2, 3, 3), 1, 0, 1, 1),
]

ALGOS = ("auto", "direct", "chanvec", "gemm", "winograd", "winograd_f2", "winograd_f4")


def pair(v):
    return (v, v) if isinstance(v, int) else v


def make(shape_case, dtype, seed=0):
    x_shape, w_shape, stride, padding, dilation, groups = shape_case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    geometry = dict(stride=pair(stride), padding=pair(padding), dilation=pair(dilation), groups=groups)
    ho = (x_shape[2] + 2 * geometry["padding"][0] - geometry["dilation"][0] * (w_shape[2] - 1) - 1) // geometry[
        "stride"
    ][0] + 1
    wo = (x_shape[3] + 2 * geometry["padding"][1] - geometry["dilation"][1] * (w_shape[3] - 1) - 1) // geometry[
        "stride"
    ][1] + 1
    gy = rng.standard_normal((x_shape[0], w_shape[0], ho, wo)).astype(dtype)
    return x, w, b, gy, geometry


def run(module, x, w, b, gy, geometry, relu=False, **algo):
    y = np.full(gy.shape, np.nan, dtype=x.dtype)
    module.conv2d_forward(x, w, b, y, relu=relu, **geometry, **algo)
    grads = [np.full(a.shape, np.nan, dtype=a.dtype) for a in (x, w, b)]
    module.conv2d_backward(x, w, gy, *grads, **geometry, **algo)
    return [y] + grads


def check_against_reference():
    """Every shape, both dtypes, every algorithm and ReLU fusion on/off vs _C.ref."""
    for case in SHAPES:
        for dtype, tol in ((np.float32, 2e-4), (np.float64, 1e-11)):
            x, w, b, gy, geometry = make(case, dtype)
            for relu in (False, True):
                expected = run(_C.ref, x, w, b, gy, geometry, relu)
                for algo in ALGOS:
                    got = run(_C, x, w, b, gy, geometry, relu, algo=algo)
                    for name, g, e in zip(("y", "gx", "gw", "gb"), got, expected):
                        scale = max(1.0, float(np.abs(e).max(initial=0)))
                        np.testing.assert_allclose(
                            g,
                            e,
                            rtol=tol,
                            atol=tol * scale,
                            err_msg=f"{name} for {case} {dtype.__name__} {algo} relu={relu}",
                        )


def test_against_reference():
    check_against_reference()


def test_against_torch():
    torch = pytest.importorskip("torch", reason="PyTorch parity needs torch==2.13.0")
    for case in SHAPES[:4] + SHAPES[-3:-1]:
        x, w, b, gy, geometry = make(case, np.float64, seed=1)
        y, gx, gw, gb = run(_C, x, w, b, gy, geometry)
        tx, tw, tb = (torch.from_numpy(a).requires_grad_() for a in (x, w, b))
        ty = torch.nn.functional.conv2d(tx, tw, tb, **geometry)
        ty.backward(torch.from_numpy(gy))
        for ours, theirs in ((y, ty), (gx, tx.grad), (gw, tw.grad), (gb, tb.grad)):
            np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-10, atol=1e-10)


def test_skipped_gradients_are_not_written():
    x, w, b, gy, geometry = make(SHAPES[1], np.float32)
    gw = np.empty_like(w)
    _C.conv2d_backward(x, w, gy, None, gw, None, **geometry)
    expected = np.empty_like(w)
    _C.ref.conv2d_backward(x, w, gy, None, expected, None, **geometry)
    np.testing.assert_allclose(gw, expected, rtol=1e-4, atol=1e-3)


def test_algorithm_choice():
    assert _C.conv2d_algorithm((64, 1, 28, 28), (6, 1, 5, 5), padding=(2, 2)) == "direct"
    # ResNet-8's block2.conv1: channel-vectorised, its strided dX in stride phases (16 input
    # channels), unless the GEMM is asked for
    block2 = ((128, 16, 32, 32), (32, 16, 3, 3))
    assert [
        _C.conv2d_algorithm(*block2, stride=(2, 2), padding=(1, 1), pass_=p)
        for p in ("forward", "grad_input", "grad_weight")
    ] == ["chanvec", "chanvec", "chanvec"]
    assert _C.conv2d_algorithm(*block2, stride=(2, 2), algo="gemm", pass_="grad_input") == "gemm"
    # ResNet-8's 3x3 stride-1 layers: Winograd F(4x4) forward and dX (the cost model, csrc/conv.cpp)
    for channels, size in ((16, 32), (32, 16), (64, 8)):
        layer = ((128, channels, size, size), (channels, channels, 3, 3))
        assert _C.conv2d_algorithm(*layer, padding=(1, 1)) == "winograd_f4"
        assert _C.conv2d_algorithm(*layer, padding=(1, 1), pass_="grad_input") == "winograd_f4"
    # ... but not the 3-channel stem (channel-vectorised with 8-float vectors, whose tiles are
    # written through transposes; direct on the 4- and 16-float builds), nor what Winograd
    # cannot run (forcing it falls back)
    stem = ((128, 3, 32, 32), (16, 3, 3, 3))
    expected = "chanvec" if _C.backend_info()["isa"] == "avx2" else "direct"
    for p in ("forward", "grad_weight"):
        assert _C.conv2d_algorithm(*stem, padding=(1, 1), pass_=p) == expected
    # and the input gradient of a wide 5x5 layer (which Winograd cannot run) likewise
    wide = ((32, 16, 32, 32), (16, 16, 5, 5))
    assert _C.conv2d_algorithm(*wide, padding=(2, 2), pass_="grad_input") == expected
    assert _C.conv2d_algorithm((8, 16, 9, 9), (16, 16, 3, 3), stride=(2, 2), algo="winograd") == "gemm"
    assert _C.conv2d_algorithm((8, 16, 9, 9), (16, 16, 3, 3), padding=(3, 3), algo="winograd") == "gemm"
    assert _C.conv2d_algorithm((8, 16, 9, 9), (16, 16, 3, 3), algo="winograd_f2") == "winograd_f2"
    # a plane wider than 2^20 would overflow the transforms' int32 tile offsets: im2col instead
    assert _C.conv2d_algorithm((1, 1, 3, 2**20 + 1), (1, 1, 3, 3), algo="winograd_f4") == "gemm"
    assert _C.conv2d_algorithm((1, 1, 3, 2**20), (1, 1, 3, 3), algo="winograd_f4") == "winograd_f4"
    # ... and so would a weight of more than 2^30 values (the weight transform's offsets)
    assert _C.conv2d_algorithm((1, 2**14, 3, 3), (7281, 2**14, 3, 3), algo="winograd_f4") == "winograd_f4"
    assert _C.conv2d_algorithm((1, 2**14, 3, 3), (7282, 2**14, 3, 3), algo="winograd_f4") == "gemm"
    assert (
        _C.conv2d_algorithm((128, 64, 8, 8), (64, 64, 3, 3), padding=(1, 1), algo="chanvec", pass_="grad_input")
        == "chanvec"
    )
    # block3.conv1: 32 input channels, its stride-2 dX in phases too (measured, csrc/conv.cpp)
    assert (
        _C.conv2d_algorithm((128, 32, 16, 16), (64, 32, 3, 3), stride=(2, 2), padding=(1, 1), pass_="grad_input")
        == "chanvec"
    )
    # ResNet's 1x1 stride-2 shortcuts: forward and dX by the GEMM, dW channel-vectorised
    shortcut = ((128, 32, 16, 16), (64, 32, 1, 1))
    assert [
        _C.conv2d_algorithm(*shortcut, stride=(2, 2), pass_=p) for p in ("forward", "grad_input", "grad_weight")
    ] == ["gemm", "gemm", "chanvec"]
    assert _C.conv2d_algorithm((64, 4, 9, 9), (6, 2, 3, 3), groups=2, algo="chanvec") == "gemm"
    assert _C.conv2d_algorithm((128, 64, 8, 8), (64, 64, 1, 1)) == "gemm_pointwise"
    assert _C.conv2d_algorithm((1, 1, 8, 8), (1, 1, 3, 3), stride=(2, 2), algo="direct") == "gemm"
    # LeNet conv2: dX by the GEMM (6 input channels fill neither a channel vector nor the
    # direct kernel's tiles)
    lenet2 = ((64, 6, 14, 14), (16, 6, 5, 5))
    assert [_C.conv2d_algorithm(*lenet2, pass_=p) for p in ("forward", "grad_input", "grad_weight")] == [
        "chanvec",
        "gemm",
        "chanvec",
    ]
    assert _C.conv2d_algorithm(*lenet2, algo="direct", pass_="grad_input") == "direct"
    assert "conv_direct_" in _C.backend_info()["implementations"]["conv2d"]
    with pytest.raises(ValueError, match="pass_ must be"):
        _C.conv2d_algorithm(*lenet2, pass_="backward")
    with pytest.raises(ValueError, match="stride"):
        _C.conv2d_algorithm((1, 1, 8, 8), (1, 1, 3, 3), stride=(0, 1))


def test_one_thread_matches_all_threads():
    x, w, b, gy, geometry = make(((8, 3, 17, 19), (5, 3, 3, 3), 1, 1, 1, 1), np.float32)
    x2, w2, b2, gy2, geometry2 = make(((8, 16, 9, 9), (12, 16, 3, 3), 2, 1, 1, 1), np.float32)
    x3, w3, b3, gy3, geometry3 = make(((7, 16, 8, 8), (32, 16, 3, 3), 1, 1, 1, 1), np.float32)  # Winograd

    def all_cases():
        return (
            run(_C, x, w, b, gy, geometry) + run(_C, x2, w2, b2, gy2, geometry2) + run(_C, x3, w3, b3, gy3, geometry3)
        )

    threads = _C.get_num_threads()
    try:
        _C.set_num_threads(1)
        single = all_cases()
    finally:
        _C.set_num_threads(threads)
    for a, b_ in zip(single, all_cases()):
        np.testing.assert_allclose(a, b_, rtol=1e-5, atol=1e-4)


ISAS = ["generic", "avx2", "avx512"]


@pytest.mark.parametrize("isa", ISAS)
def test_each_isa_path(isa):
    available = ISAS[: ISAS.index(_C.backend_info()["cpu_isa"]) + 1]
    if isa not in available:
        pytest.skip(f"this CPU/OS offers only {available}")
    here = os.path.dirname(os.path.abspath(__file__))
    code = (
        f"import sys; sys.path.insert(0, {here!r}); import test_conv_kernels as t; from minigrad import _C; "
        f"assert _C.backend_info()['isa'] == {isa!r}; t.check_against_reference(); _C.set_num_threads(1); "
        "t.check_against_reference()"
    )
    result = run_python(code, MINIGRAD_ISA=isa)
    assert result.returncode == 0, result.stderr[-3000:]


def valid_args():
    x, w, b, gy, geometry = make(SHAPES[2], np.float32)
    return dict(x=x, w=w, b=b, y=np.empty_like(gy), gy=gy, geometry=geometry)


@pytest.mark.parametrize(
    "change, error, match",
    [
        (lambda a: a.update(x=a["x"].astype(np.float64)), TypeError, "weight must be float64"),
        (lambda a: a.update(w=a["w"].astype(np.int32)), TypeError, "weight must be float32"),
        (lambda a: a.update(x=np.asfortranarray(a["x"])), ValueError, "input must be C-contiguous"),
        (lambda a: a.update(y=a["y"][:, :, :, :-1]), ValueError, "out"),
        (lambda a: a.update(b=a["b"][:-1]), ValueError, "bias has shape"),
        (lambda a: a.update(w=a["w"][:, :2].copy()), ValueError, "does not fit input"),
        (lambda a: a["geometry"].update(stride=(0, 1)), ValueError, "stride"),
        (lambda a: a["geometry"].update(padding=(-1, 0)), ValueError, "padding"),
        (lambda a: a["geometry"].update(dilation=(9, 1)), ValueError, "larger than input"),
        (lambda a: a.update(y=np.empty_like(a["y"])[..., ::-1]), ValueError, "C-contiguous"),
    ],
)
def test_forward_rejects_bad_arguments(change, error, match):
    args = valid_args()
    change(args)
    with pytest.raises(error, match=match):
        _C.conv2d_forward(args["x"], args["w"], args["b"], args["y"], **args["geometry"])


def test_backward_rejects_bad_gradient_buffers():
    a = valid_args()
    with pytest.raises(ValueError, match="grad_input has shape"):
        _C.conv2d_backward(a["x"], a["w"], a["gy"], np.empty((1, 3, 7, 12), np.float32), **a["geometry"])
    with pytest.raises(ValueError, match="grad_output has shape"):
        _C.conv2d_backward(a["x"], a["w"], a["gy"][:, :2].copy(), None, np.empty_like(a["w"]), **a["geometry"])
    readonly = np.empty_like(a["w"])
    readonly.setflags(write=False)
    with pytest.raises(ValueError, match="grad_weight must be writeable"):
        _C.conv2d_backward(a["x"], a["w"], a["gy"], None, readonly, **a["geometry"])
    with pytest.raises(TypeError, match="grad_bias must be a numpy array or None"):
        _C.conv2d_backward(a["x"], a["w"], a["gy"], None, None, [1.0], **a["geometry"])
    with pytest.raises(ValueError, match="algo must be"):
        _C.conv2d_backward(a["x"], a["w"], a["gy"], None, None, None, **a["geometry"], algo="fft")
