"""The package's shape, checked: small files and functions, and one seam between the pool's
integrations and its machinery (no reaching into another module's private members)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "poolwarden"
MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 60
#: The modules that must use only the engine's interface (and their own members).
SEAM_USERS = [
    *sorted((PACKAGE / "sqlalchemy").glob("*.py")),
    PACKAGE / "_async" / "_proxy.py",
    PACKAGE / "_sync" / "_proxy.py",
]


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _functions(tree: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def _is_cli_command(path: Path, function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """The command functions of the CLI: one option per parameter, so they run long."""
    return path.parent.name == "cli" and function.name.endswith("_command")


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_files_and_functions_stay_small(path: Path) -> None:
    text = path.read_text()
    assert len(text.splitlines()) <= MAX_FILE_LINES, f"{path.name}: split it"
    long = [
        f"{f.name} ({(f.end_lineno or f.lineno) - f.lineno + 1} lines)"
        for f in _functions(ast.parse(text))
        if (f.end_lineno or f.lineno) - f.lineno + 1 > MAX_FUNCTION_LINES
        and not _is_cli_command(path, f)
    ]
    assert not long, f"{path.name}: functions over {MAX_FUNCTION_LINES} lines: {long}"


def _private_members() -> dict[str, set[Path]]:
    """Each private member name (``_x``) and the modules whose classes define it: as a
    method, or as an attribute assigned through ``self``."""
    defined: dict[str, set[Path]] = defaultdict(set)
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = node.name
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.ctx, ast.Store)
                and isinstance(node.value, ast.Name)
                and node.value.id == "self"
            ):
                name = node.attr
            else:
                continue
            if name.startswith("_") and not name.startswith("__"):
                defined[name].add(path)
    return defined


@pytest.mark.parametrize("path", SEAM_USERS, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_integrations_use_no_private_member_of_another_module(path: Path) -> None:
    """``poolwarden.sqlalchemy`` and the proxies go through the engine's documented
    interface: a private name they read on an object other than ``self`` must be one their
    own module defines (SQLAlchemy's own private members are SQLAlchemy's interface for a
    QueuePool subclass, and defined in no poolwarden module)."""
    defined = _private_members()
    tree = ast.parse(path.read_text())
    foreign = sorted(
        {
            f"line {node.lineno}: .{node.attr}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
            and defined.get(node.attr)
            and path not in defined[node.attr]
        }
    )
    imported = sorted(
        f"line {node.lineno}: import {alias.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.level > 0
        for alias in node.names
        if alias.name.startswith("_") and alias.name != "__version__"
    )
    assert not foreign + imported, f"{path.name} reaches into other modules: {foreign + imported}"


def test_the_engine_documents_its_interface() -> None:
    """Every public method of the engine is named in its module docstring."""
    from poolwarden._async import _engine

    doc = _engine.__doc__ or ""
    public = [
        name
        for name, value in vars(_engine.AsyncPoolEngine).items()
        if callable(value) and not name.startswith("_")
    ]
    missing = [name for name in public if f"AsyncPoolEngine.{name}`" not in doc]
    assert public and not missing, f"not in poolwarden._async._engine's docstring: {missing}"
