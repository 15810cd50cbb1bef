"""Resource limits, checked before anything is allocated, so a typo like `for i in 0 .. 10**9` fails fast."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Limits:
    """Upper bounds for one elaboration; raise them with `circuitdsl.load(..., limits=Limits(...))`."""

    loop_iterations: int = 100_000  # iterations of one `for`
    statements: int = 2_000_000  # statements executed in all, loops and instances included
    units: int = 50_000_000  # units in all populations together
    synapses: int = 500_000_000  # synapses in all projections together
    instances: int = 100_000  # circuit instances
    depth: int = 64  # nesting of circuit instances
    delay: int = 100_000  # steps of one projection's delay (a backend keeps delay x units of history)

    @classmethod
    def parse(cls, items: list[str]) -> Limits:
        """From CLI `--limit name=value` strings."""
        known = {f.name for f in fields(cls)}
        values: dict[str, int] = {}
        for item in items:
            name, _, raw = item.partition("=")
            if name not in known or not raw.strip().isdigit():
                raise ValueError(f"bad limit {item!r}: expected one of {', '.join(sorted(known))} = a whole number")
            values[name] = int(raw)
        return cls(**values)
