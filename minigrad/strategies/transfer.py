"""Transfer learning: reuse a network trained on one task as the starting point for another.

The lecture's recipe, in the order one usually tries it:

1. **Feature extractor.** Keep the pre-trained layers fixed (:func:`freeze`), put a new
   classifier on top (:func:`replace_head`) and train only that. Works with very few labels.
2. **Fine-tune the top layers.** With more labels, also train the last pre-trained layers,
   with a *smaller* learning rate than the fresh head so the useful features are adjusted,
   not overwritten (:func:`param_groups` builds the optimiser's groups).
3. **Fine-tune everything**, again with a small learning rate for the pre-trained part.

A frozen parameter has ``requires_grad=False``: the tape gives it no gradient (and skips the
weight-gradient GEMM that would compute one), and optimisers skip parameters without a
gradient, so it stays exactly as loaded.

    model = minigrad.models.lenet5(); model.load_state_dict(minigrad.load("pretrained.safetensors"))
    replace_head(model, nn.Linear(84, 5))
    freeze(model[:9])                                  # everything below the last two Linear layers
    optimizer = optim.Adam(param_groups(model, {model[:9]: 1e-4}, lr=1e-3))
"""

from __future__ import annotations

from collections.abc import Iterable

from .. import nn
from ..tensor import Tensor


def _parameters(modules) -> list[Tensor]:
    """The parameters of a Module, of several Modules, or the Tensors themselves."""
    if isinstance(modules, (nn.Module, Tensor)):
        modules = [modules]
    params = []
    for item in modules:
        if isinstance(item, nn.Module):
            params.extend(item.parameters())
        elif isinstance(item, Tensor):
            params.append(item)
        else:
            raise TypeError(f"expected Modules or Tensors, got {type(item).__name__}")
    return params


def freeze(modules) -> None:
    """Stops training of ``modules`` (a Module, a list of Modules, or parameters): their
    parameters get ``requires_grad=False``, so they receive no gradient and never change.
    Batch-norm layers keep updating their running statistics in training mode; call
    ``.eval()`` on them as well to fix those."""
    for p in _parameters(modules):
        p.requires_grad_(False)


def unfreeze(modules) -> None:
    """Makes ``modules`` trainable again (``requires_grad=True``)."""
    for p in _parameters(modules):
        p.requires_grad_(True)


def trainable_parameters(model: nn.Module) -> list[Tensor]:
    """The parameters that currently require grad, in ``named_parameters`` order."""
    return [p for p in model.parameters() if p.requires_grad]


def replace_head(model: nn.Module, head: nn.Module, name: str | None = None) -> nn.Module:
    """Puts ``head`` in place of the model's classifier and returns the old one.

    ``name`` is the attribute holding the head (``"fc"`` for the ResNets); by default the last
    module of a ``Sequential`` (LeNet-5, ``mlp``) or the ``fc`` attribute. The new head is
    trainable whatever was frozen before."""
    if name is None:
        if isinstance(model, nn.Sequential):
            name = list(dict(model.named_children()))[-1]
        elif "fc" in dict(model.named_children()):
            name = "fc"
        else:
            raise ValueError(
                f"replace_head: cannot tell which sub-module of {type(model).__name__} is the head; "
                f"pass name= one of {', '.join(dict(model.named_children()))}"
            )
    children = dict(model.named_children())
    if name not in children:
        raise ValueError(
            f"replace_head: {type(model).__name__} has no sub-module {name!r} (it has {', '.join(children)})"
        )
    if not isinstance(head, nn.Module):
        raise TypeError(f"replace_head: the new head must be a Module, got {type(head).__name__}")
    old = children[name]
    model.set_submodule(name, head)
    unfreeze(head)
    return old


def param_groups(model: nn.Module, lrs: dict, lr: float) -> list[dict]:
    """Optimiser parameter groups giving some parts of ``model`` their own learning rate.

    ``lrs`` maps sub-modules (or lists of parameters) to a learning rate, e.g. the pre-trained
    layers to one ten times smaller than the head's; every other trainable parameter gets
    ``lr``. Frozen parameters are left out; each group lists its parameters in the model's
    order, so optimiser state dicts stay stable. Empty groups are dropped.

    >>> optim.SGD(param_groups(model, {model.layer3: 0.001}, lr=0.01), lr=0.01, momentum=0.9)
    """
    trainable = trainable_parameters(model)
    position = {id(p): i for i, p in enumerate(trainable)}
    claimed: dict[int, object] = {}
    groups = []
    for part, part_lr in lrs.items():
        mine = [p for p in _parameters(part) if p.requires_grad]
        for p in mine:
            if id(p) not in position:
                raise ValueError("param_groups: a parameter in lrs is not a parameter of the model")
            if id(p) in claimed:
                raise ValueError(
                    f"param_groups: a parameter is listed under two learning rates ({claimed[id(p)]} and {part_lr})"
                )
            claimed[id(p)] = part_lr
        groups.append({"params": sorted(mine, key=lambda p: position[id(p)]), "lr": float(part_lr)})
    rest = [p for p in trainable if id(p) not in claimed]
    groups.append({"params": rest, "lr": float(lr)})
    return [g for g in groups if g["params"]]


def _count(params: Iterable[Tensor]) -> int:
    return sum(p.numel() for p in params)


def summary(model: nn.Module) -> str:
    """One line: how many parameters are trainable and how many frozen."""
    params = list(model.parameters())
    trainable = _count(p for p in params if p.requires_grad)
    return f"{trainable:,} trainable / {_count(params) - trainable:,} frozen parameters"
