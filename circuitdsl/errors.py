"""User-facing diagnostics: one `CircuitError` carrying every problem found, each with a code and a span.

A user mistake never surfaces as a Python traceback: every stage raises `CircuitError`, whose text shows
file:line:col, the offending source line with a caret under the whole span, what was expected, and a
"did you mean" where a name was misspelled.  Codes are stable and documented in docs/errors.md.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from pydantic import BaseModel, ConfigDict


class Span(BaseModel):
    """Where a construct sits in its source: 1-based line and column, end column exclusive."""

    model_config = ConfigDict(frozen=True)

    file: str
    line: int
    column: int
    end_line: int
    end_column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


# code -> (kind, title).  The kind names the family of mistake; docs/errors.md documents each code.
CODES: Final[dict[str, tuple[str, str]]] = {
    "E001": ("syntax", "unexpected token"),
    "E002": ("syntax", "unclosed bracket"),
    "E003": ("syntax", "unexpected character"),
    "E004": ("syntax", "unexpected end of file"),
    "E005": ("syntax", "statement not allowed here"),
    "E006": ("syntax", "malformed construct"),
    "E101": ("import", "imported file not found"),
    "E102": ("import", "cyclic import"),
    "E103": ("import", "unknown library"),
    "E104": ("import", "unreadable source file"),
    "E201": ("name", "unknown name"),
    "E202": ("name", "duplicate definition"),
    "E203": ("name", "unknown argument"),
    "E204": ("name", "missing argument"),
    "E205": ("name", "unknown port"),
    "E206": ("name", "wrong kind of name"),
    "E207": ("name", "unknown circuit or neuron model"),
    "E301": ("type", "type mismatch"),
    "E302": ("shape", "shape mismatch"),
    "E303": ("shape", "index out of range"),
    "E304": ("shape", "bad axis"),
    "E305": ("shape", "bad connectivity"),
    "E306": ("shape", "output not fully assigned"),
    "E307": ("shape", "input port not connected"),
    "E308": ("shape", "no such axis"),
    "E309": ("shape", "contraction mismatch"),
    "E310": ("shape", "split or merge of the wrong size"),
    "E311": ("shape", "learned map mismatch"),
    "E401": ("unit", "dimension mismatch"),
    "E402": ("unit", "unknown unit"),
    "E501": ("sign", "sign mismatch"),
    "E502": ("sign", "initial value violates the sign"),
    "E503": ("sign", "inconsistent enforcement"),
    "E504": ("sign", "fixed parameter marked trainable"),
    "E505": ("sign", "bad sharing scope"),
    "E601": ("cycle", "circuit instantiates itself"),
    "E701": ("limit", "loop too long"),
    "E702": ("limit", "too many units"),
    "E703": ("limit", "too many synapses"),
    "E704": ("limit", "too many instances or statements"),
    "E705": ("limit", "delay too long"),
    "E706": ("limit", "too many parameters"),
    "E707": ("limit", "operator too large"),
    "E708": ("limit", "value too large"),
    "E709": ("limit", "too many imports"),
    "E710": ("limit", "data file too large"),
    "E711": ("limit", "pattern too large"),
    "E801": ("value", "invalid value"),
    "E802": ("value", "division by zero"),
    "E803": ("value", "not a constant"),
    "E804": ("value", "bad neuron model"),
    "E901": ("data", "unknown dataset"),
    "E902": ("data", "unknown neuron"),
    "E903": ("data", "neuron not in dataset"),
    "E904": ("data", "sign policy incomplete"),
    "E905": ("data", "Dale's law violated"),
    "E906": ("data", "unreadable connectivity file"),
    "E907": ("data", "unreadable data file"),
    "E950": ("interop", "unreadable interchange file"),
    "E951": ("interop", "unsupported node type"),
    "E952": ("interop", "bad graph in file"),
    "E953": ("interop", "lossy conversion refused"),
    "E954": ("interop", "no Java runtime for jNeuroML"),
    "W201": ("name", "unused name"),
    "W501": ("sign", "self-junction dropped"),
}


@dataclass(frozen=True)
class Diagnostic:
    """One problem (or warning) at one place in the source."""

    code: str
    message: str
    span: Span | None
    notes: tuple[str, ...] = ()
    source_line: str | None = None

    @property
    def kind(self) -> str:
        return CODES[self.code][0]

    @property
    def is_warning(self) -> bool:
        return self.code.startswith("W")

    def render(self) -> str:
        """Format as `file:line:col: error[E201]: message`, the source line, a caret, and notes."""
        level = "warning" if self.is_warning else "error"
        where = f"{self.span}: " if self.span else ""
        lines = [f"{where}{level}[{self.code}]: {self.message}"]
        if self.span is not None and self.source_line is not None:
            number = str(self.span.line)
            pad = " " * len(number)
            text = self.source_line.rstrip("\n").expandtabs(1)
            start = max(self.span.column - 1, 0)
            end = self.span.end_column - 1 if self.span.end_line == self.span.line else len(text)
            width = max(end - start, 1)
            lines.append(f" {number} | {text}")
            lines.append(f" {pad} | {' ' * start}{'^' * width}")
            lines.extend(f" {pad} = {note}" for note in self.notes)
        else:
            lines.extend(f"   = {note}" for note in self.notes)
        return "\n".join(lines)


class Problem(Exception):
    """A user mistake found where no span is known (a selection, a rule); the caller re-raises it at one."""

    def __init__(self, code: str, message: str, notes: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.notes = notes


class CircuitError(Exception):
    """Every user mistake, with all the problems found in one run (the first one is `.code`/`.span`)."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics: list[Diagnostic] = [d for d in diagnostics if not d.is_warning]
        if not self.diagnostics:
            raise ValueError("a CircuitError needs at least one error")
        super().__init__(self.render())

    @property
    def code(self) -> str:
        return self.diagnostics[0].code

    @property
    def kind(self) -> str:
        return self.diagnostics[0].kind

    @property
    def span(self) -> Span | None:
        return self.diagnostics[0].span

    @property
    def codes(self) -> list[str]:
        return [d.code for d in self.diagnostics]

    def render(self) -> str:
        return "\n\n".join(d.render() for d in self.diagnostics)


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """The closest candidate to a misspelled name, as a note, or None."""
    pool = sorted(set(candidates))
    matches = difflib.get_close_matches(name, pool, n=1, cutoff=0.6)
    if not matches:
        lowered = {c.lower(): c for c in pool}
        if name.lower() in lowered:
            matches = [lowered[name.lower()]]
    return f"did you mean '{matches[0]}'?" if matches else None


@functools.lru_cache(maxsize=16)
def _lines(text: str) -> list[str]:
    """A source's lines as the parser counts them (at newlines only, unlike str.splitlines), split once per
    file: a loop failing 100000 times must not split a long file 100000 times."""
    return text.split("\n")


# Errors collected before elaboration stops: `for i in 0 .. 100000 { P[i] -> Q }` with a bad index
# would otherwise report (and compare for duplicates) 100000 of them.
MAX_ERRORS: Final = 100


@dataclass
class Reporter:
    """Collects diagnostics so independent errors are all reported in one run (miniwdl's approach)."""

    sources: dict[str, str] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def make(self, code: str, message: str, span: Span | None, notes: Iterable[str | None] = ()) -> Diagnostic:
        if code not in CODES:
            raise KeyError(f"undocumented diagnostic code {code}")
        line = None
        if span is not None and span.file in self.sources:
            text = _lines(self.sources[span.file])
            if 0 < span.line <= len(text):
                line = text[span.line - 1].rstrip("\r")
        return Diagnostic(code, message, span, tuple(n for n in notes if n), line)

    def error(self, code: str, message: str, span: Span | None, notes: Iterable[str | None] = ()) -> None:
        """Record a problem once (a template instantiated many times fails the same way each time)."""
        diagnostic = self.make(code, message, span, notes)
        if diagnostic not in self.diagnostics:
            self.diagnostics.append(diagnostic)
            if not diagnostic.is_warning and len(self.errors) >= MAX_ERRORS:  # a loop failing on every pass
                raise CircuitError(self.errors)
        if CODES[code][0] == "limit":  # going on would only pass the limit again (a loop of 10^5 projections)
            raise CircuitError(self.errors)

    def warn(self, code: str, message: str, span: Span | None, notes: Iterable[str | None] = ()) -> None:
        """Record a warning once per place (a template instantiated many times warns once)."""
        if not any(d.code == code and d.span == span for d in self.diagnostics):
            self.error(code, message, span, notes)

    def fail(self, code: str, message: str, span: Span | None, notes: Iterable[str | None] = ()) -> CircuitError:
        """An error that stops the current construct: recorded, and returned as an exception to raise."""
        self.error(code, message, span, notes)
        return CircuitError(self.errors)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if not d.is_warning]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_warning]

    def raise_if_errors(self) -> None:
        if self.errors:
            raise CircuitError(self.errors)
