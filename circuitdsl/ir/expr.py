"""IR expressions as a small algebra: their children, walks, folds and rebuilds, and a reference evaluator.

This is the one place that knows the shape of every expression node; everything else that looks inside an
expression (the graph view, diagrams, statistics, the connectome's weight formulas, the backends) goes through
`children` / `walk` / `fold` / `transform`.  The walkers are iterative, so an expression nested thousands deep
(a long chain of `let`s) needs no Python recursion.

A `Shared(index)` node reads entry `index` of a circuit's shared table (`CircuitIR.shared`); an entry reads only
earlier entries, so a table is a DAG in topological order.  Walks pass the table as `shared`: `walk` can descend
into an entry (once each), `fold` and `evaluate` compute an entry's value once however often it is read.

`evaluate` is the reference semantics over numpy: every node and every function of circuitdsl/functions.py,
with the conventions the backends share (arrays batch-first, 0/1 floats for truth values, a reduction's axis
size passed as its last argument).  Tests use it as a reference backend; elaboration uses it for per-synapse
data.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping, Sequence
from typing import Any, Final, TypeVar

import numpy as np

from circuitdsl.ir import axes
from circuitdsl.ir.composite import bind
from circuitdsl.ir.model import (
    Binary,
    Call,
    Cond,
    Const,
    Contract,
    Expr,
    Rearrange,
    Reduce,
    Ref,
    Shared,
    Softmax,
    Unary,
    Var,
)
from circuitdsl.ir.primitives import NUMPY

T = TypeVar("T")
Lookup = Callable[[Var | Ref], Any]


# ---- structure -----------------------------------------------------------------------------------


def children(expr: Expr) -> tuple[Expr, ...]:
    """The direct subexpressions of a node, in reading order (none for leaves: Const, Var, Ref, Shared)."""
    kids = _CHILDREN.get(type(expr))
    return () if kids is None else kids(expr)


_CHILDREN: Final[dict[type, Callable[[Any], tuple[Expr, ...]]]] = {
    Unary: lambda e: (e.x,),
    Binary: lambda e: (e.left, e.right),
    Call: lambda e: tuple(e.args),
    Cond: lambda e: (e.cond, e.then, e.other),
    Reduce: lambda e: (e.x,),
    Softmax: lambda e: (e.x,),
    Contract: lambda e: (e.left, e.right),
    Rearrange: lambda e: (e.x,),
}


def with_children(expr: Expr, new: Sequence[Expr]) -> Expr:
    """The node with its children replaced by `new` (same count and order as `children`); unchanged children
    give back the node itself."""
    old = children(expr)
    if len(new) != len(old):
        raise ValueError(f"{type(expr).__name__} has {len(old)} children, not {len(new)}")
    if all(a is b for a, b in zip(old, new, strict=True)):
        return expr
    if isinstance(expr, Unary):
        return Unary(op=expr.op, x=new[0])
    if isinstance(expr, Binary):
        return Binary(op=expr.op, left=new[0], right=new[1])
    if isinstance(expr, Call):
        return Call(fn=expr.fn, args=list(new))
    if isinstance(expr, Reduce | Softmax | Rearrange):
        return expr.model_copy(update={"x": new[0]})
    if isinstance(expr, Contract):
        return expr.model_copy(update={"left": new[0], "right": new[1]})
    assert isinstance(expr, Cond)
    return Cond(cond=new[0], then=new[1], other=new[2])


def head(expr: Expr) -> tuple[object, ...]:
    """What an inner node is apart from its children (its kind and operator or function), for comparisons."""
    if isinstance(expr, Unary | Binary):
        return expr.node, expr.op
    if isinstance(expr, Call):
        return expr.node, expr.fn, len(expr.args)
    if isinstance(expr, axes.AXIS_NODES):  # everything but the operands
        return expr.node, expr.model_dump_json(exclude={"x", "left", "right"})
    return (expr.node,)


def match(a: Expr, b: Expr, leaves: Callable[[Expr, Expr], bool]) -> bool:
    """Whether two expressions have the same structure (inner nodes of one head, children in order) and every
    pair of leaves at the same place satisfies `leaves` (a leaf against an inner node goes to `leaves` too)."""
    stack = [(a, b)]
    seen: set[tuple[int, int]] = set()
    while stack:
        x, y = stack.pop()
        if (id(x), id(y)) in seen:
            continue
        seen.add((id(x), id(y)))
        kx, ky = children(x), children(y)
        if not kx or not ky:
            if not leaves(x, y):
                return False
        elif head(x) != head(y):
            return False
        else:
            stack.extend(zip(kx, ky, strict=True))
    return True


def _entry(shared: Sequence[Expr], node: Shared) -> Expr:
    if not 0 <= node.index < len(shared):
        raise ValueError(f"shared entry {node.index} does not exist (the table has {len(shared)})")
    return shared[node.index]


def walk(expr: Expr, shared: Sequence[Expr] = (), follow_shared: bool = False) -> Iterator[Expr]:
    """Every node of `expr`, pre-order (a node before its children, children in reading order).

    With `follow_shared`, a `Shared` node is followed by its entry's nodes the first time that entry is met
    (each entry walked once); otherwise a `Shared` node is a leaf.  An inner node object met a second time (the
    elaborator builds a let read twice as one object under two parents) is yielded but not entered again, so a
    walk is linear in the objects, not in the tree they would print as."""
    seen: set[int] = set()
    entered: set[int] = set()
    stack = [expr]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, Shared):
            if follow_shared and node.index not in seen:
                seen.add(node.index)
                stack.append(_entry(shared, node))
        elif id(node) not in entered:
            kids = children(node)
            if kids:
                entered.add(id(node))
                stack.extend(reversed(kids))


def fold(expr: Expr, visit: Callable[[Expr, tuple[T, ...]], T], shared: Sequence[Expr] = (),
         memo: MutableMapping[int, T] | None = None, cut: Callable[[Expr], T | None] | None = None) -> T:
    """Post-order: `visit(node, results of its children)` for every node, bottom-up; the root's result.

    `cut(node)`, if given, is asked first, top-down in reading order: a result other than None is the node's
    value and its subexpressions are not entered (a diagram claims a whole subexpression as one label).

    A `Shared(index)` node is not visited: its value is the fold of its entry, computed once per `memo` (a
    dict from entry index to value; pass one to share values across several folds over the same table).  An
    inner node object met again (see `walk`) gives its first result without a second visit."""
    memo = {} if memo is None else memo
    done: dict[int, T] = {}
    results: list[T] = []
    stack: list[tuple[Expr, bool]] = [(expr, False)]
    while stack:
        node, expanded = stack.pop()
        claimed = None if expanded or cut is None else cut(node)
        if claimed is not None:
            results.append(claimed)
            continue
        if isinstance(node, Shared):
            if node.index in memo:
                results.append(memo[node.index])
            elif expanded:  # its entry's value is on top of the results
                memo[node.index] = results[-1]
            else:
                stack += [(node, True), (_entry(shared, node), False)]
            continue
        kids = children(node)
        if not expanded and id(node) in done:
            results.append(done[id(node)])
        elif kids and not expanded:
            stack.append((node, True))
            stack.extend((kid, False) for kid in reversed(kids))
        else:
            start = len(results) - len(kids)
            value = visit(node, tuple(results[start:]))
            del results[start:]
            results.append(value)
            if kids:
                done[id(node)] = value
    return results[0]


def transform(expr: Expr, fn: Callable[[Expr], Expr]) -> Expr:
    """The expression rebuilt bottom-up: each node, its children already transformed, replaced by `fn(node)`.
    `Shared` nodes are leaves here (a table's entries are transformed one by one, by the caller)."""
    return fold(expr, lambda node, kids: fn(with_children(node, kids)))


def refs(expr: Expr, shared: Sequence[Expr] = ()) -> Iterator[Ref]:
    """The signal reads (`Ref`s) of an expression in order of appearance, through its shared entries."""
    return (node for node in walk(expr, shared, follow_shared=True) if isinstance(node, Ref))


def functions_called(expr: Expr, shared: Sequence[Expr] = ()) -> set[str]:
    """The names of the built-in functions an expression calls, through its shared entries."""
    return {node.fn for node in walk(expr, shared, follow_shared=True) if isinstance(node, Call)}


def size(expr: Expr, shared: Sequence[Expr] = ()) -> int:
    """The number of nodes, shared entries counted once (what it costs to store or lower the expression)."""
    return sum(1 for _ in walk(expr, shared, follow_shared=True))


# ---- sharing -------------------------------------------------------------------------------------


MAX_HEIGHT: Final = 32
"""The deepest tree a shared table stores: a deeper expression (a long chain of lets, each read once) is cut
into entries, so serialising and reading it back never nests deeply (JSON parsers stop near 200 levels)."""


class Sharing:
    """Builds a shared table from expressions held in memory as a DAG (one object under several parents, as
    elaboration builds a `let` read twice): every inner node object read more than once, every named one (a
    let's) whose subtree reaches a quarter of MAX_HEIGHT, and any other whose subtree reaches MAX_HEIGHT, becomes
    an entry, in an order where each entry reads only earlier ones.

    `roots` are the expressions that compute (they count the reads); `rewrite` then turns those, and any other
    expression over the same objects (a port's wire, drawn only), into trees over the table.  `names` maps
    the id of a node object to the `let` that named it, for `table_names`."""

    def __init__(self, roots: Iterable[Expr], names: Mapping[int, str] | None = None,
                 max_height: int = MAX_HEIGHT) -> None:
        self.table: list[Expr] = []
        self.table_names: list[str] = []
        self._names = names or {}
        self._max_height = max_height
        self._reads: dict[int, int] = {}
        self._done: dict[int, tuple[Expr, int]] = {}  # node object -> (its rewrite, its stored height)
        stack: list[Expr] = []
        for root in roots:
            self._read(root, stack)
        while stack:
            for kid in children(stack.pop()):
                self._read(kid, stack)

    def _read(self, node: Expr, stack: list[Expr]) -> None:
        """Count one read of `node`; its children are read once, the first time."""
        count = self._reads.get(id(node), 0)
        self._reads[id(node)] = count + 1
        if count == 0:
            stack.append(node)

    def rewrite(self, expr: Expr) -> Expr:
        """`expr` as a tree over the table (entries added as needed)."""
        return fold(expr, self._visit, cut=lambda node: self._done.get(id(node)))[0]

    def _visit(self, node: Expr, kids: tuple[tuple[Expr, int], ...]) -> tuple[Expr, int]:
        rebuilt = with_children(node, [kid for kid, _ in kids])
        height = 1 + max((h for _, h in kids), default=0)
        if not kids:
            return rebuilt, height
        result = (rebuilt, height)
        named = id(node) in self._names  # a chain is cut at its lets, where a reader finds the names
        if self._reads.get(id(node), 0) > 1 or height >= (self._max_height // 4 if named else self._max_height):
            self.table.append(rebuilt)
            self.table_names.append(self._names.get(id(node), ""))
            result = (Shared(index=len(self.table) - 1), 1)
        self._done[id(node)] = result
        return result


# ---- the reference evaluator ---------------------------------------------------------------------


def _float(mask: Any, *like: Any) -> Any:
    """A truth value as 0/1 in the floating type of `like` (a Python float when every operand is one)."""
    if isinstance(mask, bool | np.bool_) and not any(isinstance(v, np.ndarray) for v in like):
        return float(mask)
    arrays = [v for v in like if isinstance(v, np.ndarray | np.generic)]
    kind = np.result_type(*arrays) if arrays else np.dtype(np.float64)
    return np.asarray(mask).astype(kind if np.issubdtype(kind, np.floating) else np.float64)


def _erf(x: Any) -> Any:
    """erf element-wise (numpy has none), in x's floating type."""
    if isinstance(x, float | int):
        return math.erf(x)
    x = np.asarray(x)
    return np.vectorize(math.erf, otypes=[np.float64])(x).astype(x.dtype if x.dtype.kind == "f" else np.float64)


NUMPY_FUNCTIONS: Final[Mapping[str, Callable[..., Any]]] = {
    "clamp": lambda x, lo, hi: np.minimum(np.maximum(x, lo), hi),
    "min": np.minimum,
    "max": np.maximum,
    "abs": np.abs,
    "relu": lambda x: np.maximum(x, 0.0),
    "detach": lambda x: x,
    "floor": np.floor,
    "exp": np.exp,
    "log": np.log,
    "tanh": np.tanh,
    "erf": _erf,
    "sigmoid": lambda x: 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x))),  # stable for large |x|
    "sin": np.sin,
    "cos": np.cos,
    "step": lambda x: _float(np.asarray(x) > 0, x),
    "sqrt": np.sqrt,
    "where": lambda c, a, b: np.where(np.asarray(c) > 0, a, b),
    **bind(NUMPY),  # reduce_*, kwta, matvec, push
}
"""Every built-in function of circuitdsl/functions.py over numpy arrays (and Python floats)."""

_ARITHMETIC: Final[Mapping[str, Callable[[Any, Any], Any]]] = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, "/": lambda a, b: a / b,
    "%": lambda a, b: a % b, "**": lambda a, b: a ** b,
    "and": lambda a, b: a * b, "or": lambda a, b: a + b - a * b,  # truth values are 0/1 floats
}
_COMPARE: Final[Mapping[str, Callable[[Any, Any], Any]]] = {
    "==": np.equal, "!=": np.not_equal, "<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
}


def binary(op: str, a: Any, b: Any) -> Any:
    """A binary operator over numpy values with the IR's conventions (comparisons give 0/1 floats)."""
    if type(a) is float and type(b) is float:  # numpy's rules (inf, nan), not Python's exceptions
        return float(binary(op, np.float64(a), np.float64(b)))
    if op in _ARITHMETIC:
        return _ARITHMETIC[op](a, b)
    return _float(_COMPARE[op](a, b), a, b)


def evaluate(expr: Expr, lookup: Lookup, shared: Sequence[Expr] = (),
             memo: MutableMapping[int, Any] | None = None) -> Any:
    """The value of `expr` over numpy: `lookup` gives each Var's or Ref's array; constants are Python floats.

    Invalid operations (log of a negative, division by zero) give nan / inf as the backends do, silently."""
    def visit(node: Expr, args: tuple[Any, ...]) -> Any:
        if isinstance(node, Const):
            return float(node.value)
        if isinstance(node, Var | Ref):
            return lookup(node)
        if isinstance(node, Unary):
            return -args[0] if node.op == "-" else 1.0 - args[0]
        if isinstance(node, Binary):
            return binary(node.op, *args)
        if isinstance(node, Call):
            return NUMPY_FUNCTIONS[node.fn](*args)
        if isinstance(node, Cond):
            return NUMPY_FUNCTIONS["where"](*args)
        if isinstance(node, axes.AXIS_NODES):
            return axes.apply(node, args, NUMPY)
        raise TypeError(f"unknown expression {node!r}")

    with np.errstate(all="ignore"):
        return fold(expr, visit, shared, memo)

