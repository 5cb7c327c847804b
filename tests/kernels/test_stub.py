"""minigrad/_C.pyi must describe the compiled module exactly: the same entry points in _C and
_C.ref (and constants), each with the parameter names, order and keyword-only markers that
pybind11 bound (read from the signature line pybind11 writes into each __doc__)."""

import ast
import pathlib

import pytest

from minigrad import _C

STUB = pathlib.Path(_C.__file__).with_name("_C.pyi")
if not STUB.exists():  # an installed wheel keeps the stub beside the module; a dev tree beside the sources
    STUB = pathlib.Path(__file__).parents[2] / "minigrad" / "_C.pyi"


def stub_entries():
    """{module: {name: ast.FunctionDef or ast.AnnAssign}} for _C and _C.ref (class _Ref)."""
    tree = ast.parse(STUB.read_text())
    top, ref = {}, {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            top[node.name] = node
        elif isinstance(node, ast.AnnAssign) and not node.target.id.startswith("_"):
            top[node.target.id] = node
        elif isinstance(node, ast.ClassDef) and node.name == "_Ref":
            ref = {f.name: f for f in node.body if isinstance(f, ast.FunctionDef)}
    return {"_C": top, "_C.ref": ref}


def bound_names(module):
    return {name for name in dir(module) if not name.startswith("__")}


def parameters(fn: ast.FunctionDef):
    """(positional-or-keyword names, keyword-only names)."""
    a = fn.args
    return [p.arg for p in a.posonlyargs + a.args], [p.arg for p in a.kwonlyargs]


def bound_signature(fn) -> ast.FunctionDef:
    """The first line of a pybind11 __doc__ is ``name(arg: type = default, *, ...) -> type``,
    valid Python once prefixed with ``def`` and suffixed with ``: ...``."""
    line = fn.__doc__.splitlines()[0]
    return ast.parse(f"def {line}: ...").body[0]


def test_stub_names_exactly_the_bound_entry_points():
    entries = stub_entries()
    assert set(entries["_C"]) == bound_names(_C)
    assert set(entries["_C.ref"]) == bound_names(_C.ref)


@pytest.mark.parametrize("module_name", ["_C", "_C.ref"])
def test_stub_parameters_match_the_bindings(module_name):
    module = _C if module_name == "_C" else _C.ref
    for name, node in stub_entries()[module_name].items():
        bound = getattr(module, name)
        if not callable(bound) or isinstance(bound, type(_C)):
            assert isinstance(node, ast.AnnAssign), name  # a constant or the ref submodule
            continue
        assert isinstance(node, ast.FunctionDef), name
        signature = bound_signature(bound)
        assert signature.name == name
        assert parameters(node) == parameters(signature), f"{module_name}.{name}"
        # Defaults: the same parameters have one (pybind11 writes lists for tuples; compare which, not what).
        assert len(node.args.defaults) == len(signature.args.defaults), f"{module_name}.{name}"
        assert [d is None for d in node.args.kw_defaults] == [d is None for d in signature.args.kw_defaults]
        assert ast.get_docstring(node), f"{module_name}.{name} has no docstring in the stub"
        assert node.returns is not None, f"{module_name}.{name} has no return type in the stub"
