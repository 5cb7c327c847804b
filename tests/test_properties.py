"""Property tests (hypothesis): random broadcastable shape pairs for the binary ops, random
axes for the reductions, random index expressions. Values and gradients are compared in
float64 with PyTorch (binary ops, reductions) or with numpy's own indexing (getitem)."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg

try:
    import torch
except ImportError:
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="compares with PyTorch: pip install torch==2.13.0")

FEW = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
TOL = dict(rtol=1e-10, atol=1e-12)

BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: a + b),
    "sub": (lambda a, b: a - b, lambda a, b: a - b),
    "mul": (lambda a, b: a * b, lambda a, b: a * b),
    "div": (lambda a, b: a / b, lambda a, b: a / b),
    "pow": (lambda a, b: a**b, lambda a, b: a**b),
    "maximum": (mg.maximum, lambda a, b: torch.maximum(a, b)),
    "minimum": (mg.minimum, lambda a, b: torch.minimum(a, b)),
    "where": (lambda a, b: mg.where(a > b, a * 2, b), lambda a, b: torch.where(a > b, a * 2, b)),
}


def pair(seed, shapes, positive_first=False):
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.5, 2.0, shapes[0]) if positive_first else rng.standard_normal(shapes[0])
    b = rng.standard_normal(shapes[1])
    b = np.where(np.abs(b) < 0.1, 0.5, b)  # keep division and exponents away from zero
    return a, b


def assert_matches_torch(ours_fn, torch_fn, arrays, seed=0):
    """Forward values and the gradients of sum(out * w) for every input, in float64."""
    ours = [mg.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, ref = ours_fn(*ours), torch_fn(*theirs)
    assert out.shape == tuple(ref.shape) and out.dtype == np.float64
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), **TOL)
    w = np.random.default_rng(seed).standard_normal(out.shape)
    (out * mg.tensor(w)).sum().backward()
    (ref * torch.tensor(w)).sum().backward()
    for x, t in zip(ours, theirs):
        assert x.grad.shape == x.shape
        np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), **TOL)


@needs_torch
@FEW
@given(
    name=st.sampled_from(sorted(BINARY)),
    seed=st.integers(0, 2**16),
    shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=4),
)
def test_binary_ops_broadcast_like_torch(name, seed, shapes):
    a, b = pair(seed, shapes.input_shapes, positive_first=name == "pow")
    assert_matches_torch(*BINARY[name], [a, b], seed)


@needs_torch
@FEW
@given(
    seed=st.integers(0, 2**16),
    m=st.integers(1, 5),
    k=st.integers(1, 5),
    n=st.integers(1, 5),
    batches=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, max_side=3),
)
def test_batched_matmul_broadcasts_like_torch(seed, m, k, n, batches):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(batches.input_shapes[0] + (m, k))
    b = rng.standard_normal(batches.input_shapes[1] + (k, n))
    assert_matches_torch(lambda x, y: x @ y, lambda x, y: x @ y, [a, b], seed)


REDUCTIONS = {
    "sum": (lambda x, ax, kd: x.sum(axis=ax, keepdims=kd), lambda t, d, kd: t.sum(d, keepdim=kd)),
    "mean": (lambda x, ax, kd: x.mean(axis=ax, keepdims=kd), lambda t, d, kd: t.mean(d, keepdim=kd)),
    "max": (lambda x, ax, kd: x.max(axis=ax, keepdims=kd), lambda t, d, kd: t.amax(d, keepdim=kd)),
    "min": (lambda x, ax, kd: x.min(axis=ax, keepdims=kd), lambda t, d, kd: t.amin(d, keepdim=kd)),
    "var": (
        lambda x, ax, kd: x.var(axis=ax, keepdims=kd, correction=0),
        lambda t, d, kd: t.var(d, correction=0, keepdim=kd),
    ),
    "std": (
        lambda x, ax, kd: x.std(axis=ax, keepdims=kd, correction=0),
        lambda t, d, kd: t.std(d, correction=0, keepdim=kd),
    ),
    "logsumexp": (lambda x, ax, kd: x.logsumexp(axis=ax, keepdims=kd), lambda t, d, kd: t.logsumexp(d, keepdim=kd)),
}


@st.composite
def shape_and_axes(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, max_side=4))
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none":
        return shape, None
    if kind == "int":
        return shape, draw(st.integers(-len(shape), len(shape) - 1))
    return shape, draw(hnp.valid_tuple_axes(len(shape), min_size=1))


@needs_torch
@FEW
@given(
    name=st.sampled_from(sorted(REDUCTIONS)),
    seed=st.integers(0, 2**16),
    shape_axes=shape_and_axes(),
    keepdims=st.booleans(),
)
def test_reductions_over_random_axes_match_torch(name, seed, shape_axes, keepdims):
    shape, axis = shape_axes
    x = np.random.default_rng(seed).standard_normal(shape)
    dims = tuple(range(len(shape))) if axis is None else axis
    ours, theirs = REDUCTIONS[name]
    assert_matches_torch(lambda t: ours(t, axis, keepdims), lambda t: theirs(t, dims, keepdims), [x], seed)


@needs_torch
@FEW
@given(
    seed=st.integers(0, 2**16),
    shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=5),
    data=st.data(),
    log=st.booleans(),
)
def test_softmax_family_over_a_random_axis(seed, shape, data, log):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = 5 * np.random.default_rng(seed).standard_normal(shape)
    name = "log_softmax" if log else "softmax"
    assert_matches_torch(lambda t: getattr(t, name)(axis=axis), lambda t: getattr(t, name)(axis), [x], seed)


def check_index(shape, index, seed):
    """x[index] equals numpy's, and its gradient is the output gradient scattered back with
    repeated positions adding up (np.add.at is the reference)."""
    x = np.random.default_rng(seed).standard_normal(shape)
    t = mg.tensor(x, requires_grad=True)
    out = t[index]
    expected = x[index]
    np.testing.assert_array_equal(out.numpy(), expected)
    w = np.random.default_rng(seed + 1).standard_normal(np.shape(expected))
    (out * mg.tensor(w)).sum().backward()
    grad = np.zeros_like(x)
    np.add.at(grad, index, w)
    np.testing.assert_allclose(t.grad.numpy(), grad, rtol=1e-12, atol=1e-12)


@FEW
@given(seed=st.integers(0, 2**16), data=st.data(), shape=hnp.array_shapes(min_dims=1, max_dims=4, max_side=4))
def test_basic_indices(seed, data, shape):
    index = data.draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))
    check_index(shape, index, seed)


@FEW
@given(seed=st.integers(0, 2**16), data=st.data(), shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=4))
def test_integer_array_indices_scatter_add(seed, data, shape):
    index = data.draw(
        hnp.integer_array_indices(shape, result_shape=hnp.array_shapes(min_dims=1, max_dims=2, max_side=6))
    )
    check_index(shape, index, seed)


@FEW
@given(seed=st.integers(0, 2**16), data=st.data(), shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=4))
def test_boolean_mask_indices(seed, data, shape):
    leading = data.draw(st.integers(1, len(shape)))
    mask = data.draw(hnp.arrays(np.bool_, shape[:leading]))
    check_index(shape, mask, seed)


@FEW
@given(seed=st.integers(0, 2**16), data=st.data(), shape=hnp.array_shapes(min_dims=2, max_dims=3, max_side=4))
def test_slices_mixed_with_an_integer_array(seed, data, shape):
    column = data.draw(hnp.arrays(np.int64, st.integers(1, 6), elements=st.integers(-shape[1], shape[1] - 1)))
    start = data.draw(st.integers(0, shape[0]))
    check_index(shape, (slice(start, None), column), seed)
