"""Syntax highlighting of .circuit files for Pygments (`pygmentize -l circuit`, Sphinx, MkDocs, Jupyter).

Registered as the Pygments lexer `circuit` through the `pygments.lexers` entry point of pyproject.toml (the
`highlight` extra installs Pygments).  The keyword list is the grammar's (a test compares them); a number
followed by a name is a quantity, its unit highlighted; the element-wise functions of the language and its
operations over named axes are builtins.
"""

from __future__ import annotations

from typing import ClassVar

from pygments.lexer import RegexLexer, bygroups, words
from pygments.token import Comment, Keyword, Name, Number, Operator, Punctuation, String, Whitespace

from circuitdsl.functions import FUNCTIONS

AXIS_OPERATIONS = ("sum", "mean", "softmax", "rename", "transpose", "split", "merge")  # elaborate/axis_ops.py; max

# The grammar's keywords (grammars/circuit.lark), by role.
DECLARATIONS = ("neuron", "circuit")
STATEMENTS = ("import", "as", "let", "state", "spike", "input", "output", "param", "population", "from", "for",
              "in", "if", "else", "over")
OPERATOR_WORDS = ("and", "or", "not")
CONSTANTS = ("true", "false")
KEYWORDS = DECLARATIONS + STATEMENTS + OPERATOR_WORDS + CONSTANTS

_NAME = "[A-Za-z_\u00b5\u03bc\u03a9\u2126][A-Za-z_0-9\u00b5\u03bc\u03a9\u2126]*"  # µ and Ω, as the grammar
_NUMBER = r"\d+(?:\.\d+)?(?:[eE][+-]?\d+)?"
_UNIT = rf"(?!(?:{'|'.join(KEYWORDS)})\b){_NAME}"  # `10 ms`: a number and its unit (never `1 else`)


class CircuitLexer(RegexLexer):
    """Pygments lexer for circuitdsl's .circuit language."""

    name = "circuitdsl"
    aliases: ClassVar[list[str]] = ["circuit", "circuitdsl"]
    filenames: ClassVar[list[str]] = ["*.circuit"]
    mimetypes: ClassVar[list[str]] = ["text/x-circuit"]
    url = "https://github.com/circuitdsl/circuitdsl"

    tokens: ClassVar[dict[str, list]] = {
        "root": [
            (r"[\t \f]+", Whitespace),
            (r"\\[\t \f]*\r?\n", Whitespace),
            (r"\r?\n", Whitespace),
            (r"#[^\n]*", Comment.Single),
            (r'"""(?:.|\n)*?"""', String.Doc),
            (r'"(?:[^"\\\n]|\\.)*"', String),
            (rf"\b(neuron|circuit)(\s+)({_NAME})", bygroups(Keyword.Declaration, Whitespace, Name.Class)),
            (words(STATEMENTS, suffix=r"\b"), Keyword),
            (words(OPERATOR_WORDS, suffix=r"\b"), Operator.Word),
            (words(CONSTANTS, suffix=r"\b"), Keyword.Constant),
            (rf"({_NUMBER})([\t ]*)({_UNIT})", bygroups(Number, Whitespace, Name.Constant)),
            (_NUMBER, Number),
            (words(tuple(FUNCTIONS) + AXIS_OPERATIONS, suffix=r"\b(?=\s*\()"), Name.Builtin),
            (rf"{_NAME}(?=\s*\()", Name.Function),
            (_NAME, Name),
            (r"<->|->|-\|", Operator),
            (r"\.\.|\*\*|==|!=|<=|>=|[<>+\-*/%=\u00b7@]", Operator),  # · and @: a contraction
            (r"[()\[\]{},:.]", Punctuation),
        ],
    }

