"""The tape's semantics: accumulation, fan-out, graph freeing, no_grad, detach, hooks,
needs_input_grad, deep graphs, float64 end to end, the profiler."""

import gc
import sys
import weakref

import numpy as np
import pytest

import minigrad as mg
from minigrad.autograd import Function, unbroadcast


def test_backward_twice_with_retain_graph_doubles_leaf_gradients_exactly():
    a = mg.randn(3, 4, requires_grad=True)
    w = mg.randn(4, 2, requires_grad=True)
    loss = ((a @ w).tanh() * 3.0).sum()
    loss.backward(retain_graph=True)
    first_a, first_w = a.grad.numpy().copy(), w.grad.numpy().copy()
    loss.backward()
    np.testing.assert_array_equal(a.grad.numpy(), 2 * first_a)
    np.testing.assert_array_equal(w.grad.numpy(), 2 * first_w)


def test_gradients_accumulate_across_separate_graphs():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3 + 2, 3 + 4])


@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16"])
def test_large_gradients_accumulate_on_the_threaded_add_exactly(dtype):
    # large enough for the compiled add, which sums into .grad in place
    values = np.random.default_rng(0).standard_normal((64, 1000)).astype(np.float32)
    x = mg.tensor(values, requires_grad=True).to(getattr(mg, dtype)).detach().requires_grad_()
    first = x.grad
    assert (x * 3).sum().shape == ()  # a bfloat16 sum is a scalar too (its float32 result converted back)
    (x * 3).sum().backward()
    grad_array = x.grad.data
    (x * x).sum().backward()
    assert x.grad.data is grad_array and first is None  # summed in place after the first
    # x * x hands x two gradients, each added to .grad in turn (rounded after each)
    expected = np.full_like(x.data, 3)
    for _ in range(2):
        expected = (expected.astype(np.float64) + x.data.astype(np.float64)).astype(x.data.dtype)
    np.testing.assert_array_equal(x.grad.data.astype(np.float64), expected.astype(np.float64))


def test_tensor_used_twice_gets_the_summed_gradient():
    a = mg.tensor([1.0, -2.0, 0.5], requires_grad=True)
    b = a + a
    c = b * b  # c = 4 a^2
    c.sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), 8 * a.numpy())


def test_shared_subgraph_is_finished_before_it_runs():
    """d = b + 3b with b = 2a: the walk must wait for both consumers of b (once a bug: b ran
    after only one of them and lost the other's gradient)."""
    a = mg.tensor(1.0, requires_grad=True)
    b = a * 2
    c = b * 3
    (b + c).backward()
    assert a.grad.item() == 8.0

    def diamonds(x):
        h = x * 1.7  # consumed by four nodes, two of which also consume each other's outputs
        e = h.exp()
        return h * e + (h * 3).tanh() * e

    assert mg.gradcheck(diamonds, [mg.tensor([0.5, -1.5], dtype=np.float64, requires_grad=True)])


def test_backward_on_a_leaf_and_with_an_explicit_gradient():
    x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x.backward(mg.tensor([1.0, 0.0, 2.0]))
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 0.0, 2.0])
    y = mg.tensor([[1.0, 2.0]], requires_grad=True)
    (y * 5).backward(np.array([[2.0, -1.0]]))
    np.testing.assert_array_equal(y.grad.numpy(), [[10.0, -5.0]])


def test_grad_is_a_tensor_of_the_leaf_dtype():
    for dtype in (np.float32, np.float64):
        x = mg.ones(2, dtype=dtype, requires_grad=True)
        (x * 2).sum().backward()
        assert isinstance(x.grad, mg.Tensor) and x.grad.dtype == dtype


def test_no_grad_records_nothing_as_context_and_decorator():
    x = mg.randn(3, requires_grad=True)
    with mg.no_grad():
        y = x * 2 + 1
        assert not mg.is_grad_enabled()
    assert mg.is_grad_enabled()
    assert not y.requires_grad and y.is_leaf and y._node is None

    @mg.no_grad()
    def step(t):
        assert not mg.is_grad_enabled()
        return (t * t).sum()

    z = step(x)
    assert not z.requires_grad and z._node is None and mg.is_grad_enabled()


def test_no_grad_restores_the_mode_after_an_exception_and_nests_with_enable_grad():
    with pytest.raises(KeyError):
        with mg.no_grad():
            raise KeyError("boom")
    assert mg.is_grad_enabled()
    x = mg.randn(2, requires_grad=True)
    with mg.no_grad():
        with mg.enable_grad():
            y = x * 2
        z = x * 2
    assert y.requires_grad and not z.requires_grad


def test_detach_shares_data_but_stops_the_gradient():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    d = h.detach()
    assert not d.requires_grad and d.is_leaf and np.shares_memory(d.numpy(), h.numpy())
    (h * d).sum().backward()  # d is a constant: dx = 3 * d
    np.testing.assert_array_equal(x.grad.numpy(), 3 * d.numpy())


def test_requires_grad_():
    x = mg.tensor([1.0, 2.0])
    assert not x.requires_grad
    assert x.requires_grad_() is x and x.requires_grad
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])
    x.requires_grad_(False)
    assert not (x * 2).requires_grad
    with pytest.raises(TypeError, match="int64"):
        mg.arange(3).requires_grad_()


class Spy(Function):
    """z = x * y, recording which gradients the engine asked for."""

    seen = []

    def forward(self, x, y):
        self.x, self.y = x, y
        Spy.seen.append(self.needs_input_grad)
        return x * y

    def backward(self, g):
        return (g * self.y if self.needs_input_grad[0] else None, g * self.x if self.needs_input_grad[1] else None)


def test_needs_input_grad_is_false_for_constants():
    Spy.seen = []
    a = mg.tensor([1.0, 2.0], requires_grad=True)
    b = mg.tensor([3.0, 4.0])
    Spy.apply(a, b).sum().backward()
    Spy.apply(a, 2.0)
    Spy.apply(b, a)
    assert Spy.seen == [(True, False), (True, False), (False, True)]
    np.testing.assert_array_equal(a.grad.numpy(), [3.0, 4.0])
    assert b.grad is None


def test_backward_returning_none_for_a_needed_input_leaves_it_without_gradient():
    class FirstOnly(Function):
        def forward(self, x, y):
            return x + y

        def backward(self, g):
            return g, None

    a, b = mg.randn(2, requires_grad=True), mg.randn(2, requires_grad=True)
    FirstOnly.apply(a, b * 2).sum().backward()  # b * 2 is a node that receives nothing
    assert a.grad is not None and b.grad is None


def test_hooks_on_leaves_and_intermediates():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    seen = {}

    def double(g):
        seen["h"] = g.numpy().copy()
        return g * 2

    h.register_hook(double)
    x.register_hook(lambda g: seen.setdefault("x", g.numpy().copy()))  # returns None: grad unchanged
    (h * h).sum().backward()  # d/dh = 2h = [6, 12]; doubled -> [12, 24]; times 3 -> x.grad
    np.testing.assert_array_equal(seen["h"], [6.0, 12.0])
    np.testing.assert_array_equal(seen["x"], [36.0, 72.0])
    np.testing.assert_array_equal(x.grad.numpy(), [36.0, 72.0])
    with pytest.raises(RuntimeError, match="does not require grad"):
        mg.tensor([1.0]).register_hook(lambda g: g)


def test_a_chain_of_ten_thousand_ops_backpropagates_iteratively():
    x = mg.tensor([1.0], dtype=np.float64, requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200)  # far below the depth: any recursion would fail
    try:
        y.sum().backward()
    finally:
        sys.setrecursionlimit(limit)
    assert x.grad.item() == pytest.approx(1.0001**10_000, rel=1e-9)


def test_the_tape_holds_no_references_after_backward():
    x = mg.randn(50, requires_grad=True)
    h = (x * 2).exp()  # Exp saves its output array for backward
    saved = weakref.ref(h._node.z)
    node = weakref.ref(h._node)
    loss = (h * h).sum()
    del h
    gc.collect()
    gc.disable()  # freeing must come from reference counts alone: no cycles
    try:
        assert saved() is not None
        loss.backward()
        assert saved() is None and node() is None
        assert loss._node.inputs is None
    finally:
        gc.enable()


def test_retain_graph_keeps_saved_arrays_until_the_last_backward():
    x = mg.randn(5, requires_grad=True)
    h = x.exp()
    saved = weakref.ref(h._node.z)
    loss = h.sum() * 2
    del h
    loss.backward(retain_graph=True)
    assert saved() is not None
    loss.backward()
    assert saved() is None


def test_backward_never_sees_a_half_freed_graph():
    a = mg.randn(3, requires_grad=True)
    shared = a.exp()
    first, second = shared.sum(), (shared * 2).sum()
    first.backward()  # frees `shared`'s node
    before = a.grad.numpy().copy()
    with pytest.raises(RuntimeError, match="retain_graph"):
        second.backward()
    np.testing.assert_array_equal(a.grad.numpy(), before)  # nothing accumulated


def test_float64_end_to_end_small_mlp():
    rng = np.random.default_rng(5)
    x = mg.tensor(rng.standard_normal((6, 4)), dtype=np.float64)
    w1 = mg.tensor(rng.standard_normal((4, 5)), dtype=np.float64, requires_grad=True)
    b1 = mg.tensor(rng.standard_normal(5), dtype=np.float64, requires_grad=True)
    w2 = mg.tensor(rng.standard_normal((5, 3)), dtype=np.float64, requires_grad=True)
    target = np.array([0, 2, 1, 1, 0, 2])

    def loss(w1, b1, w2):
        return mg.nn.functional.cross_entropy((x @ w1 + b1).tanh() @ w2, target)

    out = loss(w1, b1, w2)
    assert out.dtype == np.float64
    assert mg.gradcheck(loss, [w1, b1, w2], atol=1e-7, rtol=1e-6)
    assert all(p.grad.dtype == np.float64 for p in (w1, b1, w2))


def test_gradcheck_catches_a_wrong_backward():
    class WrongSquare(Function):
        def forward(self, x):
            self.x = x
            return x * x

        def backward(self, g):
            return g * self.x  # should be 2 x

    x = mg.tensor([1.0, 2.0], dtype=np.float64, requires_grad=True)
    with pytest.raises(AssertionError, match="gradcheck failed for input 0"):
        mg.gradcheck(WrongSquare.apply, [x])
    assert mg.gradcheck(WrongSquare.apply, [x], raise_exception=False) is False
    with pytest.raises(TypeError, match="float64"):
        mg.gradcheck(lambda t: t * 2, [mg.randn(2, requires_grad=True)])


def test_unbroadcast_sums_stretched_and_added_axes():
    g = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(unbroadcast(g, (3, 1)), g.sum(axis=(0, 2)).reshape(3, 1))
    np.testing.assert_array_equal(unbroadcast(g, (4,)), g.sum(axis=(0, 1)))
    np.testing.assert_array_equal(unbroadcast(g, ()), g.sum())
    assert unbroadcast(g, g.shape) is g


def test_profile_counts_forward_and_backward_calls():
    x = mg.randn(3, requires_grad=True)
    with mg.profile() as prof:  # minigrad.inspect's profile
        ((x * 2) * x).sum().backward()
    calls = {key: row[0] for key, row in prof.rows.items()}
    assert calls[("Mul", "forward")] == 2 and calls[("Mul", "backward")] == 2 and calls[("Sum", "backward")] == 1
    assert mg.autograd.Function.profiler is None


def test_manual_seed_makes_random_ops_reproducible():
    mg.manual_seed(123)
    a, b = mg.randn(3, 4), mg.rand(5)
    mg.manual_seed(123)
    np.testing.assert_array_equal(mg.randn(3, 4).numpy(), a.numpy())
    np.testing.assert_array_equal(mg.rand(5).numpy(), b.numpy())
    mg.manual_seed(124)
    assert not np.array_equal(mg.randn(3, 4).numpy(), a.numpy())
    state = mg.get_rng_state()
    c = mg.randn(4)
    mg.set_rng_state(state)
    np.testing.assert_array_equal(mg.randn(4).numpy(), c.numpy())
    with pytest.raises(ValueError, match="non-negative integer"):
        mg.manual_seed(-1)


def test_no_grad_is_per_thread():
    import threading

    seen = []
    with mg.no_grad():
        worker = threading.Thread(target=lambda: seen.append((mg.randn(2, requires_grad=True) * 2).requires_grad))
        worker.start()
        worker.join()
    assert seen == [True]


def test_backward_frees_nodes_that_receive_no_gradient():
    """cross_entropy sends no gradient to its target: the target's node is still freed."""
    x = mg.randn(4, 3, dtype=np.float64, requires_grad=True)
    logits = mg.randn(4, 3, dtype=np.float64, requires_grad=True)
    target = x.softmax(axis=1)
    mg.nn.functional.cross_entropy(logits, target).backward()
    assert target._node.inputs is None and not hasattr(target._node, "z")
    assert x.grad is None and logits.grad is not None
