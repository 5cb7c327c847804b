"""Normalisation ops (minigrad/ops/norm.py) through the op harness: float64 gradcheck and
PyTorch parity, plus running statistics, the group-norm equivalences and input errors."""

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as F

from harness import OpCase, check_op, torch

if torch is not None:
    import torch.nn.functional as TF

# Fixed running statistics for evaluation mode (cast to each case's dtype).
RUNNING = {c: (np.linspace(-0.5, 0.5, c), np.linspace(0.5, 2.0, c)) for c in (3, 4)}


def running(c, like, lib):
    mean, var = RUNNING[c]
    if lib == "torch":
        return torch.tensor(mean, dtype=like.dtype), torch.tensor(var, dtype=like.dtype)
    return mg.tensor(mean.astype(like.dtype)), mg.tensor(var.astype(like.dtype))


def bn_case(shape, training, affine, relu=False, weight_only=False, residual=False):
    """batch_norm with fresh running statistics per call (updated in training, used in eval);
    ``residual``: a last input of x's shape added before the ReLU, relu(bn(x) + r)."""
    c = shape[1]
    n_affine = 1 if weight_only else 2 if affine else 0

    def ours(x, *params):
        w, b = (params[:n_affine] + (None, None))[:2]
        rm, rv = running(c, x.data, "mg")
        r = params[-1] if residual else None
        return F.batch_norm(x, rm, rv, w, b, training=training, relu=relu, residual=r)

    def theirs(x, *params):
        w, b = (params[:n_affine] + (None, None))[:2]
        rm, rv = running(c, x, "torch")
        y = TF.batch_norm(x, rm, rv, w, b, training=training)
        if residual:
            y = y + params[-1]
        return TF.relu(y) if relu else y

    shapes = [shape] + [(c,)] * n_affine + ([shape] if residual else [])
    kink = None
    if relu:  # resample when a pre-ReLU output sits at the kink

        def kink(arrays):
            x = arrays[0]
            axes = (0,) + tuple(range(2, x.ndim))
            bshape = (1, c) + (1,) * (x.ndim - 2)
            if training:
                mean, var = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
            else:
                mean, var = (v.reshape(bshape) for v in RUNNING[c])
            y = (x - mean) / np.sqrt(var + 1e-5)
            if n_affine:
                y = y * arrays[1].reshape(bshape) + (arrays[2].reshape(bshape) if n_affine == 2 else 0)
            if residual:
                y = y + arrays[-1]
            return bool((np.abs(y) < 1e-3).any())

    return OpCase(ours, theirs, shapes, kink=kink)


def channel_affine(name, op, torch_op, shape, affine, **options):
    c = shape[1]
    shapes = [shape] + ([(c,), (c,)] if affine else [])
    return OpCase(
        lambda x, *p: op(x, *p, **options) if p else op(x, **options),
        lambda x, *p: torch_op(x, *p, **options) if p else torch_op(x, **options),
        shapes,
    )


def _group_norm(num_groups):
    return (
        lambda x, w=None, b=None: F.group_norm(x, num_groups, w, b),
        lambda x, w=None, b=None: TF.group_norm(x, num_groups, w, b),
    )


def _instance_norm():
    return (
        lambda x, w=None, b=None: F.instance_norm(x, weight=w, bias=b),
        lambda x, w=None, b=None: TF.instance_norm(x, weight=w, bias=b),
    )


def _instance_norm_running():
    def ours(x):
        rm, rv = running(3, x.data, "mg")
        return F.instance_norm(x, rm, rv, use_input_stats=False)

    def theirs(x):
        rm, rv = running(3, x, "torch")
        return TF.instance_norm(x, rm, rv, use_input_stats=False)

    return OpCase(ours, theirs, [(2, 3, 4, 4)])


CASES = {
    "bn_train_2d_affine": bn_case((6, 4), True, True),
    "bn_train_2d_plain": bn_case((6, 4), True, False),
    "bn_train_2d_relu": bn_case((6, 4), True, True, relu=True),
    "bn_train_3d_affine": bn_case((3, 4, 5), True, True),
    "bn_train_4d_affine": bn_case((3, 4, 3, 5), True, True),
    "bn_train_4d_plain": bn_case((3, 4, 3, 5), True, False),
    "bn_train_4d_relu": bn_case((3, 4, 3, 5), True, True, relu=True),
    "bn_train_4d_relu_plain": bn_case((3, 4, 3, 5), True, False, relu=True),
    "bn_train_4d_weight_only": bn_case((3, 4, 3, 5), True, True, weight_only=True),
    "bn_eval_2d_affine": bn_case((6, 4), False, True),
    "bn_eval_2d_relu": bn_case((6, 4), False, True, relu=True),
    "bn_eval_4d_affine": bn_case((3, 4, 3, 5), False, True),
    "bn_eval_4d_plain": bn_case((3, 4, 3, 5), False, False),
    "bn_eval_4d_relu": bn_case((3, 4, 3, 5), False, True, relu=True),
    # a residual block's join, relu(bn(x) + shortcut), fused into the same pass
    "bn_train_4d_residual_relu": bn_case((3, 4, 3, 5), True, True, relu=True, residual=True),
    "bn_train_4d_residual": bn_case((3, 4, 3, 5), True, True, residual=True),
    "bn_train_2d_residual_relu": bn_case((6, 4), True, False, relu=True, residual=True),
    "bn_eval_4d_residual_relu": bn_case((3, 4, 3, 5), False, True, relu=True, residual=True),
    "bn_eval_2d_residual": bn_case((6, 4), False, True, residual=True),
    "layer_norm_last": OpCase(
        lambda x, w, b: F.layer_norm(x, 6, w, b), lambda x, w, b: TF.layer_norm(x, (6,), w, b), [(5, 6), (6,), (6,)]
    ),
    "layer_norm_chw": OpCase(
        lambda x, w, b: F.layer_norm(x, (3, 4, 4), w, b),
        lambda x, w, b: TF.layer_norm(x, (3, 4, 4), w, b),
        [(2, 3, 4, 4), (3, 4, 4), (3, 4, 4)],
    ),
    "layer_norm_plain": OpCase(lambda x: F.layer_norm(x, (4, 5)), lambda x: TF.layer_norm(x, (4, 5)), [(2, 3, 4, 5)]),
    "group_norm_3_affine": OpCase(*_group_norm(3), [(2, 6, 3, 3), (6,), (6,)]),
    "group_norm_1_plain": OpCase(*_group_norm(1), [(2, 6, 3, 3)]),
    "group_norm_6_affine": OpCase(*_group_norm(6), [(2, 6, 3, 3), (6,), (6,)]),
    "group_norm_2d_input": OpCase(*_group_norm(2), [(3, 4)]),
    "instance_norm_affine": OpCase(*_instance_norm(), [(2, 3, 4, 4), (3,), (3,)]),
    "instance_norm_plain": OpCase(*_instance_norm(), [(2, 3, 5)]),
    "instance_norm_running": _instance_norm_running(),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_op(name):
    check_op(CASES[name])


def test_batch_norm_running_stats_match_torch_after_several_steps():
    if torch is None:
        pytest.skip("PyTorch is not installed: needed as the reference (pip install torch==2.13.0)")
    rng = np.random.default_rng(3)
    for shape, momentum in (((8, 5, 3, 3), 0.1), ((16, 7), 0.3)):
        c = shape[1]
        rm, rv = mg.zeros(c), mg.ones(c)
        trm, trv = torch.zeros(c), torch.ones(c)
        for step in range(5):
            x = (rng.standard_normal(shape) * (step + 1) + step).astype(np.float32)
            F.batch_norm(mg.tensor(x), rm, rv, training=True, momentum=momentum)
            TF.batch_norm(torch.from_numpy(x), trm, trv, training=True, momentum=momentum)
        assert rm._version[0] == 5 and rv._version[0] == 5
        np.testing.assert_allclose(rm.numpy(), trm.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(rv.numpy(), trv.numpy(), rtol=1e-5, atol=1e-6)
        # and evaluation with those statistics matches too
        x = rng.standard_normal(shape).astype(np.float32)
        np.testing.assert_allclose(
            F.batch_norm(mg.tensor(x), rm, rv).numpy(),
            TF.batch_norm(torch.from_numpy(x), trm, trv).numpy(),
            rtol=1e-5,
            atol=1e-5,
        )


def test_batch_norm_running_var_uses_unbiased_variance():
    x = np.array([[1.0], [2.0], [4.0], [7.0]])  # mean 3.5, sum of squares 21
    rm, rv = mg.zeros(1, dtype=np.float64), mg.ones(1, dtype=np.float64)
    F.batch_norm(mg.tensor(x), rm, rv, training=True, momentum=0.5)
    assert rm.item() == pytest.approx(0.5 * 3.5)
    assert rv.item() == pytest.approx(0.5 * 1 + 0.5 * 21 / 3)


def test_batch_norm_backward_refuses_running_stats_changed_in_eval_graph():
    """Evaluation saves copies of the statistics, so later training steps do not corrupt it."""
    rm, rv = mg.zeros(3), mg.ones(3)
    x = mg.randn(4, 3, requires_grad=True)
    y = F.batch_norm(x, rm, rv)
    F.batch_norm(mg.randn(4, 3), rm, rv, training=True)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full((4, 3), 1 / np.sqrt(1 + 1e-5)), rtol=1e-6)


def test_batch_norm_gradients_only_where_wanted():
    if torch is None:
        pytest.skip("PyTorch is not installed: needed as the reference (pip install torch==2.13.0)")
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((4, 3, 2, 2)), rng.standard_normal(3), rng.standard_normal(3)
    mw = mg.tensor(w, requires_grad=True)
    F.batch_norm(mg.tensor(x), None, None, mw, mg.tensor(b), training=True).sum().backward()
    tw = torch.tensor(w, requires_grad=True)
    TF.batch_norm(torch.tensor(x), None, None, tw, torch.tensor(b), training=True).sum().backward()
    np.testing.assert_allclose(mw.grad.numpy(), tw.grad.numpy(), atol=1e-10)


def test_group_norm_one_group_is_layer_norm_and_c_groups_is_instance_norm():
    rng = np.random.default_rng(2)
    x = mg.tensor(rng.standard_normal((3, 4, 5, 5)))
    w, b = mg.tensor(rng.standard_normal(4)), mg.tensor(rng.standard_normal(4))
    expand = lambda v: mg.tensor(np.broadcast_to(v.numpy()[:, None, None], (4, 5, 5)).copy())  # noqa: E731
    np.testing.assert_allclose(
        F.group_norm(x, 1, w, b).numpy(), F.layer_norm(x, (4, 5, 5), expand(w), expand(b)).numpy(), atol=1e-12
    )
    np.testing.assert_allclose(
        F.group_norm(x, 4, w, b).numpy(), F.instance_norm(x, weight=w, bias=b).numpy(), atol=1e-12
    )


def test_instance_norm_running_stats_match_torch():
    if torch is None:
        pytest.skip("PyTorch is not installed: needed as the reference (pip install torch==2.13.0)")
    x = np.random.default_rng(4).standard_normal((3, 2, 4, 4)).astype(np.float32) * 2 + 1
    rm, rv = mg.zeros(2), mg.ones(2)
    trm, trv = torch.zeros(2), torch.ones(2)
    F.instance_norm(mg.tensor(x), rm, rv, momentum=0.2)
    TF.instance_norm(torch.from_numpy(x), trm, trv, momentum=0.2)
    np.testing.assert_allclose(rm.numpy(), trm.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rv.numpy(), trv.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda: F.batch_norm(mg.randn(1, 3), None, None, training=True), ValueError, "more than 1 value"),
        (
            lambda: F.batch_norm(mg.randn(1, 3, 1, 1), mg.zeros(3), mg.ones(3), training=True),
            ValueError,
            "more than 1 value",
        ),
        (lambda: F.batch_norm(mg.randn(4, 3), None, None), ValueError, "required when training=False"),
        (
            lambda: F.batch_norm(mg.randn(4, 3), None, None, mg.ones(4), training=True),
            ValueError,
            "weight must have shape (3,)",
        ),
        (lambda: F.batch_norm(mg.randn(4), None, None, training=True), ValueError, "at least 2 dimensions"),
        (
            lambda: F.batch_norm(mg.randn(4, 3), mg.zeros(3), mg.ones(3), training=True, momentum=None),
            ValueError,
            "num_batches_tracked",
        ),
        (
            lambda: F.batch_norm(mg.randn(4, 3), None, None, mg.ones(3, dtype=np.float64), training=True),
            TypeError,
            "float64",
        ),
        (
            lambda: F.batch_norm(mg.tensor(np.ones((4, 3), np.int64)), None, None, training=True),
            TypeError,
            "float32, float64 or bfloat16",
        ),
        (
            lambda: F.batch_norm(mg.randn(4, 3, 2), None, None, training=True, residual=mg.randn(4, 3)),
            ValueError,
            "residual has shape (4, 3) but the input has (4, 3, 2)",
        ),
        (lambda: F.layer_norm(mg.randn(4, 3), (4,)), ValueError, "trailing dimensions"),
        (lambda: F.group_norm(mg.randn(2, 6, 2), 4), ValueError, "cannot be split"),
        (lambda: F.instance_norm(mg.randn(2, 3, 1, 1)), ValueError, "more than 1 spatial element"),
    ],
)
def test_bad_input_raises_clear_errors(call, error, words):
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        call()


def test_a_residual_of_another_dtype_joins_as_separate_ops():
    """Only a residual of the input's dtype joins inside batch norm's pass; any other (here
    float64 onto float32) is added and rectified by the ordinary ops, with numpy's promotion."""
    rng = np.random.default_rng(3)
    x = mg.tensor(rng.standard_normal((4, 3, 5)).astype(np.float32), requires_grad=True)
    r = mg.tensor(rng.standard_normal((4, 3, 5)), requires_grad=True)
    out = F.batch_norm(x, None, None, training=True, relu=True, residual=r)
    plain = F.batch_norm(x.detach(), None, None, training=True)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out.numpy(), np.maximum(plain.numpy() + r.numpy(), 0))
    out.sum().backward()
    np.testing.assert_array_equal(r.grad.numpy(), (out.numpy() > 0).astype(np.float64))


def test_bad_input_leaves_running_stats_untouched():
    rm, rv = mg.full((3,), 2.0), mg.full((3,), 3.0)
    with pytest.raises(ValueError):
        F.batch_norm(mg.randn(1, 3), rm, rv, training=True)
    assert rm._version[0] == 0 and (rm.numpy() == 2).all() and (rv.numpy() == 3).all()
