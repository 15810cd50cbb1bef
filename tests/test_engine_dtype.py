"""Any dtype: every model runs in float64 on both backends, the two agree to 1e-12, gradients pass gradcheck, and
float32 modules move to float64 with `.double()`; a dtype a backend cannot honour is a clear error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import numpy as np
import pytest
import torch

import circuitdsl
from circuitdsl.backends.interface import CircuitRuntimeError
from circuitdsl.ir.model import CircuitIR
from tests.model_files import MODELS, ROOT, small_args


def _inputs(ir: CircuitIR, batch: int, time: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random float64 inputs [batch, time, *port shape] in [-1, 1] for every input port."""
    rng = np.random.default_rng(seed)
    return {p.name: rng.uniform(-1, 1, (batch, time, *[a.size for a in p.shape])) for p in ir.inputs}


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.name)
def test_every_model_runs_in_float64_on_both_backends_and_they_agree(path: Path) -> None:
    ir = circuitdsl.load(path, **small_args(path))
    inputs = _inputs(ir, batch=2, time=3)
    module = circuitdsl.compile(ir, dtype="float64")
    assert all(p.dtype == torch.float64 for p in module.params.values())
    outputs, state = module.rollout({k: torch.from_numpy(v) for k, v in inputs.items()}, steps=3)
    assert all(v.dtype == torch.float64 for v in [*outputs.values(), *state.values()])
    with jax.enable_x64(True):
        circuit = circuitdsl.compile(ir, backend="jax", dtype="float64")
        params = circuit.init()
        assert all(v.dtype == np.float64 for v in params.values())
        jax_outputs, jax_state = jax.jit(lambda p, x: circuit.rollout(p, x, steps=3))(params, inputs)
        assert all(v.dtype == np.float64 for v in [*jax_outputs.values(), *jax_state.values()])
        for name, value in outputs.items():
            np.testing.assert_allclose(np.asarray(jax_outputs[name]), value.detach().numpy(), rtol=1e-12, atol=1e-12)
        for name, value in state.items():
            np.testing.assert_allclose(np.asarray(jax_state[name]), value.detach().numpy(), rtol=1e-12, atol=1e-12)


class _Rollout(torch.nn.Module):
    """A module's rollout outputs as its forward, for `torch.func.functional_call`."""

    def __init__(self, module: torch.nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, inputs: dict[str, torch.Tensor] | None, steps: int) -> dict[str, torch.Tensor]:
        return self.module.rollout(inputs, steps=steps)[0]  # type: ignore[operator, no-any-return]


def _gradcheck(ir: CircuitIR, steps: int) -> None:
    """torch.autograd.gradcheck of a float64 rollout's outputs w.r.t. the inputs and every trainable parameter."""
    module = circuitdsl.compile(ir, dtype="float64", seed=3)
    keys = [k for k, p in module.params.items() if p.requires_grad]
    inputs = {k: torch.from_numpy(v).requires_grad_() for k, v in _inputs(ir, 2, steps, seed=1).items()}

    rollout = _Rollout(module)

    def run(*values: torch.Tensor) -> tuple[torch.Tensor, ...]:
        named = {f"module.params.{k}": v for k, v in zip(keys, values[:len(keys)])}
        given = dict(zip(inputs, values[len(keys):]))
        outputs = torch.func.functional_call(rollout, named, args=(given or None, steps), strict=False)
        return tuple(outputs.values())

    generator = torch.Generator().manual_seed(0)  # values off the kinks of clamps (NCAP's start at exactly +-1)
    params = [(module.params[k].detach() * (0.5 + 0.4 * torch.rand(module.params[k].shape, generator=generator,
                                                                    dtype=torch.float64))).requires_grad_()
              for k in keys]
    assert torch.autograd.gradcheck(run, (*params, *inputs.values()), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize(("model", "args", "steps"), [
    ("ncap_swimmer.circuit", {"joints": 2, "shared": False}, 4),
    ("operator_burgers.circuit", {"n": 8, "width": 2, "hidden": 2, "modes": 2}, 1),
    ("elm_neuron.circuit", {"inputs": 2, "branches": 2, "memory": 2, "hidden": 2, "outputs": 1}, 3),
    ("dendrite_nodes_mlp.circuit", {"inputs": 3, "hidden": 2, "classes": 2}, 1),
    ("celegans_touch.circuit", {}, 3),
])
def test_gradcheck_passes_on_small_variants_of_the_models(model: str, args: dict[str, Any], steps: int) -> None:
    path = ROOT / "models" / model
    _gradcheck(circuitdsl.load(path, **args), steps)


def test_double_moves_a_float32_module_and_float32_inputs_are_converted() -> None:
    module = circuitdsl.compile("models/ncap_swimmer.circuit")
    x = torch.rand(2, 4, 5)
    reference, _ = module.rollout(x.double())
    module.double()
    outputs, state = module.rollout(x)  # float32 inputs into a float64 module: converted
    assert outputs["torque"].dtype == torch.float64
    assert all(v.dtype == torch.float64 for v in state.values())
    assert all(v.dtype == torch.float64 for v in module.initial_state(3).values())
    module.float()
    again, _ = module.rollout(x.double())
    assert again["torque"].dtype == torch.float32
    torch.testing.assert_close(again["torque"], reference["torque"])


def test_float64_outputs_follow_from_float64_parameters_not_rounded_to_float32() -> None:
    ir = circuitdsl.loads("""
neuron Leak(tau: time = 3 ms, dt: time = 1 ms) {
  state v = 0.1
  dv/dt = (in - v) / tau
  out = v
}
circuit C {
  input x
  output y
  population p : Leak
  x -> p : weight = fixed(1.0)
  y = p
}""")
    module = circuitdsl.compile(ir, dtype="float64")
    outputs, _ = module.rollout(torch.full((1, 5), 1 / 3, dtype=torch.float64))
    v, expected = 0.1, []
    for _ in range(5):
        v = v + 1e-3 * (1 / 3 - v) / 3e-3
        expected.append(v)
    np.testing.assert_allclose(outputs["y"].numpy().ravel(), expected, rtol=1e-15)


def test_float64_keeps_the_connectome_weights_float64() -> None:
    # the touch circuit's weights are count * 0.1: in float32 0.1 is 1.5e-8 off, which a float64 run must not inherit
    from circuitdsl.interop.matrices import matrices, stored_values

    ir = circuitdsl.load("models/celegans_touch.circuit")
    module = circuitdsl.compile(ir, dtype="float64")
    weights = {p.id: matrices(ir, p, stored_values(module))[0] for p in ir.projections}
    junctions = weights["N <-> N"] + weights["N <-> N"].T  # each junction listed once, its current flows both ways
    state, v = module.initial_state(1), np.zeros(16)
    for _ in range(3):
        out = np.tanh(v)
        drive = weights["N -> N"] @ out + junctions @ out - junctions.sum(1) * out + weights["touch -> N"].sum(1)
        v = v + 10 / 50 * (drive - v)
        _, state = module({"touch": torch.ones(1, 4, dtype=torch.float64)}, state)
    np.testing.assert_allclose(state["N.v"].detach().numpy().ravel(), v, rtol=1e-14, atol=1e-16)


def test_a_dtype_a_backend_cannot_honour_is_a_clear_error() -> None:
    with pytest.raises(CircuitRuntimeError, match="'bfloat16' is not supported; a circuit runs in float32 or float64"):
        circuitdsl.compile("models/ncap_swimmer.circuit", dtype="bfloat16")
    with pytest.raises(CircuitRuntimeError, match="float64 needs JAX's 64-bit mode"):
        circuitdsl.compile("models/ncap_swimmer.circuit", backend="jax", dtype=np.float64)
    module = circuitdsl.compile("models/ncap_swimmer.circuit", dtype=torch.float32).half()
    with pytest.raises(CircuitRuntimeError, match="'float16' is not supported"):
        module(torch.zeros(1, 5))
