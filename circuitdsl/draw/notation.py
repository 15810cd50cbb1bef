"""The notation both views share: synapse glyphs, colours of shared parameters, the legend, graph defaults.

Arrows for excitation (hollow when the sign is learnt), flat tee bars for inhibition, an arrowhead with a bar
behind it for a projection whose synapses differ in sign (a connectome's), dashed undirected lines for gap
junctions, grey thin wires for signals that pass no synapse (ports, readouts).
"""

from __future__ import annotations

import numpy as np

from circuitdsl.draw import text
from circuitdsl.draw.units import given_weights
from circuitdsl.ir.model import CircuitIR, Parameter, Projection

FONT = "Helvetica,Arial,sans-serif"
WIRE = {"color": "gray45", "fontcolor": "gray30", "arrowhead": "vee", "arrowsize": "0.6"}
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#882255", "#999933", "#44AA99",
           "#661100")
_SIGNS = {"excitatory": "excitatory", "inhibitory": "inhibitory", "free": "sign learnt", "fixed": "fixed"}


def graph_defaults(name: str) -> dict[str, dict[str, str]]:
    """Attributes every diagram starts from (fonts, sizes), keyed `graph`, `node`, `edge`."""
    return {"graph": {"label": name, "labelloc": "t", "fontname": FONT, "fontsize": "16"},
            "node": {"fontname": FONT, "fontsize": "12"},
            "edge": {"fontname": FONT, "fontsize": "10"}}


def anonymous(ir: CircuitIR) -> set[str]:
    """Parameters made for one projection by `weight = 0.5`, `uniform(...)` or by default (named `<id>.weight`)."""
    return {p.weight.param for p in ir.projections if p.weight.param == f"{p.id}.weight"}


def shared_colours(ir: CircuitIR) -> dict[str, str]:
    """A colour for each named parameter whose values several projections share, in declaration order."""
    uses: dict[str, int] = {}
    for projection in ir.projections:
        uses[projection.weight.param] = uses.get(projection.weight.param, 0) + 1
    unnamed = anonymous(ir)
    shared = [p.name for p in ir.parameters
              if uses.get(p.name, 0) > 1 and p.share in ("all", "population") and p.name not in unnamed]
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(shared)}


INHIBITORY = {"arrowhead": "tee", "arrowsize": "1.1"}
MIXED = {"arrowhead": "normaltee", "arrowsize": "1.0"}
"""Both glyphs on one edge: the arrowhead at the target, the inhibitory bar just behind it."""


def synapse(projection: Projection, parameter: Parameter) -> dict[str, str]:
    """Edge attributes of a projection's synapses: tee for inhibition, dashed and undirected for gap junctions."""
    if projection.kind == "electrical":
        return {"style": "dashed", "dir": "none", "penwidth": "1.5"}
    negative = parameter.sign == "inhibitory" or (parameter.sign == "fixed" and _all_negative(projection, parameter))
    if projection.arrow == "-|" or negative:
        return dict(INHIBITORY)
    return {"arrowhead": "empty" if parameter.sign == "free" else "normal"}


def _all_negative(projection: Projection, parameter: Parameter) -> bool:
    """Whether every synapse of a fixed weight starts below zero (a constant, or data such as `from_file`'s)."""
    weights = given_weights(projection, parameter)
    return weights is not None and weights.size > 0 and bool(np.all(weights < 0))


def sign_counts(projection: Projection, parameter: Parameter) -> tuple[int, int] | None:
    """(excitatory, inhibitory) synapses of a chemical projection whose signs the IR fixes: the parameter's sign
    times each synapse's fixed sign (a connectome's, `WeightRef.sign`), or a fixed weight's own values.  None for
    gap junctions and for signs that are learnt or drawn at random."""
    if projection.kind == "electrical" or parameter.sign == "free":
        return None
    if parameter.sign == "fixed":
        weights = given_weights(projection, parameter)
        if weights is None:
            return None
        signs = np.sign(weights)
    else:
        per_synapse = projection.weight.sign
        signs = np.ones(projection.synapses) if per_synapse is None else np.sign(np.asarray(per_synapse.data))
        if parameter.sign == "inhibitory":
            signs = -signs
    return int((signs > 0).sum()), int((signs < 0).sum())


def mixed(excitatory: int, inhibitory: int, prefix: str = "mixed: ") -> str:
    """How a projection with synapses of both signs says so: `mixed: 3427 excitatory / 282 inhibitory`."""
    return f"{prefix}{excitatory} excitatory / {inhibitory} inhibitory"


def signs_legend(projections: list[tuple[str, tuple[int, int]]]) -> str:
    """An HTML table saying what the mixed glyph means, with each mixed projection's counts of either sign; the
    projections are named by their (HTML) weight-and-rule label."""
    rows = ['<TR><TD ALIGN="LEFT"><B>mixed signs</B>: arrowhead with a bar (signs per synapse, from data)</TD></TR>']
    rows += [f'<TR><TD ALIGN="LEFT">{name}: {text.html(mixed(*counts, prefix=""))}</TD></TR>'
             for name, counts in projections]
    return ('<<TABLE BORDER="1" COLOR="gray60" CELLBORDER="0" CELLSPACING="0" CELLPADDING="3">'
            + "".join(rows) + "</TABLE>>")


def legend(ir: CircuitIR, colours: dict[str, str], display: dict[str, str]) -> str:
    """An HTML table naming each shared parameter's colour: sign, number of values, initial value."""
    rows = ['<TR><TD COLSPAN="3" ALIGN="LEFT"><B>shared parameters</B></TD></TR>']
    for name, colour in colours.items():
        parameter = ir.parameter(name)
        values = "1 value" if parameter.size == 1 else f"{parameter.size} values"
        if parameter.share == "population":
            values += " (one per target population)"
        start = text.initial(parameter.init)
        trained = "" if parameter.trainable else ", frozen"
        rows.append(f'<TR><TD BGCOLOR="{colour}" WIDTH="16"> </TD>'
                    f'<TD ALIGN="LEFT"><FONT COLOR="{colour}"><B>{text.html(display.get(name, name))}</B></FONT></TD>'
                    f'<TD ALIGN="LEFT">{_SIGNS[parameter.sign]}, {values}, init {text.html(start)}{trained}</TD></TR>')
    return ('<<TABLE BORDER="1" COLOR="gray60" CELLBORDER="0" CELLSPACING="0" CELLPADDING="3">'
            + "".join(rows) + "</TABLE>>")
