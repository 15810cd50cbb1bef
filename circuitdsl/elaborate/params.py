"""A circuit's `param` declarations: sign class, init, sharing, enforcement and trainability, checked; or, in
an instance, the parent's param passed by name in place of the child's own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

from circuitdsl import ast
from circuitdsl.elaborate import init_rules
from circuitdsl.elaborate.evaluate import Evaluator, dim_of, magnitude
from circuitdsl.elaborate.network import Frame, Network
from circuitdsl.elaborate.scope import Scope
from circuitdsl.elaborate.values import InitRule, ParamHandle, Symbol, describe
from circuitdsl.errors import Span, did_you_mean
from circuitdsl.ir import model as ir
from circuitdsl.units import Quantity

# the IR's words for a param's settings, looked up from the enum symbols the declaration was checked against
_SIGNS: dict[str, ir.Sign] = {word: word for word in get_args(ir.Sign)}
_ENFORCES: dict[str, ir.Enforce] = {word: word for word in get_args(ir.Enforce)}
_SHARES: dict[str, ir.Share] = {word: word for word in get_args(ir.Share)}
_OPTIONS: dict[str, str | None] = {"shared": "share", "enforce": "enforce", "trainable": None}  # name -> its enum


@dataclass(frozen=True)
class ParamSettings:
    """The checked settings of a `param` declaration, which every name it declares gets."""

    sign: ir.Sign
    enforce: ir.Enforce
    share: ir.Share
    trainable: bool
    init: InitRule


def declare_param(net: Network, frame: Frame, s: ast.ParamDecl, scope: Scope) -> None:
    """`param w, v : excitatory = 0.5, shared = edge`: one handle per name, sized later by its uses."""
    ev = net.evaluator
    if s.shape is not None:
        raise ev.fail("E005", "a param with axes belongs in a neuron (private weights of each unit)", s.span,
                      ["a circuit's param takes its shape from the projections using it: `shared = ...`"])
    settings = _settings(net, s, scope)
    for ident in s.names:
        name = ident.name
        if name in frame.bound_params:
            handle = frame.bound_params[name]
            if handle.sign != settings.sign:
                raise ev.fail("E501", f"'{name}' is declared {settings.sign} here but the parent passes the "
                                      f"{handle.sign} param '{handle.name}'", s.sign.span)
        else:
            handle = ParamHandle(frame.prefix + name, settings.sign, settings.enforce, settings.init,
                                 settings.trainable, settings.share, ident.span)
            net.params.append(handle)
        frame.scope.define(name, handle, ident.span, "param", net.reporter)


def _settings(net: Network, s: ast.ParamDecl, scope: Scope) -> ParamSettings:
    ev = net.evaluator
    sign = ev.constant(s.sign, scope, "a sign class", expect="sign")
    if not isinstance(sign, Symbol) or sign.enum != "sign":
        raise ev.fail("E301", f"the sign class is excitatory, inhibitory, free or fixed, not {describe(sign)}",
                      s.sign.span)
    options = _options(net, s.options, scope)
    init = _initial_value(net, s.init, scope, sign.name, s.span)
    share = options.get("shared", Symbol("all", "share"))
    if isinstance(share, bool):
        share = Symbol("all" if share else "edge", "share")
    if not isinstance(share, Symbol) or share.enum != "share":
        raise ev.fail("E505", f"shared is true, false or one of all, population, projection, edge; "
                              f"not {describe(share)}", _option_span(s.options, "shared", s.span))
    default_enforce = "clamp" if sign.name in ("excitatory", "inhibitory") else "none"
    enforce = options.get("enforce", Symbol(default_enforce, "enforce"))
    if not isinstance(enforce, Symbol) or enforce.enum != "enforce":
        raise ev.fail("E301", f"enforce is clamp, softplus, abs or none, not {describe(enforce)}",
                      _option_span(s.options, "enforce", s.span))
    trainable = options.get("trainable", sign.name != "fixed")
    if not isinstance(trainable, bool):
        raise ev.fail("E301", f"trainable is true or false, not {describe(trainable)}",
                      _option_span(s.options, "trainable", s.span))
    _check_combination(ev, sign.name, enforce.name, init, trainable, s)
    return ParamSettings(_SIGNS[sign.name], _ENFORCES[enforce.name], _SHARES[share.name], trainable, init)


def _check_combination(ev: Evaluator, sign: str, enforce: str, init: InitRule, trainable: bool,
                       s: ast.ParamDecl) -> None:
    """Settings that contradict each other: enforcing no sign, a trainable constant, an init on the wrong side."""
    if sign in ("free", "fixed") and enforce != "none":
        raise ev.fail("E503", f"a {sign} parameter has no sign to enforce (enforce = {enforce})",
                      _option_span(s.options, "enforce", s.span), ["drop `enforce`, or give a sign class"])
    if sign == "fixed" and trainable:
        raise ev.fail("E504", "a fixed parameter cannot be trainable", _option_span(s.options, "trainable", s.span))
    span = s.init.span if s.init is not None else s.span
    if enforce != "none":
        check_init_sign(ev, init, sign, enforce, span)


def _initial_value(net: Network, node: ast.Expr | None, scope: Scope, sign: str, span: Span) -> InitRule:
    """The init after `=`, or the sign class's default range (a fixed param must give its value)."""
    ev = net.evaluator
    if node is None:
        default = {"excitatory": ("uniform", (0.0, 1.0)), "inhibitory": ("uniform", (-1.0, 0.0)),
                   "free": ("uniform", (-1.0, 1.0))}
        if sign not in default:
            raise ev.fail("E204", "a fixed parameter needs its value", span, ["e.g. param g : fixed = 1"])
        rule, args = default[sign]
        return InitRule(rule, args)
    value = ev.constant(node, scope, "an initial value")
    if isinstance(value, InitRule):
        if value.fixed:
            raise ev.fail("E301", "fixed(...) is for weights on projections; declare the sign class `fixed` instead",
                          node.span)
        return value
    if isinstance(value, int | float | Quantity) and not isinstance(value, bool):
        return InitRule("constant", (float(magnitude(value)),), dim_of(value))
    raise ev.fail("E301", f"an initial value is a number or an init rule, not {describe(value)}", node.span,
                  ["e.g. = 1, = uniform(0, 1), = normal(0, 0.1)"])


def _options(net: Network, options: tuple[ast.Arg, ...], scope: Scope) -> dict[str, object]:
    """A param's `name = value` options by name, each a constant of its enum (checked by the caller)."""
    ev = net.evaluator
    result: dict[str, object] = {}
    for option in options:
        if option.name is None:
            raise ev.fail("E006", "a param option is written name = value", option.span,
                          [f"options: {', '.join(_OPTIONS)}"])
        name = option.name.name
        if name not in _OPTIONS:
            raise ev.fail("E203", f"unknown param option '{name}'", option.name.span,
                          [did_you_mean(name, _OPTIONS), f"options: {', '.join(_OPTIONS)}"])
        if name in result:
            raise ev.fail("E202", f"option '{name}' is given twice", option.name.span)
        result[name] = ev.constant(option.value, scope, f"the option '{name}'", expect=_OPTIONS[name])
    return result


def _option_span(options: tuple[ast.Arg, ...], name: str, default: Span) -> Span:
    for option in options:
        if option.name is not None and option.name.name == name:
            return option.span
    return default


def check_init_sign(ev: Evaluator, init: InitRule, sign: str, enforce: str, span: Span) -> None:
    """An initial value must lie on the sign's side (strictly, under softplus, which cannot reach 0)."""
    if sign not in ("excitatory", "inhibitory"):
        return
    flip = 1.0 if sign == "excitatory" else -1.0
    lowest = min(flip * v for v in init_rules.value_range(init))  # a normal: its mean must sit on the right side
    strict = enforce == "softplus"
    if lowest < 0 or (strict and lowest <= 0):
        side = "positive" if sign == "excitatory" else "negative"
        raise ev.fail("E502", f"an {sign} parameter starts {side}{' (softplus cannot reach 0)' * strict}, "
                              f"but this init does not", span,
                      ["e.g. excitatory = 1, inhibitory = -1, or enforce = none to drop the constraint"])
