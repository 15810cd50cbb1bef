"""`circuitdsl lsp`, driven over stdio by pygls' LanguageClient as an editor would: open, change, hover,
go to definition, complete, format; diagnostics arrive as `textDocument/publishDiagnostics` notifications."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

pytest.importorskip("pygls")
from lsprotocol import types  # noqa: E402
from pygls.lsp.client import LanguageClient  # noqa: E402
from pygls.uris import from_fs_path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 60.0

MOTIFS = '''neuron Bursting(period: int = 8) {
  """A unit that fires a burst every `period` steps."""
  state t = 0
  out = (t % period) < 2
  t = t + 1
}

circuit Pair {
  """Two graded units, the first driving the second."""
  input  x
  output y
  population A, B : Graded
  x -> A
  A -> B
  y = B
}
'''

# `Pacemakr` is misspelled on line 8 (columns 3-11); with `Pacemaker` the file is valid.
MAIN = '''import "motifs.circuit"

circuit Main(n: int = 4) {
  input  drive[joint = n]
  output out[joint = n]
  param w : excitatory = +1
  population Pacemaker[joint = n] : Bursting(period = 6)
  Pacemakr -> Pacemaker : one_to_one, weight = w
  drive -> Pacemaker : one_to_one
  pair = Pair(x = Pacemaker[0])
  out = Pacemaker
}
'''


class Editor:
    """A language client that records the diagnostics published for each document."""

    def __init__(self) -> None:
        self.client = LanguageClient("circuitdsl-tests", "1")
        self.published: asyncio.Queue[types.PublishDiagnosticsParams] = asyncio.Queue()

        @self.client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def _published(params: types.PublishDiagnosticsParams) -> None:
            self.published.put_nowait(params)

    async def diagnostics(self) -> list[types.Diagnostic]:
        return (await asyncio.wait_for(self.published.get(), TIMEOUT)).diagnostics


def position(text: str, needle: str, offset: int = 0) -> types.Position:
    """The LSP position of the first `needle` in `text`, `offset` characters into it."""
    index = text.index(needle) + offset
    line = text.count("\n", 0, index)
    return types.Position(line=line, character=index - (text.rfind("\n", 0, index) + 1))


async def session(folder: Path) -> None:
    (folder / "motifs.circuit").write_text(MOTIFS, encoding="utf-8")
    main = folder / "main.circuit"
    main.write_text(MAIN, encoding="utf-8")
    uri = from_fs_path(str(main))
    assert uri is not None
    document = types.TextDocumentIdentifier(uri=uri)
    editor = Editor()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    await editor.client.start_io(sys.executable, "-m", "circuitdsl", "lsp", env=env, cwd=str(folder))
    try:
        result = await asyncio.wait_for(editor.client.initialize_async(types.InitializeParams(
            capabilities=types.ClientCapabilities(), root_uri=from_fs_path(str(folder)))), TIMEOUT)
        capabilities = result.capabilities
        assert capabilities.hover_provider and capabilities.definition_provider
        assert capabilities.document_formatting_provider and capabilities.completion_provider is not None
        editor.client.initialized(types.InitializedParams())

        # a misspelled population: one diagnostic, at exactly its name, with the did-you-mean
        editor.client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
            uri=uri, language_id="circuit", version=1, text=MAIN)))
        [misspelled] = await editor.diagnostics()
        assert misspelled.code == "E201" and misspelled.severity == types.DiagnosticSeverity.Error
        assert misspelled.range == types.Range(start=types.Position(line=7, character=2),
                                               end=types.Position(line=7, character=10))
        assert "unknown name 'Pacemakr'" in misspelled.message and "did you mean 'Pacemaker'?" in misspelled.message

        # as you type: the fix clears it; an unused parameter is a warning at its name
        fixed = MAIN.replace("Pacemakr ->", "Pacemaker ->").replace(", weight = w", "")
        editor.client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=fixed)]))
        [unused] = await editor.diagnostics()
        assert unused.severity == types.DiagnosticSeverity.Warning and unused.code == "W201"
        assert unused.range.start == position(fixed, "w :") and unused.range.end.character == 9

        # hover on a population: its neuron model's docstring and equations
        hovered = await editor.client.text_document_hover_async(types.HoverParams(
            text_document=document, position=position(fixed, "drive -> Pacemaker", 12)))
        assert hovered is not None
        text = hovered.contents.value  # type: ignore[union-attr]
        assert "A unit that fires a burst every `period` steps." in text and "out = (t % period) < 2" in text
        assert "population **Pacemaker**[joint = 4]" in text

        # hover on an axis and a parameter
        hovered = await editor.client.text_document_hover_async(types.HoverParams(
            text_document=document, position=position(fixed, "joint = n]", 1)))
        assert hovered is not None and "axis **joint**: 4 units" in hovered.contents.value  # type: ignore[union-attr]

        # go to definition: into the imported file
        found = await editor.client.text_document_definition_async(types.DefinitionParams(
            text_document=document, position=position(fixed, "Bursting(", 3)))
        assert isinstance(found, types.Location)
        assert found.uri == from_fs_path(str((folder / "motifs.circuit").resolve()))
        assert found.range.start == types.Position(line=0, character=7) and found.range.end.character == 15
        found = await editor.client.text_document_definition_async(types.DefinitionParams(
            text_document=document, position=position(fixed, "Pair(", 1)))
        assert isinstance(found, types.Location) and found.range.start.line == 7

        # completion: the names in scope (local, imported, library), functions and keywords
        completed = await editor.client.text_document_completion_async(types.CompletionParams(
            text_document=document, position=position(fixed, "  out = Pacemaker", 2)))
        assert isinstance(completed, types.CompletionList)
        labels = {item.label for item in completed.items}
        assert {"Pacemaker", "drive", "w", "Bursting", "Pair", "Graded", "clamp", "population"} <= labels

        # formatting: the document as `circuitdsl fmt` writes it
        editor.client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=3),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=fixed.replace(" -> ", "->"))]))
        await editor.diagnostics()
        edits = await editor.client.text_document_formatting_async(types.DocumentFormattingParams(
            text_document=document, options=types.FormattingOptions(tab_size=2, insert_spaces=True)))
        assert edits is not None and len(edits) == 1
        assert "drive -> Pacemaker" in edits[0].new_text and "->Pacemaker" not in edits[0].new_text

        await asyncio.wait_for(editor.client.shutdown_async(None), TIMEOUT)
        editor.client.exit(None)
    finally:
        await editor.client.stop()


def test_the_language_server_over_stdio(tmp_path: Path) -> None:
    asyncio.run(session(tmp_path))


# ---- the answers themselves (circuitdsl.analysis), in process ----------------------------------------------
def test_hover_on_a_parameter_shows_sign_shape_and_unit() -> None:
    from circuitdsl.analysis import analyse, hover

    path = ROOT / "models" / "ncap_swimmer.circuit"
    text = path.read_text(encoding="utf-8")
    document = analyse(text, str(path))
    line = text.split("\n").index("  param osc    : excitatory = +1, shared = shared, enforce = signs") + 1
    shown = hover(document, line, 10)
    assert shown is not None
    assert "param **osc**: sign excitatory (enforced by clamp), shape scalar, unit dimensionless, trainable" in shown


def test_definition_of_a_library_neuron_and_completion_after_an_alias(tmp_path: Path) -> None:
    from circuitdsl.analysis import analyse, completions, definition_of, source_path

    text = "import celegans as worm\ncircuit C {\n  population P : Graded\n  population Q : worm.\n}\n"
    document = analyse(text.replace("worm.\n", "worm.Rate\n"), str(tmp_path / "c.circuit"))
    span = definition_of(document, 3, 19)
    assert span is not None and source_path(span.file).read_text(encoding="utf-8").split("\n")[span.line - 1] \
        .startswith("neuron Graded")
    assert ("Rate", "neuron") in completions(document, 4, 23)


def test_an_error_in_an_imported_file_is_shown_on_its_import(tmp_path: Path) -> None:
    from circuitdsl.analysis import analyse
    from circuitdsl.lsp import lsp_diagnostic

    (tmp_path / "lib.circuit").write_text("neuron N {\n  out = nope\n}\n", encoding="utf-8")
    main = tmp_path / "main.circuit"
    text = 'import "lib.circuit"\ncircuit C {\n  population P : N\n}\n'
    document = analyse(text, str(main))
    [shown] = [lsp_diagnostic(d, document) for d in document.diagnostics]
    assert shown.range.start == types.Position(line=0, character=0) and shown.range.end.character == 20
    assert shown.message.startswith(f"{tmp_path / 'lib.circuit'}:2:9: unknown name 'nope'")


def test_positions_count_utf16_code_units() -> None:
    from circuitdsl.lsp import column_of, utf16_character

    line = 'let s = "µ𝛼" + nope'
    column = line.index("nope") + 1
    assert utf16_character(line, column) == column - 1 + 1  # 𝛼 is two UTF-16 code units
    assert column_of(line, utf16_character(line, column)) == column
