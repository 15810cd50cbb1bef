"""The fidelity report every conversion produces: per node or projection, `exact`, `approximate` (why, and the
largest error measured by running both sides on the same inputs) or `unsupported` (why).

A converter builds a `FidelityReport`, fills in the measured errors, prints it, writes it beside its output and
calls `refuse_lossy`: an export with anything unsupported fails with the report unless the user allowed a lossy
conversion.  What is exact is decided by construction; whether it *is* is measured, and a measured difference on
an `exact` entry turns it into `approximate`, so a report never claims more than was seen.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from circuitdsl.errors import CircuitError, Diagnostic

Status = Literal["exact", "approximate", "unsupported"]

# An `exact` entry whose measured error exceeds this (in float32 arithmetic on both sides) is reported approximate.
EXACT_TOLERANCE = 1e-5


@dataclass
class Entry:
    """One node or projection of a conversion."""

    kind: str  # "population", "projection", "input", "output", "node"...
    name: str
    target: str  # what it became on the other side ("LIF", "Affine + Delay", "<lems:Component>")
    status: Status
    why: str = ""
    max_error: float | None = None  # measured: max |ours - theirs| over the comparison run

    def render(self) -> str:
        text = f"  {self.kind:<10} {self.name:<28} -> {self.target:<22} {self.status}"
        details = [self.why] if self.why else []
        if self.max_error is not None:
            details.append(f"max error {self.max_error:.3g}")
        return text + (f" ({'; '.join(details)})" if details else "")


@dataclass
class FidelityReport:
    """Every entry of one conversion, and how the comparison that measured them ran."""

    conversion: str  # "circuit -> NIR", "NIR -> circuit", "circuit -> NeuroML2", "circuit -> ONNX"
    source: str
    destination: str
    entries: list[Entry] = field(default_factory=list)
    comparison: str = "not run"  # e.g. "100 steps, batch 4, uniform(0, 1) inputs, float32"
    notes: list[str] = field(default_factory=list)

    def add(self, kind: str, name: str, target: str, status: Status, why: str = "") -> Entry:
        entry = Entry(kind, name, target, status, why)
        self.entries.append(entry)
        return entry

    def measured(self, entry: Entry, error: float, tolerance: float = EXACT_TOLERANCE) -> None:
        """Record the error measured for an entry; an `exact` claim that the measurement contradicts is downgraded."""
        entry.max_error = float(error)
        if entry.status == "exact" and error > tolerance:
            entry.status = "approximate"
            entry.why = "; ".join(w for w in (entry.why, f"expected exact, measured above {tolerance:g}") if w)

    @property
    def unsupported(self) -> list[Entry]:
        return [e for e in self.entries if e.status == "unsupported"]

    @property
    def lossy(self) -> bool:
        return any(e.status != "exact" for e in self.entries)

    def render(self) -> str:
        counts = {s: sum(e.status == s for e in self.entries) for s in ("exact", "approximate", "unsupported")}
        tally = f"{counts['exact']} exact, {counts['approximate']} approximate, {counts['unsupported']} unsupported"
        lines = [f"fidelity report: {self.conversion}: {self.source} -> {self.destination}",
                 f"  {tally}; measured: {self.comparison}"]
        lines.extend(e.render() for e in self.entries)
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps({"conversion": self.conversion, "source": self.source, "destination": self.destination,
                           "comparison": self.comparison, "notes": self.notes,
                           "entries": [e.__dict__ for e in self.entries]}, indent=2)

    def write_beside(self, output: str | Path) -> Path:
        """Write the report as `<output>.fidelity.txt` (and the same as JSON) next to the converted file."""
        path = Path(f"{output}.fidelity.txt")
        path.write_text(self.render() + "\n")
        Path(f"{output}.fidelity.json").write_text(self.to_json() + "\n")
        return path

    def refuse_lossy(self, allow_lossy: bool) -> None:
        """Fail with the report when something could not be converted and the user did not allow a lossy result."""
        if self.unsupported and not allow_lossy:
            raise CircuitError([Diagnostic(
                "E953", f"{self.conversion}: {len(self.unsupported)} of {len(self.entries)} parts of {self.source} "
                        "cannot be converted", None,
                (*(f"{e.kind} '{e.name}': {e.why}" for e in self.unsupported),
                 ("pass --allow-lossy (allow_lossy=True) to convert the rest anyway; the full report:\n"
                  + self.render())))])
