"""The notation both views share: synapse glyphs, colours of shared parameters, the legend, graph defaults.

Arrows for excitation (hollow when the sign is learnt), flat tee bars for inhibition, dashed undirected lines
for gap junctions, grey thin wires for signals that pass no synapse (ports, readouts).
"""

from __future__ import annotations

from circuitdsl.draw import text
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


def synapse(projection: Projection, parameter: Parameter) -> dict[str, str]:
    """Edge attributes of a projection's synapses: tee for inhibition, dashed and undirected for gap junctions."""
    if projection.kind == "electrical":
        return {"style": "dashed", "dir": "none", "penwidth": "1.5"}
    negative = parameter.sign == "inhibitory" or (parameter.sign == "fixed" and parameter.init.args[0] < 0)
    if projection.arrow == "-|" or negative:
        return dict(INHIBITORY)
    return {"arrowhead": "empty" if parameter.sign == "free" else "normal"}


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
