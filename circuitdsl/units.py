"""Physical units: dimensions, the unit table, and the canonical magnitudes the IR stores.

Quantities are stored in one consistent set of base units — ms, mV, nA, µm, amol and K — so that derived
units need no conversion factors: µS·mV = nA, nF·mV/ms = nA, MΩ·nA = mV, kHz = 1/ms, and amol/µm³ = mM.
A dimension is a vector of integer exponents over (time, voltage, current, length, amount, temperature);
voltage stands in for mass (kg = V·A·s³/m²), which keeps the names a modeller reads short.

The table is written out here rather than loaded from a units library at compile time: checking needs only
dimensions and powers of ten, in these canonical units, and a closed list keeps a misspelt unit an error with a
did-you-mean instead of one of a library's thousands of names.  tests/test_simulation_units.py checks every
entry against pint's definitions.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Final

Dim = tuple[int, int, int, int, int, int]
BASES: Final[tuple[str, ...]] = ("time", "voltage", "current", "length", "amount", "temperature")
DIMENSIONLESS: Final[Dim] = (0, 0, 0, 0, 0, 0)


def _base(name: str) -> Dim:
    return tuple(int(base == name) for base in BASES)  # type: ignore[return-value]


_T, _V, _I, _L, _N, _K = (_base(name) for name in BASES)


def mul(a: Dim, b: Dim) -> Dim:
    return tuple(x + y for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def div(a: Dim, b: Dim) -> Dim:
    return tuple(x - y for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def power(a: Dim, n: int) -> Dim:
    return tuple(x * n for x in a)  # type: ignore[return-value]


# Dimension names usable as types of arguments and ports (`tau: time`, `input I: current`), alone or combined
# with * / and whole powers (`input I: voltage / time`, `g_Na: conductance / area`).
DIMENSIONS: Final[dict[str, Dim]] = {
    "dimensionless": DIMENSIONLESS,
    "time": _T,
    "voltage": _V,
    "current": _I,
    "length": _L,
    "area": power(_L, 2),
    "volume": power(_L, 3),
    "amount": _N,
    "concentration": div(_N, power(_L, 3)),
    "temperature": _K,
    "frequency": div(DIMENSIONLESS, _T),
    "conductance": div(_I, _V),
    "capacitance": div(mul(_I, _T), _V),
    "resistance": div(_V, _I),
    "charge": mul(_I, _T),
    "power": mul(_V, _I),
    "energy": mul(mul(_V, _I), _T),
}

# symbol -> (dimension, power of ten from one of that unit to the canonical units); these take prefixes
_SI_UNITS: Final[dict[str, tuple[Dim, int]]] = {
    "s": (DIMENSIONS["time"], 3),
    "Hz": (DIMENSIONS["frequency"], -3),
    "V": (DIMENSIONS["voltage"], 3),
    "A": (DIMENSIONS["current"], 9),
    "S": (DIMENSIONS["conductance"], 6),
    "F": (DIMENSIONS["capacitance"], 9),
    "ohm": (DIMENSIONS["resistance"], -6),
    "C": (DIMENSIONS["charge"], 12),
    "W": (DIMENSIONS["power"], 12),
    "J": (DIMENSIONS["energy"], 15),
    "m": (DIMENSIONS["length"], 6),
    "L": (DIMENSIONS["volume"], 15),
    "mol": (DIMENSIONS["amount"], 18),
    "M": (DIMENSIONS["concentration"], 3),
    "K": (DIMENSIONS["temperature"], 0),
}
# units without prefixes: (dimension, magnitude in canonical units)
_OTHER_UNITS: Final[dict[str, tuple[Dim, float]]] = {
    "min": (DIMENSIONS["time"], 6e4),
    "h": (DIMENSIONS["time"], 3.6e6),
}
PREFIXES: Final[dict[str, int]] = {
    "f": -15, "p": -12, "n": -9, "u": -6, "µ": -6, "μ": -6, "m": -3, "c": -2, "d": -1, "": 0, "k": 3, "M": 6, "G": 9,
}
_SPELLINGS: Final[dict[str, str]] = {"\u03a9": "ohm", "\u2126": "ohm"}  # Greek capital omega, the ohm sign


def _unit_table() -> dict[str, tuple[float, Dim]]:
    table: dict[str, tuple[float, Dim]] = {name: (scale, dim) for name, (dim, scale) in _OTHER_UNITS.items()}
    symbols = {**{s: s for s in _SI_UNITS}, **_SPELLINGS}
    for prefix, shift in PREFIXES.items():
        for written, symbol in symbols.items():
            dim, exponent = _SI_UNITS[symbol]
            table.setdefault(prefix + written, (10.0 ** (exponent + shift), dim))
    return table


UNITS: Final[dict[str, tuple[float, Dim]]] = _unit_table()
UNIT_SUMMARY: Final[str] = ("units: s, min, h, Hz, V, A, S, F, ohm (Ω), C, W, J, m, L, mol, M, K; prefixes "
                            "f p n u (µ) m c d k M G, e.g. ms, mV, nA, pF, nS, Mohm, um, cm, mM, kHz")


@dataclass(frozen=True)
class Quantity:
    """A number with a dimension, its magnitude in canonical units (ms, mV, nA, µm, amol, K)."""

    value: float
    dim: Dim


@functools.cache
def format_dim(dim: Dim) -> str:
    """A readable name for a dimension: a named one, a ratio of two named ones (`voltage / time`,
    `conductance / area`), else a product of base powers (kept per dimension: each projection and param of a
    large circuit asks again)."""
    names = {d: name for name, d in reversed(DIMENSIONS.items())}
    if dim in names:
        return names[dim]
    for top, d in DIMENSIONS.items():
        for bottom, e in DIMENSIONS.items():
            if DIMENSIONLESS not in (d, e) and div(d, e) == dim:
                return f"{top} / {bottom}"
    parts = [base if exponent == 1 else f"{base}^{exponent}" for base, exponent in zip(BASES, dim, strict=True)
             if exponent]
    return "·".join(parts)


# the unit a canonical magnitude of each named dimension is in (what plots and traces print)
CANONICAL_UNITS: Final[dict[str, str]] = {
    "time": "ms", "voltage": "mV", "current": "nA", "length": "µm", "area": "µm²", "volume": "µm³",
    "amount": "amol", "concentration": "mM", "temperature": "K", "frequency": "kHz", "conductance": "µS",
    "capacitance": "nF", "resistance": "MΩ", "charge": "pC", "power": "pW", "energy": "fJ",
}


def canonical_unit(dim: str) -> str:
    """The unit of a canonical magnitude of a dimension written by format_dim: `mV` for voltage, `mV/ms` for
    voltage / time; the dimension's own name where it has none."""
    parts = dim.split(" / ")
    if all(part in CANONICAL_UNITS for part in parts):
        return "/".join(CANONICAL_UNITS[part] for part in parts)
    return dim
