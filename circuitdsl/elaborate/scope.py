"""Lexical scopes: names bound to values, with the span that declared them and whether they were used."""

from __future__ import annotations

from dataclasses import dataclass, field

from circuitdsl.errors import Reporter, Span


@dataclass
class Binding:
    value: object
    span: Span | None
    kind: str  # argument, let, population, param, input, output, instance, definition, builtin, loop, state
    used: bool = False


@dataclass
class Scope:
    parent: Scope | None = None
    names: dict[str, Binding] = field(default_factory=dict)

    def lookup(self, name: str) -> Binding | None:
        scope: Scope | None = self
        while scope is not None:
            if name in scope.names:
                return scope.names[name]
            scope = scope.parent
        return None

    def define(self, name: str, value: object, span: Span | None, kind: str, reporter: Reporter) -> bool:
        """Bind a name; a second binding in the same scope is an error (E202) and keeps the first."""
        previous = self.names.get(name)
        if previous is not None:
            if previous.span is not None and previous.span == span:  # the same declaration run twice: a loop body
                reporter.error("E202", f"'{name}' is declared again on every pass of a loop", span,
                               [f"give each pass its own name (`{name}[i] = ...` for instances), or declare it once"])
                return False
            where = f" (first defined at {previous.span})" if previous.span else ""
            reporter.error("E202", f"'{name}' is already defined{where}", span)
            return False
        self.names[name] = Binding(value, span, kind)
        return True

    def visible_names(self) -> set[str]:
        names: set[str] = set()
        scope: Scope | None = self
        while scope is not None:
            names |= scope.names.keys()
            scope = scope.parent
        return names
