"""`circuitdsl lsp`: a Language Server Protocol server for .circuit files, on pygls (the `lsp` extra).

Diagnostics as you type (every error and warning, at its exact range, with its hints), hover, go to definition
(into imported files and the libraries), completion of the names in scope, and formatting with `circuitdsl
fmt`.  The answers come from circuitdsl/analysis.py; this module converts positions (LSP counts lines from 0
and characters in UTF-16 code units, the language from 1 in characters) and wires the requests.
"""

from __future__ import annotations

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

from circuitdsl import __version__
from circuitdsl.analysis import Document, analyse, completions, definition_of, hover, import_span, source_path
from circuitdsl.errors import CircuitError, Diagnostic, Span
from circuitdsl.fmt import format_source

_KINDS = {"neuron": types.CompletionItemKind.Class, "circuit": types.CompletionItemKind.Module,
          "population": types.CompletionItemKind.Variable, "param": types.CompletionItemKind.Field,
          "function": types.CompletionItemKind.Function, "keyword": types.CompletionItemKind.Keyword,
          "import": types.CompletionItemKind.Module, "argument": types.CompletionItemKind.TypeParameter}


class CircuitServer(LanguageServer):
    """The server, with the last analysis of each open document that parsed (hover and definition keep
    working while the text being typed does not parse)."""

    def __init__(self) -> None:
        super().__init__("circuitdsl", __version__)
        self.analyses: dict[str, Document] = {}

    def analysis(self, uri: str) -> Document | None:
        return self.analyses.get(uri)


server = CircuitServer()


def serve() -> None:
    """Serve one client on standard input and output until it exits."""
    server.start_io()


def utf16_character(line: str, column: int) -> int:
    """The LSP character of a 1-based column: UTF-16 code units before it."""
    return len(line[: column - 1].encode("utf-16-le")) // 2


def column_of(line: str, character: int) -> int:
    """The 1-based column of an LSP character (UTF-16 code units)."""
    units = 0
    for index, char in enumerate(line):
        if units >= character:
            return index + 1
        units += 2 if ord(char) > 0xFFFF else 1
    return len(line) + 1


def _range(span: Span, lines: list[str]) -> types.Range:
    def position(line: int, column: int) -> types.Position:
        text = lines[line - 1] if 0 < line <= len(lines) else ""
        return types.Position(line=max(line - 1, 0), character=utf16_character(text, column))

    return types.Range(start=position(span.line, span.column), end=position(span.end_line, span.end_column))


def lsp_diagnostic(diagnostic: Diagnostic, document: Document) -> types.Diagnostic:
    """An LSP diagnostic at the span's range; one in an imported file is shown on its import statement (or on
    line 1), naming the file and line."""
    lines = document.text.split("\n")
    message = diagnostic.message + "".join(f"\n{note}" for note in diagnostic.notes)
    span = diagnostic.span
    if span is None or span.file != document.file:
        message = f"{span}: {message}" if span is not None else message
        span = (import_span(document, span.file) if span is not None else None) or Span(
            file=document.file, line=1, column=1, end_line=1, end_column=len(lines[0]) + 1)
    severity = types.DiagnosticSeverity.Warning if diagnostic.is_warning else types.DiagnosticSeverity.Error
    return types.Diagnostic(range=_range(span, lines), message=message, severity=severity, code=diagnostic.code,
                            source="circuitdsl")


def _check(ls: CircuitServer, uri: str) -> None:
    text = ls.workspace.get_text_document(uri).source
    document = analyse(text, to_fs_path(uri) or uri)
    if document.module is not None:
        ls.analyses[uri] = document
    ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
        uri=uri, diagnostics=[lsp_diagnostic(d, document) for d in document.diagnostics]))


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: CircuitServer, params: types.DidOpenTextDocumentParams) -> None:
    _check(ls, params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: CircuitServer, params: types.DidChangeTextDocumentParams) -> None:
    _check(ls, params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: CircuitServer, params: types.DidSaveTextDocumentParams) -> None:
    _check(ls, params.text_document.uri)  # an imported file may have changed on disk


def _at(ls: CircuitServer, uri: str, position: types.Position) -> tuple[Document, int, int] | None:
    """The last good analysis of a document and a position in it as the language counts (1-based)."""
    document = ls.analysis(uri)
    if document is None:
        return None
    lines = ls.workspace.get_text_document(uri).source.split("\n")
    line = lines[position.line] if position.line < len(lines) else ""
    return document, position.line + 1, column_of(line, position.character)


@server.feature(types.TEXT_DOCUMENT_HOVER)
def on_hover(ls: CircuitServer, params: types.HoverParams) -> types.Hover | None:
    found = _at(ls, params.text_document.uri, params.position)
    text = hover(*found) if found is not None else None
    if text is None:
        return None
    return types.Hover(contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=text))


@server.feature(types.TEXT_DOCUMENT_DEFINITION)
def on_definition(ls: CircuitServer, params: types.DefinitionParams) -> types.Location | None:
    found = _at(ls, params.text_document.uri, params.position)
    span = definition_of(*found) if found is not None else None
    if found is None or span is None:
        return None
    path = source_path(span.file) if span.file else source_path(found[0].file)
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except OSError:
        return None
    return types.Location(uri=from_fs_path(str(path.resolve())) or str(path), range=_range(span, lines))


@server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=["."]))
def on_completion(ls: CircuitServer, params: types.CompletionParams) -> types.CompletionList:
    found = _at(ls, params.text_document.uri, params.position)
    names = completions(*found) if found is not None else []
    items = [types.CompletionItem(label=name, detail=kind, kind=_KINDS.get(kind, types.CompletionItemKind.Variable))
             for name, kind in names]
    return types.CompletionList(is_incomplete=False, items=items)


@server.feature(types.TEXT_DOCUMENT_FORMATTING)
def on_formatting(ls: CircuitServer, params: types.DocumentFormattingParams) -> list[types.TextEdit] | None:
    """The whole document replaced by `circuitdsl fmt`'s layout; nothing while it does not parse."""
    text = ls.workspace.get_text_document(params.text_document.uri).source
    try:
        formatted = format_source(text)
    except CircuitError:
        return None
    if formatted == text:
        return []
    lines = text.split("\n")
    whole = types.Range(start=types.Position(line=0, character=0),
                        end=types.Position(line=len(lines) - 1, character=utf16_character(lines[-1], len(lines[-1]) + 1)))
    return [types.TextEdit(range=whole, new_text=formatted)]
