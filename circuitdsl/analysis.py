"""What an editor asks about a .circuit document: its diagnostics, what a name is, where it is defined, which
names are in scope.  The language server (circuitdsl/lsp.py) answers from these plain functions of the text.

Positions here are the language's own: 1-based lines and columns counted in characters.  A document is
analysed as `circuitdsl check` would check its file: parsed, its imports loaded relative to it, and every
circuit whose arguments all have defaults elaborated (so warnings and errors of elaboration are seen too).
"""

from __future__ import annotations

import os
import re
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from circuitdsl import ast
from circuitdsl.api import elaborate
from circuitdsl.elaborate.modules import Loader, ModuleScope
from circuitdsl.elaborate.scope import Scope
from circuitdsl.elaborate.values import Definition, Namespace
from circuitdsl.errors import CircuitError, Diagnostic, Reporter, Span
from circuitdsl.functions import FUNCTIONS
from circuitdsl.ir.model import Axis, CircuitIR, Parameter
from circuitdsl.parser import concrete_parser

_WORD = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")


@dataclass
class Document:
    """One analysed text: its module (None when it does not parse), every diagnostic, the circuits' IR."""

    file: str
    text: str
    module: ModuleScope | None = None
    sources: dict[str, str] = field(default_factory=dict)  # every file read, by the name spans use
    diagnostics: list[Diagnostic] = field(default_factory=list)
    irs: dict[str, CircuitIR] = field(default_factory=dict)


@dataclass(frozen=True)
class Word:
    """The name under a position, and the name before a `.` ahead of it (`celegans` in `celegans.Rate`)."""

    name: str
    qualifier: str | None
    span: Span


def analyse(text: str, file: str) -> Document:
    """Parse, load the imports of, and elaborate every stand-alone circuit of `text`, as the file `file`."""
    document = Document(file, text)
    reporter = Reporter()
    try:
        document.module = Loader(reporter, Scope()).load_text(text, file)
    except CircuitError as error:
        document.diagnostics = list(error.diagnostics)
        document.sources = reporter.sources
        return document
    document.sources = reporter.sources
    found: list[Diagnostic] = list(reporter.diagnostics)
    for definition in document.module.definitions:
        if definition.kind != "circuit" or any(p.default is None for p in definition.node.params):
            continue
        try:
            result = elaborate(None, definition.name, None, text=text, file=file)
        except CircuitError as error:
            found += error.diagnostics
            continue
        document.irs[definition.name] = result.ir
        found += result.warnings
    document.diagnostics = list(dict.fromkeys(found))  # a template's error is found once per instance
    return document


def source_path(file: str) -> Path:
    """Where the file a span names lives: a library's display name (`std.circuit`) is inside the package."""
    path = Path(file)
    if not path.is_absolute() and not path.exists():
        library = resources.files("circuitdsl").joinpath("library", file)
        if library.is_file():
            return Path(str(library))
    return path


def import_span(document: Document, file: str) -> Span | None:
    """The import statement of the document that reads `file` (where an error inside that file is shown)."""
    if document.module is None:
        return None
    folder = os.path.dirname(document.file)
    for item in document.module.module.items:
        if isinstance(item, ast.ImportFile) and os.path.normpath(os.path.join(folder, item.path.value)) == file:
            return item.span
    return None


def word_at(text: str, line: int, column: int) -> Word | None:
    """The name at (or just before) a 1-based line and column, with its qualifier."""
    lines = text.split("\n")
    if not 0 < line <= len(lines):
        return None
    source = lines[line - 1]
    for match in _WORD.finditer(source):
        if match.start() < column <= match.end() + 1:
            before = source[: match.start()]
            qualifier = re.search(r"([A-Za-z_][A-Za-z_0-9]*)\s*\.\s*$", before)
            span = Span(file="", line=line, column=match.start() + 1, end_line=line, end_column=match.end() + 1)
            return Word(match.group(), qualifier.group(1) if qualifier else None, span)
    return None


def enclosing(document: Document, line: int) -> ast.Definition | None:
    """The neuron or circuit definition whose text holds the line."""
    if document.module is None:
        return None
    for item in document.module.module.items:
        if isinstance(item, ast.Definition) and item.span.line <= line <= item.span.end_line:
            return item
    return None


def declarations(definition: ast.Definition) -> Iterator[tuple[str, str, Span, ast.Node]]:
    """Every name a definition declares: (name, kind, the name's span, the declaring statement)."""
    for param in definition.params:
        yield param.name.name, "argument", param.name.span, param
    yield from _statements(definition.body)


def _statements(body: tuple[ast.Stmt, ...]) -> Iterator[tuple[str, str, Span, ast.Node]]:
    for statement in body:
        if isinstance(statement, ast.PopulationDecl):
            yield from ((p.name.name, "population", p.name.span, statement) for p in statement.names)
        elif isinstance(statement, ast.ParamDecl):
            yield from ((n.name, "param", n.span, statement) for n in statement.names)
        elif isinstance(statement, ast.Let | ast.StateDecl | ast.Spike):
            kind = {ast.Let: "let", ast.StateDecl: "state", ast.Spike: "spike"}[type(statement)]
            yield statement.name.name, kind, statement.name.span, statement
        elif isinstance(statement, ast.InputDecl | ast.OutputDecl):
            kind = "input" if isinstance(statement, ast.InputDecl) else "output"
            yield from ((p.name.name, kind, p.name.span, statement) for p in statement.ports)
        elif isinstance(statement, ast.InputProjection):
            yield statement.port.name.name, "input", statement.port.name.span, statement
        elif isinstance(statement, ast.Assign) and isinstance(_root(statement.target), ast.Name):
            target = _root(statement.target)
            yield target.id, "instance", target.span, statement  # type: ignore[union-attr]
        elif isinstance(statement, ast.For):
            yield statement.var.name, "loop", statement.var.span, statement
            yield from _statements(statement.body)
        elif isinstance(statement, ast.If):
            yield from _statements(statement.body)
            if statement.orelse:
                yield from _statements(statement.orelse)


def _root(expr: ast.Expr) -> ast.Expr:
    """`seg` of `seg[i]`: the name an assignment binds."""
    while isinstance(expr, ast.Subscript):
        expr = expr.value
    return expr


@dataclass(frozen=True)
class Target:
    """What a name refers to: a local declaration, or a neuron or circuit definition of some module."""

    kind: str
    span: Span
    node: ast.Node | None = None  # the declaring statement, when it is in the enclosing definition
    definition: Definition | None = None


def resolve(document: Document, word: Word) -> Target | None:
    """What the name at a position refers to: a declaration of the enclosing definition first, then the
    definitions visible in the module (imports and the standard library included)."""
    if document.module is None:
        return None
    if word.qualifier is not None:
        binding = document.module.scope.lookup(word.qualifier)
        if binding is None or not isinstance(binding.value, Namespace):
            return None
        inner = binding.value.module.scope.names.get(word.name)
        value = inner.value if inner is not None else None
        return Target("definition", value.node.name.span, value.node, value) if isinstance(value, Definition) else None
    definition = enclosing(document, word.span.line)
    if definition is not None:
        for name, kind, span, node in declarations(definition):
            if name == word.name:
                return Target(kind, span, node)
    binding = document.module.scope.lookup(word.name)
    if binding is not None and isinstance(binding.value, Definition):
        return Target("definition", binding.value.node.name.span, binding.value.node, binding.value)
    if binding is not None and binding.span is not None:
        return Target(binding.kind, binding.span)  # a module-level `let` or an import alias
    return None


def definition_of(document: Document, line: int, column: int) -> Span | None:
    """Where the name at a position is declared (possibly in an imported file or a library)."""
    word = word_at(document.text, line, column)
    target = resolve(document, word) if word is not None else None
    return target.span if target is not None else None


def hover(document: Document, line: int, column: int) -> str | None:
    """Markdown about the name at a position: a population's neuron model (docstring and equations), a
    parameter's sign, shape and unit, an axis' size, a definition's signature and docstring."""
    word = word_at(document.text, line, column)
    if word is None:
        return None
    definition = enclosing(document, line)
    ir = document.irs.get(definition.name.name) if definition is not None else None
    target = resolve(document, word)
    if target is None:
        axis = _axis(ir, word.name) if ir is not None else None
        if axis is not None:
            return f"axis **{axis.name}**: {axis.size} units"
        function = FUNCTIONS.get(word.name)
        return f"**{function.name}**: {function.doc}" if function is not None else None
    if target.definition is not None:
        return _describe_definition(document, target.definition)
    lines = [f"```circuit\n{_source(document, (target.node or target).span).strip()}\n```"]
    if target.kind == "population" and isinstance(target.node, ast.PopulationDecl):
        lines += _describe_population(document, ir, word.name, target.node)
    elif target.kind == "param" and ir is not None:
        lines += [_describe_parameter(p) for p in ir.parameters if p.name == word.name]
    elif target.kind in ("input", "output") and ir is not None:
        ports = [p for p in (*ir.inputs, *ir.outputs) if p.name == word.name]
        lines += [f"{target.kind} **{p.name}**{_shape(p.shape)}, unit {p.dim}" for p in ports]
    return "\n\n".join(lines)


def _describe_population(document: Document, ir: CircuitIR | None, name: str,
                         node: ast.PopulationDecl) -> list[str]:
    lines = []
    if ir is not None:
        lines += [f"population **{p.name}**{_shape(p.shape)}: {p.model}" for p in ir.populations if p.name == name]
    model = _lookup_model(document, node.model)
    if model is not None:
        lines.append(_describe_definition(document, model))
    return lines


def _lookup_model(document: Document, model: ast.ModelRef) -> Definition | None:
    """The neuron definition a population names (`Graded`, `celegans.Rate`)."""
    *qualifier, last = model.path
    word = Word(last.name, qualifier[-1].name if qualifier else None, last.span)
    target = resolve(document, word)
    return target.definition if target is not None else None


def _describe_definition(document: Document, definition: Definition) -> str:
    """`neuron Leaky(tau: time = 10 ms)`, its docstring, and (for a neuron) its equations."""
    node = definition.node
    last = max((p.span.end_line for p in node.params), default=node.name.span.line)  # a signature may wrap
    header = _source(document, node.span.model_copy(update={"end_line": last})).strip().removesuffix("{").strip()
    parts = [f"```circuit\n{header}\n```"]
    if node.doc:
        parts.append(textwrap.dedent(node.doc).strip())
    if node.keyword == "neuron":
        body = [s for s in node.body if not isinstance(s, ast.Docstring)]
        equations = "\n".join(_source(document, s.span) for s in body)
        if equations.strip():
            parts.append(f"```circuit\n{textwrap.dedent(equations).strip()}\n```")
    return "\n\n".join(parts)


def _describe_parameter(parameter: Parameter) -> str:
    shape = "scalar" if not parameter.shape else "×".join(map(str, parameter.shape))
    state = "trainable" if parameter.trainable else "fixed"
    return (f"param **{parameter.name}**: sign {parameter.sign} (enforced by {parameter.enforce}), shape {shape}, "
            f"unit {parameter.dim}, {state}, shared per {parameter.share}")


def _axis(ir: CircuitIR, name: str) -> Axis | None:
    shapes = [p.shape for p in ir.populations] + [p.shape for p in ir.inputs] + [o.shape for o in ir.outputs]
    return next((axis for shape in shapes for axis in shape if axis.name == name), None)


def _shape(shape: list[Axis]) -> str:
    return f"[{', '.join(f'{a.name} = {a.size}' for a in shape)}]" if shape else ""


def _source(document: Document, span: Span) -> str:
    """The text a span covers, whole lines (the document's own text, or an imported / library file's)."""
    text = document.text if span.file in (document.file, "") else document.sources.get(span.file)
    if text is None:
        return ""
    lines = text.split("\n")
    return textwrap.dedent("\n".join(lines[span.line - 1 : span.end_line]))


def completions(document: Document, line: int, column: int) -> list[tuple[str, str]]:
    """Names that fit at a position, with their kind: after `alias.` the alias' definitions, else the
    declarations of the enclosing definition, the module's definitions and imports, functions and keywords."""
    if document.module is None:
        return []
    source = document.text.split("\n")[line - 1][: column - 1] if 0 < line <= document.text.count("\n") + 1 else ""
    qualifier = re.search(r"([A-Za-z_][A-Za-z_0-9]*)\s*\.\s*[A-Za-z_0-9]*$", source)
    if qualifier:
        binding = document.module.scope.lookup(qualifier.group(1))
        if binding is None or not isinstance(binding.value, Namespace):
            return []
        return sorted((d.name, d.kind) for d in binding.value.module.definitions)
    found: dict[str, str] = {}
    definition = enclosing(document, line)
    if definition is not None:
        found.update((name, kind) for name, kind, _, _ in declarations(definition))
    for name in sorted(document.module.scope.visible_names()):
        binding = document.module.scope.lookup(name)
        value = binding.value if binding is not None else None
        found.setdefault(name, value.kind if isinstance(value, Definition) else binding.kind if binding else "name")
    found.update({name: "function" for name in FUNCTIONS if name not in found})
    found.update({name: "keyword" for name in keywords() if name not in found})
    return sorted(found.items())


def keywords() -> list[str]:
    """The grammar's keywords: its literal terminals that are words."""
    return sorted(str(t.pattern.value) for t in concrete_parser().terminals
                  if t.pattern.type == "str" and str(t.pattern.value).isalpha())
