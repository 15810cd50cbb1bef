"""Diagrams drawn from the IR alone: `draw(ir)` gives a graphviz `Digraph` in the field's notation.

Two views: `folded` (a box per population, repeated sub-circuits folded into one cluster marked ×N, named axes
on wires) and `unrolled` (one node per neuron).  A circuit on named axes (learned maps, attention) is drawn
folded in the notation of Neural Circuit Diagrams (circuitdsl/draw/ncd.py).  The graphviz Python package builds
DOT text; rendering an image needs graphviz's `dot` program (see `GraphvizNotInstalled`).  See docs/diagrams.md
for the notation.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from circuitdsl.ir.model import CircuitIR

if TYPE_CHECKING:
    import graphviz


class GraphvizNotInstalled(RuntimeError):
    """Raised when an image is asked for but graphviz's `dot` program is not installed."""

    def __init__(self) -> None:
        super().__init__("drawing SVG, PNG or PDF needs the `dot` program of the system package graphviz, which "
                         "is not installed: apt-get install graphviz (Debian/Ubuntu), brew install graphviz (macOS), "
                         "conda install graphviz. DOT text (-o FILE.dot) works without it.")


View = Literal["folded", "unrolled"]
VIEWS: tuple[View, ...] = ("folded", "unrolled")


def draw(ir: CircuitIR, view: View = "folded", depth: int | None = None) -> graphviz.Digraph:
    """The diagram of a circuit; `depth` (folded view) collapses sub-circuits nested deeper into boxes."""
    if view == "folded":
        from circuitdsl.draw.folded import folded

        return folded(ir, depth)
    if view == "unrolled":
        from circuitdsl.draw.unrolled import unrolled

        return unrolled(ir)
    raise ValueError(f"unknown view {view!r}: use one of {', '.join(VIEWS)}")


def write(ir: CircuitIR, path: str | Path, view: View = "folded", depth: int | None = None) -> None:
    """Draw a circuit into `path`: .svg, .png, .pdf (these need graphviz's `dot`) or .dot (DOT text)."""
    from circuitdsl.draw import render

    render.write(draw(ir, view, depth), path)


def svg(ir: CircuitIR, view: View = "folded", depth: int | None = None) -> str:
    """The diagram as SVG text."""
    from circuitdsl.draw import render

    return render.image(draw(ir, view, depth), "svg").decode()


def notebook_svg(ir: CircuitIR) -> str | None:
    """The folded diagram for a notebook's `_repr_svg_`; None, so that text is shown, without graphviz."""
    try:
        return svg(ir)
    except (ImportError, GraphvizNotInstalled):
        return None
