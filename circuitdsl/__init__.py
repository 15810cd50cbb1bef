"""circuitdsl: a declarative language for neural circuits.

Write a circuit once in a .circuit file; parse and check it into a typed graph IR; compile it to a
backend; draw it.  Public API: `parse`, `load`, `loads`, `check`, `compile`, `draw`, `to_nir`, `from_nir`,
`CircuitError`, `Limits`, `Sandbox`, `CircuitIR`, `sweep`.
"""

from circuitdsl import sweep as sweep  # callable: circuitdsl.sweep("spec.toml")
from circuitdsl.api import Elaborated as Elaborated
from circuitdsl.api import check as check
from circuitdsl.api import elaborate as elaborate
from circuitdsl.api import load as load
from circuitdsl.api import loads as loads
from circuitdsl.api import parse as parse
from circuitdsl.backends import compile_circuit
from circuitdsl.backends.interface import CircuitRuntimeError as CircuitRuntimeError
from circuitdsl.draw import draw as draw
from circuitdsl.elaborate.sandbox import Sandbox as Sandbox
from circuitdsl.errors import CircuitError as CircuitError
from circuitdsl.errors import Diagnostic as Diagnostic
from circuitdsl.errors import Span as Span
from circuitdsl.interop import from_nir as from_nir
from circuitdsl.interop import to_nir as to_nir
from circuitdsl.ir.model import SCHEMA_VERSION as SCHEMA_VERSION
from circuitdsl.ir.model import CircuitIR as CircuitIR
from circuitdsl.limits import Limits as Limits

compile = compile_circuit

__version__ = "0.1.0"
