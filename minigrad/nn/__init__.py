"""Neural-network building blocks: ``minigrad.nn.functional`` holds the stateless forms."""
from . import functional  # noqa: F401
