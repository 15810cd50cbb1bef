"""Step semantics and integrators, against closed forms: the dx/dt of a neuron move together from one state, and
euler, exponential_euler and rk4 give their textbook one-step maps; the errors where a method does not apply."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import circuitdsl
from circuitdsl.errors import CircuitError

ROTATION = """
neuron Rotor(method: solver = euler, dt: time = 0.1 ms) {
  state x = 1
  state y = 0
  dx/dt = -y / (1 ms)
  dy/dt = x / (1 ms)
  out = x
}
circuit C {
  output x
  population r : Rotor(method = METHOD)
  x = r
}
"""

RELAX = """
neuron Relax(method: solver = euler, dt: time = 0.5 ms) {
  input I: current
  state v = -70 mV
  dv/dt = (-70 mV - v + 100 Mohm * I) / (10 ms)
  out = v / (1 mV)
}
circuit C {
  input drive: current
  output v
  population p : Relax(method = METHOD)
  drive -> p.I : weight = fixed(1)
  v = p
}
"""


def _rollout(source: str, method: str, steps: int, inputs: dict[str, float] | None = None,
             record: list[str] | None = None) -> dict[str, np.ndarray]:
    module = circuitdsl.compile(circuitdsl.loads(source.replace("METHOD", method)), dtype="float64")
    given = {k: torch.full((1, steps), v, dtype=torch.float64) for k, v in (inputs or {}).items()}
    outputs, _ = module.rollout(given or None, steps=steps, record=record or [])
    return {k: v.detach().numpy()[0] for k, v in outputs.items()}


def test_coupled_derivatives_move_together_from_the_old_state() -> None:
    """x' = -y, y' = x by forward Euler from one state: each step multiplies the radius by sqrt(1 + h²); reading
    the new x for y' (the old, sequential order) would keep it near 1 instead."""
    h, steps = 0.1, 50
    traces = _rollout(ROTATION, "euler", steps, record=["r.x", "r.y"])
    radius = np.hypot(traces["r.x"], traces["r.y"])
    np.testing.assert_allclose(radius, (1 + h * h) ** (np.arange(1, steps + 1) / 2), rtol=1e-12)


def test_rk4_is_the_fourth_order_taylor_map_on_a_rotation() -> None:
    """On a linear system RK4's step is the Taylor series of exp(h A) to h⁴: the radius grows by |1 - h²/2 + h⁴/24
    + i (h - h³/6)| per step."""
    h, steps = 0.1, 50
    traces = _rollout(ROTATION, "rk4", steps, record=["r.x", "r.y"])
    factor = abs(complex(1 - h * h / 2 + h ** 4 / 24, h - h ** 3 / 6))
    np.testing.assert_allclose(np.hypot(traces["r.x"], traces["r.y"]), factor ** np.arange(1, steps + 1),
                               rtol=1e-12)
    angle = np.unwrap(np.arctan2(traces["r.y"], traces["r.x"]))
    np.testing.assert_allclose(angle, np.arange(1, steps + 1) * np.angle(complex(1 - h * h / 2 + h ** 4 / 24,
                                                                                  h - h ** 3 / 6)), rtol=1e-12)


@pytest.mark.parametrize(("method", "decay"), [
    ("euler", lambda h: 1 - h),
    ("exponential_euler", lambda h: np.exp(-h)),
    ("rk4", lambda h: 1 - h + h ** 2 / 2 - h ** 3 / 6 + h ** 4 / 24),
])
def test_each_method_gives_its_one_step_map_on_a_leaky_membrane(method: str, decay: object) -> None:
    """v' = (E - v + R I) / tau with a constant drive: v_n = v_inf + (v_0 - v_inf) g(h)^n, where g is the
    method's growth factor for h = dt / tau (exponential Euler: exact)."""
    steps, h = 40, 0.05
    v = _rollout(RELAX, method, steps, {"drive": 0.2})["v"]  # 0.2 nA x 100 MΩ = 20 mV above rest
    expected = -50.0 + (-70.0 + 50.0) * decay(h) ** np.arange(1, steps + 1)  # type: ignore[operator]
    np.testing.assert_allclose(v, expected, rtol=1e-12)


def test_exponential_euler_reads_a_conditionally_linear_derivative() -> None:
    """dv/dt linear in v with a coefficient that reads another state (a conductance): A and B are evaluated at the
    old state, as Brian2 does; here the conductance is constant, so the result is exact."""
    source = """
neuron Shunt(method: solver = exponential_euler, dt: time = 1 ms) {
  state v = 0 mV
  state g = 2 nS
  dv/dt = g * (10 mV - v) / (100 pF)
  dg/dt = 0 nS / (1 ms)
  out = v / (1 mV)
}
circuit C {
  output v
  population p : Shunt
  v = p
}
"""
    v = _rollout(source, "", 30)["v"]
    np.testing.assert_allclose(v, 10 * (1 - np.exp(-0.02 * np.arange(1, 31))), rtol=1e-12)


@pytest.mark.parametrize(("body", "code", "words"), [
    ("state v = 0 mV\n  dv/dt = (v * v / (1 mV) - v) / (1 ms)\n  out = v / (1 mV)", "E804",
     ["exponential_euler needs dv/dt linear in v", "rk4"]),
    ("state v = 0 mV\n  dv/dt = (exp(v / (1 mV)) * 1 mV - v) / (1 ms)\n  out = v / (1 mV)", "E804",
     ["linear in v"]),
    ("state v = 0 mV\n  state u = 0 mV\n  dv/dt = -u / (1 ms)\n  u = v\n  du/dt = v / (1 ms)\n  out = u / (1 mV)",
     "E804", ["'u' is updated between the dx/dt equations"]),
    ("state v = 0 mV\n  dv/dt = -v / (1 ms)\n  dv/dt = v / (1 ms)\n  out = v / (1 mV)", "E202",
     ["dv/dt is written twice"]),
])
def test_where_a_method_or_an_order_does_not_apply_the_error_says_why(body: str, code: str,
                                                                      words: list[str]) -> None:
    source = (f"neuron N(method: solver = exponential_euler, dt: time = 1 ms) {{\n  {body}\n}}\n"
              "circuit C {\n  population p : N\n}\n")
    with pytest.raises(CircuitError) as error:
        circuitdsl.loads(source)
    assert error.value.code == code, str(error.value)
    for word in words:
        assert word in str(error.value)


def test_an_unknown_method_names_the_methods() -> None:
    with pytest.raises(CircuitError) as error:
        circuitdsl.loads(ROTATION.replace("METHOD", "rk45"))
    assert error.value.code == "E201"
    assert "did you mean 'rk4'?" in str(error.value) and "euler, exponential_euler, rk4" in str(error.value)
