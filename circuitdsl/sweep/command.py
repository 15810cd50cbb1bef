"""`circuitdsl sweep SPEC.toml [--dry-run] [--address A] [--workers N]` and `circuitdsl sweep report SPEC.toml`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from circuitdsl.errors import CircuitError


def add_command(commands: Any) -> None:
    """The `sweep` subcommand of the circuitdsl command line."""
    command = commands.add_parser("sweep", help="run a grid of training runs from a TOML spec on Ray "
                                  "(`sweep report SPEC` aggregates and plots the results)")
    command.add_argument("spec", nargs="+", metavar="[report] SPEC.toml",
                         help="the spec file; `report SPEC.toml` writes the summary table and figures")
    command.add_argument("--dry-run", action="store_true", help="list the runs (and which are done); run nothing")
    command.add_argument("--address", help="a Ray cluster's address (default: a local instance)")
    command.add_argument("--workers", type=int, help="local Ray workers (default: the spec's, else 2)")
    command.add_argument("--output", type=Path, help="results folder instead of the spec's `output` (another "
                         "ledger: e.g. the same study timed with other workers)")
    command.add_argument("--retries", type=int, default=2, help="tries again a failed run this many times")
    command.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def main(options: argparse.Namespace) -> int:
    """Run, list or report a sweep; exit 1 on a spec error or a failed run, 2 on a usage error."""
    from circuitdsl.sweep import report, runner, spec

    words = options.spec
    reporting = words[0] == "report"
    if len(words) != 1 + reporting:
        print("circuitdsl: usage: circuitdsl sweep SPEC.toml | circuitdsl sweep report SPEC.toml", file=sys.stderr)
        return 2
    if options.workers is not None and options.workers < 1:
        print(f"circuitdsl: --workers must be at least 1, not {options.workers}", file=sys.stderr)
        return 2
    try:
        checked = spec.load(words[-1], options.output)
    except CircuitError as error:
        print(error.render(), file=sys.stderr)
        return 1
    if reporting:
        return _report(checked, report)
    if options.dry_run:
        return _list(runner.plan(checked))
    result = runner.run(checked, options.address, options.workers, options.retries, options.progress)
    print(f"{result.ran} runs done, {result.skipped} already done, {len(result.failed)} failed "
          f"({result.wall_s:.0f} s); table: {result.table}")
    for cell, seed, message in result.failed:
        print(f"failed: {cell} | seed {seed}: {message}", file=sys.stderr)
    if result.table.exists():
        _report(checked, report)
    return 1 if result.failed else 0


def _report(checked: Any, report: Any) -> int:
    table = checked.output / "results.csv"
    if not table.exists():
        print(f"circuitdsl: no results yet in {checked.output}: run `circuitdsl sweep {checked.path}` first",
              file=sys.stderr)
        return 1
    for path in report.write(table, checked.report, checked.name, checked.variants):
        print(f"written: {path}")
    return 0


def _list(plan: list[Any]) -> int:
    cells: dict[str, list[tuple[int, bool]]] = {}
    for unit, done in plan:
        cells.setdefault(unit.cell, []).append((unit.seed, done))
    for cell, seeds in cells.items():
        finished = sum(done for _, done in seeds)
        print(f"{cell} | seeds {', '.join(str(s) for s, _ in seeds)} ({finished}/{len(seeds)} done)")
    print(f"{len(cells)} cells, {len(plan)} runs, {sum(done for _, done in plan)} done")
    return 0
