"""Recording: a rollout returns population outputs, neuron states and a neuron's lets and spikes beside the outputs,
each [batch, time, *shape], equal on both backends; an unknown name is a clear error with a did-you-mean."""

from __future__ import annotations

import jax
import numpy as np
import pytest
import torch

import circuitdsl
from circuitdsl.backends.interface import CircuitRuntimeError

SNN = "models/delays_snn.circuit"


def test_a_rollout_records_outputs_states_and_spikes_on_both_backends() -> None:
    ir = circuitdsl.load(SNN)
    names = ["h1", "h1.mem", "h1.spk", "out.v"]
    x = (np.random.default_rng(0).uniform(size=(3, 7, 8)) < 0.4).astype(np.float32)
    module = circuitdsl.compile(ir)
    with torch.no_grad():
        outputs, state = module.rollout(torch.from_numpy(x), record=names)
    assert set(outputs) == {"logits", *names}
    assert outputs["h1"].shape == (3, 7, 16) and outputs["h1.mem"].shape == (3, 7, 16)
    assert outputs["out.v"].shape == (3, 7, 4)
    torch.testing.assert_close(outputs["h1.mem"][:, -1], state["h1.mem"])  # the state after each step
    assert set(np.unique(outputs["h1.spk"].numpy())) <= {0.0, 1.0} and outputs["h1.spk"].sum() > 0
    torch.testing.assert_close(outputs["h1"], outputs["h1.spk"])  # a LIF's output is its spike
    with torch.no_grad():
        plain, _ = module.rollout(torch.from_numpy(x))
    torch.testing.assert_close(plain["logits"], outputs["logits"])  # recording changes nothing
    circuit = circuitdsl.compile(ir, backend="jax")
    jax_outputs, _ = jax.jit(lambda p, x: circuit.rollout(p, x, record=names))(circuit.init(), x)
    for name in names:
        np.testing.assert_allclose(np.asarray(jax_outputs[name]), outputs[name].numpy(), rtol=1e-5, atol=1e-6)


def test_a_population_with_a_shape_and_a_neuron_let_record_in_their_shapes() -> None:
    ir = circuitdsl.loads("""
neuron Sq {
  let twice = 2 * in
  out = twice * twice
}
circuit C {
  input x[i = 2, j = 3]
  output y[i = 2, j = 3]
  population p[i = 2, j = 3] : Sq
  x -> p : one_to_one, weight = fixed(1.0)
  y = p
}""")
    x = torch.arange(12, dtype=torch.float32).reshape(1, 2, 2, 3)
    outputs, _ = circuitdsl.compile(ir).rollout(x, record=["p.twice", "p"])
    torch.testing.assert_close(outputs["p.twice"], 2 * x)
    torch.testing.assert_close(outputs["p"], 4 * x * x)
    step_outputs, _ = circuitdsl.compile(ir)(x[:, 0], record=["p.twice"])
    torch.testing.assert_close(step_outputs["p.twice"], 2 * x[:, 0])


@pytest.mark.parametrize(("names", "message"), [
    (["h1.mme"], "nothing to record named 'h1.mme'; did you mean 'h1.mem'?"),
    (["hidden"], "nothing to record named 'hidden'; record a population"),
    (["h1", "h2", "h1"], "'h1' is recorded twice"),
])
def test_an_unknown_or_repeated_record_name_is_a_clear_error(names: list[str], message: str) -> None:
    module = circuitdsl.compile(SNN)
    with pytest.raises(CircuitRuntimeError, match=message):
        module.rollout(torch.zeros(1, 2, 8), record=names)
    circuit = circuitdsl.compile(SNN, backend="jax")
    with pytest.raises(CircuitRuntimeError, match=message):
        circuit.rollout(circuit.init(), np.zeros((1, 2, 8), np.float32), record=names)
