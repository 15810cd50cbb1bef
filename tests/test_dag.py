"""Shared subexpressions stored once (CircuitIR.shared): a let read twice is one table entry, serialised once and
computed once per step; long chains of lets nest no deeper than ir/expr.py's MAX_HEIGHT.

Bounds are on sizes, operation counts and memory (tracemalloc peaks), never on time."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from torch.overrides import TorchFunctionMode

import circuitdsl
from circuitdsl import cli
from circuitdsl.draw import draw
from circuitdsl.ir import expr as E
from circuitdsl.ir.model import CircuitIR, Shared
from tests.dot_text import edge_label, edges
from tests.model_files import MODELS


def chain(n: int, step: Callable[[int], str]) -> str:
    """A circuit of n chained lets `let a<i> = <step(i)>` from a0 = x to the output."""
    lets = "\n".join(f"  let a{i} = {step(i)}" for i in range(1, n + 1))
    return f"circuit Chain {{\n  input x[unit = 4]\n  output y[unit = 4]\n  let a0 = x\n{lets}\n  y = a{n}\n}}\n"


def doubling(n: int) -> str:
    return chain(n, lambda i: f"a{i - 1} + a{i - 1}")


def once(n: int) -> str:
    """n lets, each read once: the plain 30-line circuit the doubling one is measured against."""
    return chain(n, lambda i: f"a{i - 1} * 0.5 + 1")


class _CountOps(TorchFunctionMode):
    """Counts the torch functions called inside the mode."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        self.calls += 1
        return func(*args, **(kwargs or {}))


def torch_step(ir: CircuitIR, x: np.ndarray) -> tuple[np.ndarray, int]:
    """One torch step's output and the number of torch operations it ran."""
    module = circuitdsl.compile(ir, backend="torch")
    state = module.initial_state(1)
    with _CountOps() as count:
        outputs, _ = module({"x": torch.tensor(x)}, state)
    return outputs["y"].detach().numpy(), count.calls


def jax_step(ir: CircuitIR, x: np.ndarray) -> np.ndarray:
    module = circuitdsl.compile(ir, backend="jax")
    outputs, _ = module.step(module.init(), module.initial_state(1), {"x": jnp.asarray(x)})
    return np.asarray(outputs["y"])


def peak_bytes(fn: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_thirty_doubling_lets_are_stored_and_run_once_each() -> None:
    ir = circuitdsl.loads(doubling(30))
    text = ir.to_json()
    assert len(text) < 100_000
    assert CircuitIR.from_json(text) == ir
    assert E.size(ir.outputs[0].pieces[0].expr, ir.shared) < 4 * 30
    assert ir.shared_names == [f"a{i}" for i in range(1, 30)]  # a30 is read once: written out in the output
    x = np.arange(4, dtype=np.float32).reshape(1, 4)
    y, ops = torch_step(ir, x)
    np.testing.assert_array_equal(y, x * 2.0 ** 30)
    np.testing.assert_array_equal(jax_step(ir, x), x * 2.0 ** 30)
    _, plain_ops = torch_step(circuitdsl.loads(once(30)), x)
    assert ops <= plain_ops  # one addition per let, as the plain chain has two operations per let


def test_thirty_doubling_lets_lower_to_no_more_jax_operations_than_thirty_plain_lines() -> None:
    def equations(ir: CircuitIR) -> int:
        circuit = circuitdsl.compile(ir, backend="jax")
        step = jax.make_jaxpr(lambda p, s, x: circuit.step(p, s, {"x": x}))
        return len(step(circuit.init(), circuit.initial_state(1), jnp.zeros((1, 4))).jaxpr.eqns)

    doubled = equations(circuitdsl.loads(doubling(30)))
    assert doubled <= equations(circuitdsl.loads(once(30)))
    assert doubled <= 30 + 8  # one addition per let, and the step's fixed cost


def test_thirty_doubling_lets_cost_the_memory_of_thirty_plain_lines() -> None:
    def build(text: str, note: str) -> Callable[[], object]:  # the note makes a text parsed afresh
        return lambda: circuitdsl.loads(f"{text}# {note}\n").to_json()

    build(once(30), "warm-up")()  # imports and the standard library loaded
    plain = peak_bytes(build(once(30), "plain"))
    assert peak_bytes(build(doubling(30), "doubling")) < 1.5 * plain


def test_chained_lets_take_memory_linear_in_their_number() -> None:
    assert peak_bytes(lambda: circuitdsl.loads(doubling(500)).to_json()) < 10_000_000  # linear: 17 MB at 2,000


@pytest.mark.parametrize("make", [doubling, once], ids=["doubling", "read-once"])
def test_two_thousand_chained_lets_check_serialise_compile_and_step(make: Callable[[int], str]) -> None:
    ir = circuitdsl.loads(make(2000))
    text = ir.to_json()
    assert CircuitIR.from_json(text) == ir
    depth = max(_depth(json.loads(text)["shared"]), _depth(json.loads(text)["outputs"]))
    assert depth < 4 * E.MAX_HEIGHT
    x = np.full((1, 4), 0.5, dtype=np.float32)
    want = E.evaluate(ir.outputs[0].pieces[0].expr, lambda ref: x, ir.shared)
    np.testing.assert_allclose(torch_step(ir, x)[0], want, rtol=1e-5)
    np.testing.assert_allclose(jax_step(ir, x), want, rtol=1e-5)


def _depth(value: object) -> int:
    """How deeply a JSON value nests, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else []
        stack.extend((child, depth + 1) for child in children)
    return deepest


SHARED_LETS = """
neuron Squash {
  out = tanh(in)
}

circuit Lets {
  input x[unit = 4]
  output y[unit = 4]
  population p[unit = 4] : Squash
  let a0 = tanh(x)
  let a1 = a0 + a0
  let a2 = a1 * a1 - a0
  let a3 = a2 + a2 + a1
  let small = x * 2
  a3 -> p : one_to_one, weight = 0.5
  small + small -> p : one_to_one, weight = 0.25
  y = a3 * small + (a1 if x > 1 else a2)
}
"""


def test_backends_agree_with_the_reference_evaluator_over_shared_entries() -> None:
    ir = circuitdsl.loads(SHARED_LETS)
    assert ir.shared_names == ["a0", "a1", "a2", "a3", "small"]
    x = np.array([[-1.5, 0.25, 1.0, 2.0]], dtype=np.float32)
    want = E.evaluate(ir.outputs[0].pieces[0].expr, lambda ref: x, ir.shared)
    np.testing.assert_allclose(torch_step(ir, x)[0], want, rtol=1e-6)
    np.testing.assert_allclose(jax_step(ir, x), want, rtol=1e-6)


def test_diagrams_write_small_entries_out_and_name_large_ones() -> None:
    ir = circuitdsl.loads(SHARED_LETS)
    folded = draw(ir).source
    assert "label=<a3>" in folded  # a3 written out has 20 nodes: drawn by name
    assert "x * 2 + x * 2" in folded  # `small` has 3
    assert "a3 * (x * 2)" in folded
    unrolled = draw(ir, view="unrolled").source
    written = [edge_label(a) for a in edges(unrolled, '"x[2]"', '"y[2]"')]
    assert written == ["a3 * (x[2] * 2) + (tanh(x[2]) + tanh(x[2]) if x…"]  # a3 by name; cut at 48 characters
    assert sorted(map(str, (edge_label(a) for a in edges(unrolled, '"x[0]"', '"p[0]"')))) == [
        "a3", "x[0] * 2 + x[0] * 2"]  # one edge per projection
    assert "a29 + a29" in draw(circuitdsl.loads(doubling(30))).source
    assert "<td>" not in draw(circuitdsl.loads(doubling(30)), view="unrolled").source  # a sum: no label


def test_the_ir_command_prints_the_shared_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "doubling.circuit"
    path.write_text(doubling(30))
    assert cli.main(["ir", str(path)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert len(printed["shared"]) == 29
    assert printed["outputs"][0]["pieces"][0]["expr"]["left"] == {"node": "shared", "index": 28}


@pytest.mark.parametrize("text", [SHARED_LETS, doubling(30), once(200)], ids=["lets", "doubling", "read-once"])
def test_every_shared_entry_is_read_twice_or_cuts_a_deep_chain(text: str) -> None:
    ir = circuitdsl.loads(text)
    roots = [p.source for p in ir.projections] + [piece.expr for o in ir.outputs for piece in o.pieces]
    reads = [0] * len(ir.shared)
    for index, expr in [*enumerate(ir.shared), *((len(ir.shared), root) for root in roots)]:
        for node in E.walk(expr):
            if isinstance(node, Shared):
                assert node.index < index  # an entry reads only earlier entries
                reads[node.index] += 1
    heights = [E.fold(entry, lambda n, kids: 1 + max(kids, default=0), cut=lambda n: 1 if isinstance(n, Shared) else None)
               for entry in ir.shared]
    assert ir.shared and len(ir.shared_names) == len(ir.shared)
    assert all(reads[i] > 1 or (heights[i] >= E.MAX_HEIGHT // 4 and ir.shared_names[i]) for i in range(len(ir.shared)))
    assert max(heights) <= E.MAX_HEIGHT


# models written with shared signals: a residual stream `mixed` feeds a layer norm and the block's output
SHARING = {"attention.circuit", "transformer_block.circuit", "mlp_mixer.circuit"}


def test_existing_models_have_no_shared_entries_so_their_ir_reads_as_before() -> None:
    assert [(path.name, len(e.ir.shared)) for path in MODELS if path.name not in SHARING
            for e in circuitdsl.check(path) if e.ir.shared] == []
