"""`delay = learnable(max = K)` on a projection: read the option, and make the params its synapses learn."""

from __future__ import annotations

from dataclasses import dataclass

from circuitdsl import ast
from circuitdsl.elaborate.evaluate import Evaluator
from circuitdsl.elaborate.scope import Scope
from circuitdsl.elaborate.values import InitRule, ParamHandle, describe
from circuitdsl.errors import Span, did_you_mean
from circuitdsl.ir import model as ir


@dataclass(frozen=True)
class Learnable:
    """A learnable delay of 1..`max` steps per synapse."""

    max: int


def is_learnable(node: ast.Expr) -> bool:
    """Whether a delay option is written `learnable(...)` (anything else is a fixed number of steps)."""
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "learnable"


def learnable(ev: Evaluator, node: ast.Call, scope: Scope, limit: int) -> Learnable:
    """`learnable(max = K)`: K a whole number of steps, 1 <= K <= the delay limit."""
    if len(node.args) != 1 or node.args[0].name is None or node.args[0].name.name != "max":
        wrong = next((a for a in node.args if a.name is not None and a.name.name != "max"), None)
        if wrong is not None and wrong.name is not None:
            raise ev.fail("E203", f"learnable() takes no argument named '{wrong.name.name}'", wrong.name.span,
                          [did_you_mean(wrong.name.name, ["max"]), "write delay = learnable(max = 25)"])
        raise ev.fail("E204", "learnable() needs the longest delay: learnable(max = K)", node.span,
                      ["K is a whole number of steps; each synapse learns a delay in 1 .. K"])
    arg = node.args[0]
    value = ev.constant(arg.value, scope, "the longest learnable delay")
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ev.fail("E301", f"the longest delay is a whole number of steps >= 1, not {describe(value)}",
                      arg.value.span)
    if value > limit:
        raise ev.fail("E705", f"a delay of {value} steps is {ev.limits.over('delay')}", arg.value.span,
                      [ev.limits.hint("delay")])
    return Learnable(value)


def delay_params(projection_id: str, spec: Learnable, span: Span) -> tuple[ParamHandle, ParamHandle]:
    """The delays (one per synapse, drawn uniformly in 1..K, trainable) and the kernel width sigma (a fixed
    scalar, 0 until a training loop sets its schedule: see circuitdsl/backends/delays.py)."""
    delays = ParamHandle(f"{projection_id}.delay", "free", "none", InitRule("uniform", (1.0, float(spec.max))),
                         True, "edge", span, anonymous=True)
    sigma = ParamHandle(f"{projection_id}.delay_sigma", "fixed", "none", InitRule("constant", (0.0,), fixed=True),
                        False, "all", span, anonymous=True)
    return delays, sigma


def ir_delay(delays: ParamHandle, sigma: ParamHandle, spec: Learnable) -> ir.LearnableDelay:
    """The IR record of a learnable delay: its two params and the longest delay."""
    return ir.LearnableDelay(param=delays.name, sigma=sigma.name, max=spec.max)
