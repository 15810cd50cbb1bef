"""Highlighting: the Pygments lexer `circuit` and the TextMate grammar in editors/, against the language itself.

Both must know exactly the grammar's keywords, and cover every model, library file and docs example with no
error token and no character left unscoped.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from circuitdsl.parser import concrete_parser
from tests.test_docs import LANGUAGE, blocks

pygments = pytest.importorskip("pygments")
from pygments.token import Comment, Error, Keyword, Name, Number, String

from circuitdsl.highlight import KEYWORDS, CircuitLexer

ROOT = Path(__file__).resolve().parent.parent
FILES = sorted((ROOT / "models").glob("*.circuit")) + sorted((ROOT / "circuitdsl" / "library").glob("*.circuit"))
TEXTMATE = ROOT / "editors" / "circuit.tmLanguage.json"
SOURCES = [p.read_text(encoding="utf-8") for p in FILES] + [b.text for b in blocks(LANGUAGE)
                                                              if b.kind.startswith("circuit")]


def grammar_keywords() -> set[str]:
    """The words the grammar reserves where it expects them: its string terminals that look like names."""
    return {str(t.pattern.value) for t in concrete_parser().terminals
            if t.pattern.type == "str" and re.fullmatch(r"[a-z]+", str(t.pattern.value))}


def test_the_lexers_keywords_are_the_grammars() -> None:
    assert set(KEYWORDS) == grammar_keywords() and len(KEYWORDS) == len(set(KEYWORDS))


@pytest.mark.parametrize("index", range(len(SOURCES)))
def test_no_error_tokens_and_nothing_lost(index: int) -> None:
    text = SOURCES[index]
    tokens = list(CircuitLexer().get_tokens(text))
    assert [value for kind, value in tokens if kind in Error] == []
    assert "".join(value for _, value in tokens) == (text if text.endswith("\n") else text + "\n")


def test_what_is_highlighted_as_what() -> None:
    text = ('"""Doc."""\nneuron Leaky(tau: time = 10 ms) {\n  state v = 0  # the membrane\n'
            '  dv/dt = (-v + in) / tau\n  out = clamp(v, 0, 1) if true else v\n}\n')
    kinds = {value: kind for kind, value in CircuitLexer().get_tokens(text)}
    assert kinds['"""Doc."""'] in String.Doc and kinds["# the membrane"] in Comment
    assert kinds["neuron"] in Keyword.Declaration and kinds["Leaky"] in Name.Class
    assert kinds["10"] in Number and kinds["ms"] in Name.Constant and kinds["state"] in Keyword
    assert kinds["clamp"] in Name.Builtin and kinds["true"] in Keyword.Constant and kinds["else"] in Keyword
    assert kinds["v"] in Name and kinds["v"] not in Name.Constant


def test_registered_as_circuit() -> None:
    """pyproject declares the entry point; where this install has it, `pygmentize -l circuit` uses it."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["entry-points"]["pygments.lexers"] == {"circuit": "circuitdsl.highlight:CircuitLexer"}
    installed = [e for e in metadata.entry_points(group="pygments.lexers") if e.name == "circuit"]
    pygmentize = Path(sys.executable).with_name("pygmentize")  # this environment's, not one earlier on PATH
    if not installed or not pygmentize.exists():
        pytest.skip("this environment was installed before the lexer was registered (reinstall: make)")
    done = subprocess.run([pygmentize, "-l", "circuit", "-f", "raw", str(ROOT / "models" / "ncap_swimmer.circuit")],
                          capture_output=True, text=True, check=True, timeout=60)
    assert "Token.Keyword.Declaration\t'circuit'" in done.stdout and "Token.Error" not in done.stdout


# ---- the TextMate grammar --------------------------------------------------------------------------------
def _textmate() -> dict[str, Any]:
    return json.loads(TEXTMATE.read_text(encoding="utf-8"))


def _rules(grammar: dict[str, Any]) -> list[dict[str, Any]]:
    """The grammar's rules in the order the top level tries them (includes resolved)."""
    def expand(rule: dict[str, Any]) -> list[dict[str, Any]]:
        if "include" in rule:
            return expand(grammar["repository"][rule["include"].lstrip("#")])
        if "patterns" in rule:
            return [r for sub in rule["patterns"] for r in expand(sub)]
        return [rule]

    return [r for rule in grammar["patterns"] for r in expand(rule)]


def test_textmate_regexes_compile_and_know_the_keywords() -> None:
    grammar = _textmate()
    assert grammar["scopeName"] == "source.circuit" and grammar["fileTypes"] == ["circuit"]
    rules = _rules(grammar)
    for rule in rules:
        for key in ("match", "begin", "end"):
            if key in rule:
                re.compile(rule[key])
    words = set()
    for rule in rules:
        found = re.fullmatch(r"\\b\(([a-z|]+)\)(?:\\b|\\s\+\(.*\))", rule.get("match", ""))
        if found:
            words |= set(found[1].split("|"))
    assert words == grammar_keywords()


def textmate_scopes(text: str) -> list[tuple[str, str]]:
    """A small TextMate engine: at each position the first rule that matches there scopes it (whitespace is
    skipped); a character no rule matches is scoped 'invalid'."""
    rules = _rules(_textmate())
    scopes, pos = [], 0
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
            continue
        for rule in rules:
            if "begin" in rule:
                start = re.compile(rule["begin"]).match(text, pos)
                if start:
                    end = re.compile(rule["end"]).search(text, start.end())
                    stop = end.end() if end else len(text)
                    scopes.append((rule["name"], text[pos:stop]))
                    pos = stop
                    break
            else:
                found = re.compile(rule["match"], re.MULTILINE).match(text, pos)
                if found and found.end() > pos:
                    scopes.append((rule.get("name", "captures"), found.group()))
                    pos = found.end()
                    break
        else:
            scopes.append(("invalid", text[pos]))
            pos += 1
    return scopes


@pytest.mark.parametrize("index", range(len(SOURCES)))
def test_textmate_covers_every_source(index: int) -> None:
    assert [value for scope, value in textmate_scopes(SOURCES[index]) if scope == "invalid"] == []


def test_textmate_scopes() -> None:
    scopes = {value: scope for scope, value in textmate_scopes('circuit C {\n  x -> y : weight = 10 ms  # c\n}')}
    assert scopes["# c"].startswith("comment.") and scopes["->"] == "keyword.operator.arrow.circuit"
    assert scopes["circuit C"] == "captures" and scopes["10 ms"] == "captures" and scopes["x"].startswith("variable")
