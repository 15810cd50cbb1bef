"""`python -m circuitdsl`: the `circuitdsl` command."""

import sys

from circuitdsl.cli import main

sys.exit(main())
