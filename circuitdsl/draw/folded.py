"""The folded view: a box per population, repeated instances folded into one cluster marked ×N.

Every wire of the IR (a projection, the signal bound to a sub-circuit's input, a sub-circuit's output, a piece of
a top-level output) becomes an `_Item`; items that differ only by the repeat they belong to (`seg[0]`...`seg[4]`,
or the iterations of a `for` loop) fold into one edge whose label says which repeats it stands for.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import graphviz
import numpy as np

from circuitdsl.draw import glyphs, ncd, notation, text
from circuitdsl.draw.hierarchy import End, Group, Hierarchy, Resolved, Resolver
from circuitdsl.draw.units import selected_axes
from circuitdsl.ir.model import Axis, AxisSel, CircuitIR, Expr, Instance, Population, Projection, Wire
from circuitdsl.ir.units import selected_units

_POPULATION = {"shape": "box", "style": "rounded,filled", "fillcolor": "#FFF7E0", "color": "#8A6D3B"}
_INPUT = {"shape": "cds", "style": "filled", "fillcolor": "#DFF0D8", "color": "#3C763D", "margin": "0.25,0.12"}
_OUTPUT = {"shape": "cds", "style": "filled", "fillcolor": "#D9EDF7", "color": "#31708F", "margin": "0.25,0.12"}
_PORT = {"shape": "cds", "style": "filled", "fillcolor": "#EEEEEE", "color": "gray50", "fontsize": "11",
         "margin": "0.2,0.08"}
_OPERATION = {"shape": "box", "style": "rounded,filled", "fillcolor": "#F4F4F4", "color": "gray60", "fontsize": "10",
              "height": "0.3"}
_CLUSTER = {"style": "rounded", "color": "gray40", "fontsize": "12", "labeljust": "l", "margin": "12"}
_LEGEND = "shared parameters"
_SIGNS = "synapse signs"


@dataclass
class _Item:
    """One wire of the IR before folding."""

    source: Resolved
    target: End
    member: Instance  # the instance whose repeats fold this wire
    context: Group  # where an operation on the way (`clamp(q, 0, 1)`) is drawn
    expr: Expr  # the signal the wire carries, as the IR writes it
    projection: Projection | None = None
    shape: Sequence[Axis] = ()  # the axes a wire that is not a projection carries
    target_select: Sequence[AxisSel] | None = None


@dataclass
class _Edge:
    """Items folded together, and where they are drawn: from `sources`, through the nodes of `chain` (what the wire
    computes, a learned map's glyph), to `target`."""

    sources: list[str]
    target: str
    items: list[_Item] = field(default_factory=list)
    chain: list[str] = field(default_factory=list)
    fed: bool = False  # its sources are already wired into the glyphs of what it computes (a circuit diagram)
    loop: bool = False  # onto the node it leaves: described in that node, not on the loop


def folded(ir: CircuitIR, depth: int | None = None) -> graphviz.Digraph:
    """The folded diagram of a circuit; sub-circuits nested deeper than `depth` are drawn as one box each."""
    return _FoldedView(ir, depth).build()


class _FoldedView:
    """Builds one folded diagram: clusters, nodes, folded edges, legend."""

    def __init__(self, ir: CircuitIR, depth: int | None) -> None:
        self.ir = ir
        self.depth = depth
        self.hierarchy = Hierarchy(ir)
        self.resolver = Resolver(self.hierarchy)
        self.colours = notation.shared_colours(ir)
        self.unnamed = notation.anonymous(ir)
        self.parameters = {p.name: p for p in ir.parameters}
        self.populations = {p.name: p for p in ir.populations}
        self.outputs = {o.name: o for o in ir.outputs}
        self.clusters: dict[str, graphviz.Digraph] = {}
        self.boxes = {g.id for g in self.hierarchy.groups() if g.parent is not None and self.box(g) is g}
        self.declared: set[str] = set()
        self.operations = 0
        self.loops: dict[str, list[_Edge]] = {}  # a population's projections onto itself, described in its box
        self.ncd = ncd.applies(ir)  # drawn as a Neural Circuit Diagram (circuitdsl/draw/ncd.py)
        self.parallel = ncd.parallel_axes(ir) if self.ncd else set()
        self.decomposer = ncd.Decomposer(self.hierarchy, self.resolver, self._place, self.parallel)
        self.homes: dict[str, Group] = {}  # the group each node is declared in, where a copy point beside it goes
        self.wires: list[tuple[str, str, dict[str, str]]] = []
        self.absorbed: dict[str, _Edge] = {}  # Identity populations drawn as the learned map that feeds them

    # ---- structure ---------------------------------------------------------------------------------
    def box(self, group: Group) -> Group | None:
        """The group drawn as one box that `group` disappears into, if it is nested deeper than `depth`."""
        if self.depth is None or group.level <= self.depth:
            return None
        while group.level > self.depth + 1 and group.parent is not None:
            group = group.parent
        return group

    def holder(self, group: Group) -> graphviz.Digraph:
        """The cluster (or the whole graph, for the root) that nodes of `group` are declared in."""
        return self.clusters[group.id]

    def drawn_parent(self, group: Group) -> Group:
        """The nearest enclosing group drawn as a cluster (or the root)."""
        parent = group.parent
        while parent is not None and parent.id not in self.clusters:
            parent = parent.parent
        return parent or self.hierarchy.root

    def build(self) -> graphviz.Digraph:
        """The whole diagram: clusters nested as the instances are, nodes, then edges and the legend."""
        defaults = notation.graph_defaults(f"{self.ir.name}  (folded)")
        spacing = {"ranksep": "0.2"} if self.ncd else {}  # every wire's label keeps its ranks apart already
        graph = graphviz.Digraph(self.ir.name, graph_attr={**defaults["graph"], "rankdir": "LR", "nodesep": "0.3",
                                                            "ranksep": "0.45", "newrank": "true", **spacing},
                                 node_attr=defaults["node"], edge_attr=defaults["edge"])
        self.clusters[""] = graph
        for group in self.hierarchy.groups():
            if group.parent is not None and self.box(group) is None:
                name, what = (text.html(part) for part in group.title())
                region = {"style": "rounded,filled", "fillcolor": glyphs.region(group.level)} if self.ncd else {}
                self.clusters[group.id] = graphviz.Digraph(f"cluster_{group.id}", graph_attr={
                    **_CLUSTER, "label": f"<<B>{name}</B> : {what}>", "penwidth": "2" if group.letter else "1",
                    **region})
        edges = self._fold(self._items())
        for edge in edges:
            if not self._computes(edge) and not self._mapped(edge) and \
                    all(_node(s) == _node(edge.target) for s in edge.sources):
                edge.loop = True
                self.loops.setdefault(_node(edge.target), []).append(edge)
        incoming = Counter(_node(edge.target) for edge in edges)
        self.absorbed = {_node(e.target): e for e in edges if self._absorbs(e, incoming)}
        self._ports()
        self._populations(incoming)
        for edge in edges:
            self._operation(edge)
        for edge in edges:
            self._draw(edge)
        copies = self._copies()
        self._boxes()
        for group in reversed(list(self.hierarchy.groups())):  # children into parents, innermost first
            if group.parent is not None and group.id in self.clusters:
                self.holder(self.drawn_parent(group)).subgraph(self.clusters[group.id])
        self._borders(graph)
        self._emit(graph, copies)
        self._legend(graph, edges)
        return graph

    def _legend(self, graph: graphviz.Digraph, edges: list[_Edge]) -> None:
        """The colours of the shared parameters that drawn edges use (not those hidden inside boxes)."""
        drawn = {i.projection.weight.param for edge in edges for i in edge.items if i.projection is not None}
        shown = {name: colour for name, colour in self.colours.items() if name in drawn}
        if shown:
            display = {name: self.hierarchy.param_display(name) for name in shown}
            graph.node(_LEGEND, notation.legend(self.ir, shown, display), shape="plain")
        mixed = [(self._lines(edge)[0], signs) for edge in edges if (signs := self._mixed(edge)) is not None]
        if mixed:
            graph.node(_SIGNS, notation.signs_legend(mixed), shape="plain")

    def _borders(self, graph: graphviz.Digraph) -> None:
        """Inputs on the left border, outputs on the right."""
        with graph.subgraph(name="inputs") as inputs:
            inputs.attr(rank="source")
            for port in self.ir.inputs:
                inputs.node(port.name, _node_label(port.name, [], port.shape), **_INPUT)
        with graph.subgraph(name="outputs") as outputs:
            outputs.attr(rank="sink")
            for output in self.ir.outputs:
                outputs.node(output.name, _node_label(output.name, [], output.shape), **_OUTPUT)

    def _populations(self, incoming: Counter[str]) -> None:
        """A node per population, once per folded group, in its cluster (in a circuit diagram, a stateless one as
        the glyph of its function; `incoming` counts the wires it sums)."""
        for population in self.ir.populations:
            group = self.hierarchy.group_of[population.instance]
            node = self._population_node(population.name)
            if self.box(group) is not None or node in self.declared:
                continue
            self.declared.add(node)
            model = self.ir.neurons[population.model]
            local = self.hierarchy.local(population.name, population.instance)
            if node in self.absorbed:
                projection = self.absorbed[node].items[0].projection
                assert projection is not None and projection.operator is not None
                self._declare(group, node, ncd.operator_glyph(projection.operator, local, projection.source_shape,
                                                              self._rule([projection])))
                continue
            if self.ncd and node not in self.loops and ncd.stateless(model):
                self._declare(group, node, ncd.population_glyph(local, model, incoming[node]))
                continue
            self._declare(group, node, {"label": self._population_label(population, self.loops.get(node, [])),
                                        **_POPULATION})

    def _population_label(self, population: Population, loops: list[_Edge]) -> str:
        """Name, neuron model, shape; and its projections onto itself, whose labels would crowd a loop."""
        model = self.ir.neurons[population.model]
        lines = [text.html(model.definition)]
        lines += [text.html(line) for line in text.wrap([f"{k}={_value(v)}" for k, v in model.args.items()])]
        local = self.hierarchy.local(population.name, population.instance)
        ports = [i.name for i in model.inputs] if len(model.inputs) > 1 else []
        described = []
        for loop in loops:
            colour = self._style(loop).get("color", "black")
            first, *rest = self._lines(loop, own=text.axes(population.shape))
            described += [f'<FONT COLOR="{colour}">{line}</FONT>' for line in (f"onto itself: {first}", *rest)]
        return _node_label(local, lines, population.shape, ports, described)

    def _ports(self) -> None:
        """A node per port of each drawn sub-circuit: inputs its parent binds, outputs it exports."""
        for group in self.hierarchy.groups():
            if group.parent is None or self.box(group) is not None:
                continue
            for wires in (_union(m.bound for m in group.members), _union(m.exported for m in group.members)):
                for port, shape in wires.items():
                    self._declare(group, f"{group.id}/{port}", {"label": _node_label(port, [], shape), **_PORT})

    def _boxes(self) -> None:
        """Sub-circuits deeper than `depth`: one box each, its ports as cells that wires attach to."""
        for group in self.hierarchy.groups():
            if group.id not in self.boxes:
                continue
            inputs = _union(m.bound for m in group.members)
            outputs = _union(m.exported for m in group.members)
            self.holder(self.drawn_parent(group)).node(group.id, _box_label(group, list(inputs), list(outputs)),
                                                       shape="plain")

    # ---- wires -------------------------------------------------------------------------------------
    def _items(self) -> list[_Item]:
        """Every wire of the IR: projections, inputs bound to sub-circuits, their outputs, output pieces."""
        hierarchy, resolver = self.hierarchy, self.resolver
        items = []
        for projection in self.ir.projections:
            context = hierarchy.instances[projection.instance]
            source = resolver.resolve(projection.source, context)
            target = End("population", projection.target, projection.port)
            items.append(_Item(source, target, self._member(context, source), hierarchy.group_of[context.name],
                               projection.source, projection, target_select=projection.target_select))
        for instance in list(hierarchy.instances.values())[1:]:
            parent = hierarchy.parent_of[instance.name]
            for wire in instance.bound:
                source = resolver.resolve(wire.expr, parent)
                items.append(_Item(source, End("port_in", instance.name, wire.port), instance,
                                   hierarchy.group_of[parent.name], wire.expr, shape=wire.shape))
            for wire in instance.exported:
                source = resolver.resolve(wire.expr, instance)
                items.append(_Item(source, End("port_out", instance.name, wire.port), instance,
                                   hierarchy.group_of[instance.name], wire.expr, shape=wire.shape))
        root = self.ir.hierarchy
        for output in self.ir.outputs:
            for piece in output.pieces:
                source = resolver.resolve(piece.expr, root)
                items.append(_Item(source, End("output", output.name), self._member(root, source),
                                   self.hierarchy.root, piece.expr, shape=selected_axes(output.shape, piece.select),
                                   target_select=piece.select))
        return items

    def _member(self, context: Instance, source: Resolved) -> Instance:
        """The repeat a wire belongs to: the child whose output it reads, else the instance it is written in."""
        for end in source.ends:
            if end.kind == "port_out" and self.hierarchy.parent_of.get(end.name) is context:
                return self.hierarchy.instances[end.name]
        return context

    def _fold(self, items: list[_Item]) -> list[_Edge]:
        """Items drawn between the same nodes in the same way become one edge; wires inside a box vanish."""
        edges: dict[tuple[object, ...], _Edge] = {}
        for item in items:
            target = self._place(item.target)
            sources = list(dict.fromkeys(self._place(e) for e in item.source.ends))
            if _node(target) in self.boxes:
                sources = [s for s in sources if _node(s) != _node(target)]
            if not sources:
                continue  # inside one box
            key = (tuple(sources), target, item.source.template, tuple(s.name for s in item.source.slots),
                   item.context.id, self._style_key(item))
            edges.setdefault(key, _Edge(sources, target)).items.append(item)
        return list(edges.values())

    def _style_key(self, item: _Item) -> tuple[object, ...]:
        """What must agree for projections to fold: kind, arrow, weight (by folded name), rule, delay."""
        projection = item.projection
        if projection is None:
            return ("wire",)
        param = self.parameters[projection.weight.param]
        named = param.name not in self.unnamed
        weight = self.hierarchy.param_display(param.name) if named else (param.init.rule, param.sign)
        return (projection.kind, projection.arrow, weight, projection.connectivity.rule,
                tuple(sorted(projection.connectivity.args.items())), projection.delay)

    def _place(self, end: End) -> str:
        """The node (and port) an end of a wire is drawn at."""
        if end.kind in ("input", "output"):
            return end.name
        if end.kind == "population":
            group = self.hierarchy.population_group(end.name)
            box = self.box(group)
            if box is not None:
                return box.id
            node = self._population_node(end.name)
            model = self.ir.neurons[self.populations[end.name].model]
            return f"{node}:p_{end.port}:w" if len(model.inputs) > 1 else node
        group = self.hierarchy.group_of[end.name]
        box = self.box(group)
        if box is group:
            return f"{group.id}:{end.kind}_{end.port}"
        return box.id if box is not None else f"{group.id}/{end.port}"

    def _population_node(self, name: str) -> str:
        """The node of a population: `Bd`, or `seg[i]/Bd` inside a folded group."""
        population = self.populations[name]
        group = self.hierarchy.group_of[population.instance]
        local = self.hierarchy.local(name, population.instance)
        return f"{group.id}/{local}" if group.id else local

    # ---- drawing -----------------------------------------------------------------------------------
    def _computes(self, edge: _Edge) -> bool:
        """Whether a wire computes something on the way that is drawn as a node (not inside a collapsed box)."""
        first = edge.items[0]
        return not first.source.plain and self.box(first.context) is None

    def _absorbs(self, edge: _Edge, incoming: Counter[str]) -> bool:
        """Whether an edge's target is an Identity population that only this learned map feeds: in a circuit
        diagram it is drawn as the map's glyph (`L` named after it), its signal the map's output."""
        node = _node(edge.target)
        first = edge.items[0]
        if not self._mapped(edge) or first.projection is None or incoming[node] != 1 or node in self.loops:
            return False
        population = self.populations.get(first.projection.target)
        return population is not None and node == edge.target and self.box(self.hierarchy.group_of[
            population.instance]) is None and self.ir.neurons[population.model].definition == "Identity"

    def _mapped(self, edge: _Edge) -> bool:
        """Whether an operator projection is drawn as a learned map's glyph on its wire (in a circuit diagram)."""
        projection = edge.items[0].projection
        return self.ncd and projection is not None and projection.operator is not None

    def _operation(self, edge: _Edge) -> None:
        """Nodes for what a wire computes on the way, in its sub-circuit: in a circuit diagram, each operation's
        glyph and a learned map's glyph; else one node with the expression (`clamp(q[0:4], 0, 1)`, `Md - Mv`)."""
        first = edge.items[0]
        prefix = f"{first.context.id}/" if first.context.id else ""
        if self._computes(edge) and self.ncd and len(edge.items) == 1:
            made = self.decomposer.expression(first.expr, self._written_in(first), prefix)
            for ident, attrs in made.nodes:
                self._declare(first.context, ident, attrs)
            self.wires += [(tail, head, {**glyphs.WIRE, **_labelled(label)}) for tail, head, label in made.wires]
            edge.chain.append(made.root)
            edge.fed = True
        elif self._computes(edge):
            self.operations += 1
            ident = f"{prefix}expr {self.operations}"
            label = text.fill(first.source.template, [item.source.slots for item in edge.items])
            self._declare(first.context, ident, {"label": f"<{text.html(label)}>", **_OPERATION})
            edge.chain.append(ident)
        if self._mapped(edge) and first.projection is not None and first.projection.operator is not None and \
                _node(edge.target) not in self.absorbed:
            self.operations += 1
            ident = f"{prefix}map {self.operations}"
            target = self.populations[first.projection.target]
            name = self.hierarchy.local(target.name, target.instance)
            self._declare(first.context, ident,
                          ncd.operator_glyph(first.projection.operator, name, first.projection.source_shape,
                                             self._rule([first.projection])))
            edge.chain.append(ident)

    def _written_in(self, item: _Item) -> Instance:
        """The instance whose scope a wire's expression is written in."""
        if item.projection is not None:
            return self.hierarchy.instances[item.projection.instance]
        if item.target.kind == "port_in":
            return self.hierarchy.parent_of[item.target.name]
        if item.target.kind == "port_out":
            return self.hierarchy.instances[item.target.name]
        return self.ir.hierarchy

    def _declare(self, group: Group, ident: str, attrs: dict[str, str]) -> None:
        """A node in the cluster of `group`, remembered there (a copy point of its signal goes beside it)."""
        self.homes[ident] = group
        self.holder(group).node(ident, **attrs)

    def _draw(self, edge: _Edge) -> None:
        """The edge's wires, through the nodes of what it computes; the last one gets its glyph and label."""
        attrs = self._style(edge)
        lines = self._lines(edge)
        if lines and not edge.loop:
            attrs["label"] = _table(lines)
        nodes = [*edge.chain, edge.target]
        if not edge.fed:
            into = self._into(edge) if edge.chain else attrs
            self.wires += [(source, nodes[0], into) for source in edge.sources]
        between = dict(glyphs.WIRE if self.ncd else notation.WIRE)
        if self.ncd and edge.items[0].projection is not None:
            between.update(_labelled(ncd.wire_label(edge.items[0].projection.source_shape, self.parallel)))
        self.wires += [(tail, head, between) for tail, head in itertools.pairwise(nodes[:-1])]
        if edge.chain:
            self.wires.append((nodes[-2], edge.target, attrs))

    def _into(self, edge: _Edge) -> dict[str, str]:
        """A wire from a source into the first operation of an edge: in a circuit diagram, labelled with its axes."""
        if not self.ncd:
            return dict(notation.WIRE)
        first = edge.items[0]
        shape = first.projection.source_shape if first.projection is not None else first.shape
        return {**glyphs.WIRE, **_labelled(ncd.wire_label(shape, self.parallel))}

    def _copies(self) -> dict[str, str]:
        """In a circuit diagram, a copy point (a dot, beside its node) for each signal that several wires read."""
        if not self.ncd:
            return {}
        tails = Counter(tail for tail, _, _ in self.wires)
        copies = {tail: f"{_node(tail)} copy" for tail, n in tails.items() if n > 1}
        for tail, point in copies.items():
            self._declare(self.homes.get(_node(tail), self.hierarchy.root), point, dict(glyphs.COPY))
        return copies

    def _emit(self, graph: graphviz.Digraph, copies: dict[str, str]) -> None:
        """Every wire, those of a copied signal from its copy point."""
        for tail, point in copies.items():
            graph.edge(tail, point, **glyphs.WIRE)
        for tail, head, attrs in self.wires:
            graph.edge(copies.get(tail, tail), head, **attrs)

    def _style(self, edge: _Edge) -> dict[str, str]:
        """Glyph and colour: the synapse's for a projection (its shared parameter's colour), a grey wire else."""
        projection = edge.items[0].projection
        if projection is None or self._mapped(edge):
            return dict(glyphs.WIRE if self.ncd else notation.WIRE)
        param = self.parameters[projection.weight.param]
        attrs = notation.synapse(projection, param)
        if self._mixed(edge) is not None:
            attrs.update(notation.MIXED)
        colour = self.colours.get(param.name)
        if colour:
            attrs.update(color=colour, fontcolor=colour)
        return attrs

    def _lines(self, edge: _Edge, own: str | None = None) -> list[str]:
        """The label of an edge as HTML lines: weight and rule, what the wire carries (unless it is `own`), notes."""
        lines = []
        projections = [i.projection for i in edge.items if i.projection is not None]
        if self._mapped(edge):  # its glyph says what it is; into a map drawn as its target, the map's input
            carried = self._target_axes(edge) if _node(edge.target) not in self.absorbed else \
                ncd.wire_label(projections[0].source_shape, self.parallel)
            return [text.html(line) for line in (self._repeats(edge), carried, self._extras(edge)) if line]
        if projections:
            weight = text.html(self._weight(projections))
            if projections[0].weight.param in self.colours:
                weight = f"<B>{weight}</B>"
            lines.append(f"{weight} · {text.html(self._rule(projections))}")
            signs = self._mixed(edge)
            if signs is not None:
                lines.append(text.html(notation.mixed(*signs)))
        return lines + [text.html(line) for line in (self._axes(edge), self._extras(edge)) if line and line != own]

    def _target_axes(self, edge: _Edge) -> str:
        """The axes a learned map's wire brings to its target (`Bd[1:5]` where it reaches a selection)."""
        projection = edge.items[0].projection
        assert projection is not None
        if projection.target_select is not None:
            return self._selected_target(edge)
        return ncd.wire_label(projection.target_shape, self.parallel)

    def _mixed(self, edge: _Edge) -> tuple[int, int] | None:
        """(excitatory, inhibitory) synapses of an edge whose folded projections have fixed signs of both kinds."""
        counts = [notation.sign_counts(i.projection, self.parameters[i.projection.weight.param])
                  for i in edge.items if i.projection is not None]
        if not counts or None in counts:
            return None
        excitatory, inhibitory = (sum(c[k] for c in counts if c is not None) for k in (0, 1))
        return (excitatory, inhibitory) if excitatory and inhibitory else None

    def _weight(self, projections: list[Projection]) -> str:
        """The weight of folded projections: their shared parameter's name, else their initial values."""
        params = [self.parameters[p.weight.param] for p in projections]
        first = params[0]
        if first.name not in self.unnamed:
            return self.hierarchy.param_display(first.name)
        shown = {text.weight(p.init, p.sign == "fixed") for p in params}
        if len(shown) == 1:
            return shown.pop()
        if first.init.rule == "constant":
            values = [p.init.args[0] for p in params]
            return f"w={text.number(min(values))}…{text.number(max(values))}"
        return "w per synapse"

    def _rule(self, projections: list[Projection]) -> str:
        """The connectivity rule as written, with the number of synapses of an explicit one."""
        rule = projections[0].connectivity
        operator = projections[0].operator
        if operator is not None and operator.kind in ("dense", "linear", "layer_norm"):  # a map over one axis
            shown = f"{'layer_norm' if operator.kind == 'layer_norm' else 'dense'} over {operator.channel}"
            if operator.kind == "dense" and operator.bias:  # a function on the grid per channel
                return f"{shown} + bias({', '.join(operator.axes)})"
            return shown + (" + bias" if operator.kind == "linear" and operator.bias else "")
        if operator is not None:  # an operator on grid axes
            settings = ", ".join(f"{k}={_value(v)}" for k, v in rule.args.items())
            shown = f"operator({operator.kind}{', ' + settings if settings else ''}) over {', '.join(operator.axes)}"
            return shown + (f" + bias({', '.join(operator.axes)})" if operator.bias else "")
        args = ", ".join(f"{k}={_value(v)}" for k, v in rule.args.items() if k not in ("pre", "post"))
        shown = f"{rule.rule}({args})" if args else rule.rule
        if rule.pre is not None:
            shown += f", {sum(p.synapses for p in projections)} synapses"
        return shown

    def _axes(self, edge: _Edge) -> str:
        """What the wire carries: the repeats it stands for, its named axes (its selection when plain), and the
        units of the target it reaches when that is a selection."""
        first = edge.items[0]
        projection = first.projection
        carried = _one_of(text.axes(i.projection.source_shape if i.projection else i.shape) for i in edge.items)
        shown = carried
        if first.source.plain and first.source.slots[0].select is not None:
            shown = text.fill(first.source.template, [i.source.slots for i in edge.items])  # `h[0]`
            shown += f" ({carried})" if carried else ""
        if first.target_select is not None and (projection is not None or not self._fills(edge)):
            wire = f"{shown or '1'} → {self._selected_target(edge)}"
        elif projection is not None and text.axes(projection.target_shape) != carried:
            wire = f"{shown or '1'} → {text.axes(projection.target_shape) or '1'}"
        else:
            wire = shown
        return " × ".join(p for p in (self._repeats(edge), wire) if p)

    def _selected_target(self, edge: _Edge) -> str:
        """`Bd[1:5]`: the units of a population or output that a wire reaches."""
        first = edge.items[0]
        name = first.projection.target if first.projection else first.target.name
        shape = self.populations[name].shape if first.projection else self.outputs[name].shape
        selected = text.merged_selection([i.target_select for i in edge.items], shape)
        return f"{self.hierarchy.display(name, first.context)}{selected}"

    def _fills(self, edge: _Edge) -> bool:
        """Whether the output pieces of an edge fill their whole output."""
        output = self.outputs[edge.items[0].target.name]
        sizes = [a.size for a in output.shape]
        filled = np.unique(np.concatenate([selected_units(sizes, i.target_select) for i in edge.items]))
        return len(filled) == int(np.prod(sizes))

    def _repeats(self, edge: _Edge) -> str:
        """`seg=5` for a wire in every member of a folded array, `seg[1:5]` for some of them."""
        group = self.hierarchy.group_of[edge.items[0].member.name]
        if group.letter is None:
            return ""
        indices = sorted({i.member.index for i in edge.items if i.member.index is not None})
        if indices == group.indices:
            return f"{group.array}={len(indices)}"
        return f"{group.array}[{text.indices(indices)}]"

    def _extras(self, edge: _Edge) -> str:
        """Notes: how often a `for` loop repeated the wire in one instance, its delay."""
        first = edge.items[0]
        notes = []
        per_member: dict[str, int] = {}
        for item in edge.items:
            per_member[item.member.name] = per_member.get(item.member.name, 0) + 1
        if max(per_member.values()) > 1:
            notes.append(f"×{max(per_member.values())}")
        if first.projection is not None and first.projection.learnable_delay is not None:
            notes.append(f"delay ≤ {first.projection.delay}, learned")
        elif first.projection is not None and first.projection.delay:
            notes.append(f"delay {first.projection.delay}")
        return ", ".join(notes)


def _union(wires_of_members: Iterable[list[Wire]]) -> dict[str, list[Axis]]:
    """The ports of a group's members, each with the axes of its first member's signal."""
    ports: dict[str, list[Axis]] = {}
    for wires in wires_of_members:
        for wire in wires:
            ports.setdefault(wire.port, wire.shape)
    return ports


def _one_of(values: Iterable[str]) -> str:
    """One text for the repeats of a value: the value when they agree, else each once, joined."""
    return " | ".join(dict.fromkeys(values))


def _node(endpoint: str) -> str:
    """The node of an edge's end (`Bd` of `Bd:p_gate`)."""
    return endpoint.partition(":")[0]


def _labelled(label: str) -> dict[str, str]:
    """A wire's label attribute, none when it carries a single unit."""
    return {"label": text.html(label)} if label else {}


def _table(lines: list[str]) -> str:
    """An HTML label of several lines, spaced so that one line's underscores stay clear of the next."""
    rows = "".join(f"<TR><TD>{line}</TD></TR>" for line in lines)
    return f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">{rows}</TABLE>>'


def _value(value: object) -> str:
    """An argument value as written: numbers short, names and strings bare."""
    return text.number(value) if isinstance(value, int | float) else str(value)


_LAYERS = ("sensory", "inter", "motor", "muscle")


def _shape(shape: Sequence[Axis]) -> str:
    """A shape for a node: `joint=5`, labels shown for a short labelled axis, `1 unit` for a single one."""
    if not shape:
        return "1 unit"
    parts = []
    for axis in shape:
        part = f"{axis.name}={axis.size}"
        if axis.labels:
            part += " {" + ", ".join(axis.labels[:4]) + (", …" if axis.size > 4 else "") + "}"
        parts.append(part + _groups(axis))
    return " × ".join(parts)


def _groups(axis: Axis) -> str:
    """How a connectome's units group: units per layer in body order, and the number of cell classes."""
    if axis.classes is None:
        return ""
    counts = Counter(axis.layers or ())
    layers = sorted(counts, key=lambda layer: (_LAYERS.index(layer) if layer in _LAYERS else len(_LAYERS), layer))
    described = [f"{counts[layer]} {layer}" for layer in layers] + [f"{len(set(axis.classes))} classes"]
    return "\n" + " · ".join(described)


def _node_label(name: str, lines: list[str], shape: Sequence[Axis], ports: Sequence[str] = (),
                notes: Sequence[str] = ()) -> str:
    """An HTML label: the name in bold, what it is, its shape, notes; input ports (when several) as cells on the
    left that wires attach to."""
    rows = [f"<TR><TD><B>{text.html(name)}</B></TD></TR>"]
    rows += [f'<TR><TD><FONT POINT-SIZE="10">{line}</FONT></TD></TR>' for line in lines]
    described = "<BR/>".join(text.html(line) for line in _shape(shape).split("\n"))
    rows.append(f'<TR><TD><FONT POINT-SIZE="10" COLOR="gray25">{described}</FONT></TD></TR>')
    rows += [f'<TR><TD><FONT POINT-SIZE="9">{note}</FONT></TD></TR>' for note in notes]
    info = '<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">' + "".join(rows) + "</TABLE>"
    if not ports:
        return f"<{info}>"
    cells = "".join(f'<TR><TD PORT="p_{p}" BORDER="1"><FONT POINT-SIZE="9">{text.html(p)}</FONT></TD></TR>'
                    for p in ports)
    return (f'<<TABLE BORDER="0" CELLSPACING="0" CELLPADDING="0"><TR><TD><TABLE BORDER="0" CELLSPACING="2" '
            f'CELLPADDING="2">{cells}</TABLE></TD><TD>{info}</TD></TR></TABLE>>')


def _box_label(group: Group, inputs: list[str], outputs: list[str]) -> str:
    """A collapsed sub-circuit: its inputs on the left, its outputs on the right, as cells wires attach to."""

    def column(kind: str, ports: list[str]) -> str:
        if not ports:
            return "<TD></TD>"
        cells = "".join(f'<TR><TD PORT="port_{kind}_{p}" BORDER="1" BGCOLOR="#EEEEEE">{text.html(p)}</TD></TR>'
                        for p in ports)
        return f'<TD><TABLE BORDER="0" CELLSPACING="3" CELLPADDING="2">{cells}</TABLE></TD>'

    name, what = group.title()
    title = f"<B>{text.html(name)}</B><BR/>{text.html(what)}"
    return ('<<TABLE BORDER="1" CELLBORDER="0" CELLSPACING="0" CELLPADDING="4" STYLE="rounded" BGCOLOR="#FAFAFA">'
            f'<TR>{column("in", inputs)}<TD>{title}</TD>{column("out", outputs)}</TR></TABLE>>')
