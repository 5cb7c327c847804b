import numpy as np
import pytest
from harness import OpCase, check_op, min_gap, torch

import minigrad as mg

CASES = {
    "add_broadcast": OpCase(lambda a, b: a + b, lambda a, b: a + b, [(3, 4), (4,)]),
    "matmul": OpCase(lambda a, b: a @ b, lambda a, b: a @ b, [(5, 7), (7, 3)]),
    "relu": OpCase(lambda a: a.relu(), lambda a: a.relu(), [(4, 5)], kink=min_gap),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_op(name):
    check_op(CASES[name])
