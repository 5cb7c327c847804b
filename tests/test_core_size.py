"""The engine stays small enough to read in one sitting: autograd.py + tensor.py together
stay within 400 lines (the project's budget; trim before growing it)."""

from pathlib import Path

import minigrad

BUDGET = 400


def test_autograd_and_tensor_fit_the_line_budget():
    package = Path(minigrad.__file__).parent
    counts = {name: len((package / name).read_text().splitlines()) for name in ("autograd.py", "tensor.py")}
    assert sum(counts.values()) <= BUDGET, f"{counts} is {sum(counts.values())} lines, over the {BUDGET}-line budget"
