"""Learnable delays: the kernel's closed form, whole-step behaviour at sigma = 0, gradients, errors, IR, diagrams."""

from __future__ import annotations

import numpy as np
import pytest

import circuitdsl
from circuitdsl.backends.delays import SIGMA_END, sigma_schedule
from circuitdsl.ir.model import CircuitIR
from tests import backend_harness as harness

K = 6
LEARNED = f"""
circuit Delayed {{
  input  x[channel = 2]
  output y[unit = 3]
  population out[unit = 3] : Identity
  x -> out : all_to_all, weight = fixed(1), delay = learnable(max = {K})
  y = out
}}"""
FIXED = """
circuit Fixed {{
  input  x[channel = 2]
  output y[unit = 3]
  population out[unit = 3] : Identity
{lines}
  y = out
}}"""


@pytest.fixture(params=harness.BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _closed_form(delays: np.ndarray, sigma: float) -> np.ndarray:
    """k[tau] for tau = 1..K (rows), one column per synapse: the normalised Gaussian, written out."""
    tau = np.arange(1, K + 1)[:, None]
    g = np.exp(-((tau - np.clip(delays, 1, K)) ** 2) / (2 * sigma ** 2))
    return g / g.sum(0)


def _impulse_response(backend: str, delays: np.ndarray, sigma: float) -> np.ndarray:
    """Output unit o's response to a unit impulse on input channel i at t = 0: [time, 3, 2]."""
    handle = harness.build(LEARNED, backend)
    harness.set_params(handle, {"x -> out/delay": delays.reshape(3, 2), "x -> out/delay_sigma": np.float32(sigma)})
    x = np.zeros((2, K + 3, 2), np.float32)
    x[0, 0, 0] = x[1, 0, 1] = 1.0
    y = harness.run(handle, {"x": x})["y"]
    return np.stack([y[0], y[1]], axis=-1)


def test_the_kernel_matches_the_closed_form(backend: str) -> None:
    delays = np.array([1.0, 2.3, 3.5, 4.75, 6.0, 9.0], np.float32)  # 9 is clamped to K
    response = _impulse_response(backend, delays, 1.3)
    expected = _closed_form(delays, 1.3)  # synapse (o, i) at o * 2 + i
    for o in range(3):
        for i in range(2):
            np.testing.assert_allclose(response[1:K + 1, o, i], expected[:, o * 2 + i], atol=1e-6)
            assert response[0, o, i] == 0 and np.all(response[K + 1:, o, i] == 0)  # causal, K steps of history


def test_sigma_zero_rounds_to_whole_steps_and_equals_fixed_delays(backend: str) -> None:
    delays = np.array([1.2, 2.5, 3.49, 4.0, 5.8, 6.0], np.float32)
    whole = np.floor(delays + 0.5).astype(int)
    lines = "\n".join(f"  x[{i}] -> out[{o}] : weight = fixed(1), delay = {whole[o * 2 + i]}"
                      for o in range(3) for i in range(2))
    x = np.random.default_rng(0).uniform(-1, 1, (2, 20, 2)).astype(np.float32)
    handle = harness.build(LEARNED, backend)
    harness.set_params(handle, {"x -> out/delay": delays.reshape(3, 2)})  # sigma starts at 0: evaluation
    fixed = harness.build(FIXED.format(lines=lines), backend)
    np.testing.assert_allclose(harness.run(handle, {"x": x})["y"], harness.run(fixed, {"x": x})["y"], atol=1e-6)


def test_delays_have_gradients_while_sigma_is_positive(backend: str) -> None:
    handle = harness.build(LEARNED, backend)
    x = np.random.default_rng(1).uniform(0, 1, (2, 15, 2)).astype(np.float32)
    weights = {"y": np.random.default_rng(2).standard_normal((2, 15, 3)).astype(np.float32)}
    harness.set_params(handle, {"x -> out/delay_sigma": np.float32(1.0)})
    _, grads = harness.grad(handle, {"x": x}, weights)
    assert np.all(np.abs(grads["x -> out/delay"]) > 0)
    assert np.all(grads["x -> out/delay_sigma"] == 0)  # fixed: the schedule sets it


def test_sigma_schedule_anneals_from_half_the_window_to_its_end() -> None:
    assert sigma_schedule(0.0, 25) == pytest.approx(12.5)
    assert sigma_schedule(0.5, 25) == pytest.approx(SIGMA_END)
    assert sigma_schedule(0.9, 25) == pytest.approx(SIGMA_END)
    assert sigma_schedule(0.1, 25) > sigma_schedule(0.2, 25)


def test_ir_records_the_delay_params_and_round_trips() -> None:
    ir = circuitdsl.loads(LEARNED)
    projection = ir.projections[0]
    assert projection.delay == K and projection.learnable_delay is not None
    delays, sigma = ir.parameter(projection.learnable_delay.param), ir.parameter(projection.learnable_delay.sigma)
    assert delays.shape == [3, 2] and delays.trainable and delays.init.args == [1.0, K]
    assert sigma.shape == [] and not sigma.trainable
    assert CircuitIR.from_json(ir.to_json()) == ir


def test_the_diagram_says_the_delay_is_learned() -> None:
    assert f"delay ≤ {K}, learned" in circuitdsl.draw(circuitdsl.loads(LEARNED)).source


@pytest.mark.parametrize(("option", "code", "caret"), [
    ("delay = learnable(max = 0)", "E301", "0"),
    ("delay = learnable(max = 2.5)", "E301", "2.5"),
    ("delay = learnable(maxi = 3)", "E203", "maxi"),
    ("delay = learnable()", "E204", "learnable()"),
    ("delay = learnable(max = 200000)", "E705", "200000"),
])
def test_mistakes_are_reported_at_the_option(option: str, code: str, caret: str) -> None:
    text = LEARNED.replace(f"delay = learnable(max = {K})", option)
    with pytest.raises(circuitdsl.CircuitError) as error:
        circuitdsl.loads(text)
    assert error.value.code == code
    line = text.splitlines()[error.value.span.line - 1]
    span = error.value.span
    assert line[span.column - 1:span.end_column - 1] == caret


def test_a_gap_junction_cannot_learn_a_delay() -> None:
    text = """
circuit Gap {
  population a[n = 2], b[n = 2] : Leaky
  a <-> b : one_to_one, delay = learnable(max = 3)
}"""
    with pytest.raises(circuitdsl.CircuitError) as error:
        circuitdsl.loads(text)
    assert error.value.code == "E301"
