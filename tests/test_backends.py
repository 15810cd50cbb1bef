"""Behaviour tests run against every backend (parametrised over tests/backend_harness.py), and the backends
against each other: every model and every library neuron gives the same outputs and gradients in both."""

from __future__ import annotations

import copy
import io
import pickle
import subprocess
import sys
from importlib import resources
from typing import Any

import numpy as np
import pytest
import torch

import circuitdsl
from circuitdsl.backends.interface import CircuitRuntimeError
from circuitdsl.backends.plan import DENSE_ABOVE
from tests import backend_harness as harness
from tests.model_files import MODELS
from tests.ncap_reference import ncap_reference

SWIMMER = "models/ncap_swimmer.circuit"


@pytest.fixture(params=harness.BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("constrained", [True, False])
def test_ncap_equals_hand_written_reference(backend: str, shared: bool, constrained: bool) -> None:
    handle = harness.build(SWIMMER, backend, shared=shared, signs="clamp" if constrained else "none")
    rng = np.random.default_rng(0)
    weights = {k: (rng.standard_normal(v.shape) * 1.5).astype(np.float32)  # both signs, to exercise the clamp
               for k, v in harness.params(handle).items()}
    assert sum(v.size for v in weights.values()) == (4 if shared else 30)
    harness.set_params(handle, weights)
    q = rng.uniform(-1, 1, (3, 130, 5)).astype(np.float32)
    expected = ncap_reference(q, weights, shared, constrained)
    np.testing.assert_allclose(harness.run(handle, {"q": q})["torque"], expected, atol=1e-6, rtol=1e-6)


def test_ncap_at_init_uses_plus_minus_one(backend: str) -> None:
    handle = harness.build(SWIMMER, backend)
    assert {k: float(v) for k, v in harness.params(handle).items()} == {
        "osc": 1.0, "prop": 1.0, "ipsi": 1.0, "contra": -1.0}
    q = np.random.default_rng(1).uniform(-1, 1, (2, 70, 5)).astype(np.float32)
    ones = {"osc": np.float32(1), "prop": np.float32(1), "ipsi": np.float32(1), "contra": np.float32(-1)}
    np.testing.assert_allclose(harness.run(handle, {"q": q})["torque"], ncap_reference(q, ones, True, True),
                               atol=1e-6)


@pytest.mark.parametrize("joints", [3, 13])
def test_other_joint_counts_compile(backend: str, joints: int) -> None:
    handle = harness.build(SWIMMER, backend, joints=joints)
    outputs, _ = harness.step(handle, harness.start(handle, 4), np.zeros((4, joints)))
    assert outputs["torque"].shape == (4, joints)


def test_gradients_reach_ncap_parameters_except_the_structurally_silent_contra(backend: str) -> None:
    """Dorsal and ventral drives never overlap (q_d, q_v and the two oscillator phases are exclusive), so the
    contralateral term is either multiplied by 0 or alone and clamped at 0: contra gets no gradient, as the
    NCAP paper notes (only 3 of its 4 weights change swim actions).  Every other weight does."""
    handle = harness.build(SWIMMER, backend, shared=False, signs="none")
    rng = np.random.default_rng(2)
    harness.set_params(handle, {k: rng.uniform(0.2, 0.4, v.shape) * (-1 if k == "contra" else 1)
                                for k, v in harness.params(handle).items()})
    q = rng.uniform(-1, 1, (2, 40, 5)).astype(np.float32)
    outputs = harness.run(handle, {"q": q})
    _, grads = harness.grad(handle, {"q": q}, {"torque": 2 * outputs["torque"]})  # d/dw sum(torque^2)
    assert all(np.abs(grads[n]).min() > 0 for n in ("osc", "prop", "ipsi"))
    assert np.count_nonzero(grads["contra"]) == 0


MIX = """
circuit Mix {
  input x[n = 3]
  output y[n = 3]
  param g : excitatory = 0.3
  param k : inhibitory = -0.2, shared = false
  population a[n = 3] : Tanh
  population b[n = 3] : Leaky(tau = 5 ms)
  population s[n = 3] : LIF(threshold = 0.2)
  x -> a : one_to_one, weight = g
  a -| b : all_to_all, weight = k
  b -> a : one_to_one
  a -> s : dense
  a <-> b : one_to_one, weight = 0.1
  s -> b : one_to_one, weight = fixed(0.5)
  y = b + s
}"""


def test_gradients_reach_every_trainable_parameter_and_no_fixed_one(backend: str) -> None:
    handle = harness.build(MIX, backend, seed=3)
    x = np.random.default_rng(3).standard_normal((4, 30, 3)).astype(np.float32)
    outputs = harness.run(handle, {"x": x})
    _, grads = harness.grad(handle, {"x": x}, {"y": 2 * outputs["y"]})
    ir = circuitdsl.loads(MIX)
    for parameter in ir.parameters:
        key = parameter.name.replace(".", "/")
        assert (np.abs(grads[key]).sum() > 0) == parameter.trainable, key


def test_a_small_circuit_learns_a_target(backend: str) -> None:
    text = """
circuit Fit {
  input x[feature = 3]
  output y[out = 2]
  population h[unit = 8] : Tanh
  population o[out = 2] : Identity
  x -> h : dense
  h -> o : dense
  y = o
}"""
    handle = harness.build(text, backend, seed=0)
    x = np.random.default_rng(0).standard_normal((64, 1, 3)).astype(np.float32)
    target = np.stack([x[:, :, 0] - x[:, :, 1], x[:, :, 2] * 0.5], axis=2)
    losses = []
    for _ in range(80):  # gradient descent on the mean squared error: d/dw sum(y * 2 (y - target)) / size
        outputs, grads = harness.grad(handle, {"x": x}, {"y": 2 * (harness.run(handle, {"x": x})["y"] - target)})
        losses.append(float(((outputs["y"] - target) ** 2).mean()))
        params = harness.params(handle)
        harness.set_params(handle, {k: params[k] - grads[k] / target.size for k in params})
    assert losses[-1] < 0.1 * losses[0]


def test_bad_runtime_inputs_name_the_port_and_shape(backend: str) -> None:
    handle = harness.build(SWIMMER, backend)
    with pytest.raises(CircuitRuntimeError, match=r"input 'q' has shape \[2, 4\]; expected \[batch, joint=5\]"):
        harness.step(handle, None, np.zeros((2, 4)))
    with pytest.raises(CircuitRuntimeError, match="has no input 'angles'"):
        harness.step(handle, None, {"angles": np.zeros((2, 5))})
    with pytest.raises(CircuitRuntimeError, match=r"input 'q' has shape \[2, 5\]; expected \[batch, time, joint=5\]"):
        harness.run(handle, {"q": np.zeros((2, 5))})


def test_recurrence_delays_and_gap_junctions_step_by_step(backend: str) -> None:
    text = """
circuit Loop {
  input x[n = 2]
  output a_out[n = 2]
  output c_out[n = 2]
  population a[n = 2], b[n = 2], c[n = 2] : Identity
  x -> a : one_to_one, weight = fixed(1)
  a -> b : one_to_one, weight = fixed(2)
  b -> a : one_to_one, weight = fixed(0.5)
  a -> c : one_to_one, weight = fixed(1), delay = 2
  a <-> c : one_to_one, weight = fixed(0.25)
  a_out = a
  c_out = c
}"""
    handle = harness.build(text, backend)
    state = harness.start(handle, 1)
    a_prev = b_prev = c_prev = np.zeros((1, 2))
    history = [np.zeros((1, 2)), np.zeros((1, 2))]
    for t in range(6):
        x = np.array([[1.0, -1.0]]) * (t + 1)
        out, state = harness.step(handle, state, {"x": x})
        a = x + 0.5 * b_prev + 0.25 * (c_prev - a_prev)  # b -> a is recurrent: last step's b
        c = history[0] + 0.25 * (a_prev - c_prev)  # delayed by 2 steps; gap junction on last step's values
        b = 2 * a
        np.testing.assert_allclose(out["a_out"], a, rtol=1e-6)
        np.testing.assert_allclose(out["c_out"], c, rtol=1e-6)
        history = [history[1], a]
        a_prev, b_prev, c_prev = a, b, c


@pytest.mark.parametrize("backend_name", ["torch", "jax", "numpy"])
@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_a_copy_or_pickle_of_a_compiled_circuit_runs_as_the_original(backend_name: str, how: str) -> None:
    """A copy (an ES population, a target network) or a pickle (multiprocessing, Ray, `torch.save(module)`)
    holds the IR, parameters and settings; its programs are lowered again, and it continues from the same state."""
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(2, 6, 5)).astype(np.float32)  # batch 2, 6 steps, 5 joints
    original = circuitdsl.compile(SWIMMER, backend=backend_name, seed=3, shared=False, init="uniform(0, 1)")
    original.nonfinite = "ignore"

    def steps(circuit: Any, params: Any, state: Any, frames: np.ndarray) -> tuple[list[np.ndarray], Any]:
        outputs = []
        for x in frames.transpose(1, 0, 2):
            if backend_name == "torch":
                out, state = circuit(torch.from_numpy(x), state)
            elif backend_name == "jax":
                out, state = circuit.step(params, state, x)
            else:
                out, state = circuit.step(x, state)
            outputs.append(np.asarray(out["torque"].detach() if backend_name == "torch" else out["torque"]))
        return outputs, state

    params = original.init() if backend_name == "jax" else None
    _, state = steps(original, params, original.initial_state(2), inputs[:, :3])  # copied after it has run
    twin = copy.deepcopy(original) if how == "deepcopy" else pickle.loads(pickle.dumps(original))
    assert type(twin) is type(original) and twin.nonfinite == "ignore"
    mine, _ = steps(original, params, state, inputs[:, 3:])
    theirs, _ = steps(twin, params, state, inputs[:, 3:])
    np.testing.assert_array_equal(np.stack(theirs), np.stack(mine))
    assert np.ptp(np.stack(mine)) > 0  # the swimmer moves: a copy that ran nothing would not match
    if backend_name == "torch":
        buffer = io.BytesIO()
        torch.save(original, buffer)
        buffer.seek(0)
        loaded = torch.load(buffer, weights_only=False)
        np.testing.assert_array_equal(np.stack(steps(loaded, None, state, inputs[:, 3:])[0]), np.stack(mine))
        original.compile(backend="eager")  # compiled in place, it pickles as torch's own modules do
        with torch.no_grad():
            np.testing.assert_array_equal(np.stack(steps(pickle.loads(pickle.dumps(original)), None, state,
                                                         inputs[:, 3:])[0]), np.stack(mine))


def test_missing_framework_names_the_extra(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, backend, None)  # `import <backend>` now fails, as when not installed
    with pytest.raises(ImportError, match=rf"pip install -e '\.\[{backend}\]' in the repository"):
        circuitdsl.compile(SWIMMER, backend=backend)


def test_circuitdsl_imports_and_checks_without_torch_or_jax() -> None:
    code = ("import sys; sys.modules.update(torch=None, jax=None); import circuitdsl; "
            f"print(circuitdsl.load({SWIMMER!r}).summary())")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.startswith("Swimmer:")


def test_unknown_backend_lowering_a_bad_seed_and_arguments_for_an_ir_are_named() -> None:
    from circuitdsl.backends.interface import CircuitRuntimeError

    with pytest.raises(CircuitRuntimeError, match="unknown backend 'tf'; backends: torch, jax"):
        circuitdsl.compile(SWIMMER, backend="tf")
    with pytest.raises(CircuitRuntimeError, match="unknown backend 'tourch'; .*; did you mean 'torch'"):
        circuitdsl.compile(SWIMMER, backend="tourch")
    with pytest.raises(CircuitRuntimeError, match="unknown lowering 'csr'; lowerings: auto, dense, sparse$"):
        circuitdsl.compile(SWIMMER, lowering="csr")
    with pytest.raises(CircuitRuntimeError, match="unknown lowering 'dens'; .*; did you mean 'dense'"):
        circuitdsl.compile(SWIMMER, lowering="dens")
    for seed in (-1, 2.5, "0", None):  # numpy's SeedSequence refused these with its own TypeError or ValueError
        with pytest.raises(CircuitRuntimeError, match=f"seed must be a whole number, 0 or more, not {seed!r}"):
            circuitdsl.compile(SWIMMER, seed=seed)
    with pytest.raises(CircuitRuntimeError, match=r"circuit arguments \(joints\) apply when compiling from a path; "
                                                  r"this IR is already elaborated"):
        circuitdsl.compile(circuitdsl.load(SWIMMER), joints=8)
    jax_circuit = circuitdsl.compile(SWIMMER, backend="jax", seed=np.int64(3))
    with pytest.raises(CircuitRuntimeError, match=r"init takes a JAX PRNG key \(jax.random.key\(0\)\) or nothing, "
                                                  r"not 3; a seed is compile's"):
        jax_circuit.init(3)


# ---- connectivity lowerings ----------------------------------------------------------------------

WIRING = """
circuit Wiring {
  input x[n = 4]
  output y[m = 3]
  output v[n = 4]
  param g : excitatory = 0.2
  param s : inhibitory = -0.3, enforce = softplus
  param k : excitatory = 0.4, enforce = abs
  population a[n = 4] : Tanh
  population b[m = 3] : Leaky(tau = 4 ms)
  population c[n = 4] : Sigmoid
  x -> a : one_to_one
  a -> b : dense
  a -> c : pairs([[0, 1], [1, 1], [2, 3], [3, 0], [3, 0]])
  c -> b : pairs([[0, 2]])
  b -| a : all_to_all, weight = -0.2
  a -> c : one_to_one, weight = g, delay = 2
  b -> c : pairs([[0, 1], [2, 3]]), weight = k
  c -| a : pairs([[1, 2]]), weight = s
  a <-> c : pairs([[0, 0], [2, 1]]), weight = 0.1
  c <-> c : pairs([[0, 3]]), weight = fixed(0.3)
  x[0] -> c[2] : weight = g
  y = b
  v = a + c
}"""


def _lowerings(handle: harness.Handle) -> set[str]:
    return {p.lowering for p in handle.circuit.plan.projections}


def _group_lowerings(handle: harness.Handle) -> set[str]:
    """How the fused inputs of each port run (circuitdsl/backends/fusion.py)."""
    return {g.lowering for g in handle.circuit._program().groups.values()}


def test_every_lowering_gives_the_same_numbers(backend: str) -> None:
    """Element-wise, dense, masked and sparse lowerings (shared and per-synapse weights, a repeated pair, gap
    junctions, a delay, recurrence) agree with each other: auto against all-dense and all-sparse."""
    rng = np.random.default_rng(4)
    x = {"x": rng.uniform(-1, 1, (3, 25, 4)).astype(np.float32)}
    weights = {"y": rng.standard_normal((3, 25, 3)).astype(np.float32),
               "v": rng.standard_normal((3, 25, 4)).astype(np.float32)}
    results = {}
    for lowering in ("auto", "dense", "sparse"):
        handle = harness.build(WIRING, backend, seed=5, lowering=lowering)
        results[lowering] = harness.grad(handle, x, weights)
        expected = {"auto": {"elementwise", "dense", "masked", "sparse"}, "dense": {"dense", "masked"},
                    "sparse": {"sparse"}}[lowering]
        assert _lowerings(handle) == expected
        auto = "ell" if backend == "jax" else "dense"  # JAX: few synapses per unit, element-wise layers
        assert _group_lowerings(handle) == {"auto": {auto}, "dense": {"dense"}, "sparse": {"sparse"}}[lowering]
    for lowering in ("dense", "sparse"):
        for got, want in zip(results[lowering], results["auto"], strict=True):
            for key in want:
                np.testing.assert_allclose(got[key], want[key], atol=1e-5, rtol=1e-5, err_msg=f"{lowering}: {key}")


@pytest.mark.parametrize(("pairs", "lowering"), [(2, "sparse"), (3, "masked")])
def test_explicit_synapses_run_dense_above_the_density_threshold(pairs: int, lowering: str) -> None:
    assert 2 / 25 <= DENSE_ABOVE < 3 / 25
    listed = ", ".join(f"[{i}, {i}]" for i in range(pairs))
    module = circuitdsl.compile(circuitdsl.loads(
        f"circuit D {{\n input x[n = 5]\n population h[n = 5] : Tanh\n x -> h : pairs([{listed}])\n}}"))
    assert [p.lowering for p in module.plan.projections] == [lowering]


# ---- the backends against each other -------------------------------------------------------------

def _std_neurons() -> list[str]:
    text = resources.files("circuitdsl").joinpath("library/std.circuit").read_text(encoding="utf-8")
    return [d.name.name for d in circuitdsl.parse(text).items if getattr(d, "keyword", None) == "neuron"]


NEURONS = [*_std_neurons(), "LIF(reset = zero, surrogate = fast_sigmoid)",
           "LIF(reset = none, surrogate = sigmoid, slope = 5)", "LIF(surrogate = straight_through, threshold = 0.5)"]

PROBE = """
circuit Probe {{
  input x[n = 3]
  output y[n = 3]
  output z[m = 2]
  population p[n = 3] : {neuron}
  population r[m = 2] : Tanh
  x -> p : dense
  p -> r : dense
  r -> p : all_to_all
  y = p
  z = r
}}"""


def _cases() -> list[Any]:
    cases = [pytest.param(result.ir, id=f"{path.name}:{result.ir.name}")
             for path in MODELS for result in circuitdsl.check(path)]
    cases += [pytest.param(circuitdsl.loads(PROBE.format(neuron=n)), id=n) for n in NEURONS]
    return [*cases, pytest.param(circuitdsl.loads(WIRING), id="wiring")]


@pytest.mark.parametrize("ir", _cases())
def test_backends_agree_on_outputs_and_gradients(ir: circuitdsl.CircuitIR) -> None:
    """Same parameters (the same seed's init, moved off it at random), same inputs: a 100-step rollout's outputs
    and the gradients of a scalar loss agree within 1e-8, in float64.  (In float32 the backends' different
    summation orders differ by an ulp a step, which a chaotic recurrent network such as the CTM's amplifies to
    1e-3 within 100 steps; float64 keeps that far below the tolerance.)"""
    import jax

    with jax.enable_x64(True):
        _agree(ir)


def _agree(ir: circuitdsl.CircuitIR) -> None:
    rng = np.random.default_rng(6)
    torch_handle, jax_handle = (harness.build(ir, b, seed=7, dtype="float64") for b in harness.BACKENDS)
    start = harness.params(torch_handle)
    for key, value in harness.params(jax_handle).items():
        np.testing.assert_array_equal(value, start[key], err_msg=key)  # default init: the same numbers
    # an operator's weights move by half their init std, not 0.5: a V-cycle composes a dozen convolutions, and at
    # five times its init scale it amplifies float32 rounding ~1e4-fold, which no two backends share
    spread = {p.weight.param.replace(".", "/"): ir.parameter(p.weight.param).init.args[1]
              for p in ir.projections if p.operator is not None and ir.parameter(p.weight.param).init.rule == "normal"}
    moved = {k: (v + 0.5 * spread.get(k, 1.0) * rng.standard_normal(v.shape)).astype(np.float32)
             for k, v in start.items()}
    for handle in (torch_handle, jax_handle):
        harness.set_params(handle, moved)
    inputs = {p.name: rng.uniform(-1, 1, (2, 100, *[a.size for a in p.shape])).astype(np.float32)
              for p in ir.inputs}
    weights = {o.name: rng.standard_normal((2, 100, *[a.size for a in o.shape])).astype(np.float32)
               for o in ir.outputs}
    (out_t, grad_t), (out_j, grad_j) = (harness.grad(h, inputs or None, weights, steps=100)
                                        for h in (torch_handle, jax_handle))
    for output in ir.outputs:
        assert out_t[output.name].shape == (2, 100, *[a.size for a in output.shape])
        assert np.isfinite(out_t[output.name]).all()
        np.testing.assert_allclose(out_j[output.name], out_t[output.name], atol=1e-8, rtol=1e-8, err_msg=output.name)
    assert set(grad_j) == set(grad_t)
    for key in grad_t:
        np.testing.assert_allclose(grad_j[key], grad_t[key], atol=1e-8, rtol=1e-8, err_msg=key)


def test_element_functions_agree_with_their_gradients_at_ties() -> None:
    """Every built-in function, in both backends' tables, on values that hit its kinks and boundaries."""
    import jax
    import jax.numpy as jnp
    import torch

    from circuitdsl.backends.jax_backend import JaxOps
    from circuitdsl.backends.torch_backend import TorchOps
    from circuitdsl.functions import FUNCTIONS

    assert set(TorchOps.functions) == set(JaxOps.functions) == set(FUNCTIONS)
    x = np.array([-2.0, -1.0, 0.0, 0.5, 1.0, 2.0], np.float32)
    other = {"clamp": (0.0, 1.0), "min": (np.float32(1.0),), "max": (np.float32(0.0),), "where": (x, -x),
             "reduce_sum": (2.0,), "reduce_max": (2.0,), "reduce_absmax": (2.0,), "kwta": (2.0,),
             "matvec": (x[::-1].copy(),), "push": (np.float32(3.0),)}
    for name in FUNCTIONS:
        extra = other.get(name, ())
        values = np.abs(x) + 1 if name in ("log", "sqrt") else x
        t = torch.from_numpy(values.copy()).requires_grad_(True)
        t_extra = [torch.tensor(e) if isinstance(e, np.ndarray | np.float32) else e for e in extra]
        out_t = TorchOps.functions[name](t, *t_extra)
        if out_t.requires_grad:  # step is not differentiable in torch: its gradient is zero, as in JAX
            out_t.sum().backward()
        j_extra = [jnp.asarray(e) if isinstance(e, np.ndarray | np.float32) else e for e in extra]
        out_j = JaxOps.functions[name](jnp.asarray(values), *j_extra)
        grad_j = jax.grad(lambda v, f=JaxOps.functions[name], e=j_extra: f(v, *e).sum())(jnp.asarray(values))
        np.testing.assert_allclose(np.asarray(out_j), out_t.detach().numpy(), rtol=1e-6, err_msg=name)
        grad_t = np.zeros_like(values) if t.grad is None else t.grad.numpy()
        np.testing.assert_allclose(np.asarray(grad_j), grad_t, rtol=1e-6, err_msg=name)
