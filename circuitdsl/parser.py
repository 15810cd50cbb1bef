"""Text -> AST: the lark grammar in grammars/circuit.lark, loaded once, and syntax errors in words.

Entry point: `parse(text, file)` returns an `ast.Module` or raises `CircuitError` (codes E001-E006).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import sys
from collections.abc import Callable, Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from lark import Lark, Token, Tree
from lark import __version__ as lark_version
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from circuitdsl import ast, cache, reduce_to_ast
from circuitdsl.bulk import gc_paused
from circuitdsl.errors import CircuitError, Reporter, Span

_OPENERS = {"LPAR": "RPAR", "LSQB": "RSQB", "LBRACE": "RBRACE"}
_CLOSERS = {v: k for k, v in _OPENERS.items()}

# What each terminal is, in words a scientist reads (never `RPAR` or `__ANON_0`).
_WORDS = {
    "NAME": "a name",
    "NUMBER": "a number",
    "STRING": "a string",
    "LONG_STRING": "a docstring",
    "_NL": "a new line",
    "$END": "the end of the file",
    "ARROW": "an arrow ('->', '-|' or '<->')",
    "COMPARE": "a comparison",
    "ADD_OP": "'+' or '-'",
    "MUL_OP": "'*', '/' or '%'",
    "CONTRACT": "'·' or '@'",
}
# Terminals that can start an expression; when all of them are expected we say "an expression".
_EXPRESSION_STARTERS = {"NAME", "NUMBER", "STRING", "LONG_STRING", "LPAR", "LSQB", "LBRACE", "ADD_OP", "TRUE",
                        "FALSE", "NOT"}
# What may follow a complete expression; when '+' and '*' are both expected we say "an operator" once.
_OPERATOR_WORDS = {"'+' or '-'", "'*', '/' or '%'", "'·' or '@'", "'**'", "a comparison", "'and'", "'or'", "'if'",
                   "'.'", "'('", "'['"}


def grammar_text() -> str:
    """The grammar file: shipped inside the package when installed, else read from the checkout."""
    packaged = resources.files("circuitdsl").joinpath("grammars/circuit.lark")
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    return (Path(__file__).resolve().parent.parent / "grammars" / "circuit.lark").read_text(encoding="utf-8")


class _Newlines:
    """Post-lexer: drops newlines inside ( ) and [ ] and remembers open brackets for error messages."""

    always_accept = ("_NL",)

    def __init__(self) -> None:
        self.open: list[Token] = []

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        opened: list[Token] = []
        self.open = opened
        for token in stream:
            kind = token.type
            if kind == "_NL":
                if opened and opened[-1].type != "LBRACE":
                    continue
            elif kind in _OPENERS:
                opened.append(token)
            elif kind in _CLOSERS and opened and opened[-1].type == _CLOSERS[kind]:
                opened.pop()
            yield token


@functools.cache
def _parser() -> tuple[Lark, _Newlines]:
    """The parser, built once per process; its tables come from the per-user cache when they are there (lark
    checks the grammar's hash stored in the file and rebuilds, then rewrites it, when the grammar changed)."""
    newlines = _Newlines()
    grammar = grammar_text()
    cache = cache_file(grammar)
    lark = Lark(grammar, parser="lalr", lexer="contextual", propagate_positions=True, maybe_placeholders=True,
                postlex=newlines, cache=False if cache is None else str(cache))
    return lark, newlines


def cache_file(grammar: str) -> Path | None:
    """Where the built parser is cached (circuitdsl/cache.py): one file per grammar, lark and Python version, or
    None (build without a cache).  The cache holds a pickle, so it is never read from a place others could
    write to."""
    key = hashlib.sha256(f"{grammar}\0{lark_version}\0{sys.version_info[:2]}".encode()).hexdigest()[:24]
    return cache.file(f"parser-{key}.lark")


@functools.cache
def concrete_parser() -> Lark:
    """The same grammar keeping every token (brackets, keywords, commas) in the tree, for tools that lay out
    the source as written (the formatter); parse with `parse` first, for syntax errors in words."""
    return Lark(grammar_text(), parser="lalr", lexer="contextual", propagate_positions=True,
                maybe_placeholders=True, keep_all_tokens=True, postlex=_Newlines())


@functools.cache
def _terminal_words() -> dict[str, str]:
    lark, _ = _parser()
    words = dict(_WORDS)
    for terminal in lark.terminals:
        if terminal.name not in words and terminal.pattern.type == "str":
            words[terminal.name] = f"'{terminal.pattern.value}'"
    return words


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def describe_expected(expected: set[str]) -> str:
    """`{RPAR, COMMA}` -> "')' or ','"; the many starters of an expression become "an expression"."""
    names = set(expected)
    words = _terminal_words()
    phrases: list[str] = []
    if {"NAME", "NUMBER", "LPAR"} <= names:
        names -= _EXPRESSION_STARTERS
        phrases.append("an expression")
    operators = {"ADD_OP", "MUL_OP"} <= names
    if operators:
        names = {n for n in names if words.get(n, n) not in _OPERATOR_WORDS}
    phrases += sorted(words.get(n, n.lower()) for n in names)
    phrases += ["an operator"] * operators
    return _join(phrases) if phrases else "something else"


def _describe_token(token: Token) -> str:
    if token.type == "$END":
        return "the end of the file"
    if token.type == "_NL":
        return "end of line"
    return f"'{token.value}'"


def _token_span(file: str, token: Token) -> Span:
    line, column = token.line or 1, token.column or 1
    end_line = token.end_line or line
    end_column = token.end_column or column + max(len(str(token.value)), 1)
    if token.type == "_NL":  # point at the end of the line, not at the next one
        end_line, end_column = line, column + 1
    return Span(file=file, line=line, column=column, end_line=end_line, end_column=end_column)


def _syntax_error(error: UnexpectedInput, text: str, file: str, open_brackets: list[Token]) -> CircuitError:
    reporter = Reporter(sources={file: text})
    innermost = open_brackets[-1] if open_brackets else None
    if isinstance(error, UnexpectedCharacters):
        assert error.pos_in_stream is not None  # a lexer error always knows where the lexer stopped
        char = text[error.pos_in_stream] if error.pos_in_stream < len(text) else ""
        span = Span(file=file, line=error.line, column=error.column, end_line=error.line, end_column=error.column + 1)
        if char == '"':
            reporter.error("E003", "unterminated string", span, ['a string starts and ends with " on one line'])
        else:
            reporter.error("E003", f"unexpected character {char!r}", span, [_hint_for_character(char)])
        return CircuitError(reporter.diagnostics)
    token = error.token if isinstance(error, UnexpectedToken) else Token("$END", "")
    expected = _accepted(error) if isinstance(error, UnexpectedToken) else set()
    at_end = token.type == "$END" or isinstance(error, UnexpectedEOF)
    if innermost is not None:
        closer = _OPENERS[innermost.type]
        later = at_end or (token.line or 0) > (innermost.line or 0)
        if innermost.type == "LBRACE" and not at_end:  # newlines count in braces: a missing '}' shows at a line start
            later = later and not text.split("\n")[(token.line or 1) - 1][: (token.column or 1) - 1].strip()
        if later and (closer in expected or at_end):
            span = _token_span(file, innermost)
            where = "the end of the file" if at_end else f"{_describe_token(token)} on line {token.line}"
            notes = [f"expected {_terminal_words()[closer]} before {where}"]
            reporter.error("E002", f"unclosed '{innermost.value}'", span, notes)
            return CircuitError(reporter.diagnostics)
    if at_end:
        line_count = text.count("\n") + 1
        last = text.split("\n")[-1]  # lines as the parser counts them (splitlines also splits at \f, \u2028...)
        span = Span(file=file, line=line_count, column=len(last) + 1, end_line=line_count, end_column=len(last) + 2)
        reporter.error("E004", "unexpected end of the file", span, [f"expected {describe_expected(expected)}"])
        return CircuitError(reporter.diagnostics)
    notes = [f"expected {describe_expected(expected)}"]
    if token.type == "_NL" and innermost is not None and innermost.type != "LBRACE":
        notes.append(f"'{innermost.value}' opened on line {innermost.line} is still open")
    reporter.error("E001", f"unexpected {_describe_token(token)}", _token_span(file, token), notes)
    return CircuitError(reporter.diagnostics)


def _accepted(error: UnexpectedToken) -> set[str]:
    """The terminals the parser would take here: lark's `accepts` is exact where `expected` is LALR-merged."""
    try:
        accepts = set(error.accepts)
    except (LarkError, LookupError, TypeError, AttributeError):  # no replay possible: fall back to the merged set
        accepts = set()
    return accepts or set(error.expected)


def _hint_for_character(char: str) -> str | None:
    hints = {";": "statements end at the end of a line; no ';' is needed",
             "'": 'strings use double quotes: "like this"',
             "&": "write 'and'", "|": "write 'or'; '-|' is an inhibitory projection", "!": "write 'not'",
             "@": "'@' has no meaning here", "$": "'$' has no meaning here", "?": "write 'a if cond else b'"}
    return hints.get(char)


def parse(text: str, file: str = "<string>") -> ast.Module:
    """Parse the text of one .circuit file into an AST, or raise CircuitError.

    The last few results are kept: the AST is immutable, so a library module imported again, or a file that
    `check` loads and then elaborates, is parsed once per process."""
    with gc_paused():
        return _parse(text, file)


@functools.lru_cache(maxsize=16)
def _parse(text: str, file: str) -> ast.Module:
    """The AST built as the parser reduces each rule (circuitdsl/reduce_to_ast.py).  A syntax error stops both
    ways at the same token in the same parser state, so it is worded here; text with any other error is parsed
    again through lark's tree, which finds and words the first error (a syntax error further on comes first)."""
    lark, newlines = _parser()
    try:
        module: ast.Module = reduce_to_ast.parse(lark, text, _ToAst(file, text), MAX_NESTING)
        return module
    except UnexpectedInput as error:
        raise _syntax_error(error, text, file, list(newlines.open)) from None
    except (CircuitError, reduce_to_ast.Refused):
        pass
    return parse_via_tree(text, file)


def parse_via_tree(text: str, file: str = "<string>") -> ast.Module:
    """The AST through lark's parse tree (slower, but it sees the whole tree before building): where syntax
    errors, malformed constructs and too deep nesting are found and worded; `parse` gives the same AST."""
    lark, newlines = _parser()
    try:
        tree = lark.parse(text)
    except UnexpectedInput as error:
        raise _syntax_error(error, text, file, list(newlines.open)) from None
    return _ToAst(file, text).build(tree)


# Nesting of expressions and blocks, in parse-tree levels: elaboration recurses once per level, so a
# 500-term `a + b + ...` or 300 nested `if`s would otherwise end in Python's RecursionError.
MAX_NESTING = 100


def _too_deep(node: Tree, text: str, file: str) -> CircuitError:
    """E006 at a part of the tree nested deeper than MAX_NESTING."""
    span = Span(file=file, line=1, column=1, end_line=1, end_column=2) if node.meta.empty else _span(file, node.meta)
    return Reporter(sources={file: text}).fail(
        "E006", f"expressions or blocks nested more than {MAX_NESTING} levels deep", span,
        ["split a long expression into parts named with 'let'"])


def _span(file: str, meta: Any) -> Span:
    return Span(file=file, line=meta.line, column=meta.column, end_line=meta.end_line, end_column=meta.end_column)


def _unquote(text: str) -> str:
    if text.startswith('"""'):
        return inspect.cleandoc(text[3:-3])
    body = text[1:-1]
    out: list[str] = []
    escapes = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}
    i = 0
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body):
            out.append(escapes.get(body[i + 1], "\\" + body[i + 1]))
            i += 2
        else:
            out.append(body[i])
            i += 1
    return "".join(out)


class _ToAst:
    """Builds AST nodes rule by rule; method names are the grammar's rule names and aliases, each called with
    the rule's position (lark's meta) and its children already built."""

    def __init__(self, file: str, text: str) -> None:
        self.file = file
        self.text = text

    def build(self, tree: Tree) -> ast.Module:
        """The AST of a parse tree, bottom-up without recursion (one pass, no visitor machinery: this is most of
        the time a parse takes after lark's); a tree nested deeper than MAX_NESTING is refused first."""
        methods: dict[str, Callable[[Any, list[Any]], Any]] = {}
        results: list[Any] = []
        stack: list[tuple[Any, int, bool]] = [(tree, 1, False)]
        while stack:
            node, depth, built = stack.pop()
            if not isinstance(node, Tree):  # a token, or None for an absent optional part
                results.append(node)
            elif not built:
                if depth > MAX_NESTING:
                    raise _too_deep(node, self.text, self.file)
                stack.append((node, depth, True))
                stack.extend((child, depth + 1, False) for child in reversed(node.children))
            else:
                method = methods.get(node.data) or methods.setdefault(node.data, getattr(self, node.data))
                start = len(results) - len(node.children)
                value = method(node.meta, results[start:])
                del results[start:]
                results.append(value)
        return results[0]

    def _s(self, meta: Any) -> Span:
        return _span(self.file, meta)

    def _ident(self, token: Token) -> ast.Ident:
        return ast.Ident(_token_span(self.file, token), str(token))

    def _fail(self, code: str, message: str, span: Span, notes: list[str]) -> CircuitError:
        return Reporter(sources={self.file: self.text}).fail(code, message, span, notes)

    # ---- file ------------------------------------------------------------------------------------
    def start(self, meta: Any, items: list[Any]) -> ast.Module:
        span = self._s(meta) if not meta.empty else Span(file=self.file, line=1, column=1, end_line=1, end_column=1)
        return ast.Module(span, self.file, tuple(i for i in items if i is not None))

    def import_file(self, meta: Any, c: list[Any]) -> ast.ImportFile:
        path = ast.String(_token_span(self.file, c[0]), _unquote(c[0]))
        return ast.ImportFile(self._s(meta), path, self._ident(c[1]) if c[1] else None)

    def import_library(self, meta: Any, c: list[Any]) -> ast.ImportLibrary:
        return ast.ImportLibrary(self._s(meta), self._ident(c[0]), self._ident(c[1]) if c[1] else None)

    def _definition(self, keyword: str, meta: Any, c: list[Any]) -> ast.Definition:
        params = c[1] if c[1] is not None else ()
        return ast.Definition(self._s(meta), keyword, self._ident(c[0]), params, c[2])

    def neuron_def(self, meta: Any, c: list[Any]) -> ast.Definition:
        return self._definition("neuron", meta, c)

    def circuit_def(self, meta: Any, c: list[Any]) -> ast.Definition:
        return self._definition("circuit", meta, c)

    def signature(self, meta: Any, c: list[Any]) -> tuple[ast.ArgDecl, ...]:
        return tuple(x for x in c if x is not None)

    def arg_decl(self, meta: Any, c: list[Any]) -> ast.ArgDecl:
        return ast.ArgDecl(self._s(meta), self._ident(c[0]), c[1], c[2])

    def type_expr(self, meta: Any, c: list[Any]) -> ast.Ident | ast.Dimension:
        """A type name, or a dimension combined from names with * / and whole powers (`voltage / time`)."""
        factors = [c[0]]
        for op, (ident, exponent) in zip(c[1::2], c[2::2], strict=True):
            if str(op) == "%":
                raise self._fail("E006", "a dimension combines names with * and /", _token_span(self.file, op),
                                 ["input I: voltage / time"])
            factors.append((ident, -exponent if str(op) == "/" else exponent))
        if len(factors) == 1 and factors[0][1] == 1:
            return factors[0][0]
        return ast.Dimension(self._s(meta), tuple(factors))

    def type_factor(self, meta: Any, c: list[Any]) -> tuple[ast.Ident, int]:
        exponent = c[2]
        if exponent is not None and ("." in str(exponent) or "e" in str(exponent).lower()):
            raise self._fail("E006", "a dimension's power is a whole number", _token_span(self.file, exponent),
                             ["g: conductance / length ** 2"])
        power = 1 if exponent is None else int(str(exponent))
        return self._ident(c[0]), -power if c[1] is not None and str(c[1]) == "-" else power

    def block(self, meta: Any, c: list[Any]) -> tuple[Any, ...]:
        return tuple(x for x in c if x is not None)

    # ---- statements ------------------------------------------------------------------------------
    def docstring(self, meta: Any, c: list[Any]) -> ast.Docstring:
        return ast.Docstring(self._s(meta), _unquote(c[0]))

    def let_stmt(self, meta: Any, c: list[Any]) -> ast.Let:
        return ast.Let(self._s(meta), self._ident(c[0]), c[1])

    def state_decl(self, meta: Any, c: list[Any]) -> ast.StateDecl:
        return ast.StateDecl(self._s(meta), self._ident(c[0]), c[2], c[1])

    def spike(self, meta: Any, c: list[Any]) -> ast.Spike:
        return ast.Spike(self._s(meta), self._ident(c[0]), c[1], c[2] or ())

    def port(self, meta: Any, c: list[Any]) -> ast.Port:
        return ast.Port(self._s(meta), self._ident(c[0]), c[1], c[2], c[3])

    def input_decl(self, meta: Any, c: list[Any]) -> ast.InputDecl:
        return ast.InputDecl(self._s(meta), tuple(c))

    def output_decl(self, meta: Any, c: list[Any]) -> ast.OutputDecl:
        return ast.OutputDecl(self._s(meta), tuple(c))

    def input_projection(self, meta: Any, c: list[Any]) -> ast.InputProjection:
        return ast.InputProjection(self._s(meta), c[0], str(c[1]), c[2], c[3] or ())

    def param_decl(self, meta: Any, c: list[Any]) -> ast.ParamDecl:
        shape = c.pop(1)  # the optional shape after the first name (a neuron's private weights)
        names = [x for x in c if isinstance(x, Token)]
        rest = c[len(names):]
        options = tuple(self._as_arg(x) for x in rest[2:])
        return ast.ParamDecl(self._s(meta), tuple(self._ident(n) for n in names), rest[0], rest[1], options, shape)

    def population_decl(self, meta: Any, c: list[Any]) -> ast.PopulationDecl:
        return ast.PopulationDecl(self._s(meta), tuple(c[:-2]), c[-2], c[-1])

    def population_source(self, meta: Any, c: list[Any]) -> ast.Expr:
        return c[0]

    def pop_name(self, meta: Any, c: list[Any]) -> ast.PopName:
        return ast.PopName(self._s(meta), self._ident(c[0]), c[1])

    def model_ref(self, meta: Any, c: list[Any]) -> ast.ModelRef:
        return ast.ModelRef(self._s(meta), c[0], c[1])

    def dotted(self, meta: Any, c: list[Any]) -> tuple[ast.Ident, ...]:
        return tuple(self._ident(t) for t in c)

    def shape(self, meta: Any, c: list[Any]) -> tuple[ast.Axis, ...]:
        return tuple(c)

    def named_axis(self, meta: Any, c: list[Any]) -> ast.Axis:
        return ast.Axis(self._s(meta), self._ident(c[0]), c[1])

    def unnamed_axis(self, meta: Any, c: list[Any]) -> ast.Axis:
        return ast.Axis(self._s(meta), None, c[0])

    def projection(self, meta: Any, c: list[Any]) -> ast.Projection:
        return ast.Projection(self._s(meta), tuple(c[:-1]), c[-1] or ())

    def arrow_pair(self, meta: Any, c: list[Any]) -> ast.ArrowPair:
        return ast.ArrowPair(self._s(meta), c[0], str(c[1]), c[2])

    def assign(self, meta: Any, c: list[Any]) -> ast.Assign:
        return ast.Assign(self._s(meta), c[0], c[1])

    def _as_arg(self, x: Any) -> ast.Arg:
        return x if isinstance(x, ast.Arg) else ast.Arg(x.span, None, x)

    def options(self, meta: Any, c: list[Any]) -> tuple[ast.Arg, ...]:
        over = c[-1] if isinstance(c[-1], tuple) else ()  # `over` comes last, with its keyword options
        return tuple(self._as_arg(x) for x in c if x is not None and not isinstance(x, tuple)) + over

    def over(self, meta: Any, c: list[Any]) -> tuple[ast.Arg, ...]:
        """`value over x, y` as one option (spanning the value and its axes), then the keyword options after it."""
        axes = tuple(self._ident(t) for t in c[1:] if isinstance(t, Token))
        value = ast.Over(c[0].span.model_copy(update={"end_line": axes[-1].span.end_line,
                                                      "end_column": axes[-1].span.end_column}), c[0], axes)
        return (self._as_arg(value), *(x for x in c[1:] if isinstance(x, ast.Arg)))

    def call_args(self, meta: Any, c: list[Any]) -> tuple[ast.Arg, ...]:
        """The arguments in order; `x over axis, keyword = ...` last gives an `Over` and its keywords."""
        flat = [y for x in c if x is not None for y in (x if isinstance(x, tuple) else (x,))]
        return tuple(self._as_arg(x) for x in flat)

    def keyword(self, meta: Any, c: list[Any]) -> ast.Arg:
        return ast.Arg(self._s(meta), self._ident(c[0]), c[1])

    def for_stmt(self, meta: Any, c: list[Any]) -> ast.For:
        return ast.For(self._s(meta), self._ident(c[0]), c[1], c[2], c[3])

    def if_stmt(self, meta: Any, c: list[Any]) -> ast.If:
        return ast.If(self._s(meta), c[0], c[1], c[2])

    def else_clause(self, meta: Any, c: list[Any]) -> tuple[Any, ...]:
        return (c[0],) if isinstance(c[0], ast.If) else c[0]

    # ---- expressions -----------------------------------------------------------------------------
    def conditional(self, meta: Any, c: list[Any]) -> ast.Conditional:
        return ast.Conditional(self._s(meta), cond=c[1], then=c[0], other=c[2])

    def or_op(self, meta: Any, c: list[Any]) -> ast.Binary:
        return ast.Binary(self._s(meta), "or", c[0], c[1])

    def and_op(self, meta: Any, c: list[Any]) -> ast.Binary:
        return ast.Binary(self._s(meta), "and", c[0], c[1])

    def not_op(self, meta: Any, c: list[Any]) -> ast.Unary:
        return ast.Unary(self._s(meta), "not", c[0])

    def compare(self, meta: Any, c: list[Any]) -> ast.Binary:
        return ast.Binary(self._s(meta), str(c[1]), c[0], c[2])

    def binary(self, meta: Any, c: list[Any]) -> ast.Binary:
        return ast.Binary(self._s(meta), str(c[1]), c[0], c[2])

    def contraction(self, meta: Any, c: list[Any]) -> ast.Contraction:
        return ast.Contraction(self._s(meta), c[0], c[2], tuple(self._ident(t) for t in c[3:]))

    def unary(self, meta: Any, c: list[Any]) -> ast.Unary:
        return ast.Unary(self._s(meta), str(c[0]), c[1])

    def pow(self, meta: Any, c: list[Any]) -> ast.Binary:
        return ast.Binary(self._s(meta), "**", c[0], c[1])

    def subscript(self, meta: Any, c: list[Any]) -> ast.Subscript:
        return ast.Subscript(self._s(meta), c[0], tuple(x for x in c[1:] if x is not None))

    def member(self, meta: Any, c: list[Any]) -> ast.Member:
        return ast.Member(self._s(meta), c[0], self._ident(c[1]))

    def call(self, meta: Any, c: list[Any]) -> ast.Call:
        return ast.Call(self._s(meta), c[0], c[1])

    def number(self, meta: Any, c: list[Any]) -> ast.Number:
        return ast.Number(self._s(meta), _number(c[0]))

    def quantity(self, meta: Any, c: list[Any]) -> ast.Quantity:
        return ast.Quantity(self._s(meta), _number(c[0]), self._ident(c[1]))

    def string(self, meta: Any, c: list[Any]) -> ast.String:
        return ast.String(self._s(meta), _unquote(c[0]))

    def true(self, meta: Any, c: list[Any]) -> ast.Bool:
        return ast.Bool(self._s(meta), True)

    def false(self, meta: Any, c: list[Any]) -> ast.Bool:
        return ast.Bool(self._s(meta), False)

    def name(self, meta: Any, c: list[Any]) -> ast.Name:
        return ast.Name(self._s(meta), str(c[0]))

    def list(self, meta: Any, c: list[Any]) -> ast.ListLit:
        return ast.ListLit(self._s(meta), tuple(x for x in c if x is not None))

    def set(self, meta: Any, c: Sequence[Any]) -> ast.SetLit:
        return ast.SetLit(self._s(meta), tuple(x for x in c if x is not None))

    def slice(self, meta: Any, c: Sequence[Any]) -> ast.Slice:
        parts = (list(c) + [None, None, None])[:3]
        return ast.Slice(self._s(meta), parts[0], parts[1], parts[2])

    def axis_index(self, meta: Any, c: Sequence[Any]) -> ast.AxisIndex:
        return ast.AxisIndex(self._s(meta), self._ident(c[0]), c[1])

    def axis_slice(self, meta: Any, c: Sequence[Any]) -> ast.AxisIndex:
        parts = (list(c[1:]) + [None, None, None])[:3]
        return ast.AxisIndex(self._s(meta), self._ident(c[0]), ast.Slice(self._s(meta), *parts))


def _number(token: Token) -> int | float:
    text = str(token)
    # a literal of thousands of digits is read as a float (it then overflows to inf): int() refuses it
    return float(text) if any(ch in text for ch in ".eE") or len(text) > 4000 else int(text)
