"""Runtime validation at the API boundary: inputs, state and parameter sets are checked once per call with a
CircuitRuntimeError naming the key and the expected shape; numpy and lists are accepted; NaN inputs are reported;
batch 0 and zero-length rollouts are defined."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import circuitdsl
from circuitdsl.backends.interface import CircuitRuntimeError
from tests.model_files import MODELS, small_args

SWIMMER = "models/ncap_swimmer.circuit"


@pytest.fixture(scope="module")
def compiled() -> dict[str, Any]:
    return {"torch": circuitdsl.compile(SWIMMER), "jax": circuitdsl.compile(SWIMMER, backend="jax")}


def _step(compiled: dict[str, Any], backend: str, x: Any, state: Any = None) -> Any:
    if backend == "torch":
        with torch.no_grad():
            return compiled["torch"](x, state)
    circuit = compiled["jax"]
    return circuit.step(circuit.init(), state, x)


def _state(compiled: dict[str, Any], backend: str, batch: int) -> dict[str, Any]:
    return dict(compiled[backend].initial_state(batch))


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_a_state_that_does_not_fit_is_named_with_its_expected_shape(compiled: dict[str, Any], backend: str) -> None:
    x = np.zeros((2, 5), np.float32)
    with pytest.raises(CircuitRuntimeError, match=r"state 'osc_d.t' has shape \[4, 1\]; expected \[batch=2, 1\]"):
        _step(compiled, backend, x, _state(compiled, backend, 4))
    with pytest.raises(CircuitRuntimeError, match="state is missing 'osc_d.t'"):
        _step(compiled, backend, x, {})
    wrong = {**_state(compiled, backend, 2), "osc_d.t": np.zeros((2, 3), np.float32)}
    with pytest.raises(CircuitRuntimeError, match=r"state 'osc_d.t' has shape \[2, 3\]; expected \[batch=2, 1\]"):
        _step(compiled, backend, x, wrong)
    extra = {**_state(compiled, backend, 2), "osc_d.tt": np.zeros((2, 1), np.float32)}
    with pytest.raises(CircuitRuntimeError, match="state has no entry 'osc_d.tt'; did you mean 'osc_d.t'"):
        _step(compiled, backend, x, extra)
    # a population's last output that no step reads is not state: the message says where it is
    unread = {**_state(compiled, backend, 2), "Bd:out": np.zeros((2, 5), np.float32)}
    with pytest.raises(CircuitRuntimeError, match=r"state has no entry 'Bd:out'; a population's last output is "
                                                  r"state only where the next step reads it .*record=\['Bd'\]"):
        _step(compiled, backend, x, unread)


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_numpy_and_list_inputs_are_accepted_and_other_values_refused(compiled: dict[str, Any], backend: str) -> None:
    q = np.random.default_rng(0).uniform(-1, 1, (1, 5))
    from_numpy = np.asarray(_step(compiled, backend, q)[0]["torque"])
    from_list = np.asarray(_step(compiled, backend, q.tolist())[0]["torque"])
    np.testing.assert_array_equal(from_numpy, from_list)
    with pytest.raises(CircuitRuntimeError, match="input 'q' is a str, not an array of numbers"):
        _step(compiled, backend, "q")
    with pytest.raises(CircuitRuntimeError, match="no input 'qq'; its inputs are \\['q'\\]; did you mean 'q'"):
        _step(compiled, backend, {"qq": q})


@pytest.mark.parametrize("backend", ["torch", "jax", "numpy"])
def test_complex_inputs_and_states_are_refused_not_cut_to_their_real_part(backend: str) -> None:
    """A conversion to float drops a complex number's imaginary part (torch and numpy warn, then do it): refused."""
    circuit = circuitdsl.compile(SWIMMER, backend=backend)
    step = (lambda x, s: circuit.step(circuit.init(), s, x)) if backend == "jax" else (
        circuit.step if backend == "numpy" else circuit)
    q = np.full((1, 5), 0.5 + 0.5j)
    for given in (q, torch.as_tensor(q)) if backend == "torch" else (q,):
        with pytest.raises(CircuitRuntimeError, match=r"input 'q' is complex \(.*complex128\); a circuit reads real"):
            step({"q": given}, None)
    state = {key: np.asarray(value) + 0j for key, value in circuit.initial_state(1).items()}
    with pytest.raises(CircuitRuntimeError, match=r"state 'osc_d.t' is complex"):
        step({"q": q.real}, state)


@pytest.mark.parametrize("backend", ["torch", "jax", "numpy"])
@pytest.mark.parametrize("batch", [-1, 2.5, "2", None, True])
def test_a_batch_size_is_a_whole_number_or_a_clear_error(backend: str, batch: Any) -> None:
    circuit = circuitdsl.compile(SWIMMER, backend=backend)
    with pytest.raises(CircuitRuntimeError, match=f"batch_size must be a whole number, 0 or more, not {batch!r}"):
        circuit.initial_state(batch)
    assert next(iter(circuit.initial_state(np.int64(3)).values())).shape[0] == 3


@pytest.mark.parametrize("backend", ["torch", "jax", "numpy"])
def test_a_rollouts_steps_and_record_names_are_checked(backend: str) -> None:
    """`steps` is a whole number that agrees with the inputs' time axis where both are given (it was ignored:
    steps=7 over 4 time steps ran 4); a record name that is no string is named (it failed inside difflib)."""
    circuit = circuitdsl.compile(SWIMMER, backend=backend)
    x = np.zeros((2, 4, 5), np.float32)
    rollout = (lambda *a, **k: circuit.rollout(circuit.init(), *a, **k)) if backend == "jax" else circuit.rollout
    assert rollout({"q": x}, steps=4)[0]["torque"].shape == (2, 4, 5)
    with pytest.raises(CircuitRuntimeError, match=r"steps=7, but the inputs run over 4 time steps; give the "
                                                  r"inputs alone, or steps=4"):
        rollout({"q": x}, steps=7)
    for steps in (-1, 2.5, "4", True):
        with pytest.raises(CircuitRuntimeError, match=f"steps must be a whole number, 0 or more, not {steps!r}"):
            rollout({"q": x}, steps=steps)
    with pytest.raises(CircuitRuntimeError, match=r"record takes names \(`pop`, `pop.v`\), not 3"):
        rollout({"q": x}, record=["Bd", 3])




@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.name)
def test_every_model_steps_on_the_meta_device_to_its_shapes(path: Path) -> None:
    """torch's shape inference: a module on the `meta` device steps and rolls out (inputs from the CPU moved) to
    tensors of the shapes and dtype of its CPU run, with no values; the NaN check, which reads values, is skipped
    there (it stopped every step with "Tensor.item() cannot be called on meta tensors")."""
    ir = circuitdsl.load(path, **small_args(path))
    cpu, meta = circuitdsl.compile(ir), circuitdsl.compile(ir).to("meta")
    inputs = {p.name: torch.rand(2, 3, *[a.size for a in p.shape]) for p in ir.inputs} or None
    with torch.no_grad():
        expected, found = cpu.rollout(inputs, steps=3), meta.rollout(inputs, steps=3)
        expected_step = cpu({k: v[:, 0] for k, v in inputs.items()} if inputs else None, expected[1])
        found_step = meta({k: v[:, 0] for k, v in inputs.items()} if inputs else None, found[1])
    for want, got in zip((*expected, *expected_step), (*found, *found_step), strict=True):
        assert got.keys() == want.keys()
        for key, value in got.items():
            assert value.device.type == "meta" and value.shape == want[key].shape and value.dtype == want[key].dtype


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_batch_zero_and_a_zero_length_rollout_are_empty_results(compiled: dict[str, Any], backend: str) -> None:
    outputs, state = _step(compiled, backend, np.zeros((0, 5), np.float32))
    assert outputs["torque"].shape == (0, 5) and all(v.shape[0] == 0 for v in state.values())
    circuit = compiled[backend]
    for shape in ((0, 4, 5), (3, 0, 5)):
        x = np.zeros(shape, np.float32)
        if backend == "torch":
            outputs, state = circuit.rollout(x, record=["Bd"])
        else:
            outputs, state = circuit.rollout(circuit.init(), x, record=["Bd"])
        assert outputs["torque"].shape == shape and outputs["Bd"].shape == shape
    start = _state(compiled, backend, 3)
    if backend == "torch":
        _, after = circuit.rollout(np.zeros((3, 0, 5), np.float32), state=start)
        assert all(torch.equal(after[k], torch.as_tensor(start[k])) for k in start)


def test_nan_inputs_warn_by_default_and_raise_when_asked() -> None:
    module = circuitdsl.compile(SWIMMER)
    q = torch.zeros(2, 5)
    q[1, 3] = float("nan")
    with pytest.warns(RuntimeWarning, match="input 'q' holds NaN or infinite values"):
        module(q)
    module.nonfinite = "raise"
    with pytest.raises(CircuitRuntimeError, match="input 'q' holds NaN or infinite values"):
        module.rollout(q[:, None])
    module.nonfinite = "ignore"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not checked, so no warning
        module(q)


@pytest.mark.parametrize("backend", ["torch", "jax", "numpy"])
def test_a_misspelled_nonfinite_policy_is_refused_where_it_is_set(backend: str) -> None:
    """Not at a later call (a torch.compile'd step does not read the policy); the policy set before stays."""
    circuit = circuitdsl.compile(SWIMMER, backend=backend)
    assert circuit.nonfinite == "warn"
    with pytest.raises(CircuitRuntimeError, match="nonfinite must be one of warn, raise, ignore, not 'rasie'; "
                                                  "did you mean 'raise'"):
        circuit.nonfinite = "rasie"
    with pytest.raises(CircuitRuntimeError, match="not None"):
        circuit.nonfinite = None
    assert circuit.nonfinite == "warn"
    circuit.nonfinite = "ignore"
    assert circuit.nonfinite == "ignore"
    if backend == "torch":  # a copy keeps it (a module is copied for ES populations)
        assert copy.deepcopy(circuit).nonfinite == "ignore"


def test_jax_parameter_sets_are_checked_by_key_and_shape() -> None:
    circuit = circuitdsl.compile(SWIMMER, backend="jax", shared=False)
    params = circuit.init()
    x = np.zeros((1, 5), np.float32)
    with pytest.raises(CircuitRuntimeError, match=r"parameter 'osc' has shape \[7\]; expected \[2\]"):
        circuit.step({**params, "osc": np.zeros(7, np.float32)}, None, x)
    missing = {k: v for k, v in params.items() if k != "osc"}
    with pytest.raises(CircuitRuntimeError, match="are not this circuit's"):
        circuit.rollout(missing, x[:, None])
    module = circuitdsl.compile(SWIMMER, shared=False)
    state_dict = module.state_dict()
    state_dict["params.prop"] = torch.zeros(3)
    with pytest.raises(CircuitRuntimeError, match=r"parameter 'prop' has shape \[3\]; expected \[8\]"):
        circuit.from_torch(state_dict)
