"""The folded diagrams tell the truth about signs and axes: read back from the DOT text of the public `draw`.

Counts and sizes asserted here are computed in the test from the IR the diagram is drawn from, never typed in.
"""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

import numpy as np
import pytest

import circuitdsl
from circuitdsl.ir.expr import walk
from circuitdsl.ir.model import Axis, CircuitIR, Contract, Rearrange, Reduce, Softmax
from tests.dot_text import edges

ROOT = Path(__file__).resolve().parent.parent
WHOLE = "models/celegans_whole.circuit"


@pytest.fixture(autouse=True)
def _in_the_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def test_connectome_projection_with_both_signs_is_drawn_mixed_with_its_counts() -> None:
    """The whole worm's chemical synapses are mostly excitatory, some inhibitory (c302 signs): the loop carries
    both glyphs, and the population's box and the legend give the numbers of each sign."""
    ir = circuitdsl.load(WHOLE)
    chemical = next(p for p in ir.projections if p.kind == "chemical" and p.source_shape == p.target_shape)
    assert chemical.weight.sign is not None
    signs = np.asarray(chemical.weight.sign.data)
    excitatory, inhibitory = int((signs > 0).sum()), int((signs < 0).sum())
    assert excitatory > 0 and inhibitory > 0 and excitatory + inhibitory == chemical.synapses
    source = circuitdsl.draw(ir).source
    loops = edges(source, "N", "N")
    assert sum("arrowhead=normaltee" in e for e in loops) == 1  # the chemical loop; the gap junctions stay dashed
    assert sum("style=dashed" in e and "normaltee" not in e for e in loops) == 1
    said = f"{excitatory} excitatory / {inhibitory} inhibitory"
    assert source.count(f"mixed: {said}") == 1  # in N's box, under the loop's description
    legend = re.search(r'^\t"synapse signs" \[label=<(.*)> shape=plain\]$', source, flags=re.MULTILINE)
    assert legend is not None and said in legend.group(1) and "mixed signs" in legend.group(1)


def test_single_sign_projections_keep_their_glyph_and_no_sign_legend() -> None:
    """A projection whose synapses share one sign is drawn as before: no mixed glyph, no legend of signs."""
    source = circuitdsl.draw(circuitdsl.load("models/ncap_swimmer.circuit")).source
    assert "normaltee" not in source and "synapse signs" not in source and "mixed:" not in source
    assert "arrowhead=tee" in source  # its inhibitory projections still end in bars


# ---- circuits on named axes: Neural Circuit Diagrams -------------------------------------------------------
def wires(source: str) -> list[tuple[str, str, str]]:
    """Every edge statement as (tail, head, attributes)."""
    return re.findall(r'^\t("[^"]+"|\S+) -> ("[^"]+"|\S+) \[(.*)\]$', source, flags=re.MULTILINE)


def written(shape: list[Axis]) -> str:
    """Axes as the diagram writes them, `channel=4 × x=8 on [0,1)`, built here from the IR's axes."""
    parts = []
    for axis in shape:
        grid = f" on [{axis.domain.low:g},{axis.domain.high:g}{')' if axis.domain.periodic else ']'}" \
            if axis.domain else ""
        parts.append(f"{axis.name}={axis.size}{grid}")
    return " × ".join(parts)


def test_operator_network_draws_learned_maps_copy_points_and_axis_labelled_wires() -> None:
    """The Fourier neural operator: every operator projection a learned L box (with a bias mark where it has a
    bias), the input of each Fourier layer copied to its two maps, every wire labelled with the IR's axes."""
    ir = circuitdsl.load("models/operator_burgers.circuit")
    source = circuitdsl.draw(ir).source
    operators = [p for p in ir.projections if p.operator is not None]
    assert source.count("learned · ") == len(operators)
    assert source.count("<SUB>+</SUB>") == sum(p.operator.bias is not None for p in operators)  # type: ignore[union-attr]
    layers = [i for i in ir.hierarchy.children if i.circuit == "FourierLayer"]
    points = re.findall(r'^\t+("[^"]+ copy") \[.*shape=point', source, flags=re.MULTILINE)
    assert len(points) == len(layers) == 4
    shapes = {written(p.shape) for p in [*ir.populations, *ir.inputs, *ir.outputs]}
    for tail, head, attrs in wires(source):
        if head in points:
            continue  # a signal into its copy point: its branches say what it carries
        label = re.search(r'label="([^"]*)"|<TD>([^<]*)</TD>', attrs)
        assert label is not None, f"{tail} -> {head} has no label"
        assert (label.group(1) or label.group(2)) in shapes, f"{tail} -> {head}: {label.group(0)}"


def test_an_expression_on_named_axes_is_drawn_as_glyphs_with_a_copy_point() -> None:
    """`tanh(h) * 0.5 + h`: the function on the wire, the scale, the sum, and `h` split at one copy point."""
    ir = circuitdsl.loads('''
circuit Mix(n: int = 8) {
  let X = grid(n, domain = [0, 1], periodic)
  input  x[channel = 3, x = X]
  output y[channel = 3, x = X]
  population h[channel = 3, x = X] : Identity
  x -> h : dense over channel
  y = tanh(h) * 0.5 + h
}
''')
    source = circuitdsl.draw(ir).source
    assert "▸ tanh ▸" in source and "× 0.5" in source and ">+</FONT>" in source
    drawn = wires(source)
    assert [head for tail, head, _ in drawn if tail == "h"] == ['"h copy"']  # h is read twice: through its copy
    assert len([head for tail, head, _ in drawn if tail == '"h copy"']) == 2
    assert "learned · dense over channel" in source


GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("CIRCUITDSL_UPDATE_GOLDEN") == "1"
ATTENTION = "models/attention.circuit"


def test_golden_attention_diagram() -> None:
    """The folded attention, byte for byte; regenerate after a deliberate change with CIRCUITDSL_UPDATE_GOLDEN=1
    (docs/diagrams.md) and review the diff."""
    golden = GOLDEN / "attention.folded.dot"
    drawn = circuitdsl.draw(circuitdsl.load(ATTENTION)).source
    if UPDATE:
        golden.write_text(drawn, encoding="utf-8")
    assert drawn == golden.read_text(encoding="utf-8"), (
        "models/attention.circuit no longer draws as tests/golden/attention.folded.dot; if intended, regenerate "
        "with CIRCUITDSL_UPDATE_GOLDEN=1 python -m pytest tests/test_draw_notation.py and review the diff")
    assert drawn == circuitdsl.draw(circuitdsl.load(ATTENTION)).source


def axis_nodes(ir: CircuitIR) -> list[object]:
    """Every node of every signal expression of the circuit, lets followed once."""
    exprs = [p.source for p in ir.projections] + [piece.expr for o in ir.outputs for piece in o.pieces]
    return [node for expr in exprs for node in walk(expr, ir.shared, follow_shared=True)]


def shapes_in(ir: CircuitIR) -> list[list[Axis]]:
    """The axes every signal of the circuit can carry, read from the IR: ports, populations, projections, and
    the operands and results of each operation over axes."""
    found = [p.shape for p in [*ir.populations, *ir.inputs, *ir.outputs]]
    found += [s for p in ir.projections for s in (p.source_shape, p.target_shape)]
    for node in axis_nodes(ir):
        if isinstance(node, Reduce):
            found += [node.shape, [a for a in node.shape if a.name not in node.axes]]
        elif isinstance(node, Contract):
            found += [node.left_shape, node.right_shape, node.shape]
        elif isinstance(node, Softmax | Rearrange):
            found += [node.shape, node.out if isinstance(node, Rearrange) else node.shape]
    return found


def parallel(ir: CircuitIR) -> set[str]:
    """Axes a contraction keeps on both sides without summing (heads)."""
    return {a.name for node in axis_nodes(ir) if isinstance(node, Contract) for a in node.left_shape
            if a.name in {b.name for b in node.right_shape} and a.name not in node.axes}


@pytest.mark.parametrize("path", [ATTENTION, "models/transformer_block.circuit", "models/mlp_mixer.circuit"])
def test_deep_learning_diagrams_label_every_wire_with_its_axes_and_draw_the_op_glyphs(path: str) -> None:
    ir = circuitdsl.load(path)
    source = circuitdsl.draw(ir).source
    heads = parallel(ir)
    allowed = set()
    for shape in shapes_in(ir):
        folded = " ".join(f"×{a.name}={a.size}" for a in shape if a.name in heads)
        rest = written([a for a in shape if a.name not in heads])
        allowed.add(" | ".join(part for part in (folded, rest) if part))
    labelled = 0
    for tail, head, attrs in wires(source):
        if head.endswith(' copy"'):
            continue
        label = re.search(r'label="([^"]*)"|<TD>([^<]*)</TD>', attrs)
        assert label is not None, f"{tail} -> {head} carries no axes"
        assert html.unescape(label.group(1) or label.group(2)) in allowed, f"{tail} -> {head}: {label.group(0)}"
        labelled += 1
    assert labelled >= len(ir.projections)
    nodes = axis_nodes(ir)
    operators = [p for p in ir.projections if p.operator is not None]
    assert source.count("◣ learned · ") == len(operators)
    assert source.count("<SUB>+</SUB>") == sum(p.operator.bias is not None for p in operators)  # type: ignore[union-attr]
    assert source.count(">⨀<") == len({id(n) for n in nodes if isinstance(n, Contract)})
    assert source.count(">◁<") == len({id(n) for n in nodes if isinstance(n, Softmax)})
    assert all(f"×{name}=" in source for name in heads)
    assert re.search(r'copy" \[.*shape=point', source)  # the input feeds several maps through a copy point


def test_attention_is_a_coloured_region_inside_the_transformer_block() -> None:
    """The block's attention sub-circuit is a filled, labelled region holding its softmax and contractions."""
    ir = circuitdsl.load("models/transformer_block.circuit")
    source = circuitdsl.draw(ir).source
    [child] = [i for i in ir.hierarchy.children if i.circuit == "Attention"]
    region = re.search(rf"^\tsubgraph cluster_{child.name} {{\n(.*?)^\t}}$", source, flags=re.MULTILINE | re.DOTALL)
    assert region is not None
    header = region.group(1).splitlines()[0]
    assert "style=\"rounded,filled\"" in header and f"<B>{child.name}</B> : Attention" in header
    contractions = len({id(n) for n in axis_nodes(ir) if isinstance(n, Contract)})
    assert region.group(1).count(">◁<") == 1 and region.group(1).count(">⨀<") == contractions > 0
    assert ">◁<" not in source.replace(region.group(1), "")  # nothing of the attention outside its region


def test_a_causal_softmax_says_so_and_the_heads_fold_at_any_count() -> None:
    ir = circuitdsl.load(ATTENTION, causal=True, heads=4)
    [softmax] = {id(n): n for n in axis_nodes(ir) if isinstance(n, Softmax)}.values()
    assert isinstance(softmax, Softmax) and softmax.causal is not None
    source = circuitdsl.draw(ir).source
    assert f"softmax over {softmax.axis}, causal in {softmax.causal}" in source
    heads = parallel(ir)
    assert heads and all(f"×{name}=4" in source for name in heads)


def test_a_long_chain_of_lets_draws_one_glyph_each_without_recursion() -> None:
    """1500 nested functions (deeper than Python's recursion limit) in a circuit diagram: one glyph each."""
    depth = 1500
    lets = "\n".join(f"  let a{i + 1} = tanh(a{i})" for i in range(depth))
    ir = circuitdsl.loads(f'''
circuit Deep(n: int = 8) {{
  let X = grid(n, domain = [0, 1], periodic)
  input  x[channel = 3, x = X]
  output y[channel = 3, x = X]
  population h[channel = 3, x = X] : Identity
  x -> h : dense over channel
  let a0 = h
{lets}
  y = a{depth}
}}
''')
    assert circuitdsl.draw(ir).source.count("▸ tanh ▸") == depth
