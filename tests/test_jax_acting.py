"""The swim policy of a JAX circuit (circuitdsl/envs/jax_acting.py): its actions are the circuit's `step`'s, in
lockstep over a rollout and after its parameters change, in float32 and float64; it reads the parameters once per
change and traces the circuit's step once per structure, not per act."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import circuitdsl
from circuitdsl.envs.swim import CircuitPolicy, normalise_joints

SWIMMER = "models/ncap_swimmer.circuit"
TOLERANCE = {"float32": 1e-5, "float64": 1e-12}


def _lockstep(dtype: str, lowering: str = "auto") -> None:
    """24 acts at batch 2 beside the circuit's own step on the same angles: the table replaced by a new one at act
    8, one entry replaced in the same table at act 16 (the step normalises the angles in the circuit's dtype, as
    the policy's program does)."""
    circuit = circuitdsl.compile(SWIMMER, backend="jax", dtype=dtype, shared=False, seed=1, lowering=lowering)
    policy = CircuitPolicy(circuit)
    policy.reset(2)
    params, state = policy.params, circuit.initial_state(2)
    rng = np.random.default_rng(3)
    for step in range(24):
        if step == 8:
            params = policy.params = {key: value * -0.6 for key, value in params.items()}
        if step == 16:
            params["prop"] = params["prop"] + 0.25  # the same table, a new entry
        angles = rng.uniform(-1.5, 1.5, (2, 5))
        action = policy.act({"joints": angles})
        outputs, state = circuit.step(params, state, {"q": normalise_joints(jnp.asarray(angles, dtype), 5)})
        assert action.dtype == np.float64
        np.testing.assert_allclose(action, np.asarray(outputs["torque"], np.float64), rtol=0,
                                   atol=TOLERANCE[dtype], err_msg=f"act {step}")
    for key, value in state.items():  # the policy's state is the circuit's too
        np.testing.assert_allclose(np.asarray(policy.state[key]), np.asarray(value), rtol=0, atol=TOLERANCE[dtype])


def test_the_jax_policy_acts_as_the_circuits_step_in_float32_also_after_its_parameters_change() -> None:
    _lockstep("float32")


def test_the_jax_policy_acts_as_the_circuits_step_in_float64_also_after_its_parameters_change() -> None:
    with jax.enable_x64(True):
        _lockstep("float64")


def test_the_jax_policy_acts_as_the_circuits_step_with_index_arrays_among_its_prepared_parameters() -> None:
    """Sparse operators carry int32 indices: the carry is then the arrays as they are, not one float vector."""
    _lockstep("float32", lowering="sparse")


def _counted(monkeypatch: pytest.MonkeyPatch, circuit: Any) -> tuple[list[int], list[int]]:
    """Lists that grow by one per preparation of the parameters and per trace of the circuit's step."""
    reads: list[int] = []
    traces: list[int] = []
    prepare, step = circuit.prepare, circuit.step
    monkeypatch.setattr(circuit, "prepare", lambda params: (reads.append(1), prepare(params))[1])
    monkeypatch.setattr(circuit, "step", lambda *args: (traces.append(1), step(*args))[1])
    return reads, traces


def test_acting_reads_the_parameters_once_per_change_and_traces_once_per_structure(
        monkeypatch: pytest.MonkeyPatch) -> None:
    circuit = circuitdsl.compile(SWIMMER, backend="jax")
    reads, traces = _counted(monkeypatch, circuit)
    policy = CircuitPolicy(circuit)
    policy.reset(1)
    policy.act({"joints": np.full((1, 5), 0.2)})
    first = len(traces)  # the action's shape and the program
    for step in range(1, 12):
        if step == 4:
            policy.params = {key: value * 2 for key, value in policy.params.items()}
        if step == 8:
            policy.params["osc"] = policy.params["osc"] - 1
        policy.act({"joints": np.full((1, 5), 0.2)})
    assert len(reads) == 3  # the first act, the new table, the new entry
    assert len(traces) == first <= 2  # one program for all of them: same structure


def test_parameters_that_can_change_in_place_are_read_at_every_act(monkeypatch: pytest.MonkeyPatch) -> None:
    """numpy entries are not trusted by identity: changed in place, the next act acts with the new values."""
    circuit = circuitdsl.compile(SWIMMER, backend="jax")
    reads, _ = _counted(monkeypatch, circuit)
    params = {key: np.array(value) for key, value in circuit.init().items()}
    policy = CircuitPolicy(circuit, params)
    policy.reset(1)
    observation = {"joints": np.full((1, 5), 0.4)}
    before = [policy.act(observation) for _ in range(3)]
    params["prop"] *= -1
    policy.reset(1)
    after = [policy.act(observation) for _ in range(3)]
    assert len(reads) == 6
    assert not np.array_equal(before[-1], after[-1])


def test_a_policy_acts_without_a_reset_from_the_initial_state() -> None:
    circuit = circuitdsl.compile(SWIMMER, backend="jax")
    policy, reset = CircuitPolicy(circuit), CircuitPolicy(circuit)
    reset.reset(3)
    observation = {"joints": np.random.default_rng(0).uniform(-1, 1, (3, 5))}
    assert policy.state is None
    np.testing.assert_array_equal(policy.act(observation), reset.act(observation))
    assert list(policy.state) == list(circuit.initial_state(3))


def test_each_act_is_one_jitted_call_with_two_arrays_in_and_one_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """A jitted call costs about 1 us per array crossing it: the carry and the angles in, the new carry out."""
    calls: list[tuple[int, int]] = []
    jit = jax.jit

    def counting(fun: Any, **options: Any) -> Any:
        compiled = jit(fun, **options)

        def call(*args: Any) -> Any:
            result = compiled(*args)
            calls.append((len(jax.tree_util.tree_leaves(args)), len(jax.tree_util.tree_leaves(result))))
            return result
        return call

    monkeypatch.setattr(jax, "jit", counting)
    policy = CircuitPolicy(circuitdsl.compile(SWIMMER, backend="jax"))
    policy.reset(1)
    policy.act({"joints": np.zeros((1, 5))})  # also prepares the parameters and packs the carry
    calls.clear()
    for _ in range(5):
        policy.act({"joints": np.full((1, 5), 0.1)})
    assert calls == [(2, 1)] * 5


def test_a_population_of_weight_sets_swims_as_each_set_in_a_policy_of_its_own() -> None:
    """ES scores many weight sets at once (`SwimController.returns` on the JAX backend: one vmapped step over the
    members); each member's returns equal those of its weights acting alone through `CircuitPolicy`."""
    from circuitdsl.envs.controllers import SwimController
    from circuitdsl.envs.swim import run_episodes

    controller = SwimController("ncap", 5, 0, {"shared": False}, backend="jax")
    rng = np.random.default_rng(0)
    vectors = controller.vector()[None] * rng.uniform(0.5, 1.5, (2, controller.vector().size))
    together = controller.returns(vectors, [0, 1], 40)
    alone = []
    for vector in vectors:
        controller.set_vector(vector)
        alone.append(run_episodes(controller.policy, 5, [0, 1], 40, "swim"))
    np.testing.assert_allclose(together, np.stack(alone), rtol=1e-5)
