"""Modules of the package meet only at public names.

A module that imports another module's underscore name, or a scale-out module that calls an underscore
method of an object other than ``self``, depends on an internal that its owner may change without notice;
the seams between modules are public, documented names instead.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "riskmodel"
MODULES = sorted(PACKAGE.rglob("*.py"))


def _dotted(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _internal(node: ast.ImportFrom) -> bool:
    """Whether ``node`` imports from a module of the package: a relative import or ``riskmodel...``."""
    return node.level > 0 or (node.module or "").split(".")[0] == "riskmodel"


def private_imports(tree: ast.AST) -> list[str]:
    """Underscore names that ``tree`` imports from modules of the package."""
    return [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and _internal(node)
        for alias in node.names
        if _private(alias.name)
    ]


def private_calls(tree: ast.AST) -> list[str]:
    """Underscore methods that ``tree`` calls on objects other than ``self``."""
    return [
        ast.unparse(node.func)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and _private(node.func.attr)
        and not (isinstance(node.func.value, ast.Name) and node.func.value.id == "self")
    ]


def _parse(path: Path) -> ast.AST:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def test_the_package_is_found():
    assert {"riskmodel.serving", "riskmodel.scaleout.executor"} <= {_dotted(path) for path in MODULES}


@pytest.mark.parametrize("path", MODULES, ids=_dotted)
def test_no_module_imports_another_modules_private_name(path):
    names = private_imports(_parse(path))
    assert not names, f"{_dotted(path)} imports private names of the package: {', '.join(names)}"


@pytest.mark.parametrize("path", [p for p in MODULES if "scaleout" in p.relative_to(PACKAGE).parts], ids=_dotted)
def test_scaleout_calls_no_private_method_of_another_object(path):
    calls = private_calls(_parse(path))
    assert not calls, f"{_dotted(path)} calls private methods of other objects: {', '.join(calls)}"


@pytest.mark.parametrize(
    "source, found",
    [
        ("from .x import _y, z", ["_y"]),
        ("from ..x import _y", ["_y"]),
        ("from riskmodel.x import _y", ["_y"]),
        ("from riskmodel import __version__", []),
        ("from sklearn.base import _fit_context", []),
    ],
)
def test_private_imports_are_recognised(source, found):
    assert private_imports(ast.parse(source)) == found


@pytest.mark.parametrize(
    "source, found",
    [
        ("model._validate_params()", ["model._validate_params"]),
        ("a.b._c(1)", ["a.b._c"]),
        ("self._fit()", []),
        ("frame._meta", []),
        ("obj.__len__()", []),
    ],
)
def test_private_calls_are_recognised(source, found):
    assert private_calls(ast.parse(source)) == found
