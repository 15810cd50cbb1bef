"""The parser is built once and cached across processes in a private per-user directory (circuitdsl/parser.py)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from circuitdsl import parser

SOURCE = "circuit C {\n  input x\n  output y\n  y = 2 * x\n}\n"
ROOT = Path(__file__).parent.parent


@pytest.fixture
def fresh_parser() -> Iterator[None]:
    """Each test builds the parser itself; the process's own parser comes back afterwards."""
    parser._parser.cache_clear()
    parser._parse.cache_clear()
    yield
    parser._parser.cache_clear()
    parser._parse.cache_clear()


def test_the_cache_is_private_and_named_by_the_grammar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIRCUITDSL_CACHE", str(tmp_path / "cache"))
    path = parser.cache_file(parser.grammar_text())
    assert path is not None and path.parent == tmp_path / "cache"
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert parser.cache_file(parser.grammar_text() + "\n// changed") != path


def test_a_second_process_loads_the_stored_parser(tmp_path: Path) -> None:
    env = {**os.environ, "CIRCUITDSL_CACHE": str(tmp_path), "PYTHONPATH": str(ROOT)}
    script = ("import sys; from circuitdsl import parser; m = parser.parse(sys.argv[1]); "
              "print(m.items[0].name.name)")
    first = subprocess.run([sys.executable, "-c", script, SOURCE], env=env, capture_output=True, text=True, check=True)
    stored = list(tmp_path.iterdir())
    assert len(stored) == 1 and stored[0].stat().st_size > 0
    written = stored[0].stat().st_mtime_ns
    second = subprocess.run([sys.executable, "-c", script, SOURCE], env=env, capture_output=True, text=True, check=True)
    assert first.stdout == second.stdout == "C\n"
    assert stored[0].stat().st_mtime_ns == written  # read, not rebuilt
    assert first.stderr == second.stderr == ""


@pytest.mark.parametrize("setting", ["", "shared", "unwritable"])
def test_no_cache_where_it_would_be_unsafe_or_cannot_be_written(
        setting: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_parser: None) -> None:
    if setting == "shared":  # a directory others can write to: a planted pickle must never be loaded
        folder = tmp_path / "shared"
        folder.mkdir()
        folder.chmod(0o777)
        monkeypatch.setenv("CIRCUITDSL_CACHE", str(folder))
    elif setting == "unwritable":  # under a plain file: the directory cannot be made
        (tmp_path / "file").write_text("")
        monkeypatch.setenv("CIRCUITDSL_CACHE", str(tmp_path / "file" / "cache"))
    else:
        monkeypatch.setenv("CIRCUITDSL_CACHE", "")
    assert parser.cache_file(parser.grammar_text()) is None
    assert parser.parse(SOURCE).items[0].name.name == "C"


def test_a_damaged_cache_file_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_parser: None) -> None:
    monkeypatch.setenv("CIRCUITDSL_CACHE", str(tmp_path))
    path = parser.cache_file(parser.grammar_text())
    assert path is not None
    path.write_bytes(b"not a parser")
    assert parser.parse(SOURCE).items[0].name.name == "C"
    assert path.read_bytes() != b"not a parser"


def test_a_text_parsed_again_gives_the_same_tree(fresh_parser: None) -> None:
    assert parser.parse(SOURCE, "a.circuit") is parser.parse(SOURCE, "a.circuit")
    assert parser.parse(SOURCE, "b.circuit") is not parser.parse(SOURCE, "a.circuit")
