"""The module system: ``Parameter``, ``Module`` and the containers ``Sequential``,
``ModuleList`` and ``ModuleDict``.

A ``Module`` owns three kinds of named state, registered simply by assigning attributes:

* parameters (``Parameter``, trained by the optimiser),
* buffers (plain Tensors such as BatchNorm's running mean, saved with the model but not trained),
* sub-modules.

Names compose with dots exactly as in PyTorch (``layer1.0.bn1.running_var``, ``0.weight``
inside a ``Sequential``), so a PyTorch checkpoint of the same architecture maps key for key
onto a minigrad model.
"""

from __future__ import annotations

from collections import OrderedDict, namedtuple
from collections.abc import ItemsView, Iterator, KeysView, ValuesView
from typing import TYPE_CHECKING, Any

import numpy as np

from ..autograd import no_grad
from ..device import device, is_device
from ..dtypes import array_of, as_dtype, is_float
from ..random import generator
from ..tensor import Tensor

if TYPE_CHECKING:  # annotations only
    from collections.abc import Iterable, Mapping
    from typing import Callable

    from numpy.typing import ArrayLike, DTypeLike


class ParameterData(np.ndarray):
    """A parameter's array (``p.data``), with the in-place methods PyTorch scripts call on it:
    ``p.data.add_(u, alpha=-lr)``, ``copy_``, ``mul_``, ``zero_``, ``clamp_``, ``normal_`` ...
    As in PyTorch, changes made through ``.data`` bypass the tape's version checks. Anything
    computed from it is a plain numpy array."""

    def __array_wrap__(self, array, context=None, return_scalar=False):
        return np.asarray(array)[()] if return_scalar else np.asarray(array)

    def _set(self, values) -> ParameterData:
        np.copyto(self, np.asarray(array_of(values)), casting="same_kind")
        return self

    def add_(self, other, alpha=1) -> ParameterData:
        return self._set(self + alpha * np.asarray(array_of(other)))

    def sub_(self, other, alpha=1) -> ParameterData:
        return self._set(self - alpha * np.asarray(array_of(other)))

    def mul_(self, other) -> ParameterData:
        return self._set(self * np.asarray(array_of(other)))

    def div_(self, other) -> ParameterData:
        return self._set(self / np.asarray(array_of(other)))

    def copy_(self, src) -> ParameterData:
        return self._set(src)

    def zero_(self) -> ParameterData:
        return self._set(0)

    def fill_(self, value) -> ParameterData:
        return self._set(value)

    def clamp_(self, min=None, max=None) -> ParameterData:
        return self._set(np.clip(np.asarray(self), min, max))

    def normal_(self, mean=0.0, std=1.0) -> ParameterData:
        return self._set(generator().normal(mean, std, self.shape))

    def uniform_(self, a=0.0, b=1.0) -> ParameterData:
        return self._set(generator().uniform(a, b, self.shape))


class Parameter(Tensor):
    """A Tensor that is a trainable weight of a Module: it requires grad by default and
    assigning it to a Module attribute registers it. Wrapping a Tensor shares its memory.
    Its ``data`` is a :class:`ParameterData`, so ``p.data.add_(...)`` works as in PyTorch."""

    def __init__(self, data: ArrayLike | Tensor, requires_grad: bool = True, dtype: DTypeLike | None = None):
        super().__init__(data, requires_grad=requires_grad, dtype=dtype)

    @property
    def data(self) -> ParameterData:
        return self._data

    @data.setter
    def data(self, array) -> None:  # the same memory, seen through ParameterData's methods
        self._data = np.asarray(array).view(ParameterData)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


_IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


def _loads_into(incoming, own) -> bool:
    """Same dtype, or a float that widens to the model's without loss (bfloat16 -> float32)."""
    widens = is_float(incoming) and is_float(own) and np.dtype(incoming).itemsize < np.dtype(own).itemsize
    return incoming == own or widens


class RemovableHandle:
    """What registering a hook returns: ``.remove()`` takes the hook out again (twice is fine);
    also a context manager that removes it on exit."""

    _next_id = 0

    def __init__(self, hooks: dict):
        self.hooks, self.id = hooks, RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self) -> None:
        self.hooks.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc) -> bool:
        self.remove()
        return False


class Module:
    """Base class of every layer and model. Subclasses assign their parameters, buffers and
    sub-modules in ``__init__`` (after ``super().__init__()``) and define ``forward``."""

    def __init__(self):
        # object.__setattr__: our own __setattr__ needs these dictionaries to exist already.
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def forward(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover - the interface
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    # Hooks live in per-instance dicts created on first registration; until then these shared
    # empty ones make the check in __call__ one attribute read.
    _forward_pre_hooks: dict = {}
    _forward_hooks: dict = {}

    def __call__(self, *args, **kwargs):
        if not (self._forward_pre_hooks or self._forward_hooks):
            return self.forward(*args, **kwargs)
        for hook in list(self._forward_pre_hooks.values()):
            changed = hook(self, args)
            if changed is not None:
                args = changed if isinstance(changed, tuple) else (changed,)
        output = self.forward(*args, **kwargs)
        for hook, with_kwargs in list(self._forward_hooks.values()):
            changed = hook(self, args, kwargs, output) if with_kwargs else hook(self, args, output)
            if changed is not None:
                output = changed
        return output

    def register_forward_pre_hook(self, hook) -> RemovableHandle:
        """``hook(module, args)`` runs before ``forward``; a non-None result replaces the
        positional arguments (a tuple, or one value). Returns a handle with ``.remove()``."""
        return self._add_hook("_forward_pre_hooks", hook, hook)

    def register_forward_hook(self, hook, *, with_kwargs: bool = False) -> RemovableHandle:
        """``hook(module, args, output)`` (``with_kwargs=True``: ``hook(module, args, kwargs,
        output)``) runs after ``forward``; a non-None result replaces the output. Returns a
        handle with ``.remove()``."""
        return self._add_hook("_forward_hooks", (hook, bool(with_kwargs)), hook)

    def _add_hook(self, kind: str, entry, hook) -> RemovableHandle:
        if not callable(hook):
            raise TypeError(f"{kind.strip('_').replace('_', ' ')[:-1]} must be callable, got {type(hook).__name__}")
        if kind not in self.__dict__:
            object.__setattr__(self, kind, OrderedDict())
        handle = RemovableHandle(self.__dict__[kind])
        handle.hooks[handle.id] = entry
        return handle

    # ------------------------------------------------------------------ registration
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before assigning {name!r}")
        # Replacing a registered parameter or child keeps its slot (and so the order of
        # parameters(), state_dict() and a Sequential's layers), as in PyTorch.
        if isinstance(value, Parameter):
            if name not in self._parameters:
                self._forget(name)
            self._parameters[name] = value
        elif isinstance(value, Module):
            if name not in self._modules:
                self._forget(name)
            self._modules[name] = value
        elif name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"buffer {name!r} must be a Tensor or None, got {type(value).__name__}")
            self._buffers[name] = value
        elif name in self._parameters or name in self._modules:
            if value is not None:
                kind = "a Parameter" if name in self._parameters else "a Module"
                raise TypeError(
                    f"{name!r} holds {kind}; cannot replace it with a {type(value).__name__} "
                    "(wrap tensors in nn.Parameter)"
                )
            (self._parameters if name in self._parameters else self._modules)[name] = None
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name):
        """Drops ``name`` from every registry, so re-assigning a name can change its kind."""
        self.__dict__.pop(name, None)
        for registry in (self._parameters, self._buffers, self._modules):
            registry.pop(name, None)
        self._non_persistent.discard(name)

    def __getattr__(self, name):
        # Only called when normal lookup fails, i.e. for registered state.
        for registry in ("_parameters", "_buffers", "_modules"):
            entries = self.__dict__.get(registry)
            if entries is not None and name in entries:
                return entries[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name):
        for registry in (self._parameters, self._buffers, self._modules):
            if name in registry:
                del registry[name]
                self._non_persistent.discard(name)
                return
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Registers ``param`` (or None: a declared but absent parameter, like ``bias=False``)."""
        _check_name(self, name)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"parameter {name!r} must be an nn.Parameter or None, got {type(param).__name__}")
        self._forget(name)
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Registers state that is saved with the model but not trained (running statistics).
        ``persistent=False`` keeps it out of ``state_dict``."""
        _check_name(self, name)
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"buffer {name!r} must be a Tensor or None, got {type(tensor).__name__}")
        self._forget(name)
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        _check_name(self, name)
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{name!r}: {type(module).__name__} is not a Module")
        self._forget(name)
        self._modules[name] = module

    def get_submodule(self, target: str) -> Module:
        """The sub-module at the dotted path ``target`` (``"layer1.0.conv1"``; ``""`` is self)."""
        module = self
        for part in target.split(".") if target else []:
            child = module._modules.get(part)
            if child is None:
                raise AttributeError(f"{type(module).__name__} has no sub-module {part!r} (path {target!r})")
            module = child
        return module

    def set_submodule(self, target: str, module: Module) -> None:
        """Replaces the sub-module at the dotted path ``target`` by ``module``, in the same slot:
        a new classifier head stays last, a replaced layer of a Sequential keeps its index."""
        if not target:
            raise ValueError("set_submodule: the target path is empty")
        if not isinstance(module, Module):
            raise TypeError(f"set_submodule: {target!r} must be given a Module, got {type(module).__name__}")
        parent_path, _, name = target.rpartition(".")
        parent = self.get_submodule(parent_path)
        if name not in parent._modules:
            raise AttributeError(f"{type(parent).__name__} has no sub-module {name!r} (path {target!r})")
        parent._modules[name] = module

    # ------------------------------------------------------------------ traversal
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module and every descendant, depth first, each once."""
        seen, stack = set(), [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [(f"{name}.{n}" if name else n, m) for n, m in module._modules.items() if m is not None]
            stack.extend(reversed(children))

    def modules(self) -> Iterator[Module]:
        return (m for _, m in self.named_modules())

    def named_children(self) -> Iterator[tuple[str, Module]]:
        return ((n, m) for n, m in self._modules.items() if m is not None)

    def children(self) -> Iterator[Module]:
        return (m for _, m in self.named_children())

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter) pairs; a parameter shared by two modules appears once."""
        yield from self._named_state("_parameters", prefix, recurse)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        return (p for _, p in self.named_parameters(recurse=recurse))

    def named_buffers(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Tensor]]:
        yield from self._named_state("_buffers", prefix, recurse)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        return (b for _, b in self.named_buffers(recurse=recurse))

    def _named_state(self, registry, prefix, recurse):
        seen = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for module_name, module in modules:
            for name, value in getattr(module, registry).items():
                if value is None or id(value) in seen:
                    continue
                seen.add(id(value))
                yield (f"{module_name}.{name}" if module_name else name), value

    # ------------------------------------------------------------------ modes and bulk changes
    def train(self, mode: bool = True) -> Module:
        """Training mode (dropout drops, batch-norm uses and updates batch statistics)."""
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self) -> Module:
        """Inference mode: the same as ``train(False)``."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Freezes (False) or unfreezes every parameter: frozen ones get no gradient, so their
        weight-gradient GEMMs are skipped (the tape's ``needs_input_grad``)."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clears every parameter's gradient (None by default, which also frees the memory)."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad.data.fill(0)

    def apply(self, fn: Callable[[Module], object]) -> Module:
        """Calls ``fn(module)`` on every sub-module, children before parents, then on self
        (e.g. ``model.apply(init_weights)``)."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def to(self, *args, **kwargs) -> Module:
        """``to(dtype)``, ``to(device)``, ``to(device, dtype)`` (and ``dtype=``/``device=``) as
        PyTorch; only the CPU exists, so a device changes nothing. Converts floating-point
        parameters and buffers to ``dtype`` in place (the Parameter objects stay the same, so an
        optimiser built before still holds them)."""
        dtype = kwargs.pop("dtype", None)
        for value in (*args, kwargs.pop("device", None)):
            if value is None:
                continue
            if is_device(value):
                device(value)  # raises for anything but the CPU
            else:
                dtype = value
        kwargs.pop("non_blocking", None)
        if kwargs:
            raise TypeError(f"Module.to() got unexpected keyword arguments {sorted(kwargs)}")
        if dtype is None:
            return self
        dtype = as_dtype(dtype)
        if not is_float(dtype):
            raise TypeError(f"Module.to expects a float dtype or a device, got {dtype}")
        with no_grad():
            for t in list(self.parameters()) + list(self.buffers()):
                if is_float(t.dtype) and t.dtype != dtype:
                    t.data = t.data.astype(dtype)
                    t.mark_modified()
                    if t.grad is not None:
                        t.grad = Tensor(t.grad.data.astype(dtype))
        return self

    def cpu(self) -> Module:
        return self

    def double(self) -> Module:
        return self.to(np.float64)

    def float(self) -> Module:
        return self.to(np.float32)

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> OrderedDict:
        """Every parameter and persistent buffer by dotted name (PyTorch's keys and order:
        a module's own parameters, then its buffers, then each child's). Values are Tensors
        that share memory with the model: save or copy them, do not modify them."""
        state = OrderedDict()
        for module_name, module in self.named_modules():
            prefix = f"{module_name}." if module_name else ""
            for name, p in module._parameters.items():
                if p is not None:
                    state[prefix + name] = p.detach()
            for name, b in module._buffers.items():
                if b is not None and name not in module._non_persistent:
                    state[prefix + name] = b.detach()
        return state

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> _IncompatibleKeys:
        """Copies values into this model's parameters and buffers, in place.

        Values may be minigrad Tensors, numpy arrays or anything numpy can convert (a PyTorch
        tensor, for instance). Every key must name an existing entry with the same shape and
        dtype, except that a float widens to the model's wider float dtype, which loses nothing (a
        PyTorch bfloat16 checkpoint loads into a float32 model); with ``strict=True`` the key sets must also match exactly. All problems are
        reported in one error before anything is copied. Returns (missing_keys, unexpected_keys)."""
        own = self.state_dict()
        incoming = {key: _to_array(value) for key, value in state_dict.items()}
        missing = [k for k in own if k not in incoming]
        unexpected = [k for k in incoming if k not in own]
        mismatched = [
            f"{k}: checkpoint {incoming[k].shape} {incoming[k].dtype}, model {own[k].shape} {own[k].dtype}"
            for k in own
            if k in incoming and (incoming[k].shape != own[k].shape or not _loads_into(incoming[k].dtype, own[k].dtype))
        ]
        problems = []
        if mismatched:
            problems.append("shape or dtype mismatch:\n    " + "\n    ".join(mismatched))
        if strict and missing:
            problems.append("missing keys: " + ", ".join(missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(unexpected))
        if problems:
            raise KeyError(f"Error loading state_dict into {type(self).__name__}:\n  " + "\n  ".join(problems))
        targets = dict(self.named_parameters())
        targets.update(self.named_buffers())
        with no_grad():
            for key, array in incoming.items():
                if key in own:
                    targets[key].copy_(array)
        return _IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------ printing
    def extra_repr(self) -> str:
        """The layer's settings, shown inside the parentheses of its repr."""
        return ""

    def __repr__(self):
        lines = []
        for name, module in self._modules.items():
            child = repr(module).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child}")
        head = f"{type(self).__name__}({self.extra_repr()}"
        return head + ("\n" + "\n".join(lines) + "\n)" if lines else ")")


def _check_name(module, name):
    if not isinstance(name, str) or not name or "." in name:
        raise KeyError(f"invalid name {name!r}: names must be non-empty strings without dots")
    if name in module.__dict__:
        raise KeyError(f"attribute {name!r} already exists on {type(module).__name__}")


def _to_array(value) -> np.ndarray:
    if isinstance(value, Tensor):
        return value.data
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a PyTorch tensor
        return value.detach().cpu().numpy()
    return np.asarray(value)


# ---------------------------------------------------------------------------- containers
class Sequential(Module):
    """Runs its modules in order: ``Sequential(m0, m1, ...)`` or ``Sequential(OrderedDict(...))``.
    Indexing returns a module, slicing a new Sequential sharing the same modules."""

    def __init__(self, *modules: Module):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], (dict, OrderedDict)):
            for name, module in modules[0].items():
                self.add_module(name, module)
        else:
            for index, module in enumerate(modules):
                self.add_module(str(index), module)

    def forward(self, x: Tensor) -> Tensor:
        for module in self._modules.values():
            x = module(x)
        return x

    def __getitem__(self, index):
        items = list(self._modules.items())
        if isinstance(index, slice):
            return Sequential(OrderedDict(items[index]))
        return items[_position(index, len(items), "Sequential")][1]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module: Module) -> Sequential:
        self.add_module(str(len(self)), module)
        return self


class ModuleList(Module):
    """A list of modules whose parameters are registered (a plain Python list would hide them)."""

    def __init__(self, modules: Iterable[Module] = ()):
        super().__init__()
        self.extend(modules)

    def __getitem__(self, index):
        values = list(self._modules.values())
        if isinstance(index, slice):
            return ModuleList(values[index])
        return values[_position(index, len(values), "ModuleList")]

    def __setitem__(self, index, module):
        self.add_module(str(_position(index, len(self), "ModuleList")), module)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module: Module) -> ModuleList:
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        for module in modules:
            self.append(module)
        return self


class ModuleDict(Module):
    """A dict of modules whose parameters are registered; keys keep insertion order."""

    def __init__(self, modules: Mapping[str, Module] | None = None):
        super().__init__()
        for name, module in dict(modules or {}).items():
            self[name] = module

    def __getitem__(self, name):
        return self._modules[name]

    def __setitem__(self, name, module):
        self.add_module(name, module)

    def __delitem__(self, name):
        del self._modules[name]

    def __contains__(self, name):
        return name in self._modules

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def keys(self) -> KeysView[str]:
        return self._modules.keys()

    def values(self) -> ValuesView[Module]:
        return self._modules.values()

    def items(self) -> ItemsView[str, Module]:
        return self._modules.items()


def _position(index, length, kind) -> int:
    if not isinstance(index, (int, np.integer)):
        raise TypeError(f"{kind} indices must be integers or slices, not {type(index).__name__}")
    if not -length <= index < length:
        raise IndexError(f"{kind} index {index} is out of range for length {length}")
    return int(index) % length
