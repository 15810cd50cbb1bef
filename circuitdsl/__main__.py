"""`python -m circuitdsl`: the `circuitdsl` command."""

from circuitdsl.cli import entry

entry()
