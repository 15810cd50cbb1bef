"""The AST built as lark reduces each rule (circuitdsl/reduce_to_ast.py) is the AST of lark's parse tree.

`parse` builds no parse tree for well-formed text or a syntax error; `parse_via_tree` (lark's tree, then the AST)
is what it always was.  Both must give equal ASTs, spans included, over every circuit the project ships (models, examples,
the documentation's examples) and constructs whose positions lark propagates in less obvious ways (brackets
around an expression, spliced `_rules`, absent optional parts), and over text the fuzzer generates (about half
of it well-formed); text with any error goes the tree's way.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import lark
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from circuitdsl import parser
from circuitdsl.errors import CircuitError
from tests.test_docs import blocks
from tests.test_fuzz import DOC_EXAMPLES, EXPR, PROGRAM, mutated_model, vocabulary_text, wrapped

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted(p for folder in ("models", "examples", "docs", "circuitdsl", "tests")
                 for p in (ROOT / folder).rglob("*.circuit"))
DOCUMENTED = [b for md in sorted((ROOT / "docs").glob("*.md")) for b in blocks(md) if b.kind != "circuit-fragment"]
POSITIONS = {
    "brackets": "circuit C {\n  input x\n  output y\n  y = ((x) + (2 * (x)))[0] * (x)\n}\n",
    "contraction": "circuit C {\n  let a = (q · k over (h, d)) @ v over t\n}\n",
    "spliced-rules": '"""doc"""\nimport std as s\n\n\nneuron N(tau: time = 10 ms) {\n  """n"""\n  state v = 0\n'
                     '  dv/dt = -v / tau\n}\n',
    "absent-parts": "circuit C(n: int = 3, t: voltage / time ** 2 = 1) {\n  param w, b: real = 0, trainable\n"
                    "  population p[k = n], q : N(tau = 1 ms)\n  p -> q : all_to_all\n"
                    "  for i in 0 .. n {\n    if i > 1 {\n      p[k = i] -> q\n    } else if i == 0 {\n"
                    "      q[1:2:] -> p[::2]\n    }\n  }\n}\n",
    "calls": "circuit C {\n  let a = f(x over t, causal = 1)(2)[k = 1 : 3].b\n  let s = {1, 2,}\n  let l = []\n}\n",
    "continued": "circuit C {\n  let a = f(1,\n    2) + \\\n    3   # comment\n\n}\n",
    "empty": "",
    "blank": "\n\n# only a comment\n",
}


def corpus() -> Iterator[tuple[str, str]]:
    for path in SHIPPED:
        yield str(path.relative_to(ROOT)), path.read_text(encoding="utf-8")
    for block in DOCUMENTED:
        yield block.id, block.text
    yield from POSITIONS.items()


CORPUS = dict(corpus())


def same_as_the_tree(text: str, name: str) -> None:
    """`parse` gives what `parse_via_tree` gives: the same AST, or the same error in the same words."""
    try:
        expected = parser.parse_via_tree(text, name)
    except CircuitError as error:
        with pytest.raises(CircuitError) as raised:
            parser.parse(text, name)
        assert str(raised.value) == str(error)
        return
    assert parser.parse(text, name) == expected


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_parse_gives_the_tree_paths_ast_or_its_error(name: str) -> None:
    same_as_the_tree(CORPUS[name], name)


# generated text: the fuzzer's structured programs and expressions, token soup in a body, mutated examples
GENERATED = st.one_of(PROGRAM, EXPR.map(lambda e: f"circuit A {{\n  let a = {e}\n  a -> P : dense\n}}\n"),
                      wrapped(vocabulary_text(max_size=25)), mutated_model(DOC_EXAMPLES), mutated_model())


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(GENERATED)
def test_generated_text_parses_as_through_the_tree(text: str) -> None:
    same_as_the_tree(text, "generated.circuit")


def test_the_corpus_covers_the_examples() -> None:
    assert len(SHIPPED) >= 20 and len(DOCUMENTED) >= 100


@pytest.mark.parametrize("depth", [94, 95, 96, 97])
def test_nesting_at_the_limit_is_decided_as_the_tree_decides(depth: int) -> None:
    text = "circuit C {\n  let a = " + "[" * depth + "1" + "]" * depth + "\n}\n"
    try:
        expected: object = parser.parse_via_tree(text)
    except CircuitError as error:
        expected = str(error)
    try:
        got: object = parser.parse(text)
    except CircuitError as error:
        got = str(error)
    assert got == expected


class _Counted:
    """Counts the parse trees lark builds (its `Tree` constructor)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.trees = 0
        original = lark.Tree.__init__

        def counting(tree: lark.Tree, *args: object, **kwargs: object) -> None:
            self.trees += 1
            original(tree, *args, **kwargs)

        monkeypatch.setattr(lark.Tree, "__init__", counting)


def test_well_formed_text_and_syntax_errors_build_no_parse_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    counted = _Counted(monkeypatch)
    parser.parse(POSITIONS["absent-parts"], "no-tree.circuit")
    assert counted.trees == 0
    with pytest.raises(CircuitError, match="E001"):  # a syntax error is worded where the parser stopped
        parser.parse("circuit C {\n  let = 1\n}\n", "no-tree.circuit")
    assert counted.trees == 0
    with pytest.raises(CircuitError, match="E006"):
        parser.parse("circuit C {\n  input x: voltage % time\n}\n", "no-tree.circuit")
    assert counted.trees > 0  # a malformed construct: the tree path words it
