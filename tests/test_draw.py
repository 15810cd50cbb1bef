"""Diagrams: every model draws in both views; golden DOT files; the notation read back from the DOT text.

Golden files live in tests/golden/.  A mismatch fails; after a deliberate change of the diagrams, regenerate them
with `CIRCUITDSL_UPDATE_GOLDEN=1 python -m pytest tests/test_draw.py` and review the diff.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import circuitdsl
from circuitdsl.cli import main
from circuitdsl.draw import GraphvizNotInstalled, svg, write
from tests.dot_text import edge_label, edges, node, pins
from tests.model_files import TYPED as MODELS

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"
SWIMMER = "models/ncap_swimmer.circuit"
SEGMENTS = "models/ncap_segments.circuit"
UPDATE = os.environ.get("CIRCUITDSL_UPDATE_GOLDEN") == "1"
HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="graphviz's `dot` is not installed (apt-get install graphviz)")

Capture = pytest.CaptureFixture[str]


@pytest.fixture(autouse=True)
def _in_the_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # paths as a user types them, and as the golden files record them


def dot(path: str, view: str = "folded", depth: int | None = None, **args: object) -> str:
    return circuitdsl.draw(circuitdsl.load(path, **args), view=view, depth=depth).source  # type: ignore[arg-type]


# ---- every model, both views, rendered ----------------------------------------------------------------
@needs_dot
@pytest.mark.parametrize("view", ["folded", "unrolled"])
@pytest.mark.parametrize("path", MODELS)
def test_every_model_draws_to_svg_and_png(path: str, view: str, tmp_path: Path) -> None:
    ir = circuitdsl.load(path)
    write(ir, tmp_path / "d.svg", view)  # type: ignore[arg-type]
    write(ir, tmp_path / "d.png", view)  # type: ignore[arg-type]
    assert b"<svg" in (tmp_path / "d.svg").read_bytes()
    assert (tmp_path / "d.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


# ---- golden DOT -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("path", "view"), [(SWIMMER, "folded"), (SWIMMER, "unrolled"), (SEGMENTS, "folded"),
                                           ("models/celegans_touch.circuit", "unrolled")])
def test_golden_dot(path: str, view: str) -> None:
    golden = GOLDEN / f"{Path(path).stem}.{view}.dot"
    drawn = dot(path, view)
    if UPDATE:
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(drawn, encoding="utf-8")
    assert golden.exists(), f"no golden file {golden}: run with CIRCUITDSL_UPDATE_GOLDEN=1 to create it"
    assert drawn == golden.read_text(encoding="utf-8"), (
        f"{path} ({view}) no longer draws as {golden.name}; if the change is intended, regenerate with "
        "CIRCUITDSL_UPDATE_GOLDEN=1 python -m pytest tests/test_draw.py and review the diff")


def test_same_file_gives_byte_identical_dot() -> None:
    for view in ("folded", "unrolled"):
        assert dot(SEGMENTS, view) == dot(SEGMENTS, view)
        assert dot(SWIMMER, view, joints=7) == dot(SWIMMER, view, joints=7)


# ---- the notation, read back from the DOT text ----------------------------------------------------------
def test_swimmer_folded_notation() -> None:
    source = dot(SWIMMER)
    for tail, head in (("Bd", "Mv"), ("Bv", "Md")):
        (inhibitory,) = edges(source, tail, head)
        assert "arrowhead=tee" in inhibitory and "contra" in inhibitory
    for tail, head in (("Bd", "Md"), ("Bv", "Mv")):
        (excitatory,) = edges(source, tail, head)
        assert "arrowhead=normal" in excitatory and "<B>ipsi</B> · one_to_one" in excitatory
        assert "joint=5" in excitatory  # the axes the wire carries
    (osc,) = edges(source, "osc_d", "Bd")
    assert "1 → Bd[0]" in osc
    assert "clamp(q[0:4], 0, 1)" in source and "joint=4 → Bd[1:5]" in source
    assert "Md - Mv" in source
    assert "joint=5" in node(source, "Bd") and "Graded" in node(source, "Bd")
    assert "period=60" in node(source, "osc_d")


def test_shared_parameter_has_one_colour_everywhere_and_a_legend() -> None:
    source = dot(SWIMMER)
    legend = node(source, '"shared parameters"')
    for name in ("osc", "prop", "ipsi", "contra"):
        colour = re.search(rf'<FONT COLOR="(#[0-9A-F]{{6}})"><B>{name}</B></FONT>', legend)
        assert colour, f"{name} is not in the legend"
        uses = [line for line in source.splitlines() if f"<B>{name}</B> · " in line]
        assert len(uses) == 2
        assert all(f'color="{colour.group(1)}"' in line for line in uses)


def test_unshared_parameters_get_no_colour() -> None:
    source = dot(SWIMMER, shared=False)
    assert "shared parameters" not in source
    assert not [line for line in source.splitlines() if " -> " in line and 'color="#' in line]


def test_repeated_instances_fold_into_one_cluster_marked_times_n() -> None:
    source = dot(SEGMENTS)
    assert len(re.findall(r'subgraph "?cluster_', source)) == 1
    assert "<B>seg[i]</B> : Segment  ×5" in source
    assert "Graded" in node(source, '"seg[i]/Bd"')  # one box for the five Bd
    for port in ("drive_d", "drive_v", "bend"):
        assert "shape=cds" in node(source, f'"seg[i]/{port}"')
    (osc, prop) = sorted(edges(source, '"seg[i]/drive_d"', '"seg[i]/Bd"'))
    assert "<B>osc</B> · all_to_all" in osc and "seg[0]" in osc
    assert "<B>prop</B> · all_to_all" in prop and "seg[1:5]" in prop
    (contra,) = edges(source, '"seg[i]/Bd"', '"seg[i]/Mv"')
    assert "arrowhead=tee" in contra and "seg=5" in contra
    assert "clamp(q[0:4], 0, 1)" in source  # the five bindings of drive_d, folded
    (readout,) = edges(source, '"seg[i]/bend"', "torque")
    assert "seg=5" in readout


def test_depth_collapses_sub_circuits_into_boxes_with_ports() -> None:
    source = dot(SEGMENTS, depth=0)
    assert "cluster_" not in source and "seg[i]/Bd" not in source
    assert 'PORT="port_in_drive_d"' in source and 'PORT="port_out_bend"' in source
    assert edges(source, "osc_d", '"seg[i]":port_in_drive_d')
    assert edges(source, '"seg[i]":port_out_bend', "torque")
    assert dot(SEGMENTS, depth=1) == dot(SEGMENTS)


NOTATION = """
neuron Cell {
  input in, gate
  out = in * gate
}
circuit Notation(n: int = 4) {
  input x[k = n]
  output y[k = n]
  population h[k = n] : Tanh
  population c[k = n] : Cell
  x -> h : one_to_one, weight = 0.5
  h <-> h : pairs([[0, 1], [2, 3]]), weight = 0.1
  for i in 1 .. n {
    h[i - 1] -> h[i] : weight = 0.25
  }
  h -> c : one_to_one
  x -> c.gate : one_to_one, weight = fixed(1)
  y = c
}
"""


def test_gap_junctions_loops_ports_and_weights() -> None:
    ir = circuitdsl.loads(NOTATION)
    folded = circuitdsl.draw(ir).source
    gap, _ = edges(folded, "h", "h")
    assert "style=dashed" in gap and "dir=none" in gap and "label" not in gap  # described in the box instead
    assert "onto itself: w=0.1 · pairs, 2 synapses" in node(folded, "h")
    assert "onto itself: w=0.25 · all_to_all" in node(folded, "h") and "×3" in node(folded, "h")
    assert "h[0:3] → h[1:4]" in node(folded, "h")  # three loop iterations, one box
    assert 'PORT="p_gate"' in node(folded, "c") and edges(folded, "x", "c:p_gate:w")
    unrolled = circuitdsl.draw(ir, view="unrolled").source
    styles = edges(unrolled, '"h[0]"', '"h[1]"')
    assert any("style=dashed" in s and "dir=none" in s for s in styles)  # the gap junction
    assert any("arrowhead=empty" in s for s in styles)  # the loop's synapse: `weight = 0.25` learns its sign
    widths = {float(w) for w in re.findall(r"penwidth=([\d.]+)", unrolled)}
    assert len(widths) == 4  # the constant weights 0.5, 0.25, 0.1 and 1 give four widths


def test_unrolled_swimmer_head_to_tail_dorsal_above_ventral() -> None:
    source = dot(SWIMMER, "unrolled")
    assert "layout=neato" in source
    at = pins(source)
    for i in range(5):
        assert at[f"Bd[{i}]"][1] > at[f"Bv[{i}]"][1] and at[f"Md[{i}]"][1] > at[f"Mv[{i}]"][1]
        assert at[f"Bd[{i}]"][0] < at[f"Md[{i}]"][0] < at[f"torque[{i}]"][0]
    assert [at[f"Bd[{i}]"][0] for i in range(5)] == sorted(at[f"Bd[{i}]"][0] for i in range(5))
    assert at["osc_d"][0] < at["Bd[0]"][0] and "osc_v" not in at  # the ventral phase is osc_d's complement
    assert at["q[0]"][0] < at["Bd[1]"][0] < at["q[1]"][0]  # a joint's stretch drives the segment behind it
    assert "joint 0" in source and "joint 4" in source
    assert len(re.findall(r"arrowhead=tee", source)) == 10


def test_unrolled_edges_say_what_signal_they_carry_when_it_is_not_the_unit_as_is() -> None:
    source = dot(SWIMMER, "unrolled")
    assert [edge_label(a) for a in edges(source, "osc_d", '"Bv[0]"')] == ["1 - osc_d"]  # the ventral phase
    assert [edge_label(a) for a in edges(source, "osc_d", '"Bd[0]"')] == [None]  # the dorsal one is osc_d as is
    assert [edge_label(a) for a in edges(source, '"q[2]"', '"Bd[3]"')] == ["clamp(q[2], 0, 1)"]
    assert [edge_label(a) for a in edges(source, '"q[2]"', '"Bv[3]"')] == ["clamp(-q[2], 0, 1)"]  # the stretch's sign
    into_torque = edges(source, '"Md[1]"', '"torque[1]"') + edges(source, '"Mv[1]"', '"torque[1]"')
    assert sorted(map(str, map(edge_label, into_torque))) == ["Md[1] - Mv[1]", "None"]  # once per unit, one edge each
    at = pins(source)
    assert at["Bv[1]"][0] - at["q[0]"][0] > len("clamp(-q[0], 0, 1)") * 0.06  # room for the label between them
    touch = circuitdsl.draw(circuitdsl.load(ROOT / "models/celegans_touch.circuit"), view="unrolled").source
    assert edges(touch, '"N[AVAL]"', "reverse") and "<td>" not in touch  # a sum needs no label


def test_unrolled_segments_matches_the_swimmer_layout() -> None:
    source = dot(SEGMENTS, "unrolled")
    at = pins(source)
    assert "seg[0]" in node(source, '"header 0"')
    for i in range(5):
        assert at[f"seg[{i}].Bd"][1] > at[f"seg[{i}].Bv"][1]
    assert [at[f"seg[{i}].Bd"][0] for i in range(5)] == sorted(at[f"seg[{i}].Bd"][0] for i in range(5))
    # a label names units as their nodes do, under their block's title; across blocks in full
    assert [edge_label(a) for a in edges(source, '"seg[1].Md"', '"torque[1]"')] == ["Md - Mv"]
    across = circuitdsl.draw(circuitdsl.loads(Path(SEGMENTS).read_text().replace(
        "torque[i] = seg[i].bend", "torque[i] = seg[i].bend - seg[0].bend")), view="unrolled").source
    assert [edge_label(a) for a in edges(across, '"seg[2].Md"', '"torque[2]"')] == [
        "seg[2].Md - seg[2].Mv - (seg[0].Md - seg[0].Mv)"]


def test_unrolled_fields_draw_one_unit_per_channel_and_operators_join_every_channel_pair() -> None:
    """A 2D FNO at 9 x 9 points: 4 channels a layer, not 324 units; each spectral layer is 4 x 4 edges."""
    source = dot("models/operator_darcy2d.circuit", "unrolled")
    at = pins(source)
    assert {f"layer2.h[{c}]" for c in range(4)} <= set(at) and not any("," in name for name in at)
    assert at["layer1.h[0]"][0] < at["layer2.h[0]"][0] < at["project[0]"][0] < at["out"][0]
    assert all(len(edges(source, f'"layer1.h[{i}]"', f'"layer2.h[{o}]"')) == 1 for i in range(4) for o in range(4))
    assert len(edges(source, '"project[2]"', "out")) == 1 and len(edges(source, "a", '"lift[3]"')) == 1


# ---- without graphviz's dot -----------------------------------------------------------------------------
def test_without_dot_dot_text_works_and_images_fail_clearly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                            capsys: Capture) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` anywhere
    ir = circuitdsl.load(SWIMMER)
    assert "digraph Swimmer" in circuitdsl.draw(ir).source
    write(ir, tmp_path / "d.dot")
    assert (tmp_path / "d.dot").read_text().startswith("digraph")
    with pytest.raises(GraphvizNotInstalled, match=r"system package graphviz.*apt-get install graphviz"):
        write(ir, tmp_path / "d.png")
    assert ir._repr_svg_() is None  # a notebook then shows the text summary
    assert main(["draw", SWIMMER, "-o", str(tmp_path / "d.svg")]) == 3  # an environment problem
    out, err = capsys.readouterr()
    assert "apt-get install graphviz" in err and "Traceback" not in err and out == ""
    assert main(["draw", SWIMMER]) == 0
    assert capsys.readouterr().out.startswith("digraph Swimmer")


# ---- the command line and notebooks ---------------------------------------------------------------------
@needs_dot
@pytest.mark.parametrize("suffix", ["svg", "png", "pdf", "dot"])
def test_cli_writes_each_format(suffix: str, tmp_path: Path, capsys: Capture) -> None:
    out = tmp_path / f"swimmer.{suffix}"
    assert main(["draw", SWIMMER, "-o", str(out), "--view", "unrolled"]) == 0
    assert out.stat().st_size > 0 and str(out) in capsys.readouterr().out


def test_cli_draw_reads_circuit_arguments_and_depth(capsys: Capture) -> None:
    assert main(["draw", SWIMMER, "--arg", "joints=3"]) == 0
    assert "joint=3" in capsys.readouterr().out
    assert main(["draw", SEGMENTS, "--circuit", "Segment", "--arg", "head=true"]) == 0
    assert "Segment  (folded)" in capsys.readouterr().out
    assert main(["draw", SEGMENTS, "--depth", "0"]) == 0
    assert "port_in_drive_d" in capsys.readouterr().out


def test_cli_draw_reports_mistakes_without_traceback(tmp_path: Path, capsys: Capture) -> None:
    bad = tmp_path / "bad.circuit"
    bad.write_text("circuit A {\n  population Bd[joint = 5] : Graded\n  Bdd -> Bd : one_to_one\n}\n")
    assert main(["draw", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "error[E201]" in err and "Traceback" not in err
    assert main(["draw", SWIMMER, "-o", str(tmp_path / "d.jpg")]) == 2
    assert "name a .svg, .png, .pdf or .dot file" in capsys.readouterr().err
    assert main(["draw", SWIMMER, "--depth", "-1"]) == 2
    assert "--depth" in capsys.readouterr().err


@needs_dot
def test_notebooks_show_the_folded_svg() -> None:
    ir = circuitdsl.load(SWIMMER)
    assert ir._repr_svg_() == svg(ir)
    torch = pytest.importorskip("torch")
    assert torch is not None
    module = circuitdsl.compile(SWIMMER, backend="torch")
    assert "<svg" in module._repr_svg_()


# ---- a 300-neuron model -----------------------------------------------------------------------------------
def big_circuit(seed: int = 0) -> str:
    """A generated 300-neuron circuit: five populations, random connectivity between and within them."""
    rng = np.random.default_rng(seed)
    sizes = {"sensory": 40, "inter": 100, "command": 40, "motor": 80, "muscle": 40}
    lines = ["circuit Generated {", "  input touch[cell = 40]", "  output act[cell = 40]",
             "  param w : excitatory = 0.5"]
    lines += [f"  population {name}[cell = {n}] : Tanh" for name, n in sizes.items()]
    lines.append("  touch -> sensory : one_to_one, weight = w")
    names = list(sizes)
    for i, pre in enumerate(names):
        for post in names[i:i + 2]:
            arrow = "-|" if rng.random() < 0.3 else "->"
            lines.append(f"  {pre} {arrow} {post} : random(p = {rng.uniform(0.02, 0.08):.3f}, seed = {i})")
    lines += ["  inter <-> inter : random(p = 0.02, seed = 9), weight = 0.1", "  act = muscle", "}"]
    return "\n".join(lines) + "\n"


def test_a_300_neuron_model_draws(tmp_path: Path) -> None:
    ir = circuitdsl.loads(big_circuit())
    assert ir.units == 300
    for view in ("folded", "unrolled"):
        graph = circuitdsl.draw(ir, view=view)  # type: ignore[arg-type]
        if HAS_DOT:
            write(ir, tmp_path / f"{view}.svg", view)  # type: ignore[arg-type]
        assert graph.source.count("->") >= (5 if view == "folded" else ir.synapses // 2)
    folded = circuitdsl.draw(ir).source
    assert folded.count("shape=box") == 5  # legible: one box per population


def test_unrolled_connectome_by_layer_and_class_with_left_right_pairs_on_one_row() -> None:
    """Interneurons in a band left of motor neurons, each pair (AVBL, AVBR) on one row, inhibition as tees."""
    ir = circuitdsl.load("models/celegans_forward_locomotion.circuit")
    source = circuitdsl.draw(ir, view="unrolled").source
    pos = {m.group(1): (float(m.group(2)), float(m.group(3)))
           for m in re.finditer(r'^\t"([^"]+)" \[.*pos="([-\d.]+),([-\d.]+)!"', source, re.MULTILINE)}
    assert pos["M[AVBL]"][1] == pos["M[AVBR]"][1] and pos["M[AVBL]"][0] < pos["M[AVBR]"][0]
    assert max(x for name, (x, _) in pos.items() if name.startswith("M[AVB")) < pos["M[DB1]"][0]  # inter, motor
    assert pos["M[VB2]"][1] > pos["M[VB10]"][1]  # numbered cells in body order
    assert 'label="inter (2)"' in source and 'label="motor (37)"' in source
    tees = [re.findall(r'"M\[([A-Z]+)\d*\]"', line) for line in source.splitlines() if "arrowhead=tee" in line]
    # c302: the GABAergic D cells inhibit; the model also makes DB -> DD and VB -> VD inhibitory
    assert tees and all(pre in ("DD", "VD") or (pre, post) in (("DB", "DD"), ("VB", "VD")) for pre, post in tees)
