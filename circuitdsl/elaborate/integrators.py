"""Integrators: a neuron's `dx/dt` equations expanded into plain IR equations at elaboration.

Every backend runs the expansion as it runs any other `let` and update, so the methods need no backend code.
All derivatives of a neuron are evaluated from the same values (the state at the start of the step, unless an
update written above the first `dx/dt` changed it); the new values are assigned together where the last `dx/dt`
is written.  Generated names contain characters a user's name cannot (`dv/dt`, `v@2`), so they never clash.

- `euler`: x' = x + dt * f(x), Brian2's and NEST's forward Euler.
- `exponential_euler`: for f linear in x, f = A x + B (A and B may read the other states and inputs, as
  Brian2 allows): x' = (x + B/A) exp(A dt) - B/A.  Where A is zero it is Euler.
- `rk4`: the classic four-stage Runge-Kutta; each stage re-evaluates the `let`s the derivatives read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from circuitdsl.errors import Span
from circuitdsl.ir import model as ir

METHODS: tuple[str, ...] = ("euler", "exponential_euler", "rk4")


@dataclass(frozen=True)
class Ode:
    """One `dx/dt = rate` of a neuron, with the span of its right side for errors."""

    state: str
    rate: ir.Expr
    span: Span


class NotLinear(Exception):
    """A derivative is not linear in its own variable (exponential Euler does not apply)."""


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
    if isinstance(expr, ir.Var):
        return {expr.name}
    return set().union(*(free_names(child) for child in _children(expr)))


def _children(expr: ir.Expr) -> list[ir.Expr]:
    if isinstance(expr, ir.Unary):
        return [expr.x]
    if isinstance(expr, ir.Binary):
        return [expr.left, expr.right]
    if isinstance(expr, ir.Call):
        return list(expr.args)
    if isinstance(expr, ir.Cond):
        return [expr.cond, expr.then, expr.other]
    return []


def substitute(expr: ir.Expr, names: Mapping[str, str]) -> ir.Expr:
    """The expression with each `Var` named in `names` renamed (a stage's values in place of the state's)."""
    if isinstance(expr, ir.Var):
        return _var(names[expr.name]) if expr.name in names else expr
    if isinstance(expr, ir.Unary):
        return ir.Unary(op=expr.op, x=substitute(expr.x, names))
    if isinstance(expr, ir.Binary):
        return _bin(expr.op, substitute(expr.left, names), substitute(expr.right, names))
    if isinstance(expr, ir.Call):
        return ir.Call(fn=expr.fn, args=[substitute(a, names) for a in expr.args])
    if isinstance(expr, ir.Cond):
        return ir.Cond(cond=substitute(expr.cond, names), then=substitute(expr.then, names),
                       other=substitute(expr.other, names))
    return expr


def dependents(lets: Sequence[ir.Equation], names: set[str]) -> set[str]:
    """The `let`s (in written order) that read any of `names`, directly or through earlier lets."""
    reached = set(names)
    found: set[str] = set()
    for equation in lets:
        if free_names(equation.expr) & reached:
            reached.add(equation.target)
            found.add(equation.target)
    return found


# ---- exponential Euler: f = A x + B --------------------------------------------------------------------

Linear = tuple[ir.Expr | None, ir.Expr | None]  # (A, B); None is zero


def linear_in(expr: ir.Expr, x: str, lets: Mapping[str, ir.Expr], reads_x: set[str]) -> Linear:
    """Split `expr` into A x + B with A and B free of `x` (lets reading x are looked through), or NotLinear."""
    if not (free_names(expr) & ({x} | reads_x)):
        return None, expr
    if isinstance(expr, ir.Var):
        return (_const(1.0), None) if expr.name == x else linear_in(lets[expr.name], x, lets, reads_x)
    if isinstance(expr, ir.Unary) and expr.op == "-":
        a, b = linear_in(expr.x, x, lets, reads_x)
        return _neg(a), _neg(b)
    if isinstance(expr, ir.Binary) and expr.op in ("+", "-"):
        (a1, b1), (a2, b2) = linear_in(expr.left, x, lets, reads_x), linear_in(expr.right, x, lets, reads_x)
        return _add(expr.op, a1, a2), _add(expr.op, b1, b2)
    if isinstance(expr, ir.Binary) and expr.op in ("*", "/"):
        left, right = linear_in(expr.left, x, lets, reads_x), linear_in(expr.right, x, lets, reads_x)
        if expr.op == "*" and left[0] is None:
            return _scale("*", right, expr.left)
        if right[0] is None:
            return _scale(expr.op, left, expr.right)
    raise NotLinear()


def _neg(a: ir.Expr | None) -> ir.Expr | None:
    return None if a is None else ir.Unary(op="-", x=a)


def _add(op: str, a: ir.Expr | None, b: ir.Expr | None) -> ir.Expr | None:
    if b is None:
        return a
    if a is None:
        return b if op == "+" else ir.Unary(op="-", x=b)
    return _bin(op, a, b)


def _scale(op: str, part: Linear, factor: ir.Expr) -> Linear:
    """(A, B) multiplied or divided by a factor free of x; for `*` the factor is written first, as in the source."""
    def one(term: ir.Expr | None) -> ir.Expr | None:
        if term is None:
            return None
        return _bin("*", factor, term) if op == "*" else _bin("/", term, factor)
    return one(part[0]), one(part[1])


# ---- the expansion -------------------------------------------------------------------------------------


def derivative_equations(method: str, ode: Ode, before: Sequence[ir.Equation]) -> list[ir.Equation]:
    """What goes where `dx/dt = rate` is written: the derivative (or exponential Euler's A and B/A) at the
    values of that point, as `let`s.  Raises NotLinear where exponential Euler does not apply."""
    x = ode.state
    if method == "exponential_euler":
        lets = [e for e in before if e.kind == "let"]
        a, b = linear_in(ode.rate, x, {e.target: e.expr for e in lets}, dependents(lets, {x}))
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
