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

from circuitdsl.functions import FUNCTIONS
from circuitdsl.ir import axes
from circuitdsl.ir.expr import NUMPY_FUNCTIONS, binary, fold, walk
from circuitdsl.ir.model import Binary, Call, Cond, Const, Expr, Ref, Shared, Softmax, Unary, Var
from circuitdsl.ir.primitives import Primitives

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


def _from_memo(key: tuple[object, int]) -> Closure:
    """How an entry reads another entry: its value this step, already in the memo."""
    return lambda env: env.memo[key]


def _ensure(tag: object, order: list[int], runs: dict[int, Closure]) -> Closure:
    """Reading a shared entry from outside the table: the entry and every entry it reads, in table order, each
    computed once per step into the memo.  An entry reads its own dependencies from the memo (computed before
    it), so a chain of 2,000 entries runs as a loop, not 2,000 nested calls."""
    keys = [((tag, i), runs[i]) for i in order]
    last = keys[-1][0]

    def ensure(env: Any) -> Array:
        memo = env.memo
        if last not in memo:
            for key, run in keys:
                if key not in memo:
                    memo[key] = run(env)
        return memo[last]
    return ensure


class _Outside(dict[int, Compiled]):
    """A table's entries as read from outside it, each reader closure built on its first read (a chain of n
    entries would otherwise build n closures over up to n entries each)."""

    def __init__(self, constants: dict[int, Compiled], build: Callable[[int], Compiled]) -> None:
        super().__init__(constants)
        self.build = build

    def __missing__(self, index: int) -> Compiled:
        self[index] = self.build(index)
        return self[index]

    def __contains__(self, index: object) -> bool:  # fold asks before it reads: every entry is there
        return True


class ExprCompiler:
    """Compiles the expressions of one table of shared entries against one backend's functions."""

    def __init__(self, ops: Any, shared: Sequence[Expr] = ()) -> None:
        self.functions: Mapping[str, Callable[..., Array]] = ops.functions
        # a comparison's result as 0/1 floats: a backend may give a cheaper function than to_float for the
        # comparison of arrays it computed itself (torch: a bool tensor already on the right device)
        self.to_float: Callable[[Array], Array] = getattr(ops, "truth", ops.to_float)
        self.clamp_between: Callable[[float, float], Callable[[Array], Array]] = ops.clamp_between
        # a backend may bind constant operands as its own scalars (torch: 0-d tensors, cheaper per call than a
        # Python number); the result is the same
        self.constant: Callable[[float], Array] | None = getattr(ops, "constant", None)
        self.primitives: Primitives = ops.primitives
        self.asarray: Callable[[np.ndarray], Array] = ops.asarray  # constants, once, on the backend's device
        self.shared = shared
        self._entries: dict[object, _Outside] = {}

    def compile(self, expr: Expr, leaf: Leaf, tag: object = None) -> Compiled:
        """`expr` as a float (constant) or a closure of an environment; `tag` keys shared entries' values
        (reads with different leaves must use different tags)."""
        return fold(expr, lambda node, kids: self._visit(node, kids, leaf), self.shared, self._table(leaf, tag))

    def _table(self, leaf: Leaf, tag: object) -> _Outside:
        """Every shared entry for reads from outside the table: a constant, or a closure computing it (and what
        it reads) once per step; built on the first use of `tag`."""
        if tag in self._entries:
            return self._entries[tag]
        inside: dict[int, Compiled] = {}  # how one entry reads another: from the memo, or a constant
        runs: dict[int, Closure] = {}
        for index, entry in enumerate(self.shared):
            compiled = fold(entry, lambda node, kids: self._visit(node, kids, leaf), self.shared, inside)
            if isinstance(compiled, float):
                inside[index] = compiled
            else:
                runs[index] = compiled
                inside[index] = _from_memo((tag, index))
        depends = {i: [n.index for n in walk(self.shared[i]) if isinstance(n, Shared) and n.index in runs]
                   for i in runs}
        outside: dict[int, Compiled] = {i: c for i, c in inside.items() if isinstance(c, float)}
        self._entries[tag] = _Outside(outside, lambda i: _ensure(tag, _closure(i, depends), runs))
        return self._entries[tag]
    def _operands(self, op: str, kids: tuple[Compiled, ...]) -> tuple[Any, ...]:
        """A binary operation's operands with a constant as the backend's scalar where that gives the very same
        result: not an exponent (torch squares a number exponent of 2 exactly) and not a numerator (torch
        divides a number by a tensor through the reciprocal)."""
        if self.constant is None or op == "**":
            return kids
        a, b = kids
        if isinstance(a, float) and op != "/":
            return self.constant(a), b
        if isinstance(b, float):
            return a, self.constant(b)
        return kids

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
                return _identity(node.op, kids) or _call(_ARITHMETIC[node.op], self._operands(node.op, kids))
            compare, to_float = _COMPARE[node.op], self.to_float
            return _call(lambda a, b: to_float(compare(a, b)), self._operands(node.op, kids))
        if isinstance(node, Call):
            if node.fn == "clamp" and callable(kids[0]) and not any(callable(k) for k in kids[1:]):
                return _call(self.clamp_between(*kids[1:]), kids[:1])  # type: ignore[arg-type]
            return _call(self.functions[node.fn], kids)
        if isinstance(node, Cond):
            return _call(self.functions["where"], kids)
        if isinstance(node, axes.AXIS_NODES):  # its shapes' work and a causal mask (on the device) done once
            mask = None
            if isinstance(node, Softmax) and node.causal is not None:
                mask = self.asarray(axes.causal_mask(node.shape, node.causal, node.axis))
            return _call(axes.compiled(node, self.primitives, mask), kids)
        raise TypeError(f"unknown expression {node!r}")


# x + 0, 0 + x, x - 0, x * 1, 1 * x, x / 1: x itself, one operation less per step (a clock at phase 0 reads
# `t + 0 * period`); equal values (x + 0 turns -0 into +0, which compares equal)
_NEUTRAL: dict[str, tuple[float, bool]] = {"+": (0.0, True), "-": (0.0, False), "*": (1.0, True), "/": (1.0, False)}


def _identity(op: str, kids: tuple[Compiled, ...]) -> Closure | None:
    """The closure operand of a binary operation whose other operand is its neutral element, else None."""
    if op not in _NEUTRAL:
        return None
    neutral, either_side = _NEUTRAL[op]
    a, b = kids
    if callable(a) and not callable(b) and b == neutral:
        return a
    if either_side and callable(b) and not callable(a) and a == neutral:
        return b
    return None


def _closure(index: int, depends: Mapping[int, list[int]]) -> list[int]:
    """An entry and every entry it reads, directly or not, in table order (each before its readers)."""
    seen, stack = {index}, [index]
    while stack:
        for dependency in depends[stack.pop()]:
            if dependency not in seen:
                seen.add(dependency)
                stack.append(dependency)
    return sorted(seen)


def _constant(node: Expr, kids: tuple[float, ...]) -> float:
    """A node over constants, folded with the numpy reference semantics (float64)."""
    with np.errstate(all="ignore"):
        if isinstance(node, Unary):
            return -kids[0] if node.op == "-" else 1.0 - kids[0]
        if isinstance(node, Binary):
            return float(binary(node.op, *kids))
        if isinstance(node, Cond):
            return float(np.asarray(NUMPY_FUNCTIONS["where"](*kids)))
        if isinstance(node, axes.AXIS_NODES):  # elaboration gives a constant no axes: never reached
            raise TypeError(f"an axis operation over constants: {node!r}")
        assert isinstance(node, Call)
        fn = node.fn
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


# functions computing each element from the same element of their arguments (broadcast): FUNCTIONS' dimension rules
_ELEMENT_WISE = frozenset(f.name for f in FUNCTIONS.values()
                          if f.dims in ("same", "keep", "pure", "indicator", "sqrt", "where"))


def full_shaped(expr: Expr, full: Callable[[Var | Ref], bool], shared: Sequence[Expr] = ()) -> bool:
    """Whether an expression's value certainly has the shape of the leaves that `full` names (a signal's
    [batch, units]), in their dtype: it is element-wise (arithmetic, comparisons, conditions, element-wise
    functions) and one of those leaves is an operand of every node on some path to it (a condition only chooses
    between its branches, which carry the shape and dtype).  Known at compile time, so a closure's result needs no
    shape check per step."""
    def visit(node: Expr, kids: tuple[bool | None, ...]) -> bool | None:
        if isinstance(node, Const):
            return False
        if isinstance(node, Var | Ref):
            return full(node)
        if None in kids or not isinstance(node, Unary | Binary | Cond | Call):
            return None  # an axis operation, or one over such: any shape
        if isinstance(node, Call) and node.fn not in _ELEMENT_WISE:
            return None
        if isinstance(node, Cond) or (isinstance(node, Call) and node.fn == "where"):
            return any(kids[1:])
        return any(kids)
    return fold(expr, visit, shared) is True


def value(compiled: Compiled, env: Any) -> Array:
    """A compiled expression's value in `env` (a constant is itself)."""
    return compiled(env) if callable(compiled) else compiled
