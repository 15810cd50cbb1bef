"""circuitdsl: a declarative language for neural circuits.

Write a circuit once in a .circuit file; parse and check it into a typed graph IR; compile it to a
backend; draw it.  Public API: `parse`, `load`, `loads`, `check`, `compile`, `draw`, `to_nir`, `from_nir`,
`CircuitError`, `Limits`, `Sandbox`, `CircuitIR`, `sweep`.

`compile`, `CircuitRuntimeError` and `sweep` are imported when first used: checking a file needs none of the
backends (and their step planning) or the sweep runner, and a fresh `circuitdsl check` should not pay for them.
"""

from typing import TYPE_CHECKING, Any

from circuitdsl.api import Elaborated as Elaborated
from circuitdsl.api import check as check
from circuitdsl.api import elaborate as elaborate
from circuitdsl.api import load as load
from circuitdsl.api import loads as loads
from circuitdsl.api import parse as parse
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

if TYPE_CHECKING:
    from circuitdsl import sweep as sweep  # callable: circuitdsl.sweep("spec.toml")
    from circuitdsl.backends import compile_circuit

    compile = compile_circuit
    from circuitdsl.backends.interface import CircuitRuntimeError as CircuitRuntimeError

__version__ = "0.1.0"

_LAZY = ("compile", "CircuitRuntimeError", "sweep")


def __getattr__(name: str) -> Any:
    """The names of `_LAZY`, imported on first use and then kept here like any other name."""
    value: Any
    if name == "compile":
        from circuitdsl.backends import compile_circuit

        value = compile_circuit
    elif name == "CircuitRuntimeError":
        from circuitdsl.backends.interface import CircuitRuntimeError

        value = CircuitRuntimeError
    elif name == "sweep":  # the package itself is callable: circuitdsl.sweep("spec.toml")
        import circuitdsl.sweep

        value = circuitdsl.sweep
    else:
        raise AttributeError(f"module 'circuitdsl' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
