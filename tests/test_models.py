"""Every model in models/ elaborates, round-trips through JSON and has the graph view; NCAP's counts hold."""

from __future__ import annotations

import re
from pathlib import Path

import networkx as nx
import pytest

import circuitdsl
from circuitdsl.ir.model import CircuitIR
from tests.model_files import MODELS
from tests.unit_graph import UnitGraph

SWIMMER = "models/ncap_swimmer.circuit"
SEGMENTS = "models/ncap_segments.circuit"


def test_there_are_models() -> None:
    assert {m.name for m in MODELS} >= {"ncap_swimmer.circuit", "ncap_segments.circuit"}


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.name)
def test_model_checks_round_trips_and_has_a_graph(path: Path) -> None:
    results = circuitdsl.check(path)
    assert results, "every model has at least one stand-alone circuit"
    for result in results:
        ir = result.ir
        again = CircuitIR.from_json(ir.to_json())
        assert again == ir
        assert again.to_json() == ir.to_json()
        graph = ir.to_networkx()
        assert isinstance(graph, nx.MultiDiGraph)
        population_nodes = [n for n, d in graph.nodes(data=True) if d["kind"] == "population"]
        assert sorted(population_nodes) == sorted(p.name for p in ir.populations)
        assert graph.number_of_edges() >= len(ir.projections)


@pytest.mark.parametrize("path", [SWIMMER, SEGMENTS])
@pytest.mark.parametrize(("args", "scalars", "enforced"), [
    ({}, 4, True),
    ({"joints": 9}, 4, True),
    ({"joints": 3}, 4, True),
    ({"shared": False}, 30, True),
    ({"shared": False, "joints": 9}, 54, True),
    ({"signs": "none"}, 4, False),
])
def test_ncap_parameter_counts(path: str, args: dict[str, object], scalars: int, enforced: bool) -> None:
    ir = circuitdsl.load(path, **args)
    assert ir.trainable_scalars == scalars
    assert all(p.trainable for p in ir.parameters)
    assert all((p.enforce == "clamp") == enforced for p in ir.parameters)
    assert all(p.enforce in ("clamp", "none") for p in ir.parameters)
    if not args.get("shared", True):
        assert {p.name: p.size for p in ir.parameters} == {
            "osc": 2, "prop": 2 * (args.get("joints", 5) - 1), "ipsi": 2 * args.get("joints", 5),
            "contra": 2 * args.get("joints", 5)}


def test_ncap_signs_and_inits() -> None:
    ir = circuitdsl.load(SWIMMER)
    params = {p.name: p for p in ir.parameters}
    assert {n: p.sign for n, p in params.items()} == {
        "osc": "excitatory", "prop": "excitatory", "ipsi": "excitatory", "contra": "inhibitory"}
    assert {n: p.init.args for n, p in params.items()} == {"osc": [1.0], "prop": [1.0], "ipsi": [1.0],
                                                           "contra": [-1.0]}
    assert all(p.init.rule == "constant" and p.shape == [] for p in params.values())
    contra = [p for p in ir.projections if p.weight.param == "contra"]
    assert contra and all(p.arrow == "-|" for p in contra)


def test_ncap_structure() -> None:
    ir = circuitdsl.load(SWIMMER)
    assert [p.name for p in ir.populations] == ["osc_d", "Bd", "Bv", "Md", "Mv"]
    assert [a.name for a in ir.population("Bd").shape] == ["joint"]
    assert ir.population("osc_d").model == "SquareWave(period=60, phase=0)"  # one clock: the ventral phase is
    (ventral,) = [p for p in ir.projections if p.target == "Bv" and p.weight.param == "osc"]  # its complement
    assert ventral.source.node == "binary" and ventral.source.op == "-"  # type: ignore[union-attr]
    assert ir.inputs[0].name == "q" and ir.inputs[0].shape[0].size == 5
    assert ir.outputs[0].name == "torque"
    assert not any(p.recurrent for p in ir.projections), "NCAP is feed-forward within a step"
    graph = ir.to_networkx()
    assert nx.is_directed_acyclic_graph(graph)
    assert graph.has_edge("q", "Bd") and graph.has_edge("Bd", "Mv")


def _flat(name: str, unit: int) -> str:
    return f"{name}[{unit}]"


def _segments(name: str, unit: int) -> str:
    match = re.fullmatch(r"seg\[(\d+)\]\.(\w+)", name)
    return f"{match.group(2)}[{match.group(1)}]" if match else f"{name}[{unit}]"


@pytest.mark.parametrize("args", [{}, {"joints": 9}, {"shared": False}, {"signs": "none", "joints": 3}])
def test_segment_template_elaborates_to_the_same_network(args: dict[str, object]) -> None:
    flat = circuitdsl.load(SWIMMER, **args)
    segments = circuitdsl.load(SEGMENTS, **args)
    a, b = UnitGraph(flat, _flat), UnitGraph(segments, _segments)
    assert a.unit_models() == b.unit_models()
    assert a.outputs() == b.outputs()
    assert {p.name: (p.shape, p.sign, p.enforce, p.init, p.share) for p in flat.parameters} == \
        {p.name: (p.shape, p.sign, p.enforce, p.init, p.share) for p in segments.parameters}
    if args.get("shared", True):
        assert a.synapses() == b.synapses()
    else:  # per-edge elements are numbered in declaration order, which differs: compare the edge sets only
        strip = lambda edges: {e[:4] for e in edges}
        assert strip(a.synapses()) == strip(b.synapses())
        assert len(a.synapses()) == len(b.synapses()) == flat.trainable_scalars


def test_ncap_stretch_receptors_come_from_the_joint_ahead() -> None:
    synapses = UnitGraph(circuitdsl.load(SWIMMER), _flat).synapses()
    prop = sorted((s, t) for s, t, _, param, _ in synapses if param == "prop")
    assert ("clamp(q[0], 0.0, 1.0)", "Bd[1]") in prop
    assert ("clamp((-q[3]), 0.0, 1.0)", "Bv[4]") in prop
    assert len(prop) == 8


def test_segments_hierarchy_records_instances() -> None:
    ir = circuitdsl.load(SEGMENTS)
    children = ir.hierarchy.children
    assert [c.name for c in children] == [f"seg[{i}]" for i in range(5)]
    assert all(c.circuit == "Segment" and c.array == "seg" for c in children)
    assert children[0].args == {"head": True} and children[3].index == 3
    assert children[2].populations == ["seg[2].Bd", "seg[2].Bv", "seg[2].Md", "seg[2].Mv"]
