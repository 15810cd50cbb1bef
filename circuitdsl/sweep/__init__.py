"""`circuitdsl sweep SPEC.toml` and `circuitdsl.sweep(...)`: a grid of training runs from a TOML spec, on Ray.

The package is callable (`circuitdsl.sweep("examples/ncap_ablations.toml")`) so that the function and the package
can share the name the documentation uses; `spec`, `cell`, `table`, `runner` and `report` hold the parts.
Ray is imported only when a sweep runs.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

from circuitdsl.sweep.spec import Spec, Unit, load


def sweep(spec: str | Path, address: str | None = None, workers: int | None = None, retries: int = 2,
          progress: bool = True, report: bool = True, output: str | Path | None = None) -> object:
    """Run every unfinished run of the spec (see circuitdsl/sweep/spec.py), then write its report; returns the
    `SweepResult` (runs done now, skipped, failed with their errors, the table's path).  `output` replaces the
    spec's results folder."""
    from circuitdsl.sweep import report as reports
    from circuitdsl.sweep import runner

    checked = load(spec, output)
    result = runner.run(checked, address, workers, retries, progress)
    if report and checked.output.joinpath("results.csv").exists():
        reports.write(checked.output / "results.csv", checked.report, checked.name, checked.variants)
    return result


class _CallableModule(types.ModuleType):
    def __call__(self, *args: object, **kwargs: object) -> object:
        return sweep(*args, **kwargs)  # type: ignore[arg-type]


sys.modules[__name__].__class__ = _CallableModule
__all__ = ["Spec", "Unit", "load", "sweep"]
