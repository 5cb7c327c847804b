"""The one op-test harness: declare an op once, get three checks.

An :class:`OpCase` names a minigrad function, the equivalent PyTorch function and how to
sample its inputs. :func:`check_op` then runs

1. a float64 finite-difference gradcheck (``minigrad.gradcheck``), checking that float64
   stays float64 in the output and every gradient;
2. PyTorch parity in float32: output shape, dtype and values, and the gradients of
   ``sum(out * w)`` for a fixed random ``w`` (skipped with a reason when torch is missing);
3. for autocast's lower-precision ops (``autocast_terms`` set: the products summed per output
   value), the bfloat16 mode: under ``minigrad.autocast`` and ``torch.autocast``, output and
   gradients against the exact result of the bfloat16-rounded operands and against PyTorch,
   with tolerances derived from bfloat16's 8 significant bits (:func:`check_autocast`);

resampling inputs that sit on a kink (relu at 0, max ties, |x| at 0: see ``min_gap`` and
``ties``) so finite differences stay meaningful. Usage:
``check_op(OpCase(lambda a, b: a * b, lambda a, b: a * b, [(3, 4), (4,)]))``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pytest

import minigrad as mg

try:
    import torch
except ImportError:  # parity checks skip; gradchecks still run
    torch = None


def normal(rng, shape):
    return rng.standard_normal(shape)


def positive(rng, shape):
    return rng.uniform(0.5, 2.0, shape)


def away_from_zero(rng, shape):
    x = rng.standard_normal(shape)
    return np.where(np.abs(x) < 0.05, 0.5, x)


@dataclass
class OpCase:
    """``fn(*tensors)`` in minigrad and ``torch_fn(*tensors)`` in torch compute the same op.
    ``samplers[i](rng, shape)`` draws input i (default: standard normal). Inputs listed in
    ``constants`` are passed as-is (not differentiated), e.g. integer targets."""

    fn: Callable
    torch_fn: Callable | None
    shapes: Sequence[tuple]
    samplers: Sequence[Callable] = ()
    constants: dict = field(default_factory=dict)
    kink: Callable | None = None  # (list of float64 arrays) -> True when too close to a kink
    atol: float = 1e-5
    rtol: float = 1e-4
    gradcheck_atol: float = 1e-6
    gradcheck_rtol: float = 1e-4
    autocast_terms: int | None = None  # products per output value, for the bfloat16 mode

    def sample(self, rng):
        for _ in range(100):
            arrays = [
                (self.samplers[i] if i < len(self.samplers) else normal)(rng, s) for i, s in enumerate(self.shapes)
            ]
            if self.kink is None or not self.kink(arrays):
                return arrays
        raise RuntimeError("could not sample inputs away from the op's kinks")

    def call(self, arrays, make, dtype):
        args = [make(a.astype(dtype)) for a in arrays]
        for index, value in sorted(self.constants.items()):
            if isinstance(value, np.ndarray) and value.dtype.kind == "f":  # e.g. probability targets
                value = value.astype(dtype)
            args.insert(index, value)
        return args


def check_parity(case: OpCase, seed: int = 0):
    if torch is None:
        pytest.skip("PyTorch is not installed: parity checks need torch==2.13.0 (pip install torch==2.13.0)")
    rng = np.random.default_rng(seed)
    arrays = case.sample(rng)
    ours = case.call(arrays, lambda a: mg.tensor(a, requires_grad=True), np.float32)
    theirs = case.call(arrays, lambda a: torch.tensor(a, requires_grad=True), np.float32)
    out = case.fn(*ours)
    ref = case.torch_fn(*[_torchify(a) for a in theirs])
    assert out.dtype == np.float32, f"float32 inputs gave a {out.dtype} output"
    assert out.shape == tuple(ref.shape), f"shape {out.shape} differs from PyTorch's {tuple(ref.shape)}"
    np.testing.assert_allclose(
        out.numpy(), ref.detach().numpy(), atol=case.atol, rtol=case.rtol, err_msg="forward differs from PyTorch"
    )
    weights = rng.standard_normal(out.shape).astype(np.float32)
    (out * mg.tensor(weights)).sum().backward()
    (ref * torch.tensor(weights)).sum().backward()
    for index, (a, b) in enumerate(zip(ours, theirs)):
        if isinstance(a, mg.Tensor) and a.requires_grad:
            assert a.grad is not None, f"input {index} received no gradient"
            assert a.grad.dtype == np.float32, f"gradient of input {index} is {a.grad.dtype}"
            np.testing.assert_allclose(
                a.grad.numpy(),
                b.grad.numpy(),
                atol=case.atol * 10,
                rtol=case.rtol * 10,
                err_msg=f"gradient of input {index} differs from PyTorch",
            )


def _torchify(x):
    if isinstance(x, np.ndarray):
        return torch.from_numpy(x)
    return x


def check_gradcheck(case: OpCase, seed: int = 0):
    """Finite differences in float64; also checks that float64 stays float64 end to end."""
    arrays = case.sample(np.random.default_rng(seed + 1))
    inputs = case.call(arrays, lambda a: mg.tensor(a, requires_grad=True), np.float64)
    assert case.fn(*inputs).dtype == np.float64, "float64 inputs gave a non-float64 output"
    assert mg.gradcheck(case.fn, inputs, eps=1e-6, atol=case.gradcheck_atol, rtol=case.gradcheck_rtol)
    for index, x in enumerate(inputs):
        if isinstance(x, mg.Tensor) and x.requires_grad:
            assert x.grad is not None and x.grad.dtype == np.float64, f"input {index}: no float64 gradient"


def check_op(case: OpCase, seed: int = 0):
    """Float64 gradcheck, then PyTorch parity (skipped without torch), then the bfloat16 mode for
    autocast ops. A case with ``torch_fn=None`` has no PyTorch twin: its test must check values
    by hand as well."""
    check_gradcheck(case, seed)
    if case.torch_fn is not None:
        check_parity(case, seed)
        if case.autocast_terms is not None:
            check_autocast(case, seed)


# ------------------------------------------------------------------------ bfloat16 mode
def bf16_ulp(values: np.ndarray) -> np.ndarray:
    """The spacing of bfloat16 numbers at |values|: 2^(e - 7) for |v| in [2^e, 2^(e+1))."""
    v = np.maximum(np.abs(values.astype(np.float64)), 2.0**-126)
    return 2.0 ** (np.floor(np.log2(v)) - 7)


def bf16_tolerance(exact: np.ndarray, magnitude: np.ndarray, terms: int) -> np.ndarray:
    """What one rounding to bfloat16 after float32 accumulation allows: one bfloat16 ulp of the
    result (round to nearest gives half of one; float32 accumulation can carry the value across a
    rounding boundary) plus the float32 accumulation error of ``terms`` products whose absolute
    values sum to ``magnitude`` (2 * terms * 2^-24 of it)."""
    return bf16_ulp(exact) + 2 * terms * 2.0**-24 * magnitude


def check_autocast(case: OpCase, seed: int = 0):
    """The op under ``minigrad.autocast`` and ``torch.autocast`` (bfloat16) on the same float32
    inputs: a bfloat16 output, float32 gradients for float32 inputs, and output and gradients

    - within :func:`bf16_tolerance` of the exact result of the bfloat16-rounded operands (the op
      in float64), and
    - within that tolerance plus PyTorch's own distance from the exact result of PyTorch's
      (its bfloat16 convolution backward on a CPU without bfloat16 arithmetic rounds more than
      once, and lands up to a few ulps off).

    The sums of |products| come from the op in float64 on |operands| (the autocast ops are
    bilinear, so that is exactly sum |x_i w_i|), gradients likewise with |upstream|."""
    ml_dtypes = pytest.importorskip("ml_dtypes", reason="the bfloat16 mode needs ml_dtypes")
    bf16 = np.dtype(ml_dtypes.bfloat16)
    rng = np.random.default_rng(seed + 7)
    arrays = [a.astype(np.float32) for a in case.sample(rng)]
    ours = [mg.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    with mg.autocast("cpu", dtype=mg.bfloat16):
        out = case.fn(*ours)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ref = case.torch_fn(*theirs)
    assert out.dtype == bf16 and ref.dtype == torch.bfloat16, (out.dtype, ref.dtype)
    rounded = [torch.tensor(a.astype(bf16).astype(np.float64), requires_grad=True) for a in arrays]
    absolute = [torch.tensor(np.abs(a.astype(bf16).astype(np.float64)), requires_grad=True) for a in arrays]
    exact, magnitude = case.torch_fn(*rounded), case.torch_fn(*absolute)

    def check(got, want, exact_values, sums, terms, what):
        tol = bf16_tolerance(exact_values, sums, terms)
        assert np.all(np.abs(got - exact_values) <= tol), (what, "vs exact", np.abs(got - exact_values).max())
        assert np.all(np.abs(got - want) <= tol + np.abs(want - exact_values)), (what, "vs PyTorch")

    def as64(t):
        return t.detach().float().numpy().astype(np.float64) if hasattr(t, "detach") else t.numpy().astype(np.float64)

    check(
        as64(out.float()), as64(ref), exact.detach().numpy(), magnitude.detach().numpy(), case.autocast_terms, "output"
    )
    # through a float32 loss with random weights, which both sides round to bfloat16 alike
    c = rng.standard_normal(tuple(ref.shape)).astype(np.float32)
    c_bf16 = torch.from_numpy(c.astype(bf16).astype(np.float64))
    (out.float() * mg.tensor(c)).sum().backward()
    (ref.float() * torch.tensor(c)).sum().backward()
    exact.backward(c_bf16)
    magnitude.backward(c_bf16.abs())
    for i, (a, b, e, m) in enumerate(zip(ours, theirs, rounded, absolute)):
        assert a.grad.dtype == np.float32, f"gradient of input {i} is {a.grad.dtype}"
        # a gradient value sums at most out.size products
        check(as64(a.grad), as64(b.grad), e.grad.numpy(), m.grad.numpy(), out.data.size, f"gradient of input {i}")


def min_gap(arrays, threshold=1e-3):
    """A kink test: any value within ``threshold`` of zero."""
    return any((np.abs(a) < threshold).any() for a in arrays)


def ties(arrays, threshold=1e-3):
    """A kink test for max/min/maximum/clip-like ops: any two input values (across all inputs)
    closer than ``threshold``, so an arg-extremum could flip under finite differences."""
    values = np.sort(np.concatenate([a.ravel() for a in arrays]))
    return values.size > 1 and bool(np.diff(values).min() < threshold)
