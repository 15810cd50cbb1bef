"""Resource limits, checked before anything is allocated, so a typo like `for i in 0 .. 10**9` fails fast.

Every limit has a documented default (docs/limits.md) and one error code; the message names the limit and
its value (`over the limit units = 50000000`), never what is left of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Final

# the largest magnitude a backend's default float32 tensors hold: a constant beyond it would be inf at run time
FLOAT32_MAX: Final = 3.4028234663852886e38


def fits_float32(value: float) -> bool:
    """Whether a number reaches a backend intact: finite and within float32's range."""
    return math.isfinite(value) and abs(value) <= FLOAT32_MAX


@dataclass(frozen=True)
class Limits:
    """Upper bounds for one elaboration; raise them with `circuitdsl.load(..., limits=Limits(...))` or
    `--limit name=N`."""

    loop_iterations: int = 100_000  # iterations of one `for`
    statements: int = 200_000  # statements executed in all, loops and instances included (about 1 s of work)
    units: int = 50_000_000  # units in all populations together
    synapses: int = 100_000_000  # synapses in all projections together (16 bytes each as index lists)
    projections: int = 5_000  # projections in all (each becomes its own operation in a backend)
    parameters: int = 50_000_000  # scalars of all parameters together (200 MB in float32)
    private_weights: int = 1_000_000  # scalars of one neuron-private param, per unit
    instances: int = 2_000  # circuit instances
    depth: int = 64  # nesting of circuit instances
    delay: int = 100_000  # steps of one projection's delay (a backend keeps delay x units of history)
    grid_points: int = 1_048_576  # points of one grid axis
    modes: int = 4_096  # Fourier modes a spectral operator keeps on one axis
    smoothing: int = 64  # levels, and smoothing steps per level, of a multigrid operator
    string_length: int = 1_000_000  # characters of one string value
    expression_size: int = 100_000  # nodes of one expression, shared subexpressions counted once
    imports: int = 1_000  # files one elaboration reads
    import_depth: int = 1_000  # length of the longest chain of imports
    data_rows: int = 10_000_000  # rows (edges) of one connectivity file
    pattern_length: int = 1_000  # characters of one `^pattern$` selection
    trace_values: int = 500_000_000  # values one simulation records: steps x recorded units (2 GB in float32)

    @classmethod
    def parse(cls, items: list[str]) -> Limits:
        """From CLI `--limit name=value` strings; a value is a whole number >= 1."""
        known = {f.name for f in fields(cls)}
        values: dict[str, int] = {}
        for item in items:
            name, _, raw = item.partition("=")
            name, raw = name.strip(), raw.strip().replace("_", "")
            if name not in known or not raw.isascii() or not raw.isdigit() or len(raw) > 18 or int(raw) < 1:
                raise ValueError(f"bad limit {item!r}: expected NAME=N, N a whole number >= 1 "
                                 f"(at most 18 digits), NAME one of {', '.join(sorted(known))}")
            values[name] = int(raw)
        return cls(**values)

    def over(self, name: str) -> str:
        """`over the limit units = 50000000`: the words every E7xx message ends with."""
        return f"over the limit {name} = {getattr(self, name)}"

    def hint(self, name: str) -> str:
        """The note of every E7xx: how to raise the limit when the size is really meant."""
        return f"if that is really meant, raise it: --limit {name}=N, or Limits({name}=N) from Python"


# the error code of each limit (docs/limits.md lists them with their defaults)
CODE_OF: Final[dict[str, str]] = {
    "loop_iterations": "E701", "units": "E702", "synapses": "E703", "projections": "E703", "statements": "E704",
    "instances": "E704", "depth": "E704", "delay": "E705", "parameters": "E706", "private_weights": "E706",
    "grid_points": "E707", "modes": "E707", "smoothing": "E707", "string_length": "E708", "expression_size": "E708",
    "imports": "E709", "import_depth": "E709", "data_rows": "E710", "pattern_length": "E711",
    "trace_values": "E712",
}
