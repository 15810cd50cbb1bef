"""The package's layers, read from its source with `ast`: data flows text -> AST -> IR -> backends, so nothing
outside circuitdsl/backends/ (but the public entry points) imports a backend, and IR expressions are walked by one
module only (circuitdsl/ir/expr.py: `children`, `walk`, `fold`, `transform`).

A hand-written walker is recognised as a function that calls itself and either tests a node against one of the
IR's inner expression classes (those with subexpressions: `Unary`, `Binary`, `Call`, `Cond`, ... of
circuitdsl/ir/model.py) or takes an IR `Expr` argument.  Walkers over the language's syntax tree (circuitdsl/ast.py, whose classes share some names) are not
IR walkers and are allowed.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import get_args

import pytest

from circuitdsl.ir import model

PACKAGE = Path(__file__).resolve().parent.parent / "circuitdsl"
FILES = sorted(PACKAGE.rglob("*.py"))
MAY_IMPORT_BACKENDS = {"__init__.py", "api.py"}  # the public entry points: compile() picks a backend
WALKER_MODULE = "ir/expr.py"
IR_MODEL = "circuitdsl.ir.model"
_EXPR = get_args(model.Expr)[0]  # the union of expression classes
INNER_NODES = {cls.__name__ for cls in get_args(_EXPR) for f in cls.model_fields.values()
               if {_EXPR, model.Expr} & {f.annotation, *get_args(f.annotation)}}  # an Expr, or a list of them
"""The IR's expression classes with subexpressions (read from the model, so a new kind of node is covered)."""


def _module_of(node: ast.ImportFrom, path: str) -> str:
    """The absolute module an import-from names (a relative one resolved against the file's package)."""
    if not node.level:
        return node.module or ""
    package = ["circuitdsl", *Path(path).parent.parts][: len(Path(path).parent.parts) + 2 - node.level]
    return ".".join([*package, *([node.module] if node.module else [])])


def backend_imports(source: str, path: str) -> list[str]:
    """Each import of circuitdsl.backends (or of something in it) in `source`, as 'line: module'."""
    found = []
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = _module_of(node, path)
            names = [module] + [f"{module}.{alias.name}" for alias in node.names]
        if any(name == "circuitdsl.backends" or name.startswith("circuitdsl.backends.") for name in names):
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def _ir_names(tree: ast.AST, path: str) -> tuple[set[str], set[str]]:
    """Names bound to the IR's expression classes (`from circuitdsl.ir.model import Binary as B`) and to the
    IR model module itself (`from circuitdsl.ir import model as ir`)."""
    classes: set[str] = set()
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and _module_of(node, path) == IR_MODEL:
            classes |= {alias.asname or alias.name for alias in node.names if alias.name in INNER_NODES | {"Expr"}}
        elif isinstance(node, ast.ImportFrom) and _module_of(node, path) == "circuitdsl.ir":
            modules |= {alias.asname or alias.name for alias in node.names if alias.name == "model"}
        elif isinstance(node, ast.Import):
            modules |= {alias.asname for alias in node.names if alias.name == IR_MODEL and alias.asname}
    return classes, modules


def _reads_ir(tree: ast.AST, classes: set[str], modules: set[str], wanted: set[str]) -> bool:
    """Whether `tree` names one of the `wanted` IR classes (bare, or as an attribute of the IR model module)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in classes and node.id in wanted:
            return True
        if isinstance(node, ast.Attribute) and node.attr in wanted and isinstance(node.value, ast.Name) \
                and node.value.id in modules:
            return True
    return False


def _calls_itself(function: ast.FunctionDef) -> bool:
    called = {c.func.id if isinstance(c.func, ast.Name) else c.func.attr for c in ast.walk(function)
              if isinstance(c, ast.Call) and isinstance(c.func, ast.Name | ast.Attribute)}
    return function.name in called


def recursive_walkers(source: str, path: str) -> list[str]:
    """Each function in `source` that walks IR expressions by calling itself, as 'line: name'."""
    tree = ast.parse(source)
    classes, modules = _ir_names(tree, path)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef) or not _calls_itself(node):
            continue
        annotations = [a.annotation for a in [*node.args.args, *node.args.kwonlyargs] if a.annotation is not None]
        if _reads_ir(ast.Module(body=node.body, type_ignores=[]), classes, modules, INNER_NODES) or any(
                _reads_ir(a, classes, modules, {"Expr"}) for a in annotations):
            found.append(f"{node.lineno}: {node.name}")
    return found


def _relative(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


@pytest.mark.parametrize("path", FILES, ids=_relative)
def test_only_the_backends_and_the_entry_points_import_a_backend(path: Path) -> None:
    name = _relative(path)
    if name.startswith("backends/") or name in MAY_IMPORT_BACKENDS:
        return
    found = backend_imports(path.read_text(encoding="utf-8"), name)
    assert not found, f"circuitdsl/{name} imports a backend:\n" + "\n".join(found)


@pytest.mark.parametrize("path", FILES, ids=_relative)
def test_ir_expressions_are_walked_by_one_module(path: Path) -> None:
    name = _relative(path)
    if name == WALKER_MODULE:
        return
    found = recursive_walkers(path.read_text(encoding="utf-8"), name)
    assert not found, (f"circuitdsl/{name} walks IR expressions by hand (use circuitdsl/ir/expr.py's walk / fold / "
                       "transform):\n" + "\n".join(found))


# ---- the checkers themselves ---------------------------------------------------------------------------
def test_the_inner_nodes_are_read_from_the_model() -> None:
    assert {"Unary", "Binary", "Call", "Cond"} <= INNER_NODES
    assert not INNER_NODES & {"Const", "Var", "Ref", "Shared"}


@pytest.mark.parametrize("source", [
    "import circuitdsl.backends.torch_backend",
    "from circuitdsl.backends.step import evaluate",
    "from circuitdsl import backends",
    "from ..backends import plan",
    "def f():\n    from circuitdsl.backends import compile_circuit\n    return compile_circuit",
])
def test_backend_import_checker_finds(source: str) -> None:
    assert backend_imports(source, "connectome/wiring.py")


@pytest.mark.parametrize("source", [
    "import circuitdsl",
    "from circuitdsl import compile",
    "from circuitdsl.ir import expr",
    "from .backend_names import X",
    "'circuitdsl.backends'",
])
def test_backend_import_checker_allows(source: str) -> None:
    assert backend_imports(source, "connectome/wiring.py") == []


WALKERS = [
    ("from circuitdsl.ir.model import Binary, Ref\n"
     "def refs(e):\n    if isinstance(e, Binary):\n        return refs(e.left) + refs(e.right)\n    return [e]"),
    ("from circuitdsl.ir import model as ir\n"
     "def depth(e):\n    return 1 + max(depth(e.left), depth(e.right)) if isinstance(e, ir.Binary) else 1"),
    ("from circuitdsl.ir.model import Expr\n"
     "class Printer:\n    def text(self, e: Expr) -> str:\n        return ' '.join(self.text(k) for k in kids(e))"),
    ("from ..ir.model import Cond\n"
     "def f(e):\n    return f(e.then) if isinstance(e, Cond) else e"),
]


@pytest.mark.parametrize("source", WALKERS)
def test_walker_checker_finds(source: str) -> None:
    assert recursive_walkers(source, "elaborate/x.py")


@pytest.mark.parametrize("source", [
    # the syntax tree's classes share names with the IR's: walking it by hand is fine
    "from circuitdsl import ast\ndef f(e: ast.Expr):\n    return f(e.left) if isinstance(e, ast.Binary) else e",
    # one IR node looked at, no recursion
    "from circuitdsl.ir.model import Binary\ndef f(e):\n    return e.left if isinstance(e, Binary) else e",
    # a fold's visitor: the walk is ir/expr.py's
    ("from circuitdsl.ir.expr import fold\nfrom circuitdsl.ir.model import Binary\n"
     "def f(e):\n    return fold(e, lambda n, kids: sum(kids) if isinstance(n, Binary) else 1)"),
])
def test_walker_checker_allows(source: str) -> None:
    assert recursive_walkers(source, "elaborate/x.py") == []
