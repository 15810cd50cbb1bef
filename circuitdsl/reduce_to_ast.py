"""Text -> AST without a parse tree: each AST node is built as lark's LALR parser reduces its rule.

lark's own tree building was most of a parse: a `Tree` and its positions at every reduction, and a reduction at
every level of the expression grammar (a bare name passes through eleven `?rule`s).  Here each reduction calls
the AST method of its rule directly (the same methods the tree path of circuitdsl/parser.py calls, so both
give the same AST), with the rule's position computed as lark propagates it: from the start of the first symbol
it covers to the end of the last, brackets and keywords included, a `?rule` that passes its one child through
widening only what that child covers for its parent (the brackets around `(a + b)`), not the child's own span.

Only text without errors goes all the way.  A syntax error stops lark as it would stop it building its tree
(the same token, the same parser state), so the caller words it from here.  At any other problem (a malformed
construct, nesting deeper than the limit) the reduction gives up and the caller parses again through lark's
tree, which finds and words the first error exactly as it always has.

lark drives the parse: its parse table, lexer and post-lexer are the cached parser's own; what this module
swaps in is the table of reduction callbacks of one parse (`ParseConf.callbacks`, lark 1.2 and 1.3).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lark import Lark
from lark.exceptions import UnexpectedInput
from lark.parse_tree_builder import maybe_create_child_filter


class Refused(Exception):
    """This text is for the tree path: it has an error somewhere, or nests deeper than the limit."""


class _Covered:
    """A rule's value on lark's value stack with the source it covers (as lark's `Meta` has it); passed to the
    rule's AST method as its position, so it also answers `empty`."""

    __slots__ = ("column", "end_column", "end_line", "height", "line", "value")
    empty = False
    value: Any

    def __init__(self, line: int, column: int, end_line: int, end_column: int, height: int) -> None:
        self.line, self.column, self.end_line, self.end_column, self.height = line, column, end_line, end_column, height


class _Inlined:
    """The symbols of an `_rule`, spliced into its parent's children by lark's child filter (`.children`)."""

    __slots__ = ("children", "column", "end_column", "end_line", "line")

    def __init__(self, children: list[Any], first: Any, last: Any) -> None:
        self.children = children
        self.line, self.column = first.line, first.column
        self.end_line, self.end_column = last.end_line, last.end_column


@dataclass(frozen=True)
class _Shape:
    """What a reduction of one grammar rule does, from the rule alone: which symbols it keeps (lark's child
    filter: placeholders for absent `[parts]`, `_rules` spliced in, anonymous tokens dropped) and whether it
    builds a node (`method`), passes its one child through (`?rule`) or is spliced into its parent (`_rule`)."""

    method: str
    select: Callable[[list[Any]], list[Any]] | None
    passes: bool
    inlined: bool
    size: int  # symbols on the right-hand side


def _keep(children: list[Any]) -> list[Any]:
    return children


@functools.cache
def _shapes(lark: Lark) -> dict[Any, _Shape]:
    """Each rule of `lark`'s grammar and the shape of its reductions (computed once per parser)."""
    placeholders = lark.options.maybe_placeholders
    shapes = {}
    for rule in lark.rules:
        options = rule.options
        child_filter = maybe_create_child_filter(rule.expansion, options.keep_all_tokens, False,
                                                 list(options.empty_indices) if placeholders else [])
        shapes[rule] = _Shape(rule.alias or options.template_source or rule.origin.name,
                              None if child_filter is None else child_filter(_keep),
                              bool(options.expand1 and not rule.alias), rule.origin.name.startswith("_"),
                              len(rule.expansion))
    return shapes


def parse(lark: Lark, text: str, builder: object, limit: int) -> Any:
    """The value of the start rule of `text`, built by `builder`'s methods (one per rule name or alias, called
    with the rule's position and its kept children's values).  Raises lark's `UnexpectedInput` at a syntax error;
    `Refused` (nesting deeper than `limit` nodes, a rule without a method) or the builder's own error where the
    tree path must decide."""
    callbacks = {rule: _reduction(shape, builder, limit) for rule, shape in _shapes(lark).items()}
    interactive = lark.parse_interactive(text)
    interactive.parser_state.parse_conf.callbacks = callbacks
    try:
        result = interactive.resume_parse()
    except UnexpectedInput:  # the error's parser, asked what it would accept, reduces without building
        interactive.parser_state.parse_conf.callbacks = {}
        raise
    return result.value


def _reduction(shape: _Shape, builder: object, limit: int) -> Callable[[list[Any]], Any]:
    """The callback lark calls with the symbols of one reduction of a rule of this shape."""
    select = shape.select or _keep
    filtered = shape.select is not None
    method = None if shape.inlined else getattr(builder, shape.method, None)

    def inline(children: list[Any]) -> _Inlined:
        if not children:
            raise Refused(shape.method)
        return _Inlined(select(children), children[0], children[-1])

    def build(children: list[Any], kept: list[Any] | None = None) -> _Covered:
        if kept is None:
            kept = select(children) if filtered else children
        if method is None or not children:  # a rule without a method; an empty file (the tree path takes both)
            raise Refused(shape.method)
        values, height = [], 0
        for child in kept:
            if child.__class__ is _Covered:
                values.append(child.value)
                height = max(height, child.height)
            else:
                values.append(child)
        if height >= limit:
            raise Refused(shape.method)
        first, last = children[0], children[-1]
        covered = _Covered(first.line, first.column, last.end_line, last.end_column, height + 1)
        covered.value = method(covered, values)
        return covered

    if shape.inlined:
        return inline
    if shape.passes and shape.size == 1 and shape.select is None:  # `?sum: product`, most of the expression ladder
        return operator.itemgetter(0)
    if not shape.passes:
        return build

    def pass_through(children: list[Any]) -> Any:
        kept = select(children)
        if len(kept) != 1:
            return build(children, kept)
        child = kept[0]
        if child.__class__ is _Covered and (len(children) > 1 or children[0] is not child):
            # the child now covers all its parent's symbols: `( expr )` with the brackets
            first, last = children[0], children[-1]
            child.line, child.column, child.end_line, child.end_column = (first.line, first.column, last.end_line,
                                                                          last.end_column)
        return child

    return pass_through

