"""The numpy backend: the torch backend's numbers on every model (float64 to 1e-12, float32 to 1e-5), its
conventions and its errors at the boundary, parameters that change only through `set_params`, and no torch or JAX
needed; the swim policy acts through it with the torch module's current weights."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.nn.utils import parameters_to_vector, vector_to_parameters

import circuitdsl
from circuitdsl.backends.interface import CircuitRuntimeError
from circuitdsl.backends.numpy_backend import NumpyCircuit
from circuitdsl.envs.swim import CircuitPolicy, normalise_joints
from tests.model_files import MODELS, small_args
from tests.test_backends import WIRING
from tests.test_engine_program import _Aten

SWIMMER = "models/ncap_swimmer.circuit"
TOLERANCE = {"float64": 1e-12, "float32": 1e-5}


def _inputs(ir: circuitdsl.CircuitIR, batch: int, time: int) -> dict[str, np.ndarray]:
    """Random float64 inputs [batch, time, *port shape] in [-1, 1] for every input port."""
    rng = np.random.default_rng(1)
    return {p.name: rng.uniform(-1, 1, (batch, time, *[a.size for a in p.shape])) for p in ir.inputs}


def _close(got: dict[str, np.ndarray], expected: dict[str, torch.Tensor], dtype: str) -> None:
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert got[key].dtype == np.dtype(dtype), key
        np.testing.assert_allclose(got[key], value.numpy(), rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype], err_msg=key)


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.name)
def test_every_model_gives_the_torch_backends_numbers_in_float64_and_float32(path: Path) -> None:
    ir = circuitdsl.load(path, **small_args(path))
    inputs = _inputs(ir, batch=2, time=4)
    for dtype in ("float64", "float32"):
        module = circuitdsl.compile(ir, seed=3, dtype=dtype)
        circuit = circuitdsl.compile(ir, backend="numpy", seed=3, dtype=dtype)
        for key, value in module.params.items():  # the same initial parameters, bit for bit
            np.testing.assert_array_equal(circuit.params[key], value.detach().numpy())
        with torch.no_grad():
            expected, expected_state = module.rollout({k: torch.from_numpy(v) for k, v in inputs.items()}, steps=4)
        got, state = circuit.rollout(inputs, steps=4)
        _close(got, expected, dtype)
        _close(state, expected_state, dtype)


@pytest.mark.parametrize("lowering", ["auto", "dense", "sparse"])
def test_every_lowering_gives_the_torch_backends_numbers(lowering: str) -> None:
    """Every projection of the lowering tests' circuit (element-wise, dense, masked and sparse projections, a
    repeated pair, gap junctions, a delay, recurrence) run as dense groups or as CSR products (scipy's), at two
    batch sizes."""
    ir = circuitdsl.loads(WIRING)
    module = circuitdsl.compile(ir, seed=5, lowering=lowering, dtype="float64")
    circuit = circuitdsl.compile(ir, backend="numpy", seed=5, lowering=lowering, dtype="float64")
    for batch in (2, 7):
        inputs = _inputs(ir, batch=batch, time=6)
        with torch.no_grad():
            expected, expected_state = module.rollout({k: torch.from_numpy(v) for k, v in inputs.items()})
        got, state = circuit.rollout(inputs)
        _close(got, expected, "float64")
        _close(state, expected_state, "float64")


def test_steps_with_records_equal_the_torch_modules() -> None:
    """Step by step from a given state, recording a population, a state and a spike: delays, spikes, recurrence."""
    ir = circuitdsl.load("models/delays_snn.circuit")
    module, circuit = circuitdsl.compile(ir, seed=2), circuitdsl.compile(ir, backend="numpy", seed=2)
    record = ["h1", "h1.mem", "h2.spk"]
    inputs = _inputs(ir, batch=3, time=6)
    state, expected_state = circuit.initial_state(3), module.initial_state(3)
    for t in range(6):
        x = {k: v[:, t].astype(np.float32) for k, v in inputs.items()}
        with torch.no_grad():
            expected, expected_state = module({k: torch.from_numpy(v) for k, v in x.items()}, expected_state,
                                              record=record)
        got, state = circuit.step(x, state, record=record)
        _close(got, expected, "float32")
        _close(state, expected_state, "float32")


# ---- the boundary ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pair() -> tuple[Any, Any]:
    return circuitdsl.compile(SWIMMER), circuitdsl.compile(SWIMMER, backend="numpy")


def _step(compiled: Any, *args: Any) -> Any:
    """A step of either backend: the torch module is called, the numpy circuit's `step` is."""
    return compiled.step(*args) if isinstance(compiled, NumpyCircuit) else compiled(*args)


Q = np.zeros((2, 5), np.float32)
MISTAKES: dict[str, Any] = {  # a mistake at a step's or a rollout's boundary: (compiled, a good state) -> a call
    "unknown port": lambda c, good: _step(c, {"qq": Q}),
    "a string": lambda c, good: _step(c, "q"),
    "wrong shape": lambda c, good: _step(c, np.zeros((2, 4))),
    "missing state": lambda c, good: _step(c, Q, {}),
    "state shape": lambda c, good: _step(c, Q, {**good, "osc_d.t": np.zeros((2, 3))}),
    "state typo": lambda c, good: _step(c, Q, {**good, "osc_d.tt": np.zeros((2, 1))}),
    "output as state": lambda c, good: _step(c, Q, {**good, "Bd:out": np.zeros((2, 5))}),
    "record": lambda c, good: c.rollout(Q[:, None], record=["Bdd"]),
    "no steps": lambda c, good: c.rollout(None),
}


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_every_bad_input_is_the_torch_backends_error(pair: tuple[Any, Any], mistake: str) -> None:
    module, circuit = pair
    good = {key: np.asarray(value) for key, value in module.initial_state(2).items()}
    with pytest.raises(CircuitRuntimeError) as expected:
        MISTAKES[mistake](module, good)
    with pytest.raises(CircuitRuntimeError) as got:
        MISTAKES[mistake](circuit, good)
    assert str(got.value) == str(expected.value)


def test_a_returned_state_changed_afterwards_is_checked_again(pair: tuple[Any, Any]) -> None:
    _, circuit = pair
    q = np.zeros((2, 5), np.float32)
    _, state = circuit.step(q, circuit.initial_state(2))
    _, state = circuit.step(q, state)  # handed back untouched
    state["osc_d.t"] = np.zeros((2, 3))
    with pytest.raises(CircuitRuntimeError, match=r"state 'osc_d.t' has shape \[2, 3\]; expected \[batch=2, 1\]"):
        circuit.step(q, state)
    _, state = circuit.step(q, circuit.initial_state(2))
    with pytest.raises(CircuitRuntimeError, match=r"state 'osc_d.t' has shape \[2, 1\]; expected \[batch=3, 1\]"):
        circuit.step(np.zeros((3, 5), np.float32), state)


def test_inputs_as_lists_and_nan_inputs_as_the_torch_backend(pair: tuple[Any, Any]) -> None:
    module, circuit = pair
    q = np.random.default_rng(0).uniform(-1, 1, (1, 5))
    with torch.no_grad():
        expected = module(q)[0]["torque"].numpy()
    np.testing.assert_array_equal(circuit.step(q.tolist())[0]["torque"], expected)
    q[0, 3] = np.nan
    with pytest.warns(RuntimeWarning, match="input 'q' holds NaN or infinite values"):
        circuit.step(q)
    circuit.nonfinite = "raise"
    with pytest.raises(CircuitRuntimeError, match="input 'q' holds NaN or infinite values"):
        circuit.rollout(q[:, None])
    circuit.nonfinite = "warn"


def test_parameters_change_only_through_set_params_and_state_dicts_carry_over() -> None:
    module = circuitdsl.compile(SWIMMER, shared=False, seed=4)
    circuit = circuitdsl.compile(SWIMMER, backend="numpy", shared=False)
    with pytest.raises(ValueError, match="read-only"):
        circuit.params["osc"][0] = 5.0
    q = np.random.default_rng(2).uniform(-1, 1, (3, 7, 5)).astype(np.float32)
    with torch.no_grad():
        module.params["ipsi"].mul_(0.5)
        expected = module.rollout(q)[0]["torque"].numpy()
    circuit.load_state_dict(module.state_dict())
    np.testing.assert_array_equal(circuit.rollout(q)[0]["torque"], expected)
    with pytest.raises(CircuitRuntimeError, match=r"parameter 'prop' has shape \[3\]; expected \[8\]"):
        circuit.set_params({**circuit.params, "prop": np.zeros(3)})
    with pytest.raises(CircuitRuntimeError, match="are not this circuit's"):
        circuit.set_params({"osc": np.zeros(2)})
    with pytest.raises(CircuitRuntimeError, match="parameter 'osc' is a ndarray, not an array of numbers"):
        circuit.set_params({**circuit.params, "osc": np.array(["one", "two"])})


def test_a_circuit_at_another_resolution_keeps_its_weights() -> None:
    module = circuitdsl.compile("models/operator_burgers.circuit", seed=2)
    circuit = circuitdsl.compile("models/operator_burgers.circuit", backend="numpy")
    circuit.load_state_dict(module.state_dict())
    x = np.random.default_rng(0).uniform(-1, 1, (2, 96)).astype(np.float32)
    with torch.no_grad():
        expected = module.at_resolution(x=96)(torch.from_numpy(x))[0]["u1"].numpy()
    np.testing.assert_allclose(circuit.at_resolution(x=96).step(x)[0]["u1"], expected, rtol=1e-5, atol=1e-6)


def test_the_numpy_backend_runs_without_torch_or_jax() -> None:
    code = ("import sys; sys.modules.update(torch=None, jax=None); import circuitdsl, numpy as np; "
            f"c = circuitdsl.compile({SWIMMER!r}, backend='numpy'); "
            "print(c.rollout(np.ones((1, 3, 5), np.float32))[0]['torque'].shape)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "(1, 3, 5)"


# ---- the swim policy ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_swim_policy_acts_as_its_torch_module_also_after_its_weights_change(dtype: str) -> None:
    """The policy (numpy on the CPU) and the module itself, in lockstep: equal actions before and after an
    optimizer step, a fused optimizer's step, an in-place change under no_grad and new data given with
    `vector_to_parameters`."""
    module = circuitdsl.compile(SWIMMER, shared=False, seed=1, dtype=dtype)
    policy = CircuitPolicy(module)
    policy.reset(2)
    state = module.initial_state(2)
    optimizer = torch.optim.SGD(module.parameters(), lr=0.3)
    rng = np.random.default_rng(5)
    for step in range(24):
        if step == 6:  # an optimizer step on some loss of a rollout
            before = parameters_to_vector(module.parameters()).detach().clone()
            optimizer.zero_grad()
            outputs, _ = module.rollout(torch.rand(2, 30, 5, dtype=module.params["osc"].dtype) * 2 - 1)
            (outputs["torque"] ** 2).mean().backward()
            optimizer.step()
            assert not torch.equal(parameters_to_vector(module.parameters()), before)
        if step == 9:  # a fused optimizer's step: no version counted, the same data pointer
            fused = torch.optim.Adam(module.parameters(), lr=0.2, fused=True)
            for p in module.parameters():
                p.grad = torch.ones_like(p)
            fused.step()
        if step == 12:
            with torch.no_grad():
                module.params["prop"].mul_(-0.5)
        if step == 18:
            with torch.no_grad():  # `p.data = ...`: no version counted, a new data pointer
                vector_to_parameters(parameters_to_vector(module.parameters()) * 0.7, module.parameters())
        observation = {"joints": rng.uniform(-1.5, 1.5, (2, 5))}
        action = policy.act(observation)
        q = torch.from_numpy(normalise_joints(observation["joints"], 5).astype(np.float32))
        with torch.no_grad():
            outputs, state = module({"q": q}, state)
        assert isinstance(policy.state["osc_d.t"], np.ndarray)  # it acted through numpy
        np.testing.assert_array_equal(action, outputs["torque"].numpy().astype(np.float64), err_msg=f"step {step}")


def test_acting_reads_the_weights_once_per_change_not_per_act(monkeypatch: pytest.MonkeyPatch) -> None:
    reads = []
    original = NumpyCircuit.set_params
    monkeypatch.setattr(NumpyCircuit, "set_params", lambda self, params: (reads.append(1), original(self, params)))
    module = circuitdsl.compile(SWIMMER)
    policy = CircuitPolicy(module)
    policy.reset(1)
    for step in range(10):
        policy.act({"joints": np.zeros((1, 5))})
        if step == 4:
            with torch.no_grad():
                module.params["osc"].add_(0.5)
    assert len(reads) == 3  # the numpy circuit's initial values, the first act's weights, the changed ones


def test_acting_through_numpy_runs_no_torch_operation() -> None:
    """After the first act has read the weights, acting costs torch no operation at all (only version counters and
    data pointers are read)."""
    policy = CircuitPolicy(circuitdsl.compile(SWIMMER))
    policy.reset(1)
    observation = {"joints": np.full((1, 5), 0.3)}
    policy.act(observation)
    with _Aten() as aten:
        for _ in range(5):
            policy.act(observation)
    assert not aten.calls
