"""Units: every entry of the unit table against pint's definitions, compound dimensions and literals, and the
errors a modeller meets when a dimension or unit is wrong."""

from __future__ import annotations

import warnings

import pytest

import circuitdsl
from circuitdsl import units
from circuitdsl.errors import CircuitError

CANONICAL = dict(zip(units.BASES, ["ms", "mV", "nA", "um", "amol", "K"], strict=True))


def test_every_unit_has_pints_magnitude_in_the_canonical_units() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pint
        registry = pint.UnitRegistry()
    assert {"cm", "um", "µm", "F", "S", "ohm", "Ω", "mol", "M", "mM", "K", "min", "h", "uF", "fF", "Mohm"} <= set(
        units.UNITS)
    for name, (scale, dim) in units.UNITS.items():
        target = " * ".join(f"{CANONICAL[b]} ** {e}" for b, e in zip(units.BASES, dim, strict=True) if e)
        magnitude = registry.Quantity(1, registry.parse_units(name)).to(target or "dimensionless").magnitude
        assert magnitude == pytest.approx(scale, rel=1e-12), name


def _neuron_args(text: str) -> dict[str, object]:
    ir = circuitdsl.loads(text)
    (model,) = ir.neurons.values()
    return dict(model.args)


def test_compound_dimensions_and_literals_elaborate_to_canonical_magnitudes() -> None:
    args = _neuron_args("""
neuron Patch(g: conductance / area = 120 mS/cm**2, C: capacitance / area = 1 uF/cm**2,
             drive: voltage / time = 10 mV/ms, rate: frequency = 0.1/ms, r: resistance = 2 MΩ, x: length = 3 µm,
             conc: concentration = 2 mM, T: temperature = 279.45 K, tau: time = 2 min, dt: time = 0.01 ms) {
  input I: current / area
  state v = -65 mV
  dv/dt = (g * (-54 mV - v) + I) / C + drive * 0 + v * rate * 0
  out = v
}
circuit C {
  input i: current / area
  population p : Patch
  i -> p.I : weight = fixed(1)
}
""")
    assert args["g"] == pytest.approx(1.2e-3)  # µS/µm²
    assert args["C"] == pytest.approx(1e-5)  # nF/µm²
    assert args["drive"] == pytest.approx(10.0) and args["rate"] == pytest.approx(0.1)
    assert args["r"] == pytest.approx(2.0) and args["x"] == pytest.approx(3.0)
    assert args["conc"] == pytest.approx(2.0) and args["T"] == pytest.approx(279.45)
    assert args["tau"] == pytest.approx(1.2e5)


def test_a_state_named_like_a_unit_stays_the_state() -> None:
    ir = circuitdsl.loads("""
neuron Gate(dt: time = 0.01 ms) {
  state m = 0.5
  state h = 0.25
  let I = 2 mS/cm**2 * m**3 * h * (10 mV)
  out = I / (1 nA/um**2)
}
circuit C {
  population p : Gate
}
""")
    (model,) = ir.neurons.values()
    let = next(e for e in model.equations if e.target == "I")
    assert '"name":"m"' in let.model_dump_json() and '"name":"h"' in let.model_dump_json()


@pytest.mark.parametrize(("text", "code", "words"), [
    ("neuron N(g: conductance / area = 1 uF/cm**2) {\n  out = in\n}\ncircuit C {\n  population p : N\n}\n",
     "E401", ["conductance / area", "capacitance / area"]),
    ("circuit C {\n  input x: voltage / time\n  output y: voltage\n  y = x\n}\n",
     "E401", ["voltage", "voltage / time"]),
    ("neuron N(dt: time = 1 ms) {\n  state v = 0 mV\n  dv/dt = -v / ms\n  out = v / (1 mV)\n}\n"
     "circuit C {\n  population p : N\n}\n", "E201", ["'ms' is a unit", "1 ms"]),
    ("circuit C {\n  input x: voltage / tme\n}\n", "E201", ["did you mean 'time'"]),
    ("circuit C {\n  input x: voltage % time\n}\n", "E006", ["* and /"]),
    ("circuit C {\n  let a = 1 uF/cmm**2\n}\n", "E402", ["unknown unit 'cmm'", "did you mean 'mm'"]),
])
def test_dimension_and_unit_mistakes_name_what_is_wrong(text: str, code: str, words: list[str]) -> None:
    with pytest.raises(CircuitError) as error:
        circuitdsl.loads(text)
    message = str(error.value)
    assert error.value.code == code, message
    for word in words:
        assert word in message
