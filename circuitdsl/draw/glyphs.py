"""The glyphs of Neural Circuit Diagrams (Abbott, TMLR 2024) as graphviz nodes, for circuits on named axes.

In that notation a wire is a bundle of named axes and every operation is a symbol on it: a learned linear map is
a grey box with a folded corner marked **L** (with `+` for a bias), an element-wise function a small symbol on the
wire, softmax a triangle, a contraction (einsum) a circled dot, a copy a black dot where a wire splits.  An
operation acts on some axes and *broadcasts* over the others, which the paper draws as wires running straight
across it; graphviz cannot route a wire through a node, so each glyph has a band under it in which the axes it
broadcasts over pass across (a ruled row naming them).  The attributes here are the whole vocabulary; which IR
element gets which glyph is decided in circuitdsl/draw/ncd.py.
"""

from __future__ import annotations

from collections.abc import Sequence

from circuitdsl.draw import text
from circuitdsl.ir.model import Axis

LEARNED = "#E3E8E8"  # the paper's grey-green of learned maps
CONTRACTION = "#D8CCEA"  # lavender, as the paper's dot-product attention
SOFTMAX = "#CFE8D4"
EINOPS = "#F7C46C"  # rearrangements (einops in the paper)
ELEMENTWISE = "#FFF3B0"
REGIONS = ("#FBE3CF", "#E6DDF2", "#DDEEF8", "#E2F0DA", "#F8DDE6")
"""Fills of nested sub-circuit regions, outermost first (the paper's multi-head attention in peach with the
scaled dot-product attention in lavender inside)."""



def region(level: int) -> str:
    """The fill of a sub-circuit's region nested `level` deep (1: a child of the top circuit)."""
    return REGIONS[(level - 1) % len(REGIONS)]


COPY = {"shape": "point", "width": "0.09", "height": "0.09", "color": "black", "fillcolor": "black"}
WIRE = {"color": "black", "fontcolor": "gray15", "arrowhead": "none", "penwidth": "1.2"}


def band(broadcast: Sequence[Axis]) -> str:
    """The rows under a glyph in which the axes it broadcasts over pass across it (empty when none do)."""
    if not broadcast:
        return ""
    cells = "".join(f'<TR><TD SIDES="B" BORDER="1" COLOR="gray20" CELLPADDING="0"><FONT POINT-SIZE="8" '
                    f'COLOR="gray25">{text.html(f"{a.name} = {a.size}")}</FONT></TD></TR>' for a in broadcast)
    return cells


def node(symbol: str, fill: str, broadcast: Sequence[Axis] = (), note: str = "", shape: str = "box",
         corner: bool = False) -> dict[str, str]:
    """A glyph's node attributes: its `symbol` (HTML) in a cell of colour `fill` (with a folded corner, the
    paper's mark of a learned map, when `corner`), a small `note` under it, and the band of broadcast axes."""
    style = ' STYLE="rounded"' if shape == "rounded" else ""
    fold = "◣ " if corner else ""
    rows = f'<TR><TD BGCOLOR="{fill}" BORDER="1" COLOR="gray35"{style} CELLPADDING="4">{symbol}</TD></TR>'
    if note:
        rows += f'<TR><TD CELLPADDING="1"><FONT POINT-SIZE="8">{fold}{text.html(note)}</FONT></TD></TR>'
    elif corner:
        rows += f'<TR><TD CELLPADDING="0"><FONT POINT-SIZE="8">{fold}learned</FONT></TD></TR>'
    rows += band(broadcast)
    return {"shape": "plain", "label": f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0">{rows}</TABLE>>'}


def learned(name: str, bias: bool, broadcast: Sequence[Axis], note: str) -> dict[str, str]:
    """A learned linear map: bold **L** with its name as a superscript and `+` for a bias, marked learned."""
    plus = "<SUB>+</SUB>" if bias else ""
    symbol = f'<FONT POINT-SIZE="18"><B>L</B></FONT>{plus}<SUP>{text.html(name)}</SUP>'
    return node(symbol, LEARNED, broadcast, note, corner=True)


def elementwise(function: str, broadcast: Sequence[Axis] = ()) -> dict[str, str]:
    """An element-wise function as a small symbol sitting on the wire: `▸gelu▸`."""
    return node(f'<FONT POINT-SIZE="10">▸ {text.html(function)} ▸</FONT>', ELEMENTWISE, broadcast, shape="rounded")


def softmax(axis: str, broadcast: Sequence[Axis], causal: str | None = None) -> dict[str, str]:
    """Softmax: the paper's triangle, with the axis it normalises over (and a causal mask's query axis)."""
    note = f"softmax over {axis}" + (f", causal in {causal}" if causal else "")
    return node('<FONT POINT-SIZE="16">◁</FONT>', SOFTMAX, broadcast, note)


def contraction(axes: Sequence[str], matched: Sequence[Axis], broadcast: Sequence[Axis]) -> dict[str, str]:
    """A contraction (einsum): a circled dot joining two wires (the paper draws a half-round join), the axes
    summed over, and the axes matched unit by unit on both sides (heads: the paper diagonalises them), folded as
    `×heads`."""
    fold = "".join(f" ×{a.name}={a.size}" for a in matched)
    return node('<FONT POINT-SIZE="16">⨀</FONT>', CONTRACTION, broadcast, f"· over {', '.join(axes)}{fold}")


def rearrange(op: str, before: Sequence[Axis], after: Sequence[Axis]) -> dict[str, str]:
    """A rearrangement of axes (rename, transpose, split, merge): the paper's einops box, `before → after`."""
    symbol = f'<FONT POINT-SIZE="9">{text.html(text.axes(before))}<BR/>→ {text.html(text.axes(after))}</FONT>'
    return node(symbol, EINOPS, (), op)


def reduction(op: str, axes: Sequence[str], broadcast: Sequence[Axis]) -> dict[str, str]:
    """A reduction over named axes: Σ, mean or max, and the axes it removes."""
    symbol = {"sum": "Σ", "mean": "x̄", "max": "max"}.get(op, op)
    return node(f'<FONT POINT-SIZE="14">{text.html(symbol)}</FONT>', ELEMENTWISE, broadcast,
                f"{op} over {', '.join(axes)}")


def arithmetic(symbol: str, broadcast: Sequence[Axis] = ()) -> dict[str, str]:
    """`+`, `−`, `×`, `÷` and other small arithmetic on wires (a residual sum, a scale) as a small circle."""
    return node(f'<FONT POINT-SIZE="12">{text.html(symbol)}</FONT>', "white", broadcast, shape="rounded")
