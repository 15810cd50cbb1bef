"""The jitted JAX step as XLA compiles it: the NCAP swimmer's step runs as few fused loops as the hand-written
step (its outputs read from the packed new state behind an optimization barrier, JaxCircuit._settle) and reads its
weights with no gather (a shared weight over a group's cells is a broadcast, jax_lowering.pick), with the
reference numbers; any circuit's jitted step gives what its rollout's step gives, gradients included."""

from __future__ import annotations

import re

import numpy as np
import pytest

import circuitdsl
from tests.ncap_reference import ncap_reference

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")

from circuitdsl.backends.jax_backend import JaxOps
from circuitdsl.backends.jax_lowering import PICK_RUNS, pick, runs

SWIMMER = "models/ncap_swimmer.circuit"
MIXED = """
circuit Mixed {
  input x[n = 4]
  output y[n = 4]
  param w : excitatory = 0.5, shared = true
  param u : free = uniform(-0.5, 0.5), shared = false
  population clock : SquareWave(period = 6, phase = 0.25)
  population a[n = 4] : Graded
  population b[n = 4] : LIF(threshold = 0.3)
  clock -> a[0] : weight = w
  x[1:] -> a[1:] : one_to_one, weight = w
  a -> b : one_to_one, weight = u
  b -| a : pairs([[0, 1], [2, 0], [3, 3]]), weight = -0.4
  b -> b : dense, weight = normal(0, 0.5)
  y = a - b
}"""


def _running(compiled: str) -> list[str]:
    """The opcodes of the instructions the entry computation of an optimized HLO module runs: its fused loops and
    any operation left on its own (not its parameters, constants, bitcasts and result tuple)."""
    entry = compiled[compiled.index("\nENTRY"):]
    opcodes = re.findall(r"^\s*(?:ROOT )?%\S+ = (?:\([^)]*\)|\S+) ([\w-]+)\(", entry, re.MULTILINE)
    return [op for op in opcodes if op not in ("parameter", "constant", "bitcast", "tuple", "get-tuple-element")]


def test_the_ncap_step_is_two_fused_loops_with_no_gather_and_the_reference_torques() -> None:
    circuit = circuitdsl.compile(SWIMMER, backend="jax")
    params, state = circuit.init(), circuit.initial_state(2)
    step = jax.jit(lambda p, s, x: circuit.step(p, s, {"q": x}))
    compiled = step.lower(params, state, jnp.zeros((2, 5))).compile().as_text()
    # the hand-written step (benchmarks/engine.py) runs 2; this one ran 9 (3 gathers of the weights, the two clocks'
    # `%` each in a loop of its own, the two B layers' inputs, the torque and the state apart)
    assert _running(compiled) == ["fusion", "fusion"]
    assert "gather(" not in compiled
    q = np.random.default_rng(0).uniform(-1, 1, (2, 130, 5)).astype(np.float32)  # past two clock periods
    torques = []
    for t in range(q.shape[1]):
        outputs, state = step(params, state, jnp.asarray(q[:, t]))
        torques.append(np.asarray(outputs["torque"]))
    weights = {k: np.asarray(v, np.float64) for k, v in params.items()}
    np.testing.assert_allclose(np.stack(torques, 1), ncap_reference(q, weights, True, True), rtol=1e-6, atol=1e-6)


def test_a_shared_weight_over_a_group_is_read_without_a_gather() -> None:
    circuit = circuitdsl.compile(SWIMMER, backend="jax")
    program, params = circuit._program(), circuit.init()
    closed = jax.make_jaxpr(lambda p: program.prepare(circuit._named(p)))(params)
    assert [e.primitive.name for e in closed.jaxpr.eqns].count("gather") == 0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_jitted_step_gives_its_rollouts_step_and_gradient(dtype: str) -> None:
    with jax.enable_x64(dtype == "float64"):
        circuit = circuitdsl.compile(circuitdsl.loads(MIXED), backend="jax", dtype=dtype)
        params, state = circuit.init(), circuit.initial_state(3)
        x = jnp.asarray(np.random.default_rng(1).uniform(-1, 1, (3, 9, 4)), dtype)
        step = jax.jit(lambda p, s, x: circuit.step(p, s, x, record=["b.mem", "a"]))
        for t in range(x.shape[1]):  # the clock's period is 6: both of its halves, and its wrap
            outputs, after = step(params, state, x[:, t])
            ran, final = circuit.rollout(params, x[:, t:t + 1], state=state, record=["b.mem", "a"])
            for key in ran:
                np.testing.assert_allclose(outputs[key], ran[key][:, 0], rtol=1e-6, atol=1e-6)
            np.testing.assert_allclose(after.buffer, final.buffer, rtol=1e-6, atol=1e-6)
            state = after

        def through_step(p: dict, s: object) -> object:
            outputs, after = circuit.step(p, s, x[:, 0])
            return sum(v.sum() for v in outputs.values()) + after["b.mem"].sum()

        def through_rollout(p: dict, s: object) -> object:
            ran, final = circuit.rollout(p, x[:, :1], state=s)
            return sum(v.sum() for v in ran.values()) + final["b.mem"].sum()

        expected = jax.grad(through_rollout)(params, state)
        for key, grad in jax.jit(jax.grad(through_step))(params, state).items():
            np.testing.assert_allclose(grad, expected[key], rtol=1e-5, atol=1e-6)
        stacked = jax.tree_util.tree_map(lambda v: jnp.stack([v, v + 0.1]), state)
        mapped = jax.vmap(lambda s: circuit.step(params, s, x[:, 0])[0]["y"])(stacked)
        second = jax.tree_util.tree_map(lambda v: v[1], stacked)
        np.testing.assert_allclose(mapped[1], circuit.step(params, second, x[:, 0])[0]["y"], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("index", [[0, 1, 1, 1, 1], [3, 3, 3, 4, 5, 6, 6, 2, 9, 10], [7], [[0, 1, 2], [2, 2, 2]],
                                   list(range(40))])
def test_pick_reads_what_a_gather_reads_as_slices_and_broadcasts(index: list) -> None:
    at = np.asarray(index)
    found = runs(at.reshape(-1), PICK_RUNS)
    assert found is not None and len(found) <= PICK_RUNS
    assert all(step in (0, 1) for _, _, step in found)
    x = jnp.arange(50.0) * 1.5
    read = pick(at, JaxOps())
    assert read is not None
    closed = jax.make_jaxpr(read)(x)
    assert "gather" not in {e.primitive.name for e in closed.jaxpr.eqns}
    np.testing.assert_array_equal(read(x), np.asarray(x)[at])


def test_pick_leaves_indices_of_many_runs_to_a_gather() -> None:
    at = np.arange(30).reshape(10, 3).T.reshape(-1)  # every third element: 30 runs of one
    assert runs(at, PICK_RUNS) is None and pick(at, JaxOps()) is None
