"""IR expressions compiled once into closures: no tree is walked while a circuit runs.

`compile_expr` folds an expression (circuitdsl/ir/expr.py's `fold`, the one walker) into either a Python float
(the whole expression is constant: folded at compile time with the numpy reference semantics) or a closure
`f(env) -> array` that calls the backend's functions directly.  Leaves are resolved by the caller once (`leaf`
turns a `Var` or a `Ref` into a closure reading its slot), so at run time a closure only calls other closures.

A shared subexpression (`Shared(index)`) is compiled once per table and evaluated at most once per step: its
closure keeps its value in the environment's `memo` under `(tag, index)` (the caller's `tag` tells reads of the
previous step's outputs from reads of this step's).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from circuitdsl.ir.expr import NUMPY_FUNCTIONS, binary, fold, walk
from circuitdsl.ir.model import Binary, Call, Cond, Const, Expr, Ref, Shared, Unary, Var

Array = Any
Closure = Callable[[Any], Array]
Compiled = Closure | float
Leaf = Callable[[Var | Ref], Compiled]

_ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv, "%": operator.mod,
    "**": operator.pow, "and": operator.mul, "or": lambda a, b: a + b - a * b,
}
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}


def _once(tag: object, index: int, runs: Mapping[int, Closure], reads: Mapping[int, tuple[int, ...]]) -> Closure:
    """Shared entry `index`'s closure: its value computed once per step.  The entries it reads are computed
    first, in a loop (deepest first), so that a chain of thousands of entries never recurses deeply."""
    def memoised(env: Any) -> Array:
        memo = env.memo
        if (tag, index) not in memo:
            stack = [index]
            while stack:
                j = stack[-1]
                missing = [k for k in reads[j] if (tag, k) not in memo]
                if missing:
                    stack.extend(missing)
                    continue
                if (tag, j) not in memo:
                    memo[tag, j] = runs[j](env)
                stack.pop()
        return memo[tag, index]
    return memoised


class ExprCompiler:
    """Compiles the expressions of one table of shared entries against one backend's functions."""

    def __init__(self, ops: Any, shared: Sequence[Expr] = ()) -> None:
        self.functions: Mapping[str, Callable[..., Array]] = ops.functions
        self.to_float: Callable[[Array], Array] = ops.to_float
        self.clamp_between: Callable[[float, float], Callable[[Array], Array]] = ops.clamp_between
        self.shared = shared
        self._entries: dict[object, dict[int, Compiled]] = {}

    def compile(self, expr: Expr, leaf: Leaf, tag: object = None) -> Compiled:
        """`expr` as a float (constant) or a closure of an environment; `tag` keys shared entries' values
        (reads with different leaves must use different tags)."""
        return fold(expr, lambda node, kids: self._visit(node, kids, leaf), self.shared, self._table(leaf, tag))

    def _table(self, leaf: Leaf, tag: object) -> dict[int, Compiled]:
        """Every shared entry compiled with `leaf`, in order (an entry reads only earlier ones, found here), each
        closure evaluated once per step; built on the first use of `tag`."""
        if tag not in self._entries:
            table: dict[int, Compiled] = {}
            runs: dict[int, Closure] = {}
            reads: dict[int, tuple[int, ...]] = {}
            for index, entry in enumerate(self.shared):
                compiled = fold(entry, lambda node, kids: self._visit(node, kids, leaf), self.shared, table)
                if isinstance(compiled, float):
                    table[index] = compiled
                    continue
                runs[index] = compiled
                reads[index] = tuple(dict.fromkeys(n.index for n in walk(entry) if isinstance(n, Shared)
                                                   and n.index in runs))
                table[index] = _once(tag, index, runs, reads)
            self._entries[tag] = table
        return self._entries[tag]

    def _visit(self, node: Expr, kids: tuple[Compiled, ...], leaf: Leaf) -> Compiled:
        if isinstance(node, Const):
            return float(node.value)
        if isinstance(node, Var | Ref):
            return leaf(node)
        if isinstance(node, Shared):  # fold substitutes entries; a bare Shared never reaches here
            raise TypeError("a shared entry is folded by its table")
        if all(isinstance(k, float) for k in kids):
            return _constant(node, kids)  # type: ignore[arg-type]
        if isinstance(node, Unary):
            return _call((lambda x: -x) if node.op == "-" else (lambda x: 1.0 - x), kids)
        if isinstance(node, Binary):
            if node.op in _ARITHMETIC:
                return _call(_ARITHMETIC[node.op], kids)
            compare, to_float = _COMPARE[node.op], self.to_float
            return _call(lambda a, b: to_float(compare(a, b)), kids)
        if isinstance(node, Call):
            if node.fn == "clamp" and callable(kids[0]) and not any(callable(k) for k in kids[1:]):
                return _call(self.clamp_between(*kids[1:]), kids[:1])  # type: ignore[arg-type]
            return _call(self.functions[node.fn], kids)
        if isinstance(node, Cond):
            return _call(self.functions["where"], kids)
        raise TypeError(f"unknown expression {node!r}")


def _constant(node: Expr, kids: tuple[float, ...]) -> float:
    """A node over constants, folded with the numpy reference semantics (float64)."""
    with np.errstate(all="ignore"):
        if isinstance(node, Unary):
            return -kids[0] if node.op == "-" else 1.0 - kids[0]
        if isinstance(node, Binary):
            return float(binary(node.op, *kids))
        fn = "where" if isinstance(node, Cond) else node.fn  # type: ignore[attr-defined]
        return float(np.asarray(NUMPY_FUNCTIONS[fn](*kids)))


def _call(fn: Callable[..., Array], kids: tuple[Compiled, ...]) -> Closure:
    """A closure calling `fn` on its arguments' values: constants bound now, closures called at run time."""
    if len(kids) == 1:
        (x,) = kids
        return lambda env: fn(x(env))  # type: ignore[operator]
    if len(kids) == 2:
        a, b = kids
        if callable(a) and callable(b):
            return lambda env: fn(a(env), b(env))
        if callable(a):
            return lambda env: fn(a(env), b)
        return lambda env: fn(a, b(env))  # type: ignore[operator]
    return lambda env: fn(*[k(env) if callable(k) else k for k in kids])


def value(compiled: Compiled, env: Any) -> Array:
    """A compiled expression's value in `env` (a constant is itself)."""
    return compiled(env) if callable(compiled) else compiled
