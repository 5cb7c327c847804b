"""Devices, as PyTorch scripts name them: minigrad runs on the CPU only.

``minigrad.device("cpu")`` exists so that ``model.to(device)``, ``x.to("cpu")`` and
``torch.device("cuda" if torch.cuda.is_available() else "cpu")`` ported by an import swap run
unchanged; any other device is a clear error naming it."""

from __future__ import annotations


class device:
    """``device("cpu")`` or ``device("cpu", 0)`` / ``device("cpu:0")``: the only one there is."""

    def __init__(self, type: str | device = "cpu", index: int | None = None):
        if isinstance(type, device):
            type, index = type.type, type.index if index is None else index
        if not isinstance(type, str):
            raise TypeError(f"device: expected a string like 'cpu', got {type!r}")
        name, _, number = type.partition(":")
        if name != "cpu":
            raise RuntimeError(f"minigrad runs on the CPU only: device {type!r} is not available")
        if number:
            if not number.isdigit():
                raise RuntimeError(f"device: invalid device string {type!r}")
            index = int(number) if index is None else index
        self.type, self.index = "cpu", index

    def __repr__(self) -> str:
        return f"device(type='cpu'{'' if self.index is None else f', index={self.index}'})"

    def __str__(self) -> str:
        return "cpu" if self.index is None else f"cpu:{self.index}"

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            try:
                other = device(other)
            except (RuntimeError, TypeError):
                return False
        return isinstance(other, device) and other.type == self.type

    __hash__ = object.__hash__


def is_device(value) -> bool:
    """Whether ``value`` names a device (a ``device`` or a device string like "cpu", "cuda:0"),
    as opposed to a dtype; non-CPU names count, so that using them raises the device error."""
    if isinstance(value, device):
        return True
    return isinstance(value, str) and value.partition(":")[0] in ("cpu", "cuda", "mps", "xpu", "meta", "hip", "xla")


class cuda:
    """``torch.cuda.is_available()`` and friends, answered for a CPU-only library."""

    @staticmethod
    def is_available() -> bool:
        return False

    @staticmethod
    def device_count() -> int:
        return 0
