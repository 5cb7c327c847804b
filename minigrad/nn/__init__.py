"""Neural-network building blocks: the module system (``Module``, ``Parameter``, containers),
the layers, ``init`` (weight initialisers), ``regularization`` (penalties, weight noise) and
``functional`` (the stateless forms of every op and layer)."""
from . import functional  # noqa: F401
from . import init, regularization  # noqa: F401
from .layers import *  # noqa: F401,F403
from .layers import __all__ as _layers
from .module import Module, ModuleDict, ModuleList, Parameter, Sequential

__all__ = ["Module", "ModuleDict", "ModuleList", "Parameter", "Sequential", "functional", "init",
           "regularization"] + _layers
