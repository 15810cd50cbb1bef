"""Integrators: a neuron's `dx/dt` equations expanded into plain IR equations at elaboration.

Every backend runs the expansion as it runs any other `let` and update, so the methods need no backend code.
All derivatives of a neuron are evaluated from the same values (the state at the start of the step, unless an
update written above the first `dx/dt` changed it); the new values are assigned together where the last `dx/dt`
is written.  Generated names contain characters a user's name cannot (`dv/dt`, `v@2`), so they never clash.

- `euler`: x' = x + dt * f(x), Brian2's and NEST's forward Euler.
- `exponential_euler`: for f linear in x, f = A x + B (A and B may read the other states and inputs, as
  Brian2 allows): x' = (x + B/A) exp(A dt) - B/A.  Where A is zero it is Euler.
- `rk4`: the classic four-stage Runge-Kutta; each stage re-evaluates the `let`s the derivatives read.
- `exact`: for a linear system with constant coefficients, x' = M x + c (c may read inputs and other states,
  held over the step), the exact solution X(dt) = exp(M dt) X + (integral of exp(M s) over [0, dt]) c, both
  matrices computed once at elaboration (scipy's expm of the augmented matrix [[M, I], [0, 0]] dt), as Brian2's
  `exact` and NESTML's propagators do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from circuitdsl.errors import Span
from circuitdsl.ir import model as ir
from circuitdsl.ir.expr import evaluate, fold, transform, walk


@dataclass(frozen=True)
class Ode:
    """One `dx/dt = rate` of a neuron, with the span of its right side for errors."""

    state: str
    rate: ir.Expr
    span: Span


class NotLinear(Exception):
    """A derivative is not linear in its own variable (exponential Euler does not apply)."""


class NotExact(Exception):
    """A system the `exact` method cannot solve: `ode`'s derivative is not linear in the states, or a coefficient
    is not a constant."""

    def __init__(self, ode: Ode, reason: str) -> None:
        super().__init__(reason)
        self.ode = ode
        self.reason = reason


def rate_name(state: str) -> str:
    """The `let` holding a state's derivative at the start of the step."""
    return f"d{state}/dt"


# ---- expression helpers --------------------------------------------------------------------------------


def _const(value: float) -> ir.Expr:
    return ir.Const(value=value)


def _var(name: str) -> ir.Expr:
    return ir.Var(name=name)


def _bin(op: str, left: ir.Expr, right: ir.Expr) -> ir.Expr:
    return ir.Binary(op=op, left=left, right=right)  # type: ignore[arg-type]


def free_names(expr: ir.Expr) -> set[str]:
    """The names an expression reads (its `Var`s)."""
    return {node.name for node in walk(expr) if isinstance(node, ir.Var)}


def substitute(expr: ir.Expr, names: Mapping[str, str]) -> ir.Expr:
    """The expression with each `Var` named in `names` renamed (a stage's values in place of the state's)."""
    return transform(expr, lambda node: _var(names[node.name]) if isinstance(node, ir.Var) and node.name in names
                     else node)


def dependents(lets: Sequence[ir.Equation], names: set[str]) -> set[str]:
    """The `let`s (in written order) that read any of `names`, directly or through earlier lets."""
    reached = set(names)
    found: set[str] = set()
    for equation in lets:
        if free_names(equation.expr) & reached:
            reached.add(equation.target)
            found.add(equation.target)
    return found


# ---- linear forms: f = sum_j A_j x_j + B ----------------------------------------------------------------

Linear = tuple[dict[str, ir.Expr], ir.Expr | None]  # (coefficient per variable, B); a missing entry is zero


def linear_in(expr: ir.Expr, xs: tuple[str, ...], lets: Mapping[str, ir.Expr], reads: set[str]) -> Linear:
    """Split `expr` into sum_j A_j x_j + B with every A_j and B free of the variables `xs` (the lets in `reads`,
    which read them, are looked through), or raise NotLinear.  A subexpression free of them is its own B."""
    def visit(node: ir.Expr, kids: tuple[Linear, ...]) -> Linear:
        if isinstance(node, ir.Var) and node.name in xs:
            return {node.name: _const(1.0)}, None
        if isinstance(node, ir.Var) and node.name in reads:
            return fold(lets[node.name], visit)
        if not any(a for a, _ in kids):
            return {}, node
        if isinstance(node, ir.Unary) and node.op == "-":
            a, b = kids[0]
            return {x: _neg(c) for x, c in a.items()}, None if b is None else _neg(b)
        if isinstance(node, ir.Binary) and node.op in ("+", "-"):
            (a1, b1), (a2, b2) = kids
            merged = {x: _add(node.op, a1.get(x), a2.get(x)) for x in {**a1, **a2}}
            return merged, _add(node.op, b1, b2)  # type: ignore[return-value]
        if isinstance(node, ir.Binary) and node.op in ("*", "/"):
            left, right = kids
            if node.op == "*" and not left[0]:
                return _scale("*", right, node.left)
            if not right[0]:
                return _scale(node.op, left, node.right)
        raise NotLinear()

    return fold(expr, visit)


def _neg(a: ir.Expr) -> ir.Expr:
    return ir.Unary(op="-", x=a)


def _add(op: str, a: ir.Expr | None, b: ir.Expr | None) -> ir.Expr | None:
    if b is None:
        return a
    if a is None:
        return b if op == "+" else _neg(b)
    return _bin(op, a, b)


def _scale(op: str, part: Linear, factor: ir.Expr) -> Linear:
    """A linear form multiplied or divided by a factor free of the variables (for `*` written first)."""
    def one(term: ir.Expr) -> ir.Expr:
        return _bin("*", factor, term) if op == "*" else _bin("/", term, factor)
    return {x: one(c) for x, c in part[0].items()}, None if part[1] is None else one(part[1])


# ---- the expansion -------------------------------------------------------------------------------------


def derivative_equations(method: str, ode: Ode, before: Sequence[ir.Equation]) -> list[ir.Equation]:
    """What goes where `dx/dt = rate` is written: the derivative (or exponential Euler's A and B/A) at the
    values of that point, as `let`s.  Raises NotLinear where exponential Euler does not apply."""
    x = ode.state
    if method == "exponential_euler":
        lets = [e for e in before if e.kind == "let"]
        coefficients, b = linear_in(ode.rate, (x,), {e.target: e.expr for e in lets}, dependents(lets, {x}))
        a = coefficients.get(x)
        if a is not None:
            equations = [ir.Equation(kind="let", target=f"{x}@A", expr=a)]
            if b is not None:
                equations.append(ir.Equation(kind="let", target=f"{x}@B/A", expr=_bin("/", b, _var(f"{x}@A"))))
            return equations
    return [ir.Equation(kind="let", target=rate_name(x), expr=ode.rate)]


def update_equations(method: str, odes: Sequence[Ode], before: Sequence[ir.Equation], dt: float,
                     states: set[str]) -> list[ir.Equation]:
    """The equations after the last `dx/dt`: RK4's later stages, then every state's new value."""
    if method == "rk4":
        return _rk4(odes, before, dt, states)
    if method == "exact":
        return _exact(odes, before, dt)
    defined = {e.target for e in before if e.kind == "let"}
    updates = []
    for ode in odes:
        x = _var(ode.state)
        if f"{ode.state}@A" not in defined:  # Euler, or exponential Euler where the derivative does not read x
            new = _bin("+", x, _bin("*", _const(dt), _var(rate_name(ode.state))))
        else:
            growth = ir.Call(fn="exp", args=[_bin("*", _var(f"{ode.state}@A"), _const(dt))])
            ratio = f"{ode.state}@B/A"
            new = _bin("-", _bin("*", _bin("+", x, _var(ratio)), growth), _var(ratio)) if ratio in defined \
                else _bin("*", x, growth)
        updates.append(ir.Equation(kind="ode", target=ode.state, expr=new))
    return updates


def _rk4(odes: Sequence[Ode], before: Sequence[ir.Equation], dt: float, states: set[str]) -> list[ir.Equation]:
    """Stages 2-4 of RK4: each stage's state values, then a copy of every let the derivatives read that depends
    on a state, evaluated at those values; then x' = x + dt/6 (k1 + 2 k2 + 2 k3 + k4)."""
    lets = [e for e in before if e.kind == "let"]
    needed = _read_by({rate_name(o.state) for o in odes}, lets)
    moving = [e for e in lets if e.target in needed and e.target in dependents(lets, states)]
    equations: list[ir.Equation] = []
    slopes = {o.state: [rate_name(o.state)] for o in odes}
    for stage, step in ((2, 0.5 * dt), (3, 0.5 * dt), (4, dt)):
        names = {o.state: f"{o.state}@{stage}" for o in odes}
        for ode in odes:
            equations.append(ir.Equation(kind="let", target=names[ode.state], expr=_bin(
                "+", _var(ode.state), _bin("*", _const(step), _var(slopes[ode.state][-1])))))
        for let in moving:
            names[let.target] = f"{let.target}@{stage}"
            equations.append(ir.Equation(kind="let", target=names[let.target], expr=substitute(let.expr, names)))
        for ode in odes:
            slopes[ode.state].append(names.get(rate_name(ode.state), rate_name(ode.state)))
    for ode in odes:
        k1, k2, k3, k4 = (_var(name) for name in slopes[ode.state])
        total = _bin("+", _bin("+", k1, _bin("*", _const(2.0), _bin("+", k2, k3))), k4)
        equations.append(ir.Equation(kind="ode", target=ode.state, expr=_bin(
            "+", _var(ode.state), _bin("*", _const(dt / 6.0), total))))
    return equations


def _read_by(names: set[str], lets: Sequence[ir.Equation]) -> set[str]:
    """`names` and every let they read, directly or through other lets."""
    needed = set(names)
    for equation in reversed(lets):
        if equation.target in needed:
            needed |= free_names(equation.expr)
    return needed


def _exact(odes: Sequence[Ode], before: Sequence[ir.Equation], dt: float) -> list[ir.Equation]:
    """x' = Phi x + Gamma c for the linear system x' = M x + c: each state's c_i as a let, then every new value
    as a let (they read the old states), then the states assigned."""
    from scipy.linalg import expm

    xs = tuple(o.state for o in odes)
    lets = [e for e in before if e.kind == "let"]
    table, reads = {e.target: e.expr for e in lets}, dependents(lets, set(xs))
    n = len(xs)
    matrix = np.zeros((n, n))
    equations: list[ir.Equation] = []
    forcing: list[str | None] = []
    for i, ode in enumerate(odes):
        try:
            coefficients, rest = linear_in(ode.rate, xs, table, reads)
        except NotLinear:
            raise NotExact(ode, f"d{ode.state}/dt is not linear in {', '.join(xs)}") from None
        for x, coefficient in coefficients.items():
            value = constant(coefficient)
            if value is None:
                raise NotExact(ode, f"the coefficient of {x} in d{ode.state}/dt is not a constant")
            matrix[i, xs.index(x)] = value
        forcing.append(None if rest is None else f"{ode.state}@c")
        if rest is not None:
            equations.append(ir.Equation(kind="let", target=f"{ode.state}@c", expr=rest))
    augmented = np.zeros((2 * n, 2 * n))
    augmented[:n, :n], augmented[:n, n:] = matrix * dt, np.eye(n) * dt
    propagator = expm(augmented)
    phi, gamma = propagator[:n, :n], propagator[:n, n:]
    for i, x in enumerate(xs):
        terms = [_bin("*", _const(float(phi[i, j])), _var(y)) for j, y in enumerate(xs) if phi[i, j] != 0.0]
        terms += [_bin("*", _const(float(gamma[i, j])), _var(c)) for j, c in enumerate(forcing)
                  if c is not None and gamma[i, j] != 0.0]
        total = terms[0] if terms else _const(0.0)
        for term in terms[1:]:
            total = _bin("+", total, term)
        equations.append(ir.Equation(kind="let", target=f"{x}@new", expr=total))
    equations += [ir.Equation(kind="ode", target=x, expr=_var(f"{x}@new")) for x in xs]
    return equations


class _Reads(Exception):
    """An expression reads a variable: it is not a constant."""


def constant(expr: ir.Expr) -> float | None:
    """The value of an expression of constants (arguments are folded in as constants), or None if it reads a
    variable or its value is not finite."""
    def read(node: object) -> float:
        raise _Reads()
    try:
        value = float(evaluate(expr, read))
    except _Reads:
        return None
    return value if np.isfinite(value) else None
