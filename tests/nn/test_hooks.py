"""Module forward hooks behave as PyTorch's: the same calls, arguments, replacements and removal."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import minigrad as mg
from minigrad import nn


def _pair():
    ours, theirs = nn.Linear(3, 2), torch.nn.Linear(3, 2)
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(ours.weight.data.copy()))
        theirs.bias.copy_(torch.from_numpy(ours.bias.data.copy()))
    return ours, theirs


def _array(t):
    return t.detach().numpy() if isinstance(t, torch.Tensor) else t.data


def test_hooks_see_and_replace_what_pytorch_hooks_do():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)

    def run(module, tensor):
        calls = []
        module.register_forward_pre_hook(lambda m, args: (args[0] * 2,))  # doubles the input
        module.register_forward_pre_hook(lambda m, args: calls.append(("pre", _array(args[0]).sum())))
        module.register_forward_hook(lambda m, args, out: calls.append(("post", _array(out).shape)))
        module.register_forward_hook(lambda m, args, out: out + 1)  # shifts the output
        return _array(module(tensor(x))), calls

    (ours, our_calls), (theirs, their_calls) = (run(m, t) for m, t in zip(_pair(), (mg.tensor, torch.tensor)))
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)
    assert our_calls == their_calls == [("pre", 30.0), ("post", (2, 2))]


def test_removed_hooks_stop_and_kwargs_reach_hooks_that_ask():
    layer = nn.BatchNorm1d(2)
    seen = []
    handle = layer.register_forward_hook(lambda m, args, kwargs, out: seen.append(dict(kwargs)), with_kwargs=True)
    layer(mg.randn(4, 2), relu=True)
    handle.remove()
    handle.remove()  # twice is fine
    layer(mg.randn(4, 2))
    assert seen == [{"relu": True}]
    with layer.register_forward_pre_hook(lambda m, args: seen.append("pre")):
        layer(mg.randn(4, 2))
    layer(mg.randn(4, 2))
    assert seen == [{"relu": True}, "pre"]
    assert not nn.Linear(2, 2)._forward_hooks  # registering on one module leaves the others alone


def test_a_hook_must_be_callable():
    with pytest.raises(TypeError, match="forward hook must be callable, got int"):
        nn.Linear(2, 2).register_forward_hook(3)
