"""`JaxCircuit.prepare`: parameters prepared once give `step` and `rollout` the numbers the parameters give, in a
smaller program, under `grad` too; another circuit's are refused."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import circuitdsl
from circuitdsl.backends.interface import CircuitRuntimeError
from tests.model_files import ROOT

SWIMMER = ROOT / "models" / "ncap_swimmer.circuit"
CASES = [("ncap_swimmer.circuit", "auto"), ("ncap_swimmer.circuit", "sparse"), ("celegans_touch.circuit", "auto"),
         ("delays_snn.circuit", "auto"), ("rich_lazy_rnn.circuit", "auto")]


def _inputs(circuit: circuitdsl.JaxCircuit, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(2)
    return {p.name: rng.uniform(-1, 1, (*shape, *[a.size for a in p.shape])).astype(np.float32)
            for p in circuit.ir.inputs}


@pytest.mark.parametrize(("name", "lowering"), CASES, ids=lambda x: str(x))
def test_prepared_parameters_step_and_roll_out_as_the_parameters_do(name: str, lowering: str) -> None:
    ir = circuitdsl.load(ROOT / "models" / name)
    circuit = circuitdsl.compile(ir, backend="jax", lowering=lowering, seed=3)
    params = circuit.init()
    prepared = circuit.prepare(params)
    state = circuit.initial_state(2)
    steps = [circuit.step(p, state, _inputs(circuit, (2,))) for p in (params, prepared)]
    rollouts = [circuit.rollout(p, _inputs(circuit, (2, 4))) for p in (params, prepared)]
    for (outputs, final), (prepared_outputs, prepared_final) in (steps, rollouts):
        for key, value in outputs.items():
            np.testing.assert_allclose(prepared_outputs[key], value, rtol=1e-6, atol=1e-6, err_msg=key)
        np.testing.assert_allclose(prepared_final.buffer, final.buffer, rtol=1e-6, atol=1e-6)


def _equations(jaxpr: Any) -> int:
    """The equations of a jaxpr and of the jaxprs inside it (a nested jit's)."""
    inner = [v for eqn in jaxpr.eqns for v in eqn.params.values() if hasattr(v, "eqns") or hasattr(v, "jaxpr")]
    return len(jaxpr.eqns) + sum(_equations(getattr(v, "jaxpr", v)) for v in inner)


def test_a_prepared_step_is_a_smaller_program() -> None:
    """The parameters' effective values and the groups' operators are not in the step's program any more."""
    circuit = circuitdsl.compile(SWIMMER, backend="jax")
    params, state, q = circuit.init(), circuit.initial_state(1), jnp.zeros((1, 5))
    step = jax.make_jaxpr(lambda p, x: circuit.step(p, state, {"q": x}))
    whole, prepared = _equations(step(params, q).jaxpr), _equations(step(circuit.prepare(params), q).jaxpr)
    preparing = _equations(jax.make_jaxpr(circuit.prepare)(params).jaxpr) - 1  # less prepare's own jit
    # none of prepare's equations left: 78 of 153, prepare 75 (71 of 174 and 103 before JAX read shared weights as
    # broadcasts and the outputs read the packed state, docs/engine.md)
    assert prepared <= whole - preparing, (prepared, whole, preparing)


def test_gradients_flow_through_prepared_parameters() -> None:
    circuit = circuitdsl.compile(SWIMMER, backend="jax")
    params, inputs = circuit.init(), _inputs(circuit, (2, 6))

    def loss(params: dict[str, jax.Array], prepare: bool) -> jax.Array:
        used = circuit.prepare(params) if prepare else params
        return (circuit.rollout(used, inputs)[0]["torque"] ** 2).sum()

    direct, through = jax.grad(loss)(params, False), jax.grad(loss)(params, True)
    for key, value in direct.items():
        np.testing.assert_allclose(through[key], value, rtol=1e-6, atol=1e-6, err_msg=key)


def test_another_circuits_prepared_parameters_are_refused() -> None:
    circuit = circuitdsl.compile(SWIMMER, backend="jax")
    other = circuitdsl.compile(SWIMMER, backend="jax")
    with pytest.raises(CircuitRuntimeError, match="another circuit's"):
        circuit.step(other.prepare(other.init()), None, {"q": np.zeros((1, 5), np.float32)})
