"""Circuit definitions -> the network: instantiate the top circuit, run its body, lay out the params and
assemble the IR.

Sub-circuits are expanded in place with qualified names (`seg[2].Bd`); their inputs are bound at
instantiation to signals of the parent (`Segment(drive = clamp(q[i-1], 0, 1))`), and a parent's param
passed by name (`Segment(prop = prop)`) replaces the child's own declaration of it.  The passes live in their
own modules (network.py lists them); this one drives them and checks the whole.
"""

from __future__ import annotations

from collections.abc import Iterable

from circuitdsl import ast
from circuitdsl.bulk import gc_paused
from circuitdsl.elaborate import shared
from circuitdsl.elaborate.evaluate import Abort
from circuitdsl.elaborate.network import Frame, Network
from circuitdsl.elaborate.neurons import bind_arguments, plain
from circuitdsl.elaborate.param_layout import check_parameters, lay_out
from circuitdsl.elaborate.ports import finish_outputs
from circuitdsl.elaborate.sandbox import Sandbox
from circuitdsl.elaborate.scope import Scope
from circuitdsl.elaborate.statements import StatementRunner, check_unused
from circuitdsl.elaborate.values import Definition
from circuitdsl.errors import CircuitError, Reporter, Span
from circuitdsl.ir import model as ir
from circuitdsl.ir.expr import size as expr_size
from circuitdsl.ir.graph import signal_sources
from circuitdsl.limits import Limits


class CircuitBuilder:
    """Builds one `ir.CircuitIR` from a top circuit definition and its arguments."""

    def __init__(self, reporter: Reporter, limits: Limits, sandbox: Sandbox | None = None) -> None:
        self.reporter = reporter
        self.limits = limits
        self.net = Network.start(reporter, limits, sandbox)

    def build(self, definition: Definition, given: Iterable[tuple[ast.Ident | None, object, Span]],
              span: Span) -> ir.CircuitIR:
        with gc_paused():  # halves the time of a large circuit (circuitdsl/bulk.py)
            return self._build(definition, given, span)

    def _build(self, definition: Definition, given: Iterable[tuple[ast.Ident | None, object, Span]],
               span: Span) -> ir.CircuitIR:
        net = self.net
        scope = Scope(parent=definition.module.scope)
        try:
            args = bind_arguments(net.evaluator, definition, given, scope, span)
        except Abort:
            raise CircuitError(self.reporter.errors) from None
        frame = Frame(definition, "", scope, True, {}, {})
        net.active.append(definition)
        StatementRunner(net).run(frame, definition.node.body, scope)
        net.active.pop()
        check_unused(net, frame)
        outputs = finish_outputs(net, frame)
        self.reporter.raise_if_errors()
        hierarchy = ir.Instance(name="", circuit=definition.name, args={k: plain(v) for k, v in args.items()},
                                doc=definition.node.doc, inputs=list(frame.inputs),
                                outputs=list(frame.outputs), populations=[p.name for p in frame.populations.values()],
                                children=frame.children, span=definition.node.span)
        try:
            parameters, projections = lay_out(net)
        except Abort:  # an init rule that does not fit its param's shape
            raise CircuitError(self.reporter.errors) from None
        check_parameters(net, parameters)
        self._check_expressions(projections, outputs)
        self.reporter.raise_if_errors()
        signals = shared.share(_mark_recurrent(projections, net.populations), outputs, hierarchy,
                               {key: let.name for key, let in net.let_names.items()})
        return ir.CircuitIR(name=definition.name, doc=definition.node.doc, args=hierarchy.args,
                            inputs=list(frame.inputs.values()), outputs=signals.outputs, populations=net.populations,
                            projections=signals.projections, parameters=parameters,
                            neurons=net.neurons, hierarchy=signals.hierarchy, files=sorted(self.reporter.sources),
                            sources=net.sources, shared=signals.table, shared_names=signals.names)

    def _check_expressions(self, projections: list[ir.Projection], outputs: list[ir.Output]) -> None:
        """E708 for an expression of more nodes than the limit (shared subexpressions counted once)."""
        roots = [(p.source, p.span) for p in projections]
        roots += [(piece.expr, o.span) for o in outputs for piece in o.pieces]
        for expr, span in roots:
            if (n := expr_size(expr)) > self.limits.expression_size:
                self.reporter.error("E708", f"this expression has {n} nodes, {self.limits.over('expression_size')}",
                                    span, [self.limits.hint("expression_size")])
                return


def _mark_recurrent(projections: list[ir.Projection], populations: list[ir.Population]) -> list[ir.Projection]:
    """Order a step feed-forward in declaration order; an instantaneous edge closing a cycle reads the past.

    Gap junctions always read the previous step's outputs (they are symmetric, so they would always close a
    cycle).  Delayed projections read their ring buffer and are not part of the within-step order.  Only an
    edge from a population to itself or to one declared before it can close a cycle; where there is none (a
    feed-forward circuit) no cycle is looked for, and networkx is not imported.
    """
    order = {p.name: i for i, p in enumerate(populations)}
    reads = [[s for s in dict.fromkeys(signal_sources(p.source)) if s in order]  # the populations read within a step
             if p.kind == "chemical" and p.delay == 0 else [] for p in projections]
    pairs = list(zip(projections, reads, strict=True))
    backward = [[s for s in sources if order[s] >= order[p.target]] for p, sources in pairs]
    component: dict[str, int] = {}
    if any(backward):
        component = _cycles(order, [(s, p.target) for p, sources in pairs for s in sources])
    marked = []
    for projection, sources in zip(projections, backward, strict=True):
        recurrent = projection.kind == "electrical" or any(component[s] == component[projection.target]
                                                           for s in sources)
        marked.append(projection if projection.recurrent == recurrent  # frozen: kept as it is, not copied
                      else projection.model_copy(update={"recurrent": recurrent}))
    return marked


def _cycles(nodes: Iterable[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    """Each node's strongly connected component (nodes on a common cycle share one)."""
    import networkx as nx

    graph = nx.DiGraph()
    graph.add_nodes_from(nodes)
    graph.add_edges_from(edges)
    return {node: i for i, members in enumerate(nx.strongly_connected_components(graph)) for node in members}
