"""Connectivity rules -> synapse lists: which unit of the source reaches which unit of the target.

Rules that need no list (`one_to_one`, `all_to_all`) stay compact in the IR; `pairs` and `random` become
index arrays.  Counts are checked against the limits before any array is made.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from circuitdsl.elaborate.values import Rule, describe
from circuitdsl.errors import Problem
from circuitdsl.ir import model as ir
from circuitdsl.ir.arrays import Array
from circuitdsl.limits import Limits


@dataclass(frozen=True)
class Wiring:
    connectivity: ir.Connectivity
    synapses: int
    natural_shape: tuple[int, ...]  # the shape of a per-synapse weight used by this projection alone


RULES = ("one_to_one", "all_to_all", "dense", "pairs", "random")


def _sizes(shape: tuple[ir.Axis, ...]) -> tuple[int, ...]:
    return tuple(a.size for a in shape)


def _count(shape: tuple[ir.Axis, ...]) -> int:
    return math.prod(a.size for a in shape)


def wire(rule: Rule, source: tuple[ir.Axis, ...], target: tuple[ir.Axis, ...], limits: Limits, made: int) -> Wiring:
    """Apply a rule between a source and a target shape; `made` synapses exist already (all count to the limit)."""
    n_source, n_target = _count(source), _count(target)
    if rule.name == "one_to_one":
        _check_args(rule, ())
        if _sizes(source) != _sizes(target):  # axis names may differ: the rule states the pairing
            raise Problem("E302", "one_to_one needs the same sizes on both sides",
                            (f"source {_fmt(source)}, target {_fmt(target)}",))
        return Wiring(ir.Connectivity(rule="one_to_one"), n_target, _sizes(target))
    if rule.name in ("all_to_all", "dense"):
        _check_args(rule, ())
        _check_synapses(f"{rule.name} would make", n_source * n_target, made, limits)
        return Wiring(ir.Connectivity(rule="all_to_all"), n_source * n_target, _sizes(target) + _sizes(source))
    if rule.name == "pairs":
        pre, post = _pairs(rule)
        _check_synapses("pairs() lists", len(pre), made, limits)
        return _explicit("pairs", pre, post, n_source, n_target, {})
    if rule.name == "random":
        return _random(rule, n_source, n_target, limits, made)
    raise Problem("E305", f"unknown connectivity rule '{rule.name}'", (f"rules: {', '.join(RULES)}",))


def _check_synapses(what: str, n: int, made: int, limits: Limits) -> None:
    """E703 before anything is allocated: `n` new synapses on top of the `made` ones pass the limit."""
    if made + n > limits.synapses:
        total = f" ({made + n} with the {made} made before)" if made else ""
        raise Problem("E703", f"{what} {n} synapses{total}, {limits.over('synapses')}", (limits.hint("synapses"),))


def _fmt(shape: tuple[ir.Axis, ...]) -> str:
    return "[" + ", ".join(f"{a.name}={a.size}" for a in shape) + "]" if shape else "a single unit"


def _check_args(rule: Rule, allowed: tuple[str, ...]) -> dict[str, object]:
    args = dict(rule.args)
    for key in args:
        if key not in allowed:
            raise Problem("E203", f"{rule.name} takes no argument '{key}'" if not key.isdigit() else
                            f"{rule.name} takes {'the arguments ' + ', '.join(allowed) if allowed else 'no arguments'}")
    return args


def _int_list(value: object, what: str) -> list[int]:
    """A list of whole numbers that fit an index (int64); the first entry that does not is named."""
    if not isinstance(value, list):
        raise Problem("E301", f"{what} must be a list of whole numbers, not {describe(value)}")
    for v in value:
        if not isinstance(v, int) or isinstance(v, bool):
            raise Problem("E301", f"{what} must be whole numbers, not {describe(v)}")
        if not -2**63 <= v < 2**63:
            raise Problem("E303", f"unit {v} is out of range: {what} are indices of units")
    return value


def _pairs(rule: Rule) -> tuple[list[int], list[int]]:
    args = dict(rule.args)
    if set(args) == {"0"}:
        pairs = args["0"]
        if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
            raise Problem("E301", "pairs() takes a list of [pre, post] pairs, e.g. pairs([[0, 1], [1, 2]])")
        _int_list([v for p in pairs for v in p], "pair entries")
        return [p[0] for p in pairs], [p[1] for p in pairs]
    args = _check_args(rule, ("pre", "post"))
    if set(args) != {"pre", "post"}:
        raise Problem("E204", "pairs() needs pre = [...] and post = [...], or a list of [pre, post] pairs")
    pre, post = _int_list(args["pre"], "pre"), _int_list(args["post"], "post")
    if len(pre) != len(post):
        raise Problem("E302", f"pre has {len(pre)} entries but post has {len(post)}")
    return pre, post


def _explicit(name: str, pre: list[int] | np.ndarray, post: list[int] | np.ndarray, n_source: int, n_target: int,
              args: dict[str, ir.Value]) -> Wiring:
    pre_a, post_a = np.asarray(pre, dtype=np.int64), np.asarray(post, dtype=np.int64)
    for values, n, side in ((pre_a, n_source, "source"), (post_a, n_target, "target")):
        bad = values[(values < 0) | (values >= n)]
        if bad.size:
            raise Problem("E303", f"unit {int(bad[0])} is out of range for the {side} ({n} units)")
    connectivity = ir.Connectivity(rule=name, pre=Array(pre_a), post=Array(post_a), args=args)
    return Wiring(connectivity, len(pre_a), (len(pre_a),))


def _random(rule: Rule, n_source: int, n_target: int, limits: Limits, made: int) -> Wiring:
    args = _check_args(rule, ("p", "seed"))
    p, seed = args.get("p"), args.get("seed", 0)
    if not isinstance(p, int | float) or isinstance(p, bool) or not 0 <= p <= 1:
        raise Problem("E801", "random() needs a probability p between 0 and 1, e.g. random(p = 0.1, seed = 1)")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise Problem("E801", "the seed of random() is a whole number >= 0")
    _check_synapses("random() may draw", n_source * n_target, made, limits)
    # drawn a block of rows at a time (the same stream as one draw): 500M candidates at p = 1e-6 must not
    # allocate 4 GB of doubles
    rng, rows = np.random.default_rng(seed), max(1, 2**22 // max(n_source, 1))
    pres, posts = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for start in range(0, n_target, rows):
        block_post, block_pre = np.nonzero(rng.random((min(rows, n_target - start), n_source)) < p)
        pres.append(block_pre)
        posts.append(block_post + start)
    pre, post = np.concatenate(pres), np.concatenate(posts)
    return _explicit("random", pre, post, n_source, n_target, {"p": float(p), "seed": seed})


def symmetric(wiring: Wiring) -> tuple[Wiring, int]:
    """Gap junctions within one population: one synapse per unordered pair; self-junctions are dropped."""
    c = wiring.connectivity
    if c.pre is None or c.post is None:
        raise Problem("E305", "a gap junction within one population needs explicit pairs (pairs or random)")
    pre, post = c.pre.data, c.post.data
    self_loops = int(np.sum(pre == post))
    lo, hi = np.minimum(pre, post), np.maximum(pre, post)
    keep = lo != hi
    unique = np.unique(np.stack([lo[keep], hi[keep]], axis=1), axis=0) if keep.any() else np.zeros((0, 2), np.int64)
    connectivity = ir.Connectivity(rule=c.rule, pre=Array(unique[:, 0].astype(np.int64)),
                                   post=Array(unique[:, 1].astype(np.int64)), args=c.args)
    return Wiring(connectivity, len(unique), (len(unique),)), self_loops
