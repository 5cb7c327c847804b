"""Layer parity with PyTorch: copy a torch module's weights into the minigrad twin through
``load_state_dict`` (which also checks that the keys match), run both on the same input,
and compare outputs, input gradients, parameter gradients and buffers."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg

torch = pytest.importorskip("torch", reason="layer parity needs PyTorch (pip install torch==2.13.0)")


def check_module_parity(
    ours,
    theirs,
    x: np.ndarray,
    training: bool = True,
    steps: int = 1,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    seed: int = 0,
):
    """Runs ``steps`` forward/backward passes of both modules on ``x`` (plus noise per step)
    and asserts equal outputs, gradients of sum(out * w) and buffers."""
    ours.load_state_dict(theirs.state_dict(), strict=True)
    ours.train(training)
    theirs.train(training)
    rng = np.random.default_rng(seed)
    for step in range(steps):
        data = (x + step * rng.standard_normal(x.shape)).astype(np.float32)
        xm, xt = mg.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
        out, ref = ours(xm), theirs(xt)
        scale = max(1.0, float(np.abs(ref.detach().numpy()).max()))
        np.testing.assert_allclose(
            out.numpy(),
            ref.detach().numpy(),
            atol=atol * scale,
            rtol=rtol,
            err_msg=f"forward differs from PyTorch (step {step})",
        )
        weights = rng.standard_normal(out.shape).astype(np.float32)
        ours.zero_grad()
        theirs.zero_grad()
        (out * mg.tensor(weights)).sum().backward()
        (ref * torch.tensor(weights)).sum().backward()
        _close(xm.grad, xt.grad, atol, rtol, "input gradient")
        theirs_params = dict(theirs.named_parameters())
        for name, p in ours.named_parameters():
            _close(p.grad, theirs_params[name].grad, atol, rtol, f"gradient of {name}")
    theirs_state = theirs.state_dict()
    for name, value in ours.state_dict().items():
        np.testing.assert_allclose(
            value.numpy(),
            theirs_state[name].numpy(),
            atol=atol,
            rtol=rtol,
            err_msg=f"{name} differs from PyTorch after {steps} steps",
        )


def _close(ours, theirs, atol, rtol, what):
    if theirs is None:
        assert ours is None or not np.any(ours.numpy()), f"{what}: PyTorch has none"
        return
    assert ours is not None, f"{what}: minigrad computed none"
    ref = theirs.numpy()
    scale = max(1.0, float(np.abs(ref).max()))
    np.testing.assert_allclose(ours.numpy(), ref, atol=atol * 10 * scale, rtol=rtol * 10, err_msg=f"{what} differs")


def module_gradcheck(module, x_shape, seed: int = 0, atol: float = 1e-6, rtol: float = 1e-4):
    """Float64 finite-difference check of d(out)/d(input) and d(out)/d(every parameter):
    the parameters themselves are passed to ``mg.gradcheck`` so its perturbations reach them."""
    module.double()
    x = mg.tensor(np.random.default_rng(seed).standard_normal(x_shape), requires_grad=True)
    params = [p for p in module.parameters() if p.requires_grad]
    assert mg.gradcheck(lambda x, *ps: module(x), [x, *params], eps=1e-6, atol=atol, rtol=rtol)
