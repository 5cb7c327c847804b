"""Import paths of modules that moved, kept working: ``import minigrad.transfer`` gives the
module ``minigrad.strategies.transfer`` itself (one module object, not a copy), loaded only
when first imported. A meta path finder, so no placeholder files stand where the modules were."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

MOVED = {
    f"minigrad.{name}": f"minigrad.strategies.{name}"
    for name in ("transfer", "multitask", "distill", "adversarial", "tune")
}
MOVED["minigrad.data.curriculum"] = "minigrad.strategies.curriculum"


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        return importlib.import_module(MOVED[spec.name])  # the import system files it under the old name too

    def exec_module(self, module):
        pass  # already executed under its new name


def install() -> None:
    if not any(isinstance(finder, _Alias) for finder in sys.meta_path):
        sys.meta_path.append(_Alias())
