"""Shape ops through the harness: reshape/view, flatten, transpose/permute/.T, indexing
(ints, slices, None, Ellipsis, integer arrays with repeats, boolean masks), concat/stack, pad,
expand/broadcast_to, squeeze/unsqueeze."""

import numpy as np
import pytest

import minigrad as mg

from harness import OpCase, check_op, torch

F = torch.nn.functional if torch is not None else None
REPEATED = np.array([0, 2, 2, 1, 0, 2])  # repeated rows: their gradients must add up (scatter-add)
ROWS, COLS = np.array([[0, 1], [2, 2]]), np.array([[3, 3], [0, 1]])
MASK = np.array([[True, False, True, False], [False, False, True, True], [True, True, False, False]])


def same(expression):
    """An OpCase whose minigrad and torch forms are the same Python expression."""
    return lambda *shapes, **options: OpCase(expression, expression, list(shapes), **options)


def torch_pad(pad_width):
    """numpy's ((before, after), ...) per axis as F.pad's flat list, last axis first."""
    return [p for pair in reversed(pad_width) for p in pair]


CASES = {
    "reshape": same(lambda a: a.reshape(4, 3))((3, 4)),
    "reshape_tuple_minus_one": same(lambda a: a.reshape((2, -1)))((3, 4)),
    "view": same(lambda a: a.view(2, 6))((3, 4)),
    "reshape_to_scalar": same(lambda a: a.reshape(()))((1, 1)),
    "flatten": same(lambda a: a.flatten())((2, 3, 4)),
    "flatten_from_1": same(lambda a: a.flatten(1))((2, 3, 4)),
    "flatten_middle": same(lambda a: a.flatten(1, 2))((2, 3, 4, 2)),
    "transpose": same(lambda a: a.transpose(0, 2))((2, 3, 4)),
    "transpose_negative": same(lambda a: a.transpose(-1, -2))((2, 3, 4)),
    "T": same(lambda a: a.T)((3, 5)),
    "permute": same(lambda a: a.permute(2, 0, 1))((2, 3, 4)),
    "permute_tuple": same(lambda a: a.permute((1, 2, 0)))((2, 3, 4)),
    "index_int": same(lambda a: a[1])((3, 4)),
    "index_negative_int": same(lambda a: a[-1, 2])((3, 4)),
    "index_slice": same(lambda a: a[1:, ::2])((3, 4)),
    "index_negative_slice": same(lambda a: a[:, -3:-1])((3, 4)),
    "index_none": same(lambda a: a[:, None, 1])((3, 4)),
    "index_ellipsis": same(lambda a: a[..., 1:3])((2, 3, 4)),
    "index_ellipsis_none": same(lambda a: a[None, ..., 0])((2, 3, 4)),
    "index_int_array_repeated": OpCase(lambda a: a[REPEATED], lambda a: a[torch.from_numpy(REPEATED)], [(3, 4)]),
    "index_list_repeated": OpCase(lambda a: a[[1, 1, 0]], lambda a: a[[1, 1, 0]], [(3, 4)]),
    "index_tensor": OpCase(lambda a: a[mg.tensor(REPEATED)], lambda a: a[torch.from_numpy(REPEATED)], [(3, 4)]),
    "index_two_arrays": OpCase(
        lambda a: a[ROWS, COLS], lambda a: a[torch.from_numpy(ROWS), torch.from_numpy(COLS)], [(3, 4)]
    ),
    "index_slice_and_array": OpCase(
        lambda a: a[:, REPEATED[:4]], lambda a: a[:, torch.from_numpy(REPEATED[:4])], [(2, 3, 4)]
    ),
    "index_bool_mask": OpCase(lambda a: a[MASK], lambda a: a[torch.from_numpy(MASK)], [(3, 4)]),
    "index_bool_rows": OpCase(lambda a: a[MASK[:, 0]], lambda a: a[torch.from_numpy(MASK[:, 0])], [(3, 4)]),
    "concat": OpCase(lambda a, b: mg.concat([a, b], axis=1), lambda a, b: torch.cat([a, b], dim=1), [(2, 3), (2, 4)]),
    "concat_three_negative_axis": OpCase(
        lambda a, b, c: mg.cat([a, b, c], dim=-1),
        lambda a, b, c: torch.cat([a, b, c], dim=-1),
        [(2, 1), (2, 3), (2, 2)],
    ),
    "stack": OpCase(lambda a, b: mg.stack([a, b]), lambda a, b: torch.stack([a, b]), [(2, 3), (2, 3)]),
    "stack_last": OpCase(
        lambda a, b: mg.stack([a, b], axis=-1), lambda a, b: torch.stack([a, b], dim=-1), [(2, 3), (2, 3)]
    ),
    "pad_pairs": OpCase(lambda a: a.pad(((1, 0), (2, 1))), lambda a: F.pad(a, torch_pad(((1, 0), (2, 1)))), [(2, 3)]),
    "pad_int_value": OpCase(lambda a: mg.pad(a, 1, value=0.5), lambda a: F.pad(a, [1, 1, 1, 1], value=0.5), [(2, 3)]),
    "pad_one_pair": OpCase(lambda a: mg.pad(a, (0, 2)), lambda a: F.pad(a, [0, 2, 0, 2, 0, 2]), [(1, 2, 2)]),
    "expand": same(lambda a: a.expand(2, 3, 4))((3, 1)),
    "expand_minus_one": same(lambda a: a.expand(-1, 4))((3, 1)),
    "broadcast_to": OpCase(lambda a: a.broadcast_to((2, 3, 4)), lambda a: a.broadcast_to((2, 3, 4)), [(4,)]),
    "squeeze_all": same(lambda a: a.squeeze())((1, 3, 1, 2)),
    "squeeze_axis": same(lambda a: a.squeeze(2))((1, 3, 1, 2)),
    "squeeze_negative_axis": same(lambda a: a.squeeze(-4))((1, 3, 1, 2)),
    "unsqueeze": same(lambda a: a.unsqueeze(1))((3, 2)),
    "unsqueeze_negative": same(lambda a: a.unsqueeze(-1))((3, 2)),
    # a view used twice: both paths' gradients reach the same storage
    "view_fan_out": same(lambda a: a.reshape(6) * a.T.reshape(6))((2, 3)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_op(name):
    check_op(CASES[name])


def test_repeated_index_gradient_adds_up():
    x = mg.tensor([10.0, 20.0, 30.0], requires_grad=True)
    x[[0, 2, 2, 2]].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 0.0, 3.0])


def test_reshape_shares_memory_and_version_with_its_input():
    x = mg.arange(6, dtype=np.float32)
    y = x.reshape(2, 3)
    assert np.shares_memory(x.numpy(), y.numpy())
    x[0] = 7.0
    assert y.numpy()[0, 0] == 7.0 and y._version is x._version


def test_index_names_the_shape_when_out_of_range():
    with pytest.raises(IndexError, match=r"\(3, 4\)"):
        mg.randn(3, 4)[5]


def test_permute_and_pad_results_are_contiguous_and_writeable():
    for t in (mg.randn(2, 3).T, mg.randn(2, 3).pad(1), mg.randn(3, 1).expand(3, 1), mg.randn(3, 4)[:, 1]):
        assert t.numpy().flags.c_contiguous and t.numpy().flags.writeable
