import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))  # the harness module, from any test folder

import minigrad as mg  # noqa: E402


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same global random state."""
    mg.manual_seed(0)
    np.random.seed(0)
    yield
