"""Behaviour of the language's constructs, read off the IR that `circuitdsl.loads` elaborates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from lark import Lark

import circuitdsl
from circuitdsl.ir.model import Binary, CircuitIR, Const, Gather, Ref, SliceSel
from circuitdsl.parser import grammar_text


def load(text: str, **args: object) -> CircuitIR:
    return circuitdsl.loads(text, file="t.circuit", **args)


def test_grammar_is_lalr_without_conflicts() -> None:
    Lark(grammar_text(), parser="lalr", strict=True, propagate_positions=True)


def test_spans_point_at_the_source() -> None:
    module = circuitdsl.parse("circuit A {\n  population Bd[joint = 5] : Graded\n}\n", "a.circuit")
    declaration = module.items[0].body[0]
    assert (declaration.span.line, declaration.span.column) == (2, 3)
    name = declaration.names[0].name
    assert (name.span.line, name.span.column, name.span.end_column, name.name) == (2, 14, 16, "Bd")


def test_units_are_stored_in_canonical_magnitudes() -> None:
    ir = load("""
circuit C(tau: time = 0.02 s) {
  population a : Leaky(tau = tau, dt = 500 us)
  population b : Leaky(tau = 20 ms)
}""")
    assert ir.population("a").args == {"tau": 20.0, "dt": 0.5}
    assert ir.population("b").args == {"tau": 20.0, "dt": 1.0}
    leaky = ir.neurons[ir.population("a").model]
    assert [e.kind for e in leaky.equations] == ["ode", "out"]
    assert leaky.states[0].dim == "dimensionless"


def test_voltage_neuron_checks_dimensions() -> None:
    ir = load("""
neuron Membrane(tau: time = 10 ms, rest: voltage = -65 mV, R: resistance = 100 Mohm, dt: time = 0.1 ms) {
  input I: current
  state v = -65 mV
  dv/dt = (rest - v + R * I) / tau
  out = v
}
circuit C {
  input drive[n = 3]
  population m[n = 3] : Membrane
  drive -> m : one_to_one, weight = 1 nA
}""")
    model = ir.neurons[ir.population("m").model]
    assert model.states[0].init == Const(value=-65.0)
    assert model.inputs[0].dim == "current" and model.output_dim == "voltage"
    assert ir.parameters[0].dim == "current"
    with pytest.raises(circuitdsl.CircuitError) as error:
        load("""
neuron Bad(tau: time = 10 ms, dt: time = 1 ms) {
  state v = -65 mV
  dv/dt = (-v + 1) / tau
  out = v
}
circuit C {
  population m : Bad
}""")
    assert error.value.code == "E401"


def test_lif_variants_follow_their_arguments() -> None:
    ir = load("""
circuit C {
  population a[n = 2] : LIF
  population b[n = 2] : LIF(beta = 0.5, reset = zero, surrogate = fast_sigmoid, slope = 25)
}""")
    a, b = ir.neurons[ir.population("a").model], ir.neurons[ir.population("b").model]
    assert a.name == "LIF(beta=0.9, threshold=1, reset='subtract', surrogate='atan', slope=2)"
    spike_a = next(e for e in a.equations if e.kind == "spike")
    spike_b = next(e for e in b.equations if e.kind == "spike")
    assert (spike_a.surrogate, spike_a.surrogate_args) == ("atan", {"alpha": 2.0})
    assert (spike_b.surrogate, spike_b.surrogate_args) == ("fast_sigmoid", {"slope": 25.0})
    update_a = next(e for e in a.equations if e.kind == "update")
    assert "detach" in update_a.expr.model_dump_json()


def test_slices_and_labels_select_units() -> None:
    ir = load("""
circuit C {
  population N[neuron = {AVAL, AVAR, AVBL, AVBR}] : Graded
  population h[channel = 3, x = 8] : Identity
  population out[n = 2] : Identity
  N[AVAL, AVBR] -> out : one_to_one, weight = 1
  h[channel = 1, x = 0:8:4] -> out : one_to_one, weight = 1
}""")
    first, second = ir.projections
    assert first.source == Ref(source="N", select=[SliceSel(start=0, stop=4, step=3)])
    assert ir.population("N").shape[0].labels == ["AVAL", "AVAR", "AVBL", "AVBR"]
    assert second.source == Ref(source="h", select=[1, SliceSel(start=0, stop=5, step=4)])


def test_gather_of_irregular_units() -> None:
    ir = load("""
circuit C {
  population a[n = 6] : Graded
  population b[n = 3] : Graded
  a[[5, 0, 2]] -> b : one_to_one, weight = 1
}""")
    select = ir.projections[0].source.select
    assert isinstance(select[0], Gather) and select[0].indices.data.tolist() == [5, 0, 2]


def test_rules_weights_and_default_inits() -> None:
    ir = load("""
circuit C {
  input x[pixel = 16]
  output y[cls = 4]
  population h[unit = 8] : Relu
  population o[cls = 4] : Identity
  x -> h : dense
  h -> o : random(p = 0.5, seed = 3), weight = normal(0, 0.1)
  h -| h : pairs([[0, 1], [1, 2]]), weight = fixed(-0.5)
  y = o
}""")
    dense, sparse, inhib = ir.projections
    assert dense.connectivity.rule == "all_to_all" and dense.synapses == 128
    w = ir.parameter(dense.weight.param)
    assert w.shape == [8, 16] and w.sign == "free" and w.init.rule == "uniform"
    assert w.init.args == pytest.approx([-0.25, 0.25])
    again = load("""
circuit C {
  population h[unit = 8] : Relu
  population o[cls = 4] : Identity
  h -> o : random(p = 0.5, seed = 3)
}""")
    assert again.projections[0].connectivity == sparse.connectivity, "the same seed gives the same synapses"
    assert sparse.synapses == len(sparse.connectivity.pre) > 0
    assert inhib.recurrent and not dense.recurrent
    fixed = ir.parameter(inhib.weight.param)
    assert (fixed.sign, fixed.trainable, fixed.init.args) == ("fixed", False, [-0.5])
    assert ir.trainable_scalars == 128 + sparse.synapses


def test_gap_junctions_are_symmetric_and_drop_self_pairs() -> None:
    result = circuitdsl.elaborate(None, text="""
circuit C {
  param g : excitatory = 0.1, shared = false
  population N[n = 4] : Graded
  N <-> N : pairs([[0, 1], [1, 0], [2, 2], [2, 3]]), weight = g
}""", file="t.circuit")
    projection = result.ir.projections[0]
    assert projection.kind == "electrical" and projection.recurrent
    assert projection.connectivity.pre.data.tolist() == [0, 2]
    assert projection.connectivity.post.data.tolist() == [1, 3]
    assert result.ir.parameter("g").shape == [2]
    assert [w.code for w in result.warnings] == ["W501"]


def test_recurrent_edges_follow_declaration_order_and_delays() -> None:
    ir = load("""
circuit C {
  population a[n = 2], b[n = 2] : Tanh
  a -> b : one_to_one, weight = 1
  b -> a : one_to_one, weight = 1
  b -> b : one_to_one, weight = 1, delay = 3
}""")
    forward, back, delayed = ir.projections
    assert (forward.recurrent, back.recurrent, delayed.recurrent) == (False, True, False)
    assert delayed.delay == 3


def test_sharing_scopes_size_the_parameter() -> None:
    text = """
circuit C(share: share = all) {
  param w : excitatory = 1, shared = share
  population a[n = 3], b[n = 3], c[n = 3] : Graded
  a -> b : one_to_one, weight = w
  a -> c : one_to_one, weight = w
  b -> c : one_to_one, weight = w
}"""
    sizes = {s: load(text, share=s).parameter("w").shape for s in ("all", "population", "projection", "edge")}
    assert sizes == {"all": [], "population": [2], "projection": [3], "edge": [9]}
    ir = load(text, share="population")
    assert [p.weight.offset for p in ir.projections] == [0, 1, 1]


def test_imports_relative_and_aliased(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "motifs.circuit").write_text("""
neuron Rect { out = relu(in) }
circuit Pair(n: int = 2) {
  input x[n = n]
  output y[n = n]
  population p[n = n] : Rect
  x -> p : one_to_one, weight = 1
  y = p
}""")
    (tmp_path / "main.circuit").write_text("""
import "lib/motifs.circuit" as m
import std
circuit Top {
  input u[n = 2]
  population r[n = 2] : m.Rect
  population s[n = 2] : std.Graded
  pair = m.Pair(x = u)
  pair.y -> r : one_to_one, weight = 1
  r -> s : one_to_one
}""")
    ir = circuitdsl.load(tmp_path / "main.circuit")
    assert [p.name for p in ir.populations] == ["r", "s", "pair.p"]
    assert ir.projections[1].source == Ref(source="pair.p")
    assert any(f.endswith("motifs.circuit") for f in ir.files)


def test_output_expressions_and_pieces() -> None:
    ir = load("""
circuit C {
  population a[n = 3], b[n = 3] : Graded
  output diff[n = 3]
  output pair[n = 2]
  diff = a - 0.5 * b
  pair[0] = a[0]
  pair[1] = b[2]
}""")
    diff, pair = ir.outputs
    assert isinstance(diff.pieces[0].expr, Binary)
    assert [piece.select for piece in pair.pieces] == [[0], [1]]


def test_loops_ifs_and_lets_unroll() -> None:
    ir = load("""
let width = 2
circuit C(n: int = 4, skip: bool = true) {
  population a[n = n * width] : Graded
  for i in 1 .. n {
    let j = i * width
    if skip and i % 2 == 0 {
      a[j - 2] -> a[j] : weight = 0.5
    } else {
      a[j - 1] -> a[j]
    }
  }
}""")
    assert len(ir.projections) == 3
    assert [p.target_select for p in ir.projections] == [[2], [4], [6]]
    assert [ir.parameter(p.weight.param).init.rule for p in ir.projections] == ["uniform", "constant", "uniform"]


def test_limits_are_configurable() -> None:
    text = "circuit C {\n  population a[n = 1000] : Graded\n}\n"
    assert load(text).units == 1000
    with pytest.raises(circuitdsl.CircuitError) as error:
        circuitdsl.loads(text, file="t.circuit", limits=circuitdsl.Limits(units=999))
    assert error.value.code == "E702"


def test_sine_wave_and_square_wave_models() -> None:
    ir = load("""
circuit C {
  population s : SineWave(period = 20)
  population q : SquareWave(period = 10, phase = 0.25)
}""")
    square = ir.neurons[ir.population("q").model]
    assert [(e.kind, e.target) for e in square.equations] == [("out", "out"), ("update", "t")]
    assert np.isclose(ir.population("q").args["phase"], 0.25)


def test_importing_a_file_twice_is_harmless(tmp_path: Path) -> None:
    (tmp_path / "a.circuit").write_text("neuron Rect { out = relu(in) }\n")
    (tmp_path / "main.circuit").write_text(
        'import "a.circuit"\nimport "a.circuit"\ncircuit C {\n  population p : Rect\n}\n')
    assert circuitdsl.load(tmp_path / "main.circuit").population("p").model == "Rect"
