"""Seeing what the engine does on your own model, read from the tape (no second engine).

- :func:`graph` — the recorded graph behind a tensor: per node the op, input and output shapes
  and dtypes, the bytes it saved for backward, and the parameters (by module path) it reaches;
  ``.to_dot()`` gives Graphviz text, ``.save("g.dot" | "g.svg" | "g.png")`` writes it.
- :func:`check_gradients` — the tape's gradients of a model or function against centred finite
  differences in float64, per parameter, with the course notes' thresholds.
- :class:`profile` — time per op and phase, the compiled kernels inside, a Chrome trace, and
  the tape's memory over the step.
- :func:`watch` — per-layer activations, gradients and update ratios every N steps, with the
  lectures' alarms (dead ReLUs, saturation, vanishing/exploding gradients, update ratio).
"""

from .dynamics import Alert, LayerStats, Watch, watch
from .gradients import GradientCheck, check_gradients
from .graphs import Graph, GraphNode, graph
from .profiling import Profile, ProfileSteps, profile

__all__ = [
    "Alert",
    "LayerStats",
    "Watch",
    "watch",
    "Graph",
    "GraphNode",
    "graph",
    "GradientCheck",
    "check_gradients",
    "Profile",
    "ProfileSteps",
    "profile",
]
