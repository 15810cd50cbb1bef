"""The folded diagrams tell the truth about signs and axes: read back from the DOT text of the public `draw`.

Counts and sizes asserted here are computed in the test from the IR the diagram is drawn from, never typed in.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import circuitdsl

ROOT = Path(__file__).resolve().parent.parent
WHOLE = "models/celegans_whole.circuit"


@pytest.fixture(autouse=True)
def _in_the_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def edges(source: str, tail: str, head: str) -> list[str]:
    """The attribute lists of every edge from `tail` to `head` (node names as DOT writes them)."""
    return re.findall(rf"^\t{re.escape(tail)} -> {re.escape(head)} \[(.*)\]$", source, flags=re.MULTILINE)


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
