"""Turning a diagram into DOT text or an image; images need graphviz's `dot` program, DOT text does not."""

from __future__ import annotations

from pathlib import Path

import graphviz

from circuitdsl.draw import GraphvizNotInstalled

FORMATS = ("svg", "png", "pdf", "dot")
_PNG_DPI = "144"  # sharp on screens and in READMEs; SVG and PDF are vector and need none


def image(graph: graphviz.Digraph, fmt: str) -> bytes:
    """The diagram as an image (`svg`, `png`, `pdf`) or DOT text (`dot`), as bytes."""
    if fmt not in FORMATS:
        raise ValueError(f"cannot draw to .{fmt}: use one of {', '.join('.' + f for f in FORMATS)}")
    if fmt == "dot":
        return graph.source.encode()
    if fmt == "png":
        graph = graph.copy()
        graph.graph_attr["dpi"] = _PNG_DPI
    try:
        return graph.pipe(format=fmt, quiet=True)
    except graphviz.ExecutableNotFound:
        raise GraphvizNotInstalled() from None


def write(graph: graphviz.Digraph, path: str | Path) -> None:
    """Write the diagram to `path`, in the format its suffix names (.svg, .png, .pdf or .dot)."""
    path = Path(path)
    path.write_bytes(image(graph, path.suffix.lower().lstrip(".")))
