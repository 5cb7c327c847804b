"""The Tensor API, constructors, in-place updates, and the package-level backend controls
(threads, backend_info, MINIGRAD_ISA forcing in subprocesses)."""

from pathlib import Path

import numpy as np
import pytest

import minigrad as mg

from isolated import run_python


# ------------------------------------------------------------------------------ construction
def test_tensor_infers_dtypes_like_torch():
    assert mg.tensor([1.0, 2.0]).dtype == np.float32  # Python floats: float32
    assert mg.tensor(2.5).dtype == np.float32 and mg.tensor(2.5).shape == ()
    assert mg.tensor([1, 2]).dtype == np.int64
    assert mg.tensor([True, False]).dtype == np.bool_
    assert mg.tensor(np.zeros(2, np.float64)).dtype == np.float64  # arrays keep theirs
    assert mg.tensor(np.float64(1.5)).dtype == np.float64
    assert mg.tensor([1, 2], dtype=np.float64).dtype == np.float64
    assert mg.tensor([1.5], dtype="float64").dtype == np.float64


def test_tensor_copies_its_data_and_from_numpy_shares_it():
    source = np.arange(6, dtype=np.float32).reshape(2, 3)
    copied, shared = mg.tensor(source), mg.from_numpy(source)
    source[0, 0] = 100.0
    assert copied.numpy()[0, 0] == 0.0
    assert shared.numpy()[0, 0] == 100.0 and np.shares_memory(shared.numpy(), source)
    assert shared.dtype == np.float32  # from_numpy keeps the array's dtype
    assert mg.from_numpy(np.zeros(3, np.float64)).dtype == np.float64
    strided = mg.from_numpy(source.T)  # not C-contiguous: a contiguous copy
    assert strided.numpy().flags.c_contiguous and not np.shares_memory(strided.numpy(), source)
    np.testing.assert_array_equal(strided.numpy(), source.T)


def test_tensor_of_a_tensor_copies():
    a = mg.tensor([1.0, 2.0])
    b = mg.tensor(a)
    b.numpy()[0] = 5.0
    assert a.numpy()[0] == 1.0


def test_attributes_and_conversions():
    t = mg.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert t.shape == (2, 3) and t.ndim == 2 and t.dtype == np.float32 and len(t) == 2
    assert t.size() == (2, 3) and t.size(1) == 3 and t.numel() == 6 and t.dim() == 2  # PyTorch's
    assert t.numpy() is t.data
    array = np.asarray(t)
    assert array is t.data
    assert np.asarray(t, dtype=np.float64).dtype == np.float64
    assert t.tolist() == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    assert t[1, 2].item() == 6.0 and isinstance(t[1, 2].item(), float)
    assert float(t.sum()) == 21.0 and int(mg.tensor(3)) == 3
    assert bool(mg.tensor(1.0) > 0) and not bool(mg.tensor(0.0))
    with pytest.raises(ValueError):
        bool(t)  # several elements: ambiguous, as numpy
    assert t.is_leaf and not t.requires_grad and t.grad is None
    assert "requires_grad=True" in repr(mg.tensor([1.0], requires_grad=True)) and "tensor(" in repr(t)


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda: mg.zeros(2, 3), np.zeros((2, 3))),
        (lambda: mg.zeros((2, 3)), np.zeros((2, 3))),
        (lambda: mg.ones(4), np.ones(4)),
        (lambda: mg.full((2, 2), 7.5), np.full((2, 2), 7.5)),
        (lambda: mg.full(3, -1.0), np.full(3, -1.0)),
        (lambda: mg.eye(3), np.eye(3)),
        (lambda: mg.eye(2, 3), np.eye(2, 3)),
        (lambda: mg.arange(0.0, 1.0, 0.25), np.arange(0.0, 1.0, 0.25)),
        (lambda: mg.zeros_like(mg.ones(2, 5)), np.zeros((2, 5))),
        (lambda: mg.ones_like(mg.zeros(3, 1)), np.ones((3, 1))),
    ],
)
def test_constructors_default_to_float32(make, expected):
    t = make()
    assert t.dtype == np.float32 and not t.requires_grad
    np.testing.assert_array_equal(t.numpy(), expected)


def test_constructor_dtypes_and_requires_grad():
    assert mg.arange(5).dtype == np.int64 and mg.arange(5).tolist() == [0, 1, 2, 3, 4]
    assert mg.arange(2, 8, 3).tolist() == [2, 5]
    assert mg.arange(3, dtype=np.float64).dtype == np.float64
    for make in (mg.zeros, mg.ones, mg.randn, mg.rand):
        t = make(2, 3, dtype=np.float64, requires_grad=True)
        assert t.dtype == np.float64 and t.requires_grad and t.shape == (2, 3)
    assert mg.zeros_like(mg.zeros(2, dtype=np.float64)).dtype == np.float64
    assert mg.ones_like(mg.zeros(2), dtype=np.float64).dtype == np.float64
    assert mg.eye(2, dtype=np.float64, requires_grad=True).requires_grad
    assert mg.full((2,), 1, dtype=np.float64).dtype == np.float64


def test_random_constructors_have_the_right_distribution():
    n = mg.randn(20_000).numpy()
    u = mg.rand(20_000).numpy()
    assert abs(n.mean()) < 0.05 and abs(n.std() - 1) < 0.05
    assert u.min() >= 0 and u.max() < 1 and abs(u.mean() - 0.5) < 0.02


# ----------------------------------------------------------------------------------- in place
def test_mark_modified_is_the_one_version_writer_and_the_tape_sees_it():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = mg.tensor([3.0, 4.0])
    out = (x * y).sum()  # saves y for x's gradient
    y.data[0] = 30.0  # a raw numpy write the tape cannot see ...
    y.mark_modified()  # ... until the writer says so
    with pytest.raises(RuntimeError, match="modified"):
        out.backward()
    package = Path(mg.__file__).parent
    writers = [str(p.relative_to(package)) for p in package.rglob("*.py") if "_version[0] +=" in p.read_text()]
    assert writers == ["tensor.py"], f"bump versions through Tensor.mark_modified(), not by hand: {writers}"


def test_in_place_updates_change_values_and_bump_the_version():
    t = mg.zeros(3)
    steps = [
        (lambda: t.fill_(2.0), [2, 2, 2]),
        (lambda: t.add_(mg.tensor([1.0, 2.0, 3.0])), [3, 4, 5]),
        (lambda: t.add_(1.0, alpha=-2.0), [1, 2, 3]),
        (lambda: t.sub_(1.0), [0, 1, 2]),
        (lambda: t.mul_(np.array([2.0, 2.0, 3.0])), [0, 2, 6]),
        (lambda: t.copy_([9.0, 8.0, 7.0]), [9, 8, 7]),
        (lambda: t.__setitem__(slice(0, 2), 1.0), [1, 1, 7]),
        (lambda: t.zero_(), [0, 0, 0]),
    ]
    for version, (step, expected) in enumerate(steps, start=1):
        step()
        assert t._version[0] == version
        np.testing.assert_array_equal(t.numpy(), expected)
    data = t.numpy()
    t += 1.0
    t -= 0.5
    t *= 4.0
    assert t.numpy() is data  # truly in place
    np.testing.assert_array_equal(t.numpy(), [2.0, 2.0, 2.0])


def test_in_place_update_of_a_parameter_under_no_grad():
    w = mg.tensor([1.0, 2.0], requires_grad=True)
    (w * w).sum().backward()
    with mg.no_grad():
        w -= 0.5 * w.grad
    np.testing.assert_array_equal(w.numpy(), [0.0, 0.0])
    assert w.requires_grad and w.is_leaf


def test_setitem_with_a_tensor_index():
    t = mg.zeros(4)
    t[mg.tensor([0, 2])] = 5.0
    np.testing.assert_array_equal(t.numpy(), [5.0, 0.0, 5.0, 0.0])


# ------------------------------------------------------------------------------------ backend
def test_num_threads_round_trip():
    before = mg.get_num_threads()
    try:
        mg.set_num_threads(1)
        assert mg.get_num_threads() == 1
        mg.set_num_threads(2)
        assert mg.get_num_threads() == 2
        assert mg.backend_info()["num_threads"] == 2
    finally:
        mg.set_num_threads(before)


def test_backend_info_reports_the_build():
    info = mg.backend_info()
    assert {"isa", "cpu_isa", "num_threads", "openmp", "compiler", "build_flags", "implementations"} <= set(info)
    assert info["isa"] in ("generic", "avx2", "avx512") and info["cpu_isa"] in ("generic", "avx2", "avx512")
    levels = ["generic", "avx2", "avx512"]  # a build for one machine carries fewer, never more than it runs
    assert levels.index(info["isa"]) <= levels.index(info["cpu_isa"]) <= levels.index(info["built_isa"])
    assert info["openmp"] >= 201511  # OpenMP 4.5 or newer, compiled in
    assert "gemm" in info["implementations"] and info["implementations"]["gemm"]
    assert isinstance(info["compiler"], str) and info["compiler"]


ISA_RANK = {"generic": 0, "avx2": 1, "avx512": 2}
PROBE = """
import numpy as np, minigrad as mg
rng = np.random.default_rng(0)
for dtype in (np.float32, np.float64):
    a, b = rng.standard_normal((37, 53)).astype(dtype), rng.standard_normal((53, 29)).astype(dtype)
    np.testing.assert_allclose((mg.tensor(a) @ mg.tensor(b)).numpy(), a @ b, rtol=1e-4, atol=1e-4)
info = mg.backend_info()
print(info["isa"], info["num_threads"], info["implementations"]["gemm"])
"""


@pytest.mark.parametrize("isa", ["generic", "avx2", "avx512"])
def test_minigrad_isa_forces_a_path(isa):
    best = mg.backend_info()["cpu_isa"]
    result = run_python(PROBE, MINIGRAD_ISA=isa)
    if ISA_RANK[isa] > ISA_RANK[best]:  # asking for more than the machine has is an import error
        assert result.returncode != 0 and f"MINIGRAD_ISA={isa} is not supported" in result.stderr
        return
    assert result.returncode == 0, result.stderr
    chosen, _, gemm = result.stdout.split()
    assert chosen == isa and isa in gemm  # implementation names say what runs


def test_invalid_minigrad_isa_fails_at_import_with_a_clear_message():
    result = run_python("import minigrad", MINIGRAD_ISA="sse9")
    assert result.returncode != 0
    assert "MINIGRAD_ISA must be generic, avx2 or avx512, got 'sse9'" in result.stderr


def test_omp_num_threads_is_respected():
    result = run_python("import minigrad as mg; print(mg.get_num_threads())", OMP_NUM_THREADS="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"


def test_op_methods_have_the_signature_of_their_op():
    import inspect

    from minigrad import ops
    from minigrad.ops.methods import OpMethods

    names = [n for n in vars(OpMethods) if not n.startswith("_")]
    assert len(names) >= 28
    for name in names:
        method = list(inspect.signature(getattr(mg.Tensor, name)).parameters.values())[1:]
        op = list(inspect.signature(getattr(ops, name)).parameters.values())[1:]
        assert [(p.name, p.default) for p in method] == [(p.name, p.default) for p in op], name
    x = mg.tensor([[1.0, -2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(x.clip(max=2.0).numpy(), [[1.0, -2.0], [2.0, 2.0]])
    np.testing.assert_array_equal(x.sum(dim=1, keepdims=True).numpy(), [[-1.0], [7.0]])
