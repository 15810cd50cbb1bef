"""The LEMS component types a NeuroML2 export needs beyond the core types: synapses that read a graded neuron's
output (tanh(v) of the worm's Rate neuron, v of Leaky) the way circuitdsl projections do.

NeuroML2 documents cannot hold new component types with synapse attachments, nor instances of new types, so
these live in a LEMS file (`<stem>.types.xml`) that the simulation file includes beside the .nml.  Units: a
graded neuron's v is written in mV and a synaptic current in nA, with the cell's leak conductance 1 uS, so
that 1 nA of input moves v as one unit of circuitdsl input does.
"""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

# the output each graded neuron model gives its synapses, as a LEMS expression of a voltage `x`
OUTPUTS = {"tanh": "tanh({x} / MVOLT)", "linear": "{x} / MVOLT"}

_SYNAPSE = """  <ComponentType name="circuitdsl_{kind}Synapse" extends="baseGradedSynapse"
      description="A chemical synapse of circuitdsl: i = weight * out(vpeer) nA, out = {formula}">
    <Property name="weight" dimension="none" defaultValue="1"/>
    <Constant name="MVOLT" dimension="voltage" value="1mV"/>
    <Constant name="NAMP" dimension="current" value="1nA"/>
    <Requirement name="v" dimension="voltage"/>
    <InstanceRequirement name="peer" type="baseGradedSynapse"/>
    <Dynamics>
      <DerivedVariable name="vpeer" dimension="voltage" select="peer/v"/>
      <DerivedVariable name="i" exposure="i" dimension="current" value={pre}/>
    </Dynamics>
  </ComponentType>
  <ComponentType name="circuitdsl_{kind}Gap" extends="baseGradedSynapse"
      description="A gap junction of circuitdsl: i = weight * (out(vpeer) - out(v)) nA, out = {formula}">
    <Property name="weight" dimension="none" defaultValue="1"/>
    <Constant name="MVOLT" dimension="voltage" value="1mV"/>
    <Constant name="NAMP" dimension="current" value="1nA"/>
    <Requirement name="v" dimension="voltage"/>
    <InstanceRequirement name="peer" type="baseGradedSynapse"/>
    <Dynamics>
      <DerivedVariable name="vpeer" dimension="voltage" select="peer/v"/>
      <DerivedVariable name="i" exposure="i" dimension="current" value={gap}/>
    </Dynamics>
  </ComponentType>
  <Component id="{kind_lower}_synapse" type="circuitdsl_{kind}Synapse"/>
  <Component id="{kind_lower}_gap" type="circuitdsl_{kind}Gap"/>
"""


def synapse_id(output: str, electrical: bool) -> str:
    """The id of the synapse component for a source population's output kind."""
    return f"{output}_{'gap' if electrical else 'synapse'}"


def types_file(outputs: set[str]) -> str:
    """A LEMS file defining the synapse and gap junction types (and one component of each) for these outputs."""
    parts = ['<Lems>\n  <!-- circuitdsl synapse types; see docs/interop.md -->\n']
    for output in sorted(outputs):
        formula = OUTPUTS[output]
        pre = quoteattr(f"weight * {formula.format(x='vpeer')} * NAMP")
        gap = quoteattr(f"weight * ({formula.format(x='vpeer')} - {formula.format(x='v')}) * NAMP")
        parts.append(_SYNAPSE.format(kind=output.capitalize(), kind_lower=output, formula=formula.format(x="v"),
                                     pre=pre, gap=gap))
    parts.append("</Lems>\n")
    return "".join(parts)
