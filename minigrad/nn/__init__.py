"""Neural-network building blocks: the module system (``Module``, ``Parameter``, containers),
the layers, ``init`` (weight initialisers), ``regularization`` (penalties, weight noise) and
``functional`` (the stateless forms of every op and layer)."""

from . import (
    functional,
    init,
    parallel,
    regularization,
)
from .layers import *  # noqa: F403
from .layers import __all__ as _layers
from .module import Module, ModuleDict, ModuleList, Parameter, Sequential

__all__ = [
    "Module",
    "ModuleDict",
    "ModuleList",
    "Parameter",
    "Sequential",
    "functional",
    "init",
    "parallel",
    "regularization",
] + _layers
