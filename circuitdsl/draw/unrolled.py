"""The unrolled view: one node per neuron, on a grid that graphviz's neato keeps (`layout=neato`, pinned nodes).

Columns follow the flow of signals (a population's layer: the longest chain of instantaneous projections that
reaches it).  When the circuit has a body axis (the instance array or named axis most units lie on, e.g.
NCAP's `joint` or `seg`), each index along it is a block of columns, head to tail from left to right.  Within a
column, units stand in declaration order (Bd above Bv: dorsal above ventral), then by index.  A unit nothing
projects to (an input, an oscillator) stands just before the first unit it drives.

A field (a population on grid axes, `h[channel = 8, x = X]`) is one unit per channel: the function on its grid
is the unit's value, and an operator projection joins every source channel to every target channel.

A synapse or readout whose signal is not its source unit as is (`1 - osc_d`, `clamp(-q, 0, 1)`, `Md - Mv`) is
labelled with that signal written for its units (`clamp(-q[0], 0, 1)`), once per target unit; a sum needs no
label (what arrives at a unit adds up), and a signal that mixes units (an attention) is drawn as the units it
depends on, unlabelled.

A population whose axis names each unit's class (a connectome) is laid out by cells instead: one band of
columns per layer (sensory, inter, motor, muscle), classes stacked in each band with a gap between them, and
left-right pairs (AVAL, AVAR) side by side on one row.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from graphlib import TopologicalSorter

import graphviz
import numpy as np

from circuitdsl.draw import notation, text
from circuitdsl.draw.hierarchy import Hierarchy, Resolver
from circuitdsl.draw.units import given_weights, mixes_units, synapses, unit_dependencies, unit_names
from circuitdsl.ir.expr import fold, refs
from circuitdsl.ir.model import Axis, AxisSel, Binary, CircuitIR, Expr, Projection, Ref
from circuitdsl.ir.units import port_size, selected_units

_ROW = 0.7  # inches between units of a column
_GAP = 0.5  # inches between columns
_BLOCK_GAP = 0.3  # extra inches between blocks of the body axis
_CHAR = 0.075  # inches per character of a label
_LABEL_CHAR = 0.06  # inches per character of an edge's label (9 points)
_LABEL_MAX = 48  # characters of an edge's label: a longer signal is cut with an ellipsis
_SPLINE_LIMIT = 1500  # edges up to which neato routes curved edges around nodes; straight lines beyond
_FILLS = ("#FFF7E0", "#EAF2FB", "#EEF7EA", "#FBEDEF", "#F3EEF8", "#FDF1E6", "#EAF6F6", "#F6F6E8")
_INPUT = {"shape": "cds", "style": "filled", "fillcolor": "#DFF0D8", "color": "#3C763D", "margin": "0.15,0.05"}
_OUTPUT = {"shape": "cds", "style": "filled", "fillcolor": "#D9EDF7", "color": "#31708F", "margin": "0.15,0.05"}


_EdgeKey = tuple[str, str, tuple[tuple[str, str], ...]]  # source unit, target unit, edge attributes


@dataclass
class _Unit:
    """One neuron (or one unit of an input or output) and where it goes on the grid."""

    id: str
    label: str
    owner: str  # its population, input or output
    role: int  # rank of its population's local name: the order of rows in a column
    segment: int | None  # its index along the body axis
    column: tuple[int, int] = (0, 0)  # (block, layer)
    cell: tuple[str, str, str] | None = None  # (layer, class, name) where the population's axis gives classes


@dataclass(frozen=True)
class _Body:
    """The axis the units are laid out along: an instance array (`seg`) or a named axis (`joint`)."""

    name: str
    size: int
    array: bool

    def header(self, index: int) -> str:
        """The title of one block: `seg[2]` or `joint 2`."""
        return f"{self.name}[{index}]" if self.array else f"{self.name} {index}"


def unrolled(ir: CircuitIR) -> graphviz.Digraph:
    """The neuron-level diagram of a circuit."""
    return _UnrolledView(ir).build()


class _UnrolledView:
    """Builds one unrolled diagram: units, synapses, their grid."""

    def __init__(self, ir: CircuitIR) -> None:
        self.ir = ir
        self.hierarchy = Hierarchy(ir)
        self.resolver = Resolver(self.hierarchy)
        self.colours = notation.shared_colours(ir)
        self.parameters = {p.name: p for p in ir.parameters}
        self.full: dict[str, list[Axis]] = {p.name: p.shape for p in ir.inputs}  # with grid axes: synapses index these
        self.full.update({p.name: p.shape for p in ir.populations})
        self.full.update({o.name: o.shape for o in ir.outputs})
        self.shapes = {owner: [a for a in shape if a.domain is None] for owner, shape in self.full.items()}
        self.names = {owner: unit_names(owner, shape) for owner, shape in self.shapes.items()}
        self.kinds = {p.name: "input" for p in ir.inputs} | {o.name: "output" for o in ir.outputs}
        self.body = self._body()
        self.room: dict[str, float] = {}  # unit -> inches the labels of the edges into it need (from `_edges`)

    def build(self) -> graphviz.Digraph:
        """Units at their pinned positions, block titles, synapses and readouts, the legend."""
        units = self._units()
        edges = self._edges()
        self._place(units, edges)
        by_cell = any(unit.cell for unit in units.values())
        defaults = notation.graph_defaults(f"{self.ir.name}  (unrolled)")
        graph = graphviz.Digraph(self.ir.name, graph_attr={
            **defaults["graph"], "layout": "neato", "outputorder": "edgesfirst",
            "splines": "true" if len(edges) <= _SPLINE_LIMIT else "line"},
            node_attr={**defaults["node"], "fontsize": "11"}, edge_attr={**defaults["edge"], "arrowsize": "0.7"})
        positions = self._cell_positions(graph, units) if by_cell else self._positions(units)
        fills: dict[int, str] = {}  # role -> fill colour, in order of first appearance
        for unit in units.values():
            attrs = {"input": _INPUT, "output": _OUTPUT}.get(self.kinds.get(unit.owner, ""))
            if attrs is None:
                fill = fills.setdefault(unit.role, _FILLS[len(fills) % len(_FILLS)])
                attrs = {"shape": "ellipse", "style": "filled", "fillcolor": fill, "color": "gray35", "margin": "0.04"}
            graph.node(unit.id, text.html(unit.label), pos=_pin(*positions[unit.id]), **attrs)
        if not by_cell:
            self._headers(graph, units, positions)
        for (source, target, style), width in edges.items():
            attrs = dict(style)
            if width is not None:
                attrs["penwidth"] = f"{width:.2f}"
            graph.edge(source, target, **attrs)
        if self.colours:
            bottom = min(y for _, y in positions.values())
            display = {name: self.hierarchy.param_display(name) for name in self.colours}
            graph.node("shared parameters", notation.legend(self.ir, self.colours, display), shape="plain",
                       pos=_pin(1.5, bottom - 1.2))
        return graph

    # ---- units ---------------------------------------------------------------------------------------

    def _local(self, owner: str) -> str:
        """A population's name within its instance (`Bd` for `seg[2].Bd`), which orders rows; ports are their own."""
        population = self.hierarchy.populations.get(owner)
        return self.hierarchy.local(owner, population.instance) if population else owner

    def _units(self) -> dict[str, _Unit]:
        """Every unit of every input, population and output, with its row rank and body index."""
        owners = [p.name for p in self.ir.inputs]
        owners += [p.name for p in self.ir.populations] + [o.name for o in self.ir.outputs]
        roles: dict[str, int] = {}
        units: dict[str, _Unit] = {}
        for owner in owners:
            role = roles.setdefault(self._local(owner), len(roles))
            segments, prefix = self._segments(owner)
            cells = _cells(self.shapes[owner])
            for flat, name in enumerate(self.names[owner]):
                units[name] = _Unit(name, name[len(prefix):], owner, role, segments[flat] if segments else None,
                                    cell=cells[flat] if cells else None)
        return units

    def _body(self) -> _Body | None:
        """The repeated structure the most units lie on: a top-level instance array, or an axis (name and size)
        that several populations share; None when there is none."""
        weights: dict[_Body, int] = {}
        for group in self.hierarchy.root.children:
            if group.letter is not None:
                body = _Body(group.array or "", len(group.indices), True)
                units = sum(math.prod(a.size for a in p.shape) for p in self.ir.populations
                            if self.hierarchy.population_group(p.name).within(group))
                weights[body] = weights.get(body, 0) + units
        sharing: dict[_Body, int] = {}
        for population in self.ir.populations:
            if any(axis.domain is not None for axis in population.shape):
                continue  # a field's channels are no body: its layers are
            for axis in population.shape:
                if axis.size > 1:
                    body = _Body(axis.name, axis.size, False)
                    sharing[body] = sharing.get(body, 0) + 1
                    weights[body] = weights.get(body, 0) + math.prod(a.size for a in population.shape)
        candidates = {b: w for b, w in weights.items() if b.array or sharing[b] > 1}
        return max(candidates, key=lambda b: candidates[b]) if candidates else None  # first of the heaviest

    def _segments(self, owner: str) -> tuple[list[int] | None, str]:
        """Each unit's index along the body axis (None when the owner is not on it), and the prefix that its
        block's title already says (`seg[2].` under `seg[2]`)."""
        body = self.body
        if body is None:
            return None, ""
        size = math.prod(a.size for a in self.shapes[owner])
        population = self.hierarchy.populations.get(owner)
        if body.array and population is not None and population.instance:
            top = population.instance.split(".")[0]
            instance = self.hierarchy.instances[top]
            if instance.array == body.name and instance.index is not None:
                return [instance.index] * size, top + "."
        for position, axis in enumerate(self.shapes[owner]):
            if axis.size == body.size and (body.array or axis.name == body.name):
                sizes = [a.size for a in self.shapes[owner]]
                return [int(i) for i in np.unravel_index(np.arange(size), sizes)[position]], ""
        return None, ""

    # ---- edges ---------------------------------------------------------------------------------------
    def _edges(self) -> dict[_EdgeKey, float | None]:
        """Every synapse and readout wire as (source unit, target unit, style) with its pen width, if weighted."""
        edges: dict[_EdgeKey, float | None] = {}
        weights = []
        for projection in self.ir.projections:
            param = self.parameters[projection.weight.param]
            style = notation.synapse(projection, param)
            colour = self.colours.get(param.name)
            if colour:
                style["color"] = colour
            pre, post = self._channel_pairs(projection) if projection.operator else synapses(projection)
            sizes = [a.size for a in self.full[projection.target]]
            model = self.ir.neurons[self.ir.population(projection.target).model]
            segments = port_size(model, projection.port)  # a dendrite port: synapses reach unit × segment
            targets = selected_units(sizes, projection.target_select)[post // segments]
            given = given_weights(projection, param)
            styles = (tuple(style.items()), tuple((style | notation.INHIBITORY).items()))
            negative = (np.zeros(len(pre), dtype=bool) if projection.weight.sign is None or projection.kind != "chemical"
                        else np.asarray(projection.weight.sign.data) < 0)  # a connectome's per-synapse signs
            labels = _Labels(None if projection.operator else self._signals(projection.source, pre), self.room)
            for k, source, target in self._wires(projection.source, pre, projection.target, targets):
                edges[labels.key(k, source, target, styles[int(negative[k])])] = \
                    None if given is None else abs(float(given[k]))
                if given is not None:
                    weights.append(abs(float(given[k])))
        for output in self.ir.outputs:
            sizes = [a.size for a in output.shape]
            for piece in output.pieces:
                places = selected_units(sizes, piece.select)
                signal = np.arange(len(places))
                labels = _Labels(self._signals(piece.expr, signal), self.room)
                for k, source, target in self._wires(piece.expr, signal, output.name, places):
                    edges.setdefault(labels.key(k, source, target, tuple(notation.WIRE.items())), None)
        return self._widths(edges, weights)

    def _wires(self, expr: Expr, signal_units: np.ndarray, owner: str,
               targets: np.ndarray) -> Iterator[tuple[int, str, str]]:
        """(k, source unit, target unit) for each unit element k of the signal reads, element k reaching unit
        `targets[k]` of `owner`; units as drawn (grid axes folded)."""
        for source, rows, units in self._reads(expr, signal_units):
            for k, s, t in zip(rows, self._fold(source, units), self._fold(owner, targets[rows])):
                yield int(k), self.names[source][s], self.names[owner][t]

    def _signals(self, expr: Expr, signal_units: np.ndarray) -> list[str] | None:
        """Element k of `signal_units`'s signal written for its units (`clamp(-q[0], 0, 1)`), named as their nodes
        are (`Md - Mv` under `seg[0]`) unless they lie in several blocks; None where the drawn edges say it all: a
        unit as is, a sum, a signal that mixes units."""
        if _is_sum(expr, self.ir.shared) or mixes_units(expr, self.ir.shared):
            return None

        def leaf(node: Expr) -> text.Slot | str | None:
            if isinstance(node, Ref):
                return text.Slot(node.source, tuple(node.select) if node.select is not None else None)
            return self.resolver.shared_name(node)  # a let too big to write out, by its name

        shape, slots = text.template(expr, leaf, self.ir.shared)
        parts = shape.split(text.HOLE)
        read = [self._fold(slot.name, self._units_read(slot.name, slot.select, signal_units)) for slot in slots]
        prefixes = {slot.name: self._segments(slot.name)[1] for slot in slots}
        if len(set(prefixes.values()) - {""}) > 1:  # units of several blocks: each written in full
            prefixes = dict.fromkeys(prefixes, "")
        return [_shortened(parts, [self.names[slot.name][units[k]][len(prefixes[slot.name]):]
                                   for slot, units in zip(slots, read)])
                for k in range(len(signal_units))]

    def _reads(self, expr: Expr, signal_units: np.ndarray) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """For each population or input an expression reads, (k, unit) pairs: element k of `signal_units` reads
        that unit of it; one unit each for an element-wise expression, those it depends on for one that mixes
        units (an attention)."""
        if mixes_units(expr, self.ir.shared):
            depends = unit_dependencies(expr, self.full, self.ir.shared)
            pairs = {source: np.nonzero(matrix[signal_units]) for source, matrix in depends.items()}
            return [(source, rows, units) for source, (rows, units) in pairs.items()]
        rows = np.arange(len(signal_units))
        return [(ref.source, rows, self._units_read(ref.source, ref.select, signal_units))
                for ref in refs(expr, self.ir.shared)]

    def _units_read(self, source: str, select: Sequence[AxisSel] | None, signal_units: np.ndarray) -> np.ndarray:
        """The unit of `source` (flat over its full shape) that each element of an element-wise signal reads
        through `select`; one unit selected is read by every element."""
        units = selected_units([a.size for a in self.full[source]], select)
        return units[signal_units] if len(units) > 1 else np.repeat(units, len(signal_units))

    def _fold(self, owner: str, units: np.ndarray) -> list[int]:
        """Units of `owner` (flat over its full shape) as the units drawn: their channel, grid axes dropped."""
        full = self.full[owner]
        if len(full) == len(self.shapes[owner]):
            return [int(u) for u in units]
        index = np.unravel_index(units, [a.size for a in full])
        kept = [i for i, axis in zip(index, full) if axis.domain is None]
        if not kept:  # one channel: every point is the one unit
            return [0] * len(units)
        return [int(u) for u in np.ravel_multi_index(kept, [a.size for a in self.shapes[owner]])]

    def _channel_pairs(self, projection: Projection) -> tuple[np.ndarray, np.ndarray]:
        """An operator's (source, target) units as drawn: each source channel to each target channel, at the first
        point of the grid (`_fold` drops it); a learned map over a named axis joins the units that agree on every
        other axis (`dense over feature` mixes the features of one token)."""
        assert projection.operator is not None
        if projection.operator.kind in ("linear", "layer_norm"):
            return _axis_map_pairs(projection.source_shape, projection.target_shape, projection.operator.channel)
        sources = math.prod(a.size for a in projection.source_shape)
        targets = math.prod(a.size for a in projection.target_shape)
        points = math.prod(a.size for a in projection.target_shape if a.domain is not None)
        channels_in, channels_out = sources // points, targets // points
        pre = np.tile(np.arange(channels_in) * points, channels_out)
        post = np.repeat(np.arange(channels_out) * points, channels_in)
        return pre, post

    @staticmethod
    def _widths(edges: dict[_EdgeKey, float | None],
                weights: list[float]) -> dict[_EdgeKey, float | None]:
        """Pen widths 0.5 to 2.5 in proportion to |weight| where weights are given and differ; else the default."""
        if not weights or max(weights) == min(weights):
            return dict.fromkeys(edges)
        top = max(weights)
        return {key: None if w is None else 0.5 + 2.0 * w / top for key, w in edges.items()}

    # ---- layout --------------------------------------------------------------------------------------
    def _layers(self) -> dict[str, int]:
        """Each population's and port's layer: the longest chain of instantaneous wires from an input to it."""
        sorter: TopologicalSorter[str] = TopologicalSorter({owner: () for owner in self.shapes})
        feeds: dict[str, list[str]] = {owner: [] for owner in self.shapes}
        for projection in self.ir.projections:
            if projection.kind == "chemical" and not projection.recurrent and projection.delay == 0:
                for ref in refs(projection.source, self.ir.shared):
                    if ref.source != projection.target:
                        sorter.add(projection.target, ref.source)
                        feeds[projection.target].append(ref.source)
        for output in self.ir.outputs:
            for piece in output.pieces:
                for ref in refs(piece.expr, self.ir.shared):
                    sorter.add(output.name, ref.source)
                    feeds[output.name].append(ref.source)
        layers: dict[str, int] = {}
        for owner in sorter.static_order():
            layers[owner] = max((layers[f] + 1 for f in feeds[owner]), default=0)
        return layers

    def _place(self, units: dict[str, _Unit], edges: dict[_EdgeKey, float | None]) -> None:
        """Give each unit its column: (block along the body axis, layer); sources just before what they drive."""
        layers = self._layers()
        for unit in units.values():
            unit.column = (-1 if unit.segment is None else unit.segment, layers[unit.owner])
        driven = {target for _, target, _ in edges}
        firsts: dict[str, tuple[int, int]] = {}
        for source, target, _ in edges:
            if source not in driven and source != target:
                block, layer = units[target].column
                firsts[source] = min(firsts.get(source, (block, layer - 1)), (block, layer - 1))
        for name, column in firsts.items():
            units[name].column = column

    def _positions(self, units: dict[str, _Unit]) -> dict[str, tuple[float, float]]:
        """Pinned positions (inches): columns left to right, units of a column top to bottom, wrapped when tall;
        a column stands further right where the edges into it carry labels (`self.room`)."""
        columns: dict[tuple[int, int], list[_Unit]] = {}
        for unit in sorted(units.values(), key=lambda u: (u.column, u.role)):
            columns.setdefault(unit.column, []).append(unit)
        rows = max(8, math.ceil(math.sqrt(len(units))))
        positions: dict[str, tuple[float, float]] = {}
        x, block = 0.0, None
        for (this_block, _), members in sorted(columns.items()):
            if block is not None and this_block != block:
                x += _BLOCK_GAP
            block = this_block
            for start in range(0, len(members), rows):
                chunk = members[start:start + rows]
                width = max(len(u.label) for u in chunk) * _CHAR + 0.3
                x += width / 2 + max(self.room.get(u.id, 0.0) for u in chunk)
                for i, unit in enumerate(chunk):
                    positions[unit.id] = (x, (len(chunk) - 1) / 2 * _ROW - i * _ROW)
                x += width / 2 + _GAP
        return positions

    def _cell_positions(self, graph: graphviz.Digraph, units: dict[str, _Unit]) -> dict[str, tuple[float, float]]:
        """Cells by layer band and class, left-right pairs on one row; other units in columns before and after
        (inputs and what feeds the cells to the left, outputs to the right).  Each band gets a title."""
        cells = [u for u in units.values() if u.cell]
        bands: dict[str, dict[str, list[_Unit]]] = {}
        for unit in sorted(cells, key=_cell_order):
            layer, cls, _ = unit.cell  # type: ignore[misc]
            bands.setdefault(layer, {}).setdefault(cls, []).append(unit)
        rows = max(12, math.ceil(math.sqrt(len(cells)) * 1.2))
        width = max(len(u.label) for u in cells) * _CHAR + 0.3
        positions: dict[str, tuple[float, float]] = {}
        others = sorted((u for u in units.values() if not u.cell), key=lambda u: (u.column, u.role))
        before = [u for u in others if self.kinds.get(u.owner) != "output"]
        after = [u for u in others if self.kinds.get(u.owner) == "output"]
        x = self._stack(before, 0.0, max(rows, min(len(before), 3 * rows)), positions)
        row: float  # whole rows, and half a row between classes (it starts as the int 0: no -0.0 in positions)
        for layer, classes in bands.items():
            start, row = x, 0
            for members in classes.values():
                pairs = _pairs(members)
                if row and row + len(pairs) > rows:  # wrap at a class boundary
                    x, row = x + 2 * width + _GAP, 0
                for left, right in pairs:
                    y = -row * _ROW
                    if right is None:
                        positions[left.id] = (x + width / 2, y)
                    else:
                        positions[left.id], positions[right.id] = (x, y), (x + width, y)
                    row += 1
                row += 0.5  # a gap between classes
            graph.node(f"band {layer}", f"{layer} ({sum(len(m) for m in classes.values())})", shape="plaintext",
                       fontsize="13", fontcolor="gray30", pos=_pin((start + x + width) / 2, _ROW * 1.2))
            x += 2 * width + _GAP * 2
        self._stack(after, x, max(rows, min(len(after), 3 * rows)), positions)
        return positions

    @staticmethod
    def _stack(members: list[_Unit], x: float, rows: int, positions: dict[str, tuple[float, float]]) -> float:
        """Units in columns of `rows` from x on (top row at 0); returns the x after them."""
        for start in range(0, len(members), rows):
            chunk = members[start:start + rows]
            width = max(len(u.label) for u in chunk) * _CHAR + 0.3
            for i, unit in enumerate(chunk):
                positions[unit.id] = (x + width / 2, -i * _ROW)
            x += width + _GAP
        return x

    def _headers(self, graph: graphviz.Digraph, units: dict[str, _Unit],
                 positions: dict[str, tuple[float, float]]) -> None:
        """A title above each block of the body axis: `joint 0`, `seg[3]`."""
        if self.body is None:
            return
        top = max(y for _, y in positions.values()) + 0.7
        spans: dict[int, list[float]] = {}
        for unit in units.values():
            if unit.column[0] >= 0:
                spans.setdefault(unit.column[0], []).append(positions[unit.id][0])
        for block, xs in sorted(spans.items()):
            graph.node(f"header {block}", self.body.header(block), shape="plaintext", fontsize="13",
                       fontcolor="gray30", pos=_pin((min(xs) + max(xs)) / 2, top))


_LAYER_ORDER = {"sensory": 0, "inter": 1, "motor": 2, "muscle": 3}


def _axis_map_pairs(source: list[Axis], target: list[Axis], over: str | None) -> tuple[np.ndarray, np.ndarray]:
    """(source unit, target unit) of a map over the axis `over`: every pair whose indices agree on the other axes
    both sides name."""
    at = {axis.name: i for i, axis in enumerate(source)}
    pre_index = np.indices([a.size for a in source]).reshape(len(source), -1)
    post_index = np.indices([a.size for a in target]).reshape(len(target), -1)
    joined = np.ones((post_index.shape[1], pre_index.shape[1]), dtype=bool)
    for i, axis in enumerate(target):
        if axis.name != over and axis.name in at:
            joined &= post_index[i][:, None] == pre_index[at[axis.name]][None, :]
    post, pre = np.nonzero(joined)
    return pre, post


def _cell_order(unit: _Unit) -> tuple[int, str, tuple[str | int, ...]]:
    """Layers in body order, classes by name, cells by name with numbers in order (VB2 before VB10)."""
    layer, cls, name = unit.cell  # type: ignore[misc]
    natural = tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))
    return _LAYER_ORDER.get(layer, len(_LAYER_ORDER)), cls, natural


def _cells(shape: list[Axis]) -> list[tuple[str, str, str]] | None:
    """(layer, class, name) of each unit of a one-axis population whose axis gives classes; else None."""
    if len(shape) != 1 or shape[0].classes is None:
        return None
    axis = shape[0]
    assert axis.classes is not None  # checked on shape[0] above
    names = axis.labels or [str(i) for i in range(axis.size)]
    layers = axis.layers or [""] * axis.size
    return list(zip(layers, axis.classes, names, strict=True))


def _pairs(members: list[_Unit]) -> list[tuple[_Unit, _Unit | None]]:
    """A class's units as rows: a left-right pair (AVAL, AVAR) shares a row; others stand alone."""
    by_name = {u.cell[2]: u for u in members}  # type: ignore[index]
    rows: list[tuple[_Unit, _Unit | None]] = []
    placed: set[str] = set()
    for unit in members:
        name = unit.cell[2]  # type: ignore[index]
        if name in placed:
            continue
        partner = by_name.get(name[:-1] + "R") if name.endswith("L") else None
        rows.append((unit, partner))
        placed.update({name} | ({partner.cell[2]} if partner else set()))  # type: ignore[index]
    return rows


class _Labels:
    """The edges of one projection or readout, each pair of units (and style) once, labelled with element k's
    signal on the first edge into each target unit that carries it (`Md[0] - Mv[0]` once, not on both wires).
    `room` gathers, over all edges, the inches the longest label into each unit needs."""

    def __init__(self, signals: list[str] | None, room: dict[str, float]) -> None:
        self.signals, self.room = signals, room
        self.keys: dict[_EdgeKey, _EdgeKey] = {}  # (source, target, style) -> the edge drawn for them
        self.placed = set[tuple[str, str]]()  # (target, signal) already labelled

    def key(self, k: int, source: str, target: str, style: tuple[tuple[str, str], ...]) -> _EdgeKey:
        """The edge that carries element k from `source` to `target`."""
        plain = (source, target, style)
        if plain not in self.keys:
            self.keys[plain] = (source, target, style + self._label(k, target))
        return self.keys[plain]

    def _label(self, k: int, target: str) -> tuple[tuple[str, str], ...]:
        if self.signals is None or (target, self.signals[k]) in self.placed:
            return ()
        signal = self.signals[k]
        self.placed.add((target, signal))
        self.room[target] = max(self.room.get(target, 0.0), len(signal) * _LABEL_CHAR)
        return (("label", _boxed(signal)), ("fontsize", "9"))


def _shortened(parts: list[str], names: list[str]) -> str:
    """A template's `parts` with `names` in its holes, cut to `_LABEL_MAX` characters with an ellipsis (the
    folded view writes a long signal out in full)."""
    written = ""
    for part, name in itertools.zip_longest(parts, names, fillvalue=""):
        written += part + name
        if len(written) > _LABEL_MAX:
            return written[:_LABEL_MAX - 1] + "…"
    return written


def _boxed(signal: str) -> str:
    """An edge label on a white ground, so that it sits on its edge and interrupts the line like a box."""
    return f'<<table border="0" cellborder="0" cellpadding="1" bgcolor="white"><tr><td>{text.html(signal)}</td></tr></table>>'


def _is_sum(expr: Expr, shared: Sequence[Expr]) -> bool:
    """A unit as is, or a sum of them (through lets too): the edges into a unit add up, so they need no label."""
    return fold(expr, lambda node, kids: isinstance(node, Ref) or (
        isinstance(node, Binary) and node.op == "+" and all(kids)), shared)


def _pin(x: float, y: float) -> str:
    """A pinned neato position in inches, printed the same on every platform."""
    return f"{x:.2f},{y:.2f}!"
