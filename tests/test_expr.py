"""The IR expression algebra (circuitdsl/ir/expr.py): walks, folds, rebuilds and the numpy reference evaluator."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import torch

from circuitdsl.functions import FUNCTIONS, Function
from circuitdsl.ir import expr as E
from circuitdsl.ir.model import Binary, Call, Cond, Const, Expr, Ref, Shared, Unary, Var

X, Y = Var(name="x"), Var(name="y")


def test_children_and_rebuild_cover_every_node() -> None:
    nodes = [Unary(op="-", x=X), Binary(op="+", left=X, right=Y), Call(fn="clamp", args=[X, Y, Const(value=1)]),
             Cond(cond=X, then=Y, other=Const(value=0))]
    for node in nodes:
        kids = E.children(node)
        assert E.with_children(node, kids) is node
        swapped = E.with_children(node, [Const(value=i) for i in range(len(kids))])
        assert type(swapped) is type(node)
        assert E.children(swapped) == tuple(Const(value=i) for i in range(len(kids)))
    for leaf in (X, Const(value=1), Ref(source="p"), Shared(index=0)):
        assert E.children(leaf) == ()
    with pytest.raises(ValueError, match="2 children"):
        E.with_children(nodes[1], [X])


def test_walk_is_preorder_and_follows_each_shared_entry_once() -> None:
    shared = [Binary(op="*", left=X, right=Const(value=2)), Binary(op="+", left=Shared(index=0), right=Shared(index=0))]
    root = Binary(op="-", left=Shared(index=1), right=Y)
    assert list(E.walk(root)) == [root, Shared(index=1), Y]
    nodes = list(E.walk(root, shared, follow_shared=True))
    assert nodes.count(X) == 1  # entry 0 read twice, walked once
    assert nodes[:3] == [root, Shared(index=1), shared[1]]
    assert E.size(root, shared) == len(nodes)


def test_fold_computes_each_shared_entry_once() -> None:
    # a doubling chain: entry i = entry i-1 + entry i-1; a tree copy would have 2^40 leaves
    shared = [X] + [Binary(op="+", left=Shared(index=i), right=Shared(index=i)) for i in range(40)]
    visits = []

    def visit(node: object, kids: tuple[float, ...]) -> float:
        visits.append(node)
        return 1.0 if node == X else sum(kids)

    assert E.fold(Shared(index=40), visit, shared) == 2.0 ** 40
    assert len(visits) == 41
    assert E.evaluate(Shared(index=40), lambda v: np.float32(3.0), shared) == 3.0 * 2 ** 40
    with pytest.raises(ValueError, match="shared entry 5 does not exist"):
        E.fold(Shared(index=5), visit, shared[:2])


def test_deep_nesting_needs_no_recursion() -> None:
    depth = 4 * sys.getrecursionlimit()
    deep = X
    for _ in range(depth):
        deep = Binary(op="+", left=deep, right=Const(value=1))
    assert E.evaluate(deep, lambda v: 0.5) == depth + 0.5
    assert sum(1 for _ in E.walk(deep)) == 2 * depth + 1
    renamed = E.transform(deep, lambda n: Var(name="z") if isinstance(n, Var) else n)
    assert [n.name for n in E.walk(renamed) if isinstance(n, Var)] == ["z"]


def test_transform_rebuilds_bottom_up() -> None:
    e = Call(fn="max", args=[Unary(op="-", x=X), Binary(op="*", left=X, right=Y)])
    renamed = E.transform(e, lambda n: Var(name=n.name + "1") if isinstance(n, Var) else n)
    assert {n.name for n in E.walk(renamed) if isinstance(n, Var)} == {"x1", "y1"}
    untouched = E.transform(e, lambda n: n)
    assert untouched is e


def test_refs_and_functions_read_through_shared_entries() -> None:
    shared = [Call(fn="tanh", args=[Ref(source="a")])]
    root = Binary(op="+", left=Shared(index=0), right=Call(fn="relu", args=[Ref(source="b")]))
    assert [r.source for r in E.refs(root, shared)] == ["a", "b"]
    assert E.functions_called(root, shared) == {"tanh", "relu"}


def test_the_reference_evaluator_knows_every_builtin_function() -> None:
    assert set(E.NUMPY_FUNCTIONS) == set(FUNCTIONS)


ELEMENTWISE = [f for f in FUNCTIONS.values() if f.dims in ("same", "keep", "pure", "indicator", "sqrt", "where")]


@pytest.mark.parametrize("fn", ELEMENTWISE, ids=lambda f: f.name)
def test_every_elementwise_function_agrees_with_its_scalar_definition(fn: Function) -> None:
    rng = np.random.default_rng(len(fn.name))
    args = [rng.uniform(0.1 if fn.name in ("log", "sqrt") else -3, 3, 7) for _ in range(fn.arity)]
    if fn.name == "clamp":
        args[1], args[2] = np.minimum(args[1], args[2]), np.maximum(args[1], args[2])
    if fn.name == "where":  # a condition is a 0/1 truth value
        args[0] = (args[0] > 0).astype(np.float64)
    names = [Var(name=f"a{i}") for i in range(fn.arity)]
    got = E.evaluate(Call(fn=fn.name, args=names), lambda v: args[int(v.name[1:])])
    want = [fn.value(*(float(a[i]) for a in args)) for i in range(7)]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_axis_functions_agree_with_torch() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 12))
    t = torch.tensor(x)
    lookup = {"x": x, "w": rng.normal(size=(3, 4, 6)), "v": rng.normal(size=(2, 3, 6)), "h": rng.normal(size=(2, 5))}

    def run(fn: str, *args: object) -> np.ndarray:
        return np.asarray(E.evaluate(Call(fn=fn, args=list(args)), lambda v: lookup[v.name]))  # type: ignore

    four = Const(value=4)
    np.testing.assert_allclose(run("reduce_sum", X, four), t.reshape(2, 3, 4).sum(-1))
    np.testing.assert_allclose(run("reduce_max", X, four), t.reshape(2, 3, 4).amax(-1))
    segments = t.reshape(2, 3, 4)
    absmax = segments.gather(-1, segments.abs().argmax(-1, keepdim=True)).squeeze(-1)
    np.testing.assert_allclose(run("reduce_absmax", X, four), absmax)
    top = t.topk(5, dim=-1).values[..., -1:]
    np.testing.assert_allclose(run("kwta", X, Const(value=5)), t * (t >= top))
    w, v = torch.tensor(lookup["w"]), torch.tensor(lookup["v"])
    np.testing.assert_allclose(run("matvec", Var(name="w"), Var(name="v")), torch.einsum("uoi,bui->buo", w, v))
    h = torch.tensor(lookup["h"])
    np.testing.assert_allclose(run("push", Var(name="h"), Const(value=7)),
                               torch.cat([h[:, 1:], torch.full((2, 1), 7.0, dtype=h.dtype)], 1))


def test_operators_use_float_truth_values_and_keep_the_dtype() -> None:
    x = np.array([-1.0, 0.0, 2.0], dtype=np.float32)
    lookup = {"x": x, "y": np.float32(0.5)}
    for op in ("+", "-", "*", "/", "%", "**", "==", "!=", "<", "<=", ">", ">=", "and", "or"):
        got = E.evaluate(Binary(op=op, left=X, right=Y), lambda v: lookup[v.name])  # type: ignore[arg-type]
        assert got.dtype == np.float32, op
    assert E.evaluate(Binary(op="<", left=X, right=Const(value=0)), lambda v: x).tolist() == [1.0, 0.0, 0.0]
    assert E.evaluate(Unary(op="not", x=Binary(op=">", left=X, right=Const(value=0))), lambda v: x).tolist() == [
        1.0, 1.0, 0.0]
    assert E.evaluate(Cond(cond=Binary(op=">", left=X, right=Const(value=0)), then=X, other=Const(value=9)),
                      lambda v: x).tolist() == [9.0, 9.0, 2.0]
    # constants follow numpy's rules, not Python's exceptions
    assert E.evaluate(Binary(op="/", left=Const(value=1), right=Const(value=0)), lambda v: 0.0) == math.inf
    assert math.isnan(E.evaluate(Binary(op="**", left=Const(value=-8), right=Const(value=0.5)), lambda v: 0.0))


def test_a_node_object_under_two_parents_is_entered_once() -> None:
    # elaboration builds `let a1 = a0 + a0` ... as one object per let: 60 lets would print as 2^60 nodes
    node: Expr = X
    for _ in range(60):
        node = Binary(op="+", left=node, right=node)
    assert sum(1 for _ in E.walk(node)) == 2 * 60 + 1
    assert E.evaluate(node, lambda v: 1.0) == 2.0 ** 60
    calls = []
    E.transform(node, lambda n: calls.append(n) or n)
    assert sum(isinstance(n, Binary) for n in calls) == 60


def test_match_compares_structure_and_leaves() -> None:
    a = Binary(op="+", left=Ref(source="p"), right=Call(fn="tanh", args=[Ref(source="q")]))
    same = Binary(op="+", left=Ref(source="p"), right=Call(fn="tanh", args=[Ref(source="q")]))
    assert E.match(a, same, lambda x, y: x == y)
    assert not E.match(a, Binary(op="-", left=a.left, right=a.right), lambda x, y: x == y)
    assert not E.match(a, Binary(op="+", left=a.left, right=Ref(source="q")), lambda x, y: x == y)
    assert E.match(a, Binary(op="+", left=Ref(source="z"), right=a.right), lambda x, y: isinstance(y, Ref))
