"""Our own expression evaluator (no eval/exec): folds constants, builds signal expressions, checks units.

The same evaluator serves constant arithmetic (`joints - 1`, `10 ms`), circuit signals (`clamp(q, 0, 1)`,
`Md - Mv`) and neuron equations (`(-v + in) / tau`), where names of states and inputs are signals of
shape ().  A mistake is recorded on the reporter and aborts the statement with `Abort`.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from circuitdsl import ast, units
from circuitdsl.elaborate import axis_ops, init_rules, operators, select
from circuitdsl.elaborate.data_values import load_rule
from circuitdsl.elaborate.sandbox import Sandbox
from circuitdsl.elaborate.scope import Scope
from circuitdsl.elaborate.unit_literals import unit_name_hint, unit_suffix, unknown_unit
from circuitdsl.elaborate.values import (
    ENUMS,
    Builtin,
    DataCall,
    Definition,
    InitRule,
    InstanceArray,
    InstanceValue,
    Namespace,
    PopulationRef,
    Rule,
    Signal,
    Symbol,
    Unbound,
    choices,
    describe,
)
from circuitdsl.errors import Problem, Reporter, Span, did_you_mean
from circuitdsl.functions import FUNCTIONS
from circuitdsl.ir import model as ir
from circuitdsl.ir.axes import AXIS_NODES
from circuitdsl.ir.expr import children, transform, walk
from circuitdsl.limits import FLOAT32_MAX, Limits, fits_float32
from circuitdsl.units import DIMENSIONLESS, Dim, Quantity, format_dim


class Abort(Exception):
    """Stops the current statement after its error was recorded (or when it depends on a failed one)."""


class Poisoned:
    """Bound to a name whose declaration failed, so later uses fail quietly instead of cascading."""


@dataclass(frozen=True)
class CircuitCall:
    """`Segment(head = true)`: a circuit instantiation waiting for the name it is assigned to."""

    definition: Definition
    args: tuple[tuple[ast.Ident | None, object, Span], ...]
    span: Span


BUILTINS: dict[str, Builtin] = {
    **{name: Builtin(name, "function") for name in FUNCTIONS},
    **{name: Builtin(name, "init")
       for name in ("constant", "uniform", "normal", "fixed", "load", *init_rules.SIGNATURES)},
    **{name: Builtin(name, "rule") for name in ("one_to_one", "all_to_all", "dense", "pairs", "random")},
    "connectome": Builtin("connectome", "data"),
    "grid": Builtin("grid", "grid"),
    **{name: Builtin(name, "option") for name in ("learnable", "operator")},
    **{name: Builtin(name, "axis") for name in axis_ops.NAMES if name not in FUNCTIONS},  # max is both
}

_ARITH: dict[str, Callable[[float, float], float]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv, "%": operator.mod,
    "**": operator.pow,
}
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {  # numbers; == and != also symbols, strings, lists
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}


def dim_of(value: object) -> Dim:
    if isinstance(value, Quantity | Signal):
        return value.dim
    return DIMENSIONLESS


def magnitude(value: object) -> float | int | bool:
    return value.value if isinstance(value, Quantity) else value  # type: ignore[return-value]


def quantity(value: float | bool, dim: Dim) -> object:
    """A number with a dimension; dimensionless numbers stay plain Python numbers."""
    return value if dim == DIMENSIONLESS else Quantity(float(value), dim)


def is_number(value: object) -> bool:
    """Numbers and quantities (bools count, as in Python; callers that want a real number exclude them)."""
    return isinstance(value, int | float | Quantity)


class Evaluator:
    """Evaluates AST expressions in a scope.  `output_dims` maps a neuron model name to its output's dimension."""

    def __init__(self, reporter: Reporter, output_dims: dict[str, Dim] | None = None,
                 limits: Limits | None = None, sandbox: Sandbox | None = None) -> None:
        self.reporter = reporter
        self.limits = limits or Limits()
        self.sandbox = sandbox or Sandbox.around(None)  # where data files may be read from
        self.winners = 0  # the largest k of a kwta() in the neuron model being built: a population needs k units
        self.output_dims = output_dims if output_dims is not None else {}
        self.output_axes: dict[str, tuple[ir.Axis, ...]] = {}  # a neuron model's output axis, if it has one
        self.ref_shapes: dict[str, tuple[ir.Axis, ...]] = {}  # every population's and port's full shape

    # ---- errors ----------------------------------------------------------------------------------
    def fail(self, code: str, message: str, span: Span | None, notes: list[str | None] | None = None) -> Abort:
        self.reporter.error(code, message, span, notes or [])
        return Abort()

    # ---- entry points ----------------------------------------------------------------------------
    def eval(self, node: ast.Expr, scope: Scope, expect: str | None = None,
             labels: list[str] | None = None) -> object:
        """Evaluate `node`; `expect` names an enum whose bare members are accepted, `labels` unit names."""
        method = getattr(self, f"_eval_{type(node).__name__}")
        return method(node, scope, expect, labels)

    def constant(self, node: ast.Expr, scope: Scope, what: str, expect: str | None = None) -> object:
        value = self.eval(node, scope, expect)
        if isinstance(value, Signal):
            raise self.fail("E803", f"{what} must be a constant, not a signal", node.span)
        return value

    def integer(self, node: ast.Expr, scope: Scope, what: str) -> int:
        value = self.constant(node, scope, what)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail("E301", f"{what} must be a whole number, not {describe(value)}", node.span)
        return value

    def boolean(self, node: ast.Expr, scope: Scope, what: str) -> bool:
        value = self.constant(node, scope, what)
        if not isinstance(value, bool):
            raise self.fail("E301", f"{what} must be true or false, not {describe(value)}", node.span)
        return value

    def runtime_number(self, value: float, span: Span) -> None:
        """A constant that a backend will hold must fit its float32 tensors (`weight = 1e39` would be inf)."""
        if not fits_float32(float(value)):
            raise self.fail("E801", f"{value:g} does not fit a float32 tensor (|x| <= {FLOAT32_MAX:.4g})", span,
                            ["the backends compute in float32 by default"])

    def signal(self, value: object, span: Span) -> Signal:
        """A value as a signal: populations read their output, constants become shape-() signals."""
        if isinstance(value, Signal):
            return value
        if isinstance(value, PopulationRef):
            if value.port != "in":
                raise self.fail("E206", f"'{value.name}.{value.port}' cannot be read: '.{value.port}' selects an "
                                        "input port, as the target of a projection", span,
                                [f"read the population's output as '{value.name}'"])
            axes = self.output_axes.get(value.model, ())
            if axes and value.select is not None:
                raise self.fail("E302", f"'{value.name}' gives each unit a vector {format_shape(axes)}; it is read "
                                        "whole, not a selection of it", span)
            return Signal(ir.Ref(source=value.name, select=_list(value.select)), _shape(value) + axes,
                          self.output_dims.get(value.model, DIMENSIONLESS))
        if is_number(value):
            self.runtime_number(magnitude(value), span)
            return Signal(ir.Const(value=magnitude(value)), (), dim_of(value))
        raise self.fail("E301", f"expected a signal or a number, got {describe(value)}", span)

    def dimension(self, node: ast.Ident | ast.Dimension | None) -> Dim:
        """A dimension written by name (`input I: current`) or combined (`voltage / time`); none is dimensionless."""
        if node is None:
            return DIMENSIONLESS
        dim = DIMENSIONLESS
        for ident, exponent in node.factors if isinstance(node, ast.Dimension) else ((node, 1),):
            if ident.name not in units.DIMENSIONS:
                raise self.fail("E201", f"unknown dimension '{ident.name}'", ident.span,
                                [did_you_mean(ident.name, units.DIMENSIONS),
                                 f"dimensions: {', '.join(units.DIMENSIONS)}; combine them with * / **"])
            dim = units.mul(dim, units.power(units.DIMENSIONS[ident.name], exponent))
        return dim

    # ---- atoms -----------------------------------------------------------------------------------
    def _eval_Number(self, node: ast.Number, scope: Scope, expect: str | None, labels: list[str] | None) -> object:
        if isinstance(node.value, float) and not math.isfinite(node.value):  # 1e400: inf has no place in the IR
            raise self.fail("E801", "this number is too large", node.span)
        return node.value

    def _eval_Quantity(self, node: ast.Quantity, scope: Scope, expect: str | None, labels: list[str] | None) -> object:
        entry = units.UNITS.get(node.unit.name)
        if entry is None:
            raise self.fail("E402", f"unknown unit '{node.unit.name}'", node.unit.span,
                            [did_you_mean(node.unit.name, units.UNITS), units.UNIT_SUMMARY])
        scale, dim = entry
        if not math.isfinite(node.value * scale):
            raise self.fail("E801", "this number is too large", node.span)
        return Quantity(node.value * scale, dim)

    def _eval_String(self, node: ast.String, scope: Scope, expect: str | None, labels: list[str] | None) -> object:
        if expect in ENUMS and node.value in ENUMS[expect]:
            return Symbol(node.value, expect)
        return node.value

    def _eval_Bool(self, node: ast.Bool, scope: Scope, expect: str | None, labels: list[str] | None) -> object:
        return node.value

    def _eval_Name(self, node: ast.Name, scope: Scope, expect: str | None, labels: list[str] | None) -> object:
        binding = scope.lookup(node.id)
        if binding is not None:
            binding.used = True
            if isinstance(binding.value, Poisoned):
                raise Abort()
            if isinstance(binding.value, Unbound):
                raise self.fail("E307", f"input '{node.id}' of '{binding.value.instance}' is not connected",
                                node.span, [(f"connect it where the circuit is instantiated: "
                                            f"{binding.value.instance} = ...({node.id} = <signal>)")])
            if binding.kind == "output":
                raise self.fail("E206", f"output '{node.id}' is assigned, not read", node.span,
                                ["name the signal with let and use it in both places"])
            return binding.value
        if expect in ENUMS and node.id in ENUMS[expect]:
            return Symbol(node.id, expect)
        if labels and node.id in labels:
            return node.id
        if node.id in BUILTINS:
            return BUILTINS[node.id]
        accepted = choices(expect) if expect in ENUMS else ()
        candidates = scope.visible_names() | set(BUILTINS) | set(labels or ()) | set(accepted)
        notes = [unit_name_hint(node.id) or did_you_mean(node.id, candidates)]
        if accepted:
            notes.append(f"expected one of: {', '.join(accepted)}")
        raise self.fail("E201", f"unknown name '{node.id}'", node.span, notes)

    def _eval_ListLit(self, node: ast.ListLit, scope: Scope, expect: str | None, labels: list[str] | None) -> object:
        return [self.constant(item, scope, "a list element") for item in node.items]

    def _eval_SetLit(self, node: ast.SetLit, scope: Scope, expect: str | None, labels: list[str] | None) -> object:
        items: list[object] = []
        for item in node.items:
            if isinstance(item, ast.Name):
                items.append(Symbol(item.id))
            else:
                items.append(self.constant(item, scope, "a set element"))
        return frozenset(items)

    # ---- operators -------------------------------------------------------------------------------
    def _eval_Unary(self, node: ast.Unary, scope: Scope, expect: str | None, labels: list[str] | None) -> object:
        value = self.eval(node.operand, scope)
        if node.op == "not":
            if isinstance(value, Signal | PopulationRef):
                s = self.signal(value, node.operand.span)
                return Signal(ir.Unary(op="not", x=s.expr), s.shape, DIMENSIONLESS)
            if not isinstance(value, bool):
                raise self.fail("E301", f"'not' needs a bool, not {describe(value)}", node.operand.span)
            return not value
        if isinstance(value, Signal | PopulationRef):
            s = self.signal(value, node.operand.span)
            return s if node.op == "+" else Signal(ir.Unary(op="-", x=s.expr), s.shape, s.dim)
        if isinstance(value, InitRule):  # `inhibitory = -init`: the rule mirrored
            return init_rules.negate(value) if node.op == "-" else value
        if not is_number(value) or isinstance(value, bool):
            raise self.fail("E301", f"'{node.op}' needs a number, not {describe(value)}", node.operand.span)
        return quantity(-magnitude(value) if node.op == "-" else magnitude(value), dim_of(value))

    def _eval_Binary(self, node: ast.Binary, scope: Scope, expect: str | None, labels: list[str] | None) -> object:
        if node.op in ("and", "or"):
            return self._logic(node, scope)
        unit = unit_suffix(node, scope)  # `10 mV/ms`: a literal with a compound unit
        if unit is not None:
            return self._arith(node, self.eval(node.left, scope), unit)
        stray = unknown_unit(node, scope)
        if stray is not None and stray.id not in BUILTINS:
            raise self.fail("E402", f"unknown unit '{stray.id}'", stray.span,
                            [did_you_mean(stray.id, [*units.UNITS, *scope.visible_names()]), units.UNIT_SUMMARY])
        left = self.eval(node.left, scope)
        # `reset == subtract`: a bare name compared with an enum value is read as a member of that enum
        right_expect = left.enum if isinstance(left, Symbol) else None
        right = self.eval(node.right, scope, expect=right_expect)
        if isinstance(right, Symbol) and not isinstance(left, Symbol) and isinstance(node.left, ast.Name):
            left = self.eval(node.left, scope, expect=right.enum)
        if any(isinstance(v, Signal | PopulationRef) for v in (left, right)):
            return self._signal_binary(node, left, right)
        if node.op in _COMPARE:
            return self._compare(node, left, right)
        if node.op == "+" and isinstance(left, str) and isinstance(right, str):
            if len(left) + len(right) > self.limits.string_length:  # 40 doublings would need a terabyte
                raise self.fail("E708", f"a string of {len(left) + len(right)} characters is "
                                f"{self.limits.over('string_length')}", node.span, [self.limits.hint('string_length')])
            return left + right
        for value, side in ((left, node.left), (right, node.right)):
            if not is_number(value) or isinstance(value, bool):
                raise self.fail("E301", f"'{node.op}' needs numbers, not {describe(value)}", side.span)
        return self._arith(node, left, right)

    def _logic(self, node: ast.Binary, scope: Scope) -> object:
        left = self.eval(node.left, scope)
        if isinstance(left, bool):  # short-circuit on constants, like Python
            if (node.op == "and" and not left) or (node.op == "or" and left):
                return left
            right = self.eval(node.right, scope)
            if isinstance(right, bool):
                return right
        else:
            right = self.eval(node.right, scope)
        if isinstance(left, Signal | PopulationRef | bool) and isinstance(right, Signal | PopulationRef | bool):
            a, b = self.signal(left, node.left.span), self.signal(right, node.right.span)
            shape = self._broadcast(node, a, b)
            return Signal(ir.Binary(op=node.op, left=a.expr, right=b.expr), shape, DIMENSIONLESS)  # type: ignore[arg-type]
        bad = node.left if not isinstance(left, bool | Signal | PopulationRef) else node.right
        raise self.fail("E301", f"'{node.op}' needs bools, not {describe(self.eval(bad, scope))}", bad.span)

    def _compare(self, node: ast.Binary, left: object, right: object) -> bool:
        if is_number(left) and is_number(right):
            if dim_of(left) != dim_of(right):
                raise self.fail("E401", f"cannot compare {format_dim(dim_of(left))} with {format_dim(dim_of(right))}",
                                node.span)
            return _COMPARE[node.op](magnitude(left), magnitude(right))
        if node.op in ("==", "!="):
            if type(left) is not type(right) and not (is_number(left) and is_number(right)):
                raise self.fail("E301", f"cannot compare {describe(left)} with {describe(right)}", node.span)
            return _COMPARE[node.op](left, right)
        raise self.fail("E301", f"'{node.op}' compares numbers, not {describe(left)} and {describe(right)}", node.span)

    def _arith(self, node: ast.Binary, left: object, right: object) -> object:
        a, b = magnitude(left), magnitude(right)
        da, db = dim_of(left), dim_of(right)
        if node.op in ("+", "-", "%"):
            if da != db:
                raise self.fail("E401", f"cannot {_VERB[node.op]} {format_dim(da)} and {format_dim(db)}", node.span)
            dim = da
        elif node.op == "*":
            dim = units.mul(da, db)
        elif node.op == "/":
            dim = units.div(da, db)
        else:
            dim = self._power_dim(node, da, db, b)
        if node.op in ("/", "%") and b == 0:
            raise self.fail("E802", "division by zero", node.right.span)
        if (node.op == "**" and isinstance(a, int) and isinstance(b, int) and abs(a) > 1 and b > 0
                and b * math.log2(abs(a)) > 64):  # 2 ** 10 ** 10 would take minutes to compute, then fail
            raise self.fail("E801", "the result is too large", node.span)
        try:
            result = _ARITH[node.op](a, b)
        except OverflowError:  # Python's own text here is "(34, 'Numerical result out of range')"
            raise self.fail("E801", "the result is too large", node.span) from None
        except (ZeroDivisionError, ValueError) as error:
            raise self.fail("E801", f"cannot compute this: {error}", node.span) from None
        if isinstance(result, complex) or (isinstance(result, float) and not math.isfinite(result)):
            raise self.fail("E801", "the result is not a finite real number", node.span)
        if isinstance(result, int) and abs(result) > 10**18:
            raise self.fail("E801", "the result is too large", node.span)
        return quantity(result, dim)

    def _power_dim(self, node: ast.Binary, base: Dim, exponent_dim: Dim, exponent: object) -> Dim:
        if exponent_dim != DIMENSIONLESS:
            raise self.fail("E401", "an exponent must be dimensionless", node.right.span)
        if base == DIMENSIONLESS:
            return base
        if not isinstance(exponent, int):
            raise self.fail("E401", "a quantity with a unit can only be raised to a whole power", node.right.span)
        return units.power(base, exponent)

    def _broadcast(self, node: ast.Node, a: Signal, b: Signal) -> tuple[ir.Axis, ...]:
        if not a.shape:
            return b.shape
        if not b.shape or _same_axes(a.shape, b.shape):
            return a.shape
        raise self.fail("E302", f"shapes differ: {format_shape(a.shape)} and {format_shape(b.shape)}", node.span,
                        ["element-wise operations need the same named axes (or a single unit)"])

    def _signal_binary(self, node: ast.Binary, left: object, right: object) -> Signal:
        a, b = self.signal(left, node.left.span), self.signal(right, node.right.span)
        shape = self._broadcast(node, a, b)
        if node.op in ("/", "%") and isinstance(b.expr, ir.Const) and b.expr.value == 0:
            raise self.fail("E802", "division by zero", node.right.span)
        if node.op in _COMPARE:
            if a.dim != b.dim:
                raise self.fail("E401", f"cannot compare {format_dim(a.dim)} with {format_dim(b.dim)}", node.span)
            dim = DIMENSIONLESS
        elif node.op in ("+", "-", "%"):
            if a.dim != b.dim:
                raise self.fail("E401", f"cannot {_VERB[node.op]} {format_dim(a.dim)} and {format_dim(b.dim)}",
                                node.span)
            dim = a.dim
        elif node.op == "*":
            dim = units.mul(a.dim, b.dim)
        elif node.op == "/":
            dim = units.div(a.dim, b.dim)
        else:
            exponent = b.expr.value if isinstance(b.expr, ir.Const) else None
            if b.dim != DIMENSIONLESS or (a.dim != DIMENSIONLESS and not isinstance(exponent, int)):
                raise self.fail("E401", "a quantity with a unit can only be raised to a constant whole power",
                                node.right.span)
            dim = units.power(a.dim, exponent) if isinstance(exponent, int) else a.dim
        return Signal(ir.Binary(op=node.op, left=a.expr, right=b.expr), shape, dim)  # type: ignore[arg-type]

    def _eval_Conditional(self, node: ast.Conditional, scope: Scope, expect: str | None,
                          labels: list[str] | None) -> object:
        cond = self.eval(node.cond, scope)
        if isinstance(cond, bool):
            touch(node.other if cond else node.then, scope)
            return self.eval(node.then if cond else node.other, scope, expect, labels)
        if isinstance(cond, Signal | PopulationRef):
            c = self.signal(cond, node.cond.span)
            then = self.signal(self.eval(node.then, scope), node.then.span)
            other = self.signal(self.eval(node.other, scope), node.other.span)
            if then.dim != other.dim:
                raise self.fail("E401", f"the branches differ: {format_dim(then.dim)} and {format_dim(other.dim)}",
                                node.span)
            shape = self._broadcast(node, self._broadcast_signal(node, c, then), other)
            return Signal(ir.Cond(cond=c.expr, then=then.expr, other=other.expr), shape, then.dim)
        raise self.fail("E301", f"a condition must be true or false, not {describe(cond)}", node.cond.span)

    def _broadcast_signal(self, node: ast.Node, a: Signal, b: Signal) -> Signal:
        return Signal(b.expr, self._broadcast(node, a, b), b.dim)

    # ---- calls -----------------------------------------------------------------------------------
    def _eval_Call(self, node: ast.Call, scope: Scope, expect: str | None, labels: list[str] | None) -> object:
        func = self.eval(node.func, scope)
        if isinstance(func, Definition):
            if func.kind != "circuit":
                raise self.fail("E206", f"'{func.name}' is a neuron model; use it in a population declaration",
                                node.func.span, [f"population p : {func.name}(...)"])
            args = tuple((a.name, self.eval(a.value, scope), a.value.span) for a in node.args)
            return CircuitCall(func, args, node.span)
        if not isinstance(func, Builtin):
            raise self.fail("E206", f"{describe(func)} cannot be called", node.func.span)
        if axis_ops.is_axis_call(func.name, node):
            return axis_ops.call(self, node, scope, func.name)
        if func.kind == "function":
            return self._function(node, scope, func.name)
        if func.kind == "init":
            return self._init_rule(node, scope, func.name)
        if func.kind == "data":
            return DataCall(func, node)
        if func.kind == "grid":
            return operators.grid(self, node, scope)
        if func.kind == "option":
            raise self.fail("E206", f"{func.name}(...) is written as a projection's option", node.span,
                            ["x -> h : all_to_all, delay = learnable(max = 25)" if func.name == "learnable"
                             else "u -> h : operator(spectral, modes = 16)"])
        return self._rule(node, scope, func.name)

    def _eval_Over(self, node: ast.Over, scope: Scope, expect: str | None, labels: list[str] | None) -> object:
        raise self.fail("E305", "'over' names the axes of an operator projection, in its options, or of an axis "
                                "operation", node.span, ["u -> h : dense over channel; softmax(s over key)"])

    def _eval_Contraction(self, node: ast.Contraction, scope: Scope, expect: str | None,
                          labels: list[str] | None) -> object:
        return axis_ops.contraction(self, node, scope)

    def _positional(self, node: ast.Call, what: str) -> None:
        for arg in node.args:
            if arg.name is not None:
                raise self.fail("E203", f"{what} takes no argument named '{arg.name.name}'", arg.name.span)

    def _function(self, node: ast.Call, scope: Scope, name: str) -> object:
        spec = FUNCTIONS[name]
        self._positional(node, f"{name}()")
        if len(node.args) != spec.arity:
            raise self.fail("E301", f"{name}() takes {spec.arity} argument{'s' * (spec.arity != 1)}, "
                                    f"got {len(node.args)}", node.span, [spec.doc])
        values = [self.eval(a.value, scope) for a in node.args]
        dims = [dim_of(v) if not isinstance(v, PopulationRef) else self.signal(v, node.span).dim for v in values]
        dim = self._function_dim(node, spec.dims, dims)
        if spec.dims in ("reduce", "winners", "matvec", "push"):
            return self._axis_function(node, name, spec.dims, values, dim)
        if all(is_number(v) for v in values):
            try:
                result = spec.value(*[magnitude(v) for v in values])
            except (ValueError, OverflowError) as error:
                raise self.fail("E801", f"{name}(): {error}", node.span) from None
            return quantity(result, dim)
        signals = [self.signal(v, a.value.span) for v, a in zip(values, node.args, strict=True)]
        shape: tuple[ir.Axis, ...] = ()
        for s in signals:
            shape = self._broadcast(node, Signal(ir.Const(value=0), shape), s)
        return Signal(ir.Call(fn=name, args=[s.expr for s in signals]), shape, dim)

    def _axis_function(self, node: ast.Call, name: str, rule: str, values: list[object], dim: Dim) -> Signal:
        """A reduction over a signal's last axis (its size passed on as a constant), or kwta(x, k) over all units."""
        x = self.signal(values[0], node.args[0].value.span)
        if rule == "matvec":
            return self._matvec(node, x, self.signal(values[1], node.args[1].value.span), dim)
        if rule == "push":
            value = self.signal(values[1], node.args[1].value.span)
            if len(x.shape) != 1 or value.shape:
                raise self.fail("E302", "push(h, x) appends one value x to a vector h (a state over one axis)",
                                node.span, ["state history[time = 8] = 0, then history = push(history, in)"])
            if value.dim != dim:
                raise self.fail("E401", f"push() appends {format_dim(value.dim)} to a history of {format_dim(dim)}",
                                node.span)
            return Signal(ir.Call(fn=name, args=[x.expr, value.expr]), x.shape, dim)
        if rule == "winners":
            k = values[1]
            if not isinstance(k, int) or isinstance(k, bool) or k < 1:
                raise self.fail("E301", f"kwta() keeps a whole number k >= 1 of winners, not {describe(k)}",
                                node.args[1].value.span)
            self.winners = max(self.winners, k)
            return Signal(ir.Call(fn=name, args=[x.expr, ir.Const(value=k)]), x.shape, dim)
        if not x.shape:
            raise self.fail("E302", f"{name}() reduces an axis, but this signal has none", node.span,
                            ["reduce a neuron's shaped port, e.g. reduce_absmax(context)"])
        size = ir.Const(value=x.shape[-1].size)
        return Signal(ir.Call(fn=name, args=[x.expr, size]), x.shape[:-1], dim)

    def _matvec(self, node: ast.Call, w: Signal, x: Signal, dim: Dim) -> Signal:
        """matvec(W, x) inside a neuron: W a matrix param [out, in], x a vector over the same `in` axis."""
        if not isinstance(w.expr, ir.Var) or len(w.shape) != 2:
            raise self.fail("E302", "matvec() takes a neuron's matrix param first: param W[out = 4, in = 3]",
                            node.args[0].value.span, ["matvec(W, x), W declared in the neuron with two axes"])
        if len(x.shape) != 1 or x.shape[0].name != w.shape[1].name or x.shape[0].size != w.shape[1].size:
            raise self.fail("E302", f"matvec() needs a vector over {format_shape(w.shape[1:])}, got "
                                    f"{format_shape(x.shape)}", node.args[1].value.span)
        return Signal(ir.Call(fn="matvec", args=[w.expr, x.expr]), w.shape[:1], dim)

    def _function_dim(self, node: ast.Call, rule: str, dims: list[Dim]) -> Dim:
        name = node.func.id if isinstance(node.func, ast.Name) else "function"
        if rule == "same" and len(set(dims)) > 1:
            raise self.fail("E401", f"the arguments of {name}() must share a dimension, got "
                                    f"{', '.join(format_dim(d) for d in dims)}", node.span)
        if rule == "pure" and dims[0] != DIMENSIONLESS:
            raise self.fail("E401", f"{name}() needs a dimensionless argument, got {format_dim(dims[0])}", node.span)
        if rule == "sqrt":
            if any(x % 2 for x in dims[0]):
                raise self.fail("E401", f"sqrt() of {format_dim(dims[0])} has no dimension", node.span)
            return tuple(x // 2 for x in dims[0])  # type: ignore[return-value]
        if rule == "where":
            if dims[1] != dims[2]:
                raise self.fail("E401", "the branches of where() must share a dimension", node.span)
            return dims[1]
        if rule == "indicator":
            return DIMENSIONLESS
        if rule == "matvec":
            return units.mul(dims[0], dims[1])
        return dims[0]

    def _init_rule(self, node: ast.Call, scope: Scope, name: str) -> InitRule:
        if name in init_rules.SIGNATURES:
            return init_rules.call(self, node, scope, name)
        self._positional(node, f"{name}()")
        if name == "load":
            return load_rule(self, node, scope, Limits.synapses)
        arity = {"constant": 1, "fixed": 1, "uniform": 2, "normal": 2}[name]
        if len(node.args) != arity:
            raise self.fail("E301", f"{name}() takes {arity} argument{'s' * (arity != 1)}, got {len(node.args)}",
                            node.span)
        values = [self.constant(a.value, scope, f"an argument of {name}()") for a in node.args]
        for value, arg in zip(values, node.args, strict=True):
            if not is_number(value) or isinstance(value, bool):
                raise self.fail("E301", f"{name}() needs numbers, not {describe(value)}", arg.value.span)
        dims = {dim_of(v) for v in values}
        if len(dims) > 1:
            raise self.fail("E401", f"the arguments of {name}() must share a dimension", node.span)
        args = tuple(float(magnitude(v)) for v in values)
        if name in ("uniform", "normal") and args[1] < (args[0] if name == "uniform" else 0):
            what = "high must not be below low" if name == "uniform" else "the standard deviation must be >= 0"
            raise self.fail("E801", f"{name}(): {what}", node.span)
        rule = "constant" if name == "fixed" else name
        return InitRule(rule, args, dims.pop(), fixed=name == "fixed")

    def _rule(self, node: ast.Call, scope: Scope, name: str) -> Rule:
        args: list[tuple[str, object]] = []
        for i, arg in enumerate(node.args):
            key = arg.name.name if arg.name else str(i)
            args.append((key, self.constant(arg.value, scope, f"an argument of {name}()")))
        return Rule(name, tuple(args))

    # ---- indexing and members --------------------------------------------------------------------
    def _eval_Subscript(self, node: ast.Subscript, scope: Scope, expect: str | None,
                        labels: list[str] | None) -> object:
        base = self.eval(node.value, scope)
        if isinstance(base, InstanceArray):
            if len(node.indices) != 1 or isinstance(node.indices[0], ast.Slice | ast.AxisIndex):
                raise self.fail("E303", f"'{base.name}' is indexed by one whole number", node.span)
            index = self.integer(node.indices[0], scope, "an instance index")
            if index not in base.items:
                raise self.fail("E303", f"'{base.name}[{index}]' was not instantiated", node.span,
                                [f"instances: {', '.join(f'{base.name}[{i}]' for i in sorted(base.items))}"])
            return base.items[index]
        if isinstance(base, list):
            if len(node.indices) != 1 or isinstance(node.indices[0], ast.Slice | ast.AxisIndex):
                raise self.fail("E303", "a list is indexed by one whole number", node.span)
            index = self.integer(node.indices[0], scope, "a list index")
            if not -len(base) <= index < len(base):
                raise self.fail("E303", f"index {index} is out of range for a list of {len(base)}", node.span)
            return base[index]
        if isinstance(base, PopulationRef):
            picks = self.index_picks(node, scope, base.shape, select.from_ir(base.shape, base.select))
            return PopulationRef(base.name, base.shape, select.to_ir(base.shape, picks), base.model, base.port)
        if isinstance(base, Signal):
            return self._index_signal(node, scope, base)
        raise self.fail("E206", f"{describe(base)} cannot be indexed", node.value.span)

    def index_picks(self, node: ast.Subscript, scope: Scope, shape: tuple[ir.Axis, ...],
               picks: tuple[select.AxisPick, ...]) -> tuple[select.AxisPick, ...]:
        labels = [label for axis in shape for label in (axis.labels or [])]
        items = [self._index_item(i, scope, labels) for i in node.indices]
        try:
            return select.apply(shape, picks, items)
        except Problem as error:
            raise self.fail(error.code, error.message, node.span, list(error.notes)) from None

    def _index_item(self, index: ast.Index, scope: Scope, labels: list[str]) -> select.IndexItem:
        if isinstance(index, ast.AxisIndex):
            return select.IndexItem(index.axis.name, self._index_value(index.value, scope, labels))
        return select.IndexItem(None, self._index_value(index, scope, labels))

    def _index_value(self, index: ast.Expr | ast.Slice, scope: Scope,
                     labels: list[str]) -> int | slice | tuple[int | str, ...] | str:
        if isinstance(index, ast.Slice):
            parts = [None if p is None else self.integer(p, scope, "a slice bound") for p in
                     (index.start, index.stop, index.step)]
            if parts[2] == 0:
                raise self.fail("E303", "a slice step cannot be zero", index.span)
            return slice(*parts)
        value = self.eval(index, scope, labels=labels)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, Symbol):
            return value.name
        if isinstance(value, int | str) and not isinstance(value, bool):
            return value
        if isinstance(value, list | frozenset):
            items = sorted(value, key=str) if isinstance(value, frozenset) else value
            out: list[int | str] = []
            for item in items:
                item = item.name if isinstance(item, Symbol) else item
                if not isinstance(item, int | str) or isinstance(item, bool):
                    raise self.fail("E301", f"an index list holds whole numbers or unit names, not {describe(item)}",
                                    index.span)
                out.append(item)
            return tuple(out)
        raise self.fail("E301", f"an index must be a whole number, a slice or a unit name, not {describe(value)}",
                        index.span)

    def _index_signal(self, node: ast.Subscript, scope: Scope, base: Signal) -> Signal:
        picks = self.index_picks(node, scope, base.shape, select.full(base.shape))
        if isinstance(base.expr, ir.Ref) or _all_leaves_shaped(base.expr):
            expr = _reselect(base.expr, base.shape, picks, self.ref_shapes)
            return Signal(expr, select.result_shape(base.shape, picks), base.dim)
        raise self.fail("E302", "only element-wise signals can be indexed", node.span)

    def _eval_Member(self, node: ast.Member, scope: Scope, expect: str | None, labels: list[str] | None) -> object:
        base = self.eval(node.value, scope)
        name = node.name.name
        if isinstance(base, Namespace):
            binding = base.module.scope.names.get(name)
            if binding is None or not isinstance(binding.value, Definition | Builtin):
                names = [n for n, b in base.module.scope.names.items() if isinstance(b.value, Definition | Builtin)]
                raise self.fail("E201", f"'{base.name}' has no definition '{name}'", node.name.span,
                                [did_you_mean(name, names)])
            return binding.value
        if isinstance(base, InstanceValue):
            if name in base.outputs:
                return base.outputs[name]
            if name in base.bound:
                return base.bound[name]
            if name in base.populations:
                return base.populations[name]
            ports = [*base.outputs, *base.bound, *base.populations]
            raise self.fail("E205", f"'{base.name}' has no output or population '{name}'", node.name.span,
                            [did_you_mean(name, ports)])
        if isinstance(base, PopulationRef):
            return PopulationRef(base.name, base.shape, base.select, base.model, name)
        raise self.fail("E206", f"{describe(base)} has no members", node.value.span)


def touch(node: object, scope: Scope) -> None:
    """Mark the names under an AST node as used without evaluating it (the branch not taken)."""
    if isinstance(node, ast.Name):
        binding = scope.lookup(node.id)
        if binding is not None:
            binding.used = True
    elif isinstance(node, tuple | list):
        for item in node:
            touch(item, scope)
    elif isinstance(node, ast.Node):
        for value in vars(node).values():
            if isinstance(value, ast.Node | tuple | list):
                touch(value, scope)


_VERB = {"+": "add", "-": "subtract", "%": "take the remainder of"}


def _same_axes(a: tuple[ir.Axis, ...], b: tuple[ir.Axis, ...]) -> bool:
    return [(x.name, x.size) for x in a] == [(x.name, x.size) for x in b]


def _shape(ref: PopulationRef) -> tuple[ir.Axis, ...]:
    return select.result_shape(ref.shape, select.from_ir(ref.shape, ref.select))


def _list(selection: tuple[ir.AxisSel, ...] | None) -> list[ir.AxisSel] | None:
    return None if selection is None else list(selection)


def format_shape(shape: tuple[ir.Axis, ...] | list[ir.Axis]) -> str:
    return "[" + ", ".join(f"{a.name}={a.size}" for a in shape) + "]" if shape else "a single unit"


def _all_leaves_shaped(expr: ir.Expr) -> bool:
    """True when every leaf of an element-wise expression is a constant or a ref (so indexing distributes)."""
    for node in walk(expr):
        if isinstance(node, ir.Call) and FUNCTIONS[node.fn].dims in ("reduce", "winners", "matvec", "push"):
            return False  # an axis function is not element-wise: a selection does not distribute
        if isinstance(node, AXIS_NODES):
            return False  # nor an operation over named axes (circuitdsl/elaborate/axis_ops.py)
        if not children(node) and not isinstance(node, ir.Const | ir.Ref):
            return False
    return True


def _reselect(expr: ir.Expr, shape: tuple[ir.Axis, ...], picks: tuple[select.AxisPick, ...],
              ref_shapes: dict[str, tuple[ir.Axis, ...]]) -> ir.Expr:
    """Push a selection made on an element-wise expression down to each of its refs."""
    if not shape:
        return expr

    def reselect(node: ir.Expr) -> ir.Expr:
        if not isinstance(node, ir.Ref):
            return node
        base = ref_shapes[node.source]
        current = select.from_ir(base, tuple(node.select) if node.select else None)
        if not select.result_shape(base, current):
            return node  # a single unit broadcast against the others stays as it is
        retained = [i for i, p in enumerate(current) if not isinstance(p, int)]
        new = list(current)
        for axis_index, pick in zip(retained, picks, strict=True):
            kept = current[axis_index]
            assert not isinstance(kept, int)  # a retained axis keeps a range or a tuple of units
            new[axis_index] = kept[pick] if isinstance(pick, int) else _compose(kept, pick)
        return ir.Ref(source=node.source, select=_list(select.to_ir(base, tuple(new))))

    return transform(expr, reselect)


def _compose(kept: range | tuple[int, ...], pick: range | tuple[int, ...]) -> range | tuple[int, ...]:
    """The units `pick` selects among those `kept`; two ranges compose into one without listing them."""
    if isinstance(pick, range) and pick.step > 0:
        return kept[pick.start:pick.stop:pick.step]
    return tuple(kept[i] for i in pick)
