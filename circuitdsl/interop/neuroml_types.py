"""The LEMS component types a NeuroML2 export needs beyond the core types: synapses that read a graded neuron's
output (tanh(v) of the worm's Rate neuron, v of Leaky) the way circuitdsl projections do.

NeuroML2 documents cannot hold new component types with synapse attachments, nor instances of new types, so
these live in a LEMS file (`<stem>.types.xml`) that the simulation file includes beside the .nml.  Units: a
graded neuron's v is written in mV and a synaptic current in nA, with the cell's leak conductance 1 uS, so
that 1 nA of input moves v as one unit of circuitdsl input does.

Reading the peer as it was before the step.  circuitdsl computes every recurrent projection and gap junction
from the state at the start of the step.  jLEMS advances the cells one after another (a cell's synapses first,
then its own equations, whose result its exposures show at once), and a synapse reading `peer/v` through a
component that declares `v` as a requirement gets that component's copy, taken when its own cell began the
step: the value before this step if the peer's cell went first, the one before the previous step if it has
not gone yet (a connection from a cell later in jLEMS's order arrived a step late; measured: 1.13 mV on the
touch circuit).  So the peer end here declares no `v` — jLEMS then answers a read of `v` with its cell's v as
it is now — and shows, as `vstart` and `tstart`, its cell's v and the time when that cell began its latest
step.  The reading end takes its peer's v now if the peer's cell has not begun this step (`tstart < t`: the
cell still holds its v from before the step), else `vstart`: the value before the step either way, whatever
order jLEMS takes the cells in.  The current is one conditional variable because jLEMS evaluates plain derived
variables before conditional ones, whatever their dependencies.
"""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

# the output each graded neuron model gives its synapses, as a LEMS expression of a voltage `x`
OUTPUTS = {"tanh": "tanh({x} / MVOLT)", "linear": "{x} / MVOLT"}
SOURCE = "graded_source"  # the presynaptic end of every chemical connection

_PEER_END = """    <Exposure name="vstart" dimension="voltage"/>
    <Exposure name="tstart" dimension="time"/>
    <InstanceRequirement name="peer" type="baseGradedSynapse"/>
"""
# this end's cell's v when the cell began its latest step (through peer/peer: this end, which has no v of its own)
_START = """      <DerivedVariable name="vstart" exposure="vstart" dimension="voltage" select="peer/peer/v"/>
      <DerivedVariable name="tstart" exposure="tstart" dimension="time" value="t"/>
"""
_READ = """      <DerivedVariable name="vnow" dimension="voltage" select="peer/v"/>
      <DerivedVariable name="vpeerstart" dimension="voltage" select="peer/vstart"/>
      <DerivedVariable name="tpeerstart" dimension="time" select="peer/tstart"/>
      <ConditionalDerivedVariable name="i" exposure="i" dimension="current">
        <Case condition="tpeerstart .lt. t" value={now}/>
        <Case condition="tpeerstart .geq. t" value={start}/>
      </ConditionalDerivedVariable>
"""
_UNITS = """    <Property name="weight" dimension="none" defaultValue="1"/>
    <Constant name="MVOLT" dimension="voltage" value="1mV"/>
    <Constant name="NAMP" dimension="current" value="1nA"/>
"""
_SOURCE_TYPE = f"""  <ComponentType name="circuitdsl_GradedSource" extends="baseGradedSynapse"
      description="The presynaptic end of a connection: no current; shows its cell's v from before the step">
    <Constant name="AMP" dimension="current" value="1A"/>
    <Exposure name="i" dimension="current"/>
{_PEER_END}    <Dynamics>
{_START}      <DerivedVariable name="i" exposure="i" dimension="current" value="0 * AMP"/>
    </Dynamics>
  </ComponentType>
  <Component id="{SOURCE}" type="circuitdsl_GradedSource"/>
"""


def synapse_id(output: str, electrical: bool) -> str:
    """The id of the synapse component for a source population's output kind."""
    return f"{output}_{'gap' if electrical else 'synapse'}"


def _synapse(output: str) -> str:
    """A chemical synapse: i = weight x out(v of the presynaptic cell before the step) nA."""
    formula = OUTPUTS[output]
    current = "weight * {out} * NAMP"
    read = _READ.format(now=quoteattr(current.format(out=formula.format(x="vnow"))),
                        start=quoteattr(current.format(out=formula.format(x="vpeerstart"))))
    return (f'  <ComponentType name="circuitdsl_{output.capitalize()}Synapse" extends="baseGradedSynapse"\n'
            f'      description="A chemical synapse of circuitdsl: i = weight * out(vpeer) nA, '
            f'out = {formula.format(x="v")}">\n{_UNITS}'
            '    <InstanceRequirement name="peer" type="baseGradedSynapse"/>\n'
            f'    <Dynamics>\n{read}    </Dynamics>\n  </ComponentType>\n'
            f'  <Component id="{synapse_id(output, False)}" type="circuitdsl_{output.capitalize()}Synapse"/>\n')


def _gap(output: str) -> str:
    """A gap junction end: i = weight x (out(peer's v) - out(own v)) nA, both as they were before the step."""
    formula = OUTPUTS[output]
    current = "weight * ({peer} - {own}) * NAMP"
    own = formula.format(x="vstart")
    read = _READ.format(now=quoteattr(current.format(peer=formula.format(x="vnow"), own=own)),
                        start=quoteattr(current.format(peer=formula.format(x="vpeerstart"), own=own)))
    return (f'  <ComponentType name="circuitdsl_{output.capitalize()}Gap" extends="baseGradedSynapse"\n'
            f'      description="A gap junction of circuitdsl: i = weight * (out(vpeer) - out(v)) nA, '
            f'out = {formula.format(x="v")}">\n{_UNITS}{_PEER_END}'
            f'    <Dynamics>\n{_START}{read}    </Dynamics>\n  </ComponentType>\n'
            f'  <Component id="{synapse_id(output, True)}" type="circuitdsl_{output.capitalize()}Gap"/>\n')


def types_file(outputs: set[str]) -> str:
    """A LEMS file defining the presynaptic end and the synapse and gap junction types (one component of each)
    for these outputs."""
    parts = ['<Lems>\n  <!-- circuitdsl synapse types; see docs/interop.md -->\n']
    if outputs:
        parts.append(_SOURCE_TYPE)
    for output in sorted(outputs):
        parts += [_synapse(output), _gap(output)]
    parts.append("</Lems>\n")
    return "".join(parts)
