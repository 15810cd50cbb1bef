"""Physical units: dimensions, the unit table, and the canonical magnitudes the IR stores.

Quantities are stored in one consistent set of base units — ms, mV, nA, µm, mM — so that derived units
need no conversion factors: µS·mV = nA, nF·mV/ms = nA, MΩ·nA = mV, kHz = 1/ms.  A dimension is a
vector of integer exponents over (time, voltage, current, length, concentration).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

Dim = tuple[int, int, int, int, int]
DIMENSIONLESS: Final[Dim] = (0, 0, 0, 0, 0)
_T, _V, _I, _L, _C = ((1, 0, 0, 0, 0), (0, 1, 0, 0, 0), (0, 0, 1, 0, 0), (0, 0, 0, 1, 0), (0, 0, 0, 0, 1))


def mul(a: Dim, b: Dim) -> Dim:
    return tuple(x + y for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def div(a: Dim, b: Dim) -> Dim:
    return tuple(x - y for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def power(a: Dim, n: int) -> Dim:
    return tuple(x * n for x in a)  # type: ignore[return-value]


# Dimension names usable as types of arguments and ports: `tau: time`, `input I: current`.
DIMENSIONS: Final[dict[str, Dim]] = {
    "dimensionless": DIMENSIONLESS,
    "time": _T,
    "voltage": _V,
    "current": _I,
    "length": _L,
    "concentration": _C,
    "frequency": div(DIMENSIONLESS, _T),
    "conductance": div(_I, _V),
    "capacitance": div(mul(_I, _T), _V),
    "resistance": div(_V, _I),
    "charge": mul(_I, _T),
}

# base symbol -> (dimension, power of ten from one of that unit to the canonical base units)
_BASE_UNITS: Final[dict[str, tuple[Dim, int]]] = {
    "s": (_T, 3),
    "V": (_V, 3),
    "A": (_I, 9),
    "S": (DIMENSIONS["conductance"], 6),
    "F": (DIMENSIONS["capacitance"], 9),
    "ohm": (DIMENSIONS["resistance"], -6),
    "Hz": (DIMENSIONS["frequency"], -3),
    "m": (_L, 6),
    "M": (_C, 3),
    "C": (DIMENSIONS["charge"], 12),
}
_PREFIXES: Final[dict[str, int]] = {"p": -12, "n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9}


def _unit_table() -> dict[str, tuple[float, Dim]]:
    table: dict[str, tuple[float, Dim]] = {}
    for symbol, (dim, exponent) in _BASE_UNITS.items():
        for prefix, shift in _PREFIXES.items():
            table.setdefault(prefix + symbol, (10.0 ** (exponent + shift), dim))
    return table


UNITS: Final[dict[str, tuple[float, Dim]]] = _unit_table()


@dataclass(frozen=True)
class Quantity:
    """A number with a dimension, its magnitude in canonical units (ms, mV, nA, µm, mM)."""

    value: float
    dim: Dim


def format_dim(dim: Dim) -> str:
    """A readable name for a dimension: a named one if there is one, else a product of base powers."""
    for name, d in DIMENSIONS.items():
        if d == dim:
            return name
    parts = []
    for base, exponent in zip(("time", "voltage", "current", "length", "concentration"), dim, strict=True):
        if exponent:
            parts.append(base if exponent == 1 else f"{base}^{exponent}")
    return "·".join(parts)
