"""Reductions (all axes, one axis, several axes, negative axes, keepdims) and the softmax
family through the harness; argmax and large-logit stability by hand."""

import numpy as np
import pytest

import minigrad as mg

from harness import OpCase, check_op, ties, torch

F = torch.nn.functional if torch is not None else None
SHAPE = (3, 4, 2)


def reduction_cases(name, ours, theirs, **options):
    """One case per axis pattern: all axes, one, negative, several, each with and without keepdims.
    ``theirs(t, dims, keepdim)`` is the torch form; dims is always a tuple."""
    patterns = {"all": None, "axis1": 1, "axis_neg": -1, "axes02": (0, 2)}
    cases = {}
    for pattern, axis in patterns.items():
        for keepdims in (False, True):
            dims = tuple(range(len(SHAPE))) if axis is None else (axis,) if isinstance(axis, int) else axis
            cases[f"{name}_{pattern}{'_keepdims' if keepdims else ''}"] = OpCase(
                lambda a, axis=axis, keepdims=keepdims: ours(a, axis, keepdims),
                lambda a, dims=dims, keepdims=keepdims: theirs(a, dims, keepdims),
                [SHAPE],
                **options,
            )
    return cases


CASES = {
    **reduction_cases("sum", lambda a, ax, kd: a.sum(axis=ax, keepdims=kd), lambda t, d, kd: t.sum(d, keepdim=kd)),
    **reduction_cases("mean", lambda a, ax, kd: a.mean(axis=ax, keepdims=kd), lambda t, d, kd: t.mean(d, keepdim=kd)),
    **reduction_cases(
        "max", lambda a, ax, kd: a.max(axis=ax, keepdims=kd), lambda t, d, kd: t.amax(d, keepdim=kd), kink=ties
    ),
    **reduction_cases(
        "min", lambda a, ax, kd: a.min(axis=ax, keepdims=kd), lambda t, d, kd: t.amin(d, keepdim=kd), kink=ties
    ),
    **reduction_cases("var", lambda a, ax, kd: a.var(axis=ax, keepdims=kd), lambda t, d, kd: t.var(d, keepdim=kd)),
    **reduction_cases(
        "var_population",
        lambda a, ax, kd: a.var(axis=ax, correction=0, keepdims=kd),
        lambda t, d, kd: t.var(d, correction=0, keepdim=kd),
    ),
    **reduction_cases("std", lambda a, ax, kd: a.std(axis=ax, keepdims=kd), lambda t, d, kd: t.std(d, keepdim=kd)),
    **reduction_cases(
        "std_population",
        lambda a, ax, kd: mg.std(a, axis=ax, correction=0, keepdims=kd),
        lambda t, d, kd: t.std(d, correction=0, keepdim=kd),
    ),
    **reduction_cases(
        "logsumexp", lambda a, ax, kd: a.logsumexp(axis=ax, keepdims=kd), lambda t, d, kd: t.logsumexp(d, keepdim=kd)
    ),
    "sum_dim_keyword": OpCase(lambda a: a.sum(dim=0), lambda t: t.sum(dim=0), [SHAPE]),
    "mean_of_vector": OpCase(lambda a: mg.mean(a), lambda t: t.mean(), [(7,)]),
    "sum_of_scalar": OpCase(lambda a: a.sum(), lambda t: t.sum(), [()]),
    "var_correction_2": OpCase(lambda a: a.var(axis=1, correction=2), lambda t: t.var(1, correction=2), [(3, 5)]),
    "max_then_broadcast": OpCase(
        lambda a: a - a.max(axis=1, keepdims=True), lambda t: t - t.amax(1, keepdim=True), [(3, 4)], kink=ties
    ),
    "softmax_last": OpCase(lambda a: a.softmax(), lambda t: t.softmax(-1), [(3, 5)]),
    "softmax_axis0": OpCase(lambda a: mg.softmax(a, axis=0), lambda t: t.softmax(0), [(3, 5)]),
    "softmax_dim1_3d": OpCase(lambda a: mg.softmax(a, dim=1), lambda t: t.softmax(1), [(2, 3, 4)]),
    "log_softmax_last": OpCase(lambda a: a.log_softmax(), lambda t: t.log_softmax(-1), [(3, 5)]),
    "log_softmax_axis0": OpCase(lambda a: mg.log_softmax(a, axis=0), lambda t: t.log_softmax(0), [(3, 5)]),
    "log_softmax_dim1_3d": OpCase(
        lambda a: mg.nn.functional.log_softmax(a, dim=1), lambda t: F.log_softmax(t, dim=1), [(2, 3, 4)]
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_op(name):
    check_op(CASES[name])


def test_max_ties_share_the_gradient_like_amax():
    x = mg.tensor([[1.0, 3.0, 3.0], [2.0, 0.0, 2.0]], requires_grad=True)
    x.max(axis=1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0.0, 0.5, 0.5], [0.5, 0.0, 0.5]])


def test_var_std_hand_computed():
    x = mg.tensor([1.0, 2.0, 3.0, 6.0], dtype=np.float64, requires_grad=True)  # mean 3, squares 4+1+0+9=14
    assert x.var().item() == pytest.approx(14 / 3)
    assert x.var(correction=0).item() == pytest.approx(14 / 4)
    assert x.std().item() == pytest.approx(np.sqrt(14 / 3))
    x.var().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * (x.numpy() - 3) / 3)


@pytest.mark.parametrize("axis, keepdims", [(None, False), (0, False), (1, True), (-1, False)])
def test_argmax_matches_numpy_and_has_no_gradient(axis, keepdims):
    x = mg.randn(4, 5, requires_grad=True)
    out = x.argmax(axis=axis, keepdims=keepdims)
    assert out.dtype == np.int64 and not out.requires_grad
    np.testing.assert_array_equal(out.numpy(), np.argmax(x.numpy(), axis=axis, keepdims=keepdims))
    if torch is not None:
        np.testing.assert_array_equal(out.numpy(), torch.from_numpy(x.numpy()).argmax(dim=axis, keepdim=keepdims))


@pytest.mark.parametrize("op", ["softmax", "log_softmax", "logsumexp"])
def test_softmax_family_is_stable_for_huge_logits(op):
    """Logits around 1e4 overflow a naive exp in float32 and float64; the shifted forms must
    give finite values and gradients equal to PyTorch's."""
    torch_ = pytest.importorskip("torch", reason="parity needs torch==2.13.0 (pip install torch==2.13.0)")
    logits = np.array([[1e4, 1e4 - 1.0, 1e4 - 3.0, -1e4], [-1e4, -1e4 + 2.0, 0.0, 5.0]], dtype=np.float32)
    weights = np.array([[0.3, -1.0, 2.0, 0.5], [1.0, 0.2, -0.7, 0.1]], dtype=np.float32)
    x, t = mg.tensor(logits, requires_grad=True), torch_.tensor(logits, requires_grad=True)
    with np.errstate(over="raise", invalid="raise"):
        out = getattr(x, op)(axis=-1) if op != "logsumexp" else x.logsumexp(axis=-1)
        (out * mg.tensor(weights if op != "logsumexp" else weights[:, 0])).sum().backward()
    ref = getattr(t, op)(-1)
    (ref * torch_.tensor(weights if op != "logsumexp" else weights[:, 0])).sum().backward()
    assert np.isfinite(out.numpy()).all() and np.isfinite(x.grad.numpy()).all()
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_reductions_reject_axes_out_of_range():
    with pytest.raises(ValueError, match="axis 3"):
        mg.randn(2, 3, 4).sum(axis=3)


def test_std_of_identical_values_has_zero_gradient_like_torch():
    x = mg.tensor([[2.0, 2.0, 2.0], [1.0, 2.0, 4.0]], requires_grad=True)
    x.std(axis=1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy()[0], [0.0, 0.0, 0.0])
    assert np.isfinite(x.grad.numpy()).all()
