"""The public entry points: parse a file, elaborate a circuit into IR, check every circuit of a file."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from circuitdsl import ast
from circuitdsl.elaborate.circuits import CircuitBuilder
from circuitdsl.elaborate.evaluate import Abort, Evaluator
from circuitdsl.elaborate.modules import Loader, ModuleScope
from circuitdsl.elaborate.sandbox import Sandbox
from circuitdsl.elaborate.scope import Scope
from circuitdsl.elaborate.values import Definition
from circuitdsl.errors import CircuitError, Diagnostic, Reporter, Span, did_you_mean
from circuitdsl.ir.model import CircuitIR
from circuitdsl.limits import Limits
from circuitdsl.parser import parse as _parse

ArgValue = bool | int | float | str


@dataclass(frozen=True)
class Elaborated:
    """A circuit's IR and the warnings (unused names, dropped self-junctions) found on the way."""

    ir: CircuitIR
    warnings: list[Diagnostic]


def parse(text: str, file: str = "<string>") -> ast.Module:
    """Parse .circuit text into its AST (no names resolved yet); raises CircuitError on a syntax error."""
    return _parse(text, file)


def load(path: str | Path, circuit: str | None = None, limits: Limits | None = None,
         sandbox: Sandbox | None = None, **args: ArgValue) -> CircuitIR:
    """Elaborate a circuit of a file (the last one defined, unless `circuit` names one) with its arguments.

    Arguments are Python values, or strings in the language's own syntax for quantities and enums
    (`tau="20 ms"`, `signs="none"`).  Files it names are read inside `sandbox` (by default the file's folder;
    `Sandbox.around(path, include=[...])` adds search roots).
    """
    return elaborate(path, circuit, args, limits, sandbox=sandbox).ir


def loads(text: str, circuit: str | None = None, limits: Limits | None = None, file: str = "<string>",
          sandbox: Sandbox | None = None, **args: ArgValue) -> CircuitIR:
    """Like `load`, from text (imports are then relative to the folder of `file`, the working directory for a
    bare name)."""
    return elaborate(None, circuit, args, limits, text=text, file=file, sandbox=sandbox).ir


def elaborate(path: str | Path | None, circuit: str | None = None, args: Mapping[str, ArgValue] | None = None,
              limits: Limits | None = None, text: str | None = None, file: str | None = None,
              sandbox: Sandbox | None = None) -> Elaborated:
    reporter, limits = Reporter(), limits or Limits()
    sandbox = sandbox or Sandbox.around(path if text is None else file)
    loader = Loader(reporter, Scope(), limits, sandbox)
    module = _load_module(loader, reporter, path, text, file)
    definition = _pick_circuit(module, circuit, reporter)
    given = _command_line_args(definition, args or {}, reporter)
    ir = CircuitBuilder(reporter, limits, sandbox).build(definition, given, definition.node.name.span)
    return Elaborated(ir, reporter.warnings)


def check(path: str | Path, limits: Limits | None = None, sandbox: Sandbox | None = None) -> list[Elaborated]:
    """Elaborate every circuit of a file that can stand alone (all its arguments have defaults)."""
    reporter = Reporter()
    module = _load_module(Loader(reporter, Scope(), limits, sandbox or Sandbox.around(path)), reporter, path,
                          None, None)
    results = []
    circuits = [d for d in module.definitions if d.kind == "circuit"]
    if not circuits:
        raise reporter.fail("E207", "this file defines no circuit", None, [str(path)])
    for definition in circuits:
        if all(p.default is not None for p in definition.node.params):
            results.append(elaborate(path, definition.name, None, limits, sandbox=sandbox))
    return results


def _load_module(loader: Loader, reporter: Reporter, path: str | Path | None, text: str | None,
                 file: str | None) -> ModuleScope:
    try:
        if text is not None:
            module = loader.load_text(text, file or "<string>")
        else:
            module = loader.load_file(str(path), None)
    except CircuitError:
        reporter.raise_if_errors()
        raise
    reporter.raise_if_errors()
    return module


def _pick_circuit(module: ModuleScope, name: str | None, reporter: Reporter) -> Definition:
    circuits = [d for d in module.definitions if d.kind == "circuit"]
    if name is None:
        if not circuits:
            raise reporter.fail("E207", f"{module.name} defines no circuit", None)
        return circuits[-1]
    for definition in circuits:
        if definition.name == name:
            return definition
    raise reporter.fail("E207", f"{module.name} has no circuit '{name}'", None,
                        [did_you_mean(name, [d.name for d in circuits]),
                         f"circuits: {', '.join(d.name for d in circuits) or 'none'}"])


def _command_line_args(definition: Definition, args: Mapping[str, ArgValue],
                       reporter: Reporter) -> list[tuple[ast.Ident, object, Span]]:
    """Arguments given from Python or the command line; strings for non-string types are parsed as expressions."""
    types = {p.name.name: p.type.name for p in definition.node.params}
    evaluator = Evaluator(reporter)
    given: list[tuple[ast.Ident, object, Span]] = []
    value: object  # as given, then as evaluated when it is text for a non-string type
    for name, value in args.items():
        source = f"<argument {name}>"
        text = value if isinstance(value, str) else repr(value)
        reporter.sources[source] = text
        span = Span(file=source, line=1, column=1, end_line=1, end_column=len(text) + 1)
        if name not in types:
            raise reporter.fail("E203", f"circuit '{definition.name}' has no argument '{name}'", span,
                                [did_you_mean(name, types), f"arguments: {', '.join(types) or 'none'}"])
        if isinstance(value, str) and types[name] != "str":
            try:
                module = _parse(f"{_ARG_PREFIX}{value}", source)
            except CircuitError:
                raise reporter.fail("E301", f"cannot read argument {name}={value!r}", span) from None
            if len(module.items) != 1:  # joints="1\nlet y = 2": one expression, nothing after it
                raise reporter.fail("E301", f"cannot read argument {name}={value!r}", span,
                                    ["an argument is one expression"])
            let = module.items[0]
            assert isinstance(let, ast.Let)  # the text starts with `let value = `
            try:
                value = evaluator.eval(let.value, definition.module.scope, expect=types[name])
            except Abort:
                raise CircuitError(_unprefixed(reporter.errors, source)) from None
        given.append((ast.Ident(span, name), value, span))
    return given


_ARG_PREFIX = "let value = "


def _unprefixed(diagnostics: list[Diagnostic], source: str) -> list[Diagnostic]:
    """Spans in an argument, parsed as `let value = <text>`, moved back onto <text> (the line that is shown)."""
    shift = len(_ARG_PREFIX)
    out = []
    for d in diagnostics:
        if d.span is not None and d.span.file == source and d.span.line == 1:
            end = d.span.end_column - shift if d.span.end_line == 1 else d.span.end_column
            span = d.span.model_copy(update={"column": max(d.span.column - shift, 1), "end_column": max(end, 2)})
            d = dataclasses.replace(d, span=span)
        out.append(d)
    return out
