"""The canonical layout of .circuit source: `format_source(text)` returns the text as `circuitdsl fmt` writes it.

The source is parsed with the grammar (so only valid files are formatted, and every token knows the rule it
belongs to); comments and blank lines are read back from the text between tokens.  The layout:

- two spaces per block level; `{` ends its header line, `}` stands on its own line (`} else {` stays together);
- one space around `=`, arrows, binary operators, `..`, `over` and keywords and after commas; none inside
  brackets, before a call's or subscript's `(`/`[`, around `.`, after a unary sign, around a slice's `:`, nor
  in a derivative `dv/dt`; `name: type` in signatures and ports, ` : ` elsewhere;
- line breaks inside brackets are kept, a continuation line aligned after its bracket (or indented 4 when the
  bracket ends its line); a backslash continuation is joined; at most one blank line in a row, none at the
  start or end of a block;
- as the models are written: consecutive `param`s align their `:`, consecutive projections their options'
  `:`, `input` is padded to `output`'s width next to an `output`, and trailing comments of a paragraph line up;
- docstrings, strings, numbers and comments are kept character for character, so the elaborated circuit is
  unchanged (tested on every model and library file).

Lines are never wrapped: a line is as long as its author made it.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from lark import Token, Tree

from circuitdsl.parser import concrete_parser, parse

INDENT = "  "
HANGING = 4  # a continuation after a bracket that ends its line
MAX_LINE = 120  # trailing comments are not aligned past this column
ALIGN_SPREAD = 20  # a group whose heads differ by more is not aligned (one long shape would push the rest away)

_OPEN = {"LPAR": "RPAR", "LSQB": "RSQB", "LBRACE": "RBRACE"}
_TIGHT_OPEN = {"call_args", "signature", "subscript", "shape"}  # `f(`, `neuron N(`, `x[`, `pop[axis = n]`
_SLICES = {"slice", "axis_slice"}
_TYPED = {"arg_decl", "port"}  # `tau: time`, `input I: current`: a name and its type
_ALIGNED = {"param_decl", "projection"}  # statements whose ` : ` lines up with their neighbours'
_IO = {"input_decl", "input_projection", "output_decl"}
_ESCAPED_NEWLINE = re.compile(r"\\[\t \f]*\r?\n")


@dataclass
class _Tok:
    """A token with the rule it belongs to and the statement it is part of."""

    text: str
    type: str
    rule: str
    start: int
    end: int
    stmt: str = ""
    stmt_id: int = -1
    tight: bool = False  # `/` of a derivative `dv/dt`

    @property
    def block_brace(self) -> bool:
        return self.type in ("LBRACE", "RBRACE") and self.rule == "block"


@dataclass
class _Gap:
    """What lies between two tokens: a comment ending the first one's line, own-line comments (each with the
    blank lines before it), line breaks, and blank lines before the second token."""

    trailing: str | None = None
    comments: list[tuple[int, str]] = field(default_factory=list)
    newlines: int = 0
    blanks: int = 0


@dataclass
class _Line:
    indent: int
    depth: int = 0  # block level: trailing comments align within one block
    text: str = ""
    comment: str | None = None
    blank_before: bool = False
    stmt: str = ""
    stmt_id: int = -1
    split: int | None = None  # where the aligned ` : ` (or a keyword argument's ` = `) starts
    keyword: bool = False  # a continuation line `name = value,` in a call that leaves no bracket open
    open_brackets: int = 0  # brackets open where the line starts

    @property
    def width(self) -> int:
        """Columns of the last physical line (a docstring spans several)."""
        last = self.text.rsplit("\n", 1)
        return len(last[-1]) + (self.indent if len(last) == 1 else 0)


def format_source(text: str, file: str = "<string>") -> str:
    """The canonical layout of `text`; raises CircuitError (as `parse` does) if it is not a valid .circuit file."""
    text = text.replace("\r\n", "\n")
    parse(text, file)
    tokens = list(_tokens(concrete_parser().parse(text)))
    if not tokens:
        return _comments_only(text)
    gaps = [_gap("\n" + text[: tokens[0].start])]
    gaps += [_gap(text[a.end : b.start]) for a, b in zip(tokens, tokens[1:])]
    tail = _gap(text[tokens[-1].end :] + "\n")
    lines = _Layout(tokens, gaps).run(tail)
    _align(lines)
    return _render(lines)


def _comments_only(text: str) -> str:
    gap = _gap("\n" + text + "\n")
    lines = [_Line(0, 0, comment, blank_before=blanks > 0 and number > 0)
             for number, (blanks, comment) in enumerate(gap.comments)]
    return _render(lines)


def _tokens(tree: Tree) -> Iterator[_Tok]:
    """Every token in source order, with its rule, its statement, and whether it is a derivative's `/`."""
    counter = itertools.count()

    def walk(node: Tree, stmt: str, stmt_id: int, tight: bool) -> Iterator[_Tok]:
        for index, child in enumerate(node.children):
            if isinstance(child, Tree):
                child_stmt, child_id = stmt, stmt_id
                if node.data in ("start", "block"):
                    child_stmt, child_id = str(child.data), next(counter)
                derivative = node.data == "assign" and index == 0 and _is_derivative(child)
                yield from walk(child, child_stmt, child_id, derivative)
            elif isinstance(child, Token) and child.type != "_NL":
                yield _Tok(str(child), child.type, str(node.data), child.start_pos or 0, child.end_pos or 0,
                           stmt, stmt_id, tight and child.type == "MUL_OP")

    yield from walk(tree, "", -1, False)


def _is_derivative(node: Tree) -> bool:
    """`dv/dt` on the left of `=`: a name over a name."""
    return (node.data == "binary" and len(node.children) == 3 and str(node.children[1]) == "/"
            and all(isinstance(c, Tree) and c.data == "name" for c in (node.children[0], node.children[2])))


def _gap(text: str) -> _Gap:
    text = _ESCAPED_NEWLINE.sub(" ", text)
    lines = text.split("\n")
    gap = _Gap(newlines=len(lines) - 1)
    first = lines[0].strip()
    gap.trailing = first if first.startswith("#") else None
    blanks = 0
    for line in lines[1:-1]:
        stripped = line.strip()
        if stripped.startswith("#"):
            gap.comments.append((blanks, stripped))
            blanks = 0
        else:
            blanks += 1
    gap.blanks = blanks
    return gap


class _Layout:
    """Lays the tokens out line by line: indentation, breaks, spaces; alignment comes after."""

    def __init__(self, tokens: list[_Tok], gaps: list[_Gap]) -> None:
        self.tokens, self.gaps = tokens, gaps
        self.lines: list[_Line] = []
        self.depth = 0
        self.brackets: list[tuple[int, int]] = []  # per open bracket: continuation column, closing line's indent

    def run(self, tail: _Gap) -> list[_Line]:
        for index, token in enumerate(self.tokens):
            self._place(index, token)
        if tail.trailing:
            self.lines[-1].comment = tail.trailing
        self._comment_lines(tail.comments, self.depth * len(INDENT))
        return self.lines

    def _place(self, index: int, token: _Tok) -> None:
        gap = self.gaps[index]
        previous = self.tokens[index - 1] if index else None
        if token.block_brace and token.type == "RBRACE":
            self.depth -= 1
        if previous is None:
            self._comment_lines(gap.comments, 0)
            self._new_line(0, token, blank=gap.blanks > 0)
        elif self.brackets:
            self._continue(index, gap, previous, token)
        else:
            self._next_statement(gap, previous, token)
        self._append(index, previous, token)
        if token.block_brace and token.type == "LBRACE":
            self.depth += 1

    def _next_statement(self, gap: _Gap, previous: _Tok, token: _Tok) -> None:
        opened = previous.block_brace and previous.type == "LBRACE"
        closing = token.block_brace and token.type == "RBRACE"
        if gap.trailing:
            self.lines[-1].comment = gap.trailing
        if not (gap.newlines or (opened != closing)):
            return
        indent = self.depth * len(INDENT)
        self._comment_lines(gap.comments, indent, first_blank=not opened)
        blank = gap.blanks > 0 and not opened and not closing
        self._new_line(indent, token, blank)

    def _continue(self, index: int, gap: _Gap, previous: _Tok, token: _Tok) -> None:
        """Inside ( ) or [ ]: a line break written there is kept, aligned after the innermost bracket."""
        if gap.trailing:
            self.lines[-1].comment = gap.trailing
        if not gap.newlines:
            return
        column, closing_indent = self.brackets[-1]
        indent = closing_indent if token.type in _OPEN.values() else column
        self._comment_lines(gap.comments, indent, first_blank=False, blanks=False)
        self._new_line(indent, token, blank=False)
        following = self.tokens[index + 1] if index + 1 < len(self.tokens) else None
        self.lines[-1].keyword = token.type == "NAME" and following is not None and following.type == "EQUAL" \
            and following.rule == "keyword"

    def _comment_lines(self, comments: list[tuple[int, str]], indent: int, first_blank: bool = True,
                       blanks: bool = True) -> None:
        for number, (blank_lines, comment) in enumerate(comments):
            blank = blanks and blank_lines > 0 and (first_blank or number > 0) and bool(self.lines)
            self.lines.append(_Line(indent, self.depth, comment, blank_before=blank))

    def _new_line(self, indent: int, token: _Tok, blank: bool) -> None:
        if self.lines and self.lines[-1].keyword and len(self.brackets) > self.lines[-1].open_brackets:
            self.lines[-1].keyword = False  # it opened a bracket that goes on: padding would shift what follows
        self.lines.append(_Line(indent, self.depth, blank_before=blank and bool(self.lines), stmt=token.stmt,
                                stmt_id=token.stmt_id, open_brackets=len(self.brackets)))

    def _append(self, index: int, previous: _Tok | None, token: _Tok) -> None:
        line = self.lines[-1]
        if line.text and previous is not None and _space(previous, token):
            line.text += " "
        if token.type == "COLON" and token.rule in _ALIGNED and token.rule == line.stmt and line.split is None:
            line.split = len(line.text.rstrip())
        if token.type == "EQUAL" and token.rule == "keyword" and line.keyword and line.split is None:
            line.split = len(line.text.rstrip())
        if token.type in _OPEN.values() and not token.block_brace and self.brackets:
            self.brackets.pop()
        line.text += token.text
        if token.type in _OPEN and not token.block_brace:
            hanging = index + 1 < len(self.gaps) and self.gaps[index + 1].newlines > 0
            self.brackets.append((line.indent + HANGING if hanging else line.width, line.indent))


def _space(previous: _Tok, token: _Tok) -> bool:
    """Whether one space separates two tokens on a line."""
    if previous.type in _OPEN and not previous.block_brace:
        return False
    if token.type in _OPEN.values() and not token.block_brace:
        return False
    if token.type == "COMMA" or "DOT" in (token.type, previous.type):
        return False
    if token.type in ("LPAR", "LSQB") and token.rule in _TIGHT_OPEN:
        return False
    if previous.type == "ADD_OP" and previous.rule == "unary":
        return False
    if "COLON" in (token.type, previous.type):
        colon = token if token.type == "COLON" else previous
        if colon.rule in _SLICES or (token.type == "COLON" and colon.rule in _TYPED):
            return False
    return not (token.tight or previous.tight)


def _align(lines: list[_Line]) -> None:
    """Pad the heads of consecutive one-line params and projections and of keyword arguments on continuation
    lines, `input` next to `output`, and trailing comments."""
    single = _single_line_statements(lines)

    def head(line: _Line) -> object:
        if line.split is None or not (line.keyword or line.stmt_id in single):
            return None
        return line.keyword or line.stmt, line.indent

    for group in _groups(lines, head):
        _pad_heads(group)
    for group in _groups(lines, lambda line: line.indent if line.stmt in _IO and line.stmt_id in single else None):
        if len(group) > 1 and any(line.text.startswith("output") for line in group):
            for line in group:
                if line.text.startswith("input "):
                    line.text = "input  " + line.text[len("input "):]
    for paragraph in _groups(lines, lambda line: line.depth):
        commented = [line for line in paragraph if line.comment is not None and line.text]
        column = max((line.width for line in commented), default=0) + 2
        for line in commented:
            spaces = column - line.width if column + len(line.comment or "") <= MAX_LINE else 2
            line.comment = " " * spaces + (line.comment or "")


def _single_line_statements(lines: list[_Line]) -> set[int]:
    counts: dict[int, int] = {}
    for line in lines:
        if line.text and "\n" not in line.text:
            counts[line.stmt_id] = counts.get(line.stmt_id, 0) + 1
    multi = {line.stmt_id for line in lines if "\n" in line.text}
    return {stmt_id for stmt_id, count in counts.items() if count == 1 and stmt_id not in multi}


def _groups(lines: list[_Line], key: Callable[[_Line], object]) -> Iterator[list[_Line]]:
    """Runs of consecutive lines with the same non-None key, a blank line ending a run."""
    group: list[_Line] = []
    for line in lines:
        value = key(line)
        if group and (line.blank_before or value is None or value != key(group[0])):
            yield group
            group = []
        if value is not None:
            group.append(line)
    if group:
        yield group


def _pad_heads(lines: list[_Line]) -> None:
    heads = [line.split or 0 for line in lines]
    if len(lines) < 2 or max(heads) - min(heads) > ALIGN_SPREAD:
        return
    width = max(heads)
    for line in lines:
        split = line.split or 0
        line.text = line.text[:split].ljust(width) + line.text[split:]


def _render(lines: list[_Line]) -> str:
    out: list[str] = []
    for line in lines:
        if line.blank_before:
            out.append("")
        text = " " * line.indent + line.text
        if line.comment is not None:
            text = text + line.comment if line.text else " " * line.indent + line.comment.strip()
        out.append(text.rstrip())
    return "\n".join(out) + "\n" if out else ""
