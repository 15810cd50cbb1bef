"""Reading a .nir file without letting h5py or the nir package speak to the user: every problem with the file
(not HDF5, truncated, an unknown node type, a dangling edge, a size mismatch along an edge, a nested graph
without one input and one output) is a CircuitError (E950-E952) naming the file and the node."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import h5py
import nir
import numpy as np

from circuitdsl.errors import CircuitError, Diagnostic, did_you_mean

KNOWN = {"Input", "Output", "NIRGraph", "Affine", "Linear", "Scale", "Conv1d", "Conv2d", "SumPool2d", "AvgPool2d",
         "Flatten", "Delay", "Threshold", "I", "IF", "LI", "LIF", "CubaLI", "CubaLIF"}


def fail(code: str, file: str, message: str, *notes: str) -> CircuitError:
    """An interop error about a file (no source line to show: the file is binary)."""
    return CircuitError([Diagnostic(code, f"{file}: {message}", None, tuple(n for n in notes if n))])


def read(path: str | Path) -> nir.NIRGraph:
    """The graph of a .nir file, its structure checked (`check`)."""
    file = str(path)
    if not Path(file).is_file():
        raise fail("E950", file, "no such file")
    try:
        with h5py.File(file, "r") as handle:
            if "node" not in handle:
                raise fail("E950", file, "not a NIR file: it has no 'node' group")
            for name, kind in _types(handle["node"], ""):
                if kind not in KNOWN:
                    raise fail("E951", file, f"node '{name}' has the unknown NIR type '{kind}'",
                               did_you_mean(kind, KNOWN) or "", f"NIR 1.0.8 types: {', '.join(sorted(KNOWN))}")
    except OSError as error:
        raise fail("E950", file, "cannot be read as a NIR (HDF5) file; is it truncated?", str(error)) from None
    try:
        graph = nir.read(file, type_check=False)
    except (KeyError, ValueError, TypeError, AttributeError, AssertionError, OSError, IndexError) as error:
        raise fail("E950", file, f"a node or edge is malformed: {type(error).__name__}: {error}") from None
    check(graph, file)
    return graph


def _types(group: h5py.Group, prefix: str) -> Iterator[tuple[str, str]]:
    """(node path, type) of every node under a graph group, nested graphs included."""
    if "nodes" not in group:
        return
    for name, node in group["nodes"].items():
        if not isinstance(node, h5py.Group) or "type" not in node:
            yield f"{prefix}{name}", "<no type>"
            continue
        raw = node["type"][()]
        kind = raw.decode() if isinstance(raw, bytes) else str(raw)
        yield f"{prefix}{name}", kind
        if kind == "NIRGraph":
            yield from _types(node, f"{prefix}{name}.")


def check(graph: nir.NIRGraph, file: str, prefix: str = "") -> None:
    """Edges name existing nodes, sizes agree along each edge, nested graphs have one Input and one Output."""
    for src, dst in graph.edges:
        for end in (src, dst):
            if end not in graph.nodes:
                raise fail("E952", file, f"edge {prefix}{src} -> {prefix}{dst} names no node '{prefix}{end}'",
                           did_you_mean(end, graph.nodes) or "")
        out, into = size_out(graph.nodes[src]), size_in(graph.nodes[dst])
        if out is not None and into is not None and out != into:
            raise fail("E952", file, f"edge {prefix}{src} -> {prefix}{dst}: '{prefix}{src}' gives {out} values but "
                                     f"'{prefix}{dst}' takes {into}")
    for name, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            ends = [sum(isinstance(n, kind) for n in node.nodes.values()) for kind in (nir.Input, nir.Output)]
            if ends != [1, 1]:
                raise fail("E952", file, f"nested graph '{prefix}{name}' has {ends[0]} inputs and {ends[1]} outputs;"
                                         " it is read only with one of each")
            check(node, file, f"{prefix}{name}.")


def _port_size(types: object) -> int | None:
    if not isinstance(types, dict) or len(types) != 1:
        return None
    shape = np.asarray(next(iter(types.values())))
    return int(math.prod(int(s) for s in shape.reshape(-1))) if shape.size else None


def size_in(node: nir.NIRNode) -> int | None:
    """How many values a node takes (None where NIR does not say)."""
    if isinstance(node, nir.Affine | nir.Linear):
        return int(np.asarray(node.weight).shape[-1])
    return _neuron_size(node) if _neuron_size(node) is not None else _port_size(getattr(node, "input_type", None))


def size_out(node: nir.NIRNode) -> int | None:
    """How many values a node gives (None where NIR does not say)."""
    if isinstance(node, nir.Affine | nir.Linear):
        return int(np.asarray(node.weight).shape[-2])
    return _neuron_size(node) if _neuron_size(node) is not None else _port_size(getattr(node, "output_type", None))


def _neuron_size(node: nir.NIRNode) -> int | None:
    for field in ("r", "threshold", "scale", "delay"):
        if hasattr(node, field) and not isinstance(node, nir.NIRGraph):
            return int(np.asarray(getattr(node, field)).size)
    return None
