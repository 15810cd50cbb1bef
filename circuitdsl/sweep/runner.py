"""Running a sweep on Ray: one task per run, results written as each finishes, retries, and a progress bar.

A local Ray instance with `workers` CPUs is started unless one is already running in this process (then it is
reused, as the tests do) or `address` names a cluster.  Each run is a Ray task with one CPU; a task whose worker
dies, or that raises, is retried `retries` times by Ray, then entered in the ledger as failed and reported (and
tried again by the next invocation).  Runs already in the ledger are skipped, so an interrupted sweep resumes.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from circuitdsl.sweep import cell
from circuitdsl.sweep.spec import Spec, Unit
from circuitdsl.sweep.table import ResultsTable

PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder holding the circuitdsl package, for local workers


@dataclass
class SweepResult:
    """What a sweep did: runs finished now, skipped (finished before), failed (with their errors), and its table."""

    table: Path
    ran: int = 0
    skipped: int = 0
    failed: list[tuple[str, int, str]] = field(default_factory=list)
    wall_s: float = 0.0


def plan(spec: Spec) -> list[tuple[Unit, bool]]:
    """Every run of the spec with whether it is already done (what `--dry-run` lists)."""
    done = ResultsTable(spec.output).done if spec.output.exists() else set()
    return [(unit, unit.run_id in done) for unit in spec.units]


def run(spec: Spec, address: str | None = None, workers: int | None = None, retries: int = 2,
        progress: bool = True) -> SweepResult:
    """Run every unfinished run of `spec` on Ray and return the summary."""
    import ray

    started = time.perf_counter()
    table = ResultsTable(spec.output)
    todo = [unit for unit in spec.units if unit.run_id not in table.done]
    result = SweepResult(table.csv, skipped=len(spec.units) - len(todo))
    if not todo:
        return result
    owned = not ray.is_initialized()
    if owned:
        start(ray, address, workers or spec.workers)
    task = ray.remote(num_cpus=1, max_retries=retries, retry_exceptions=True)(_execute)
    pending = {task.remote(unit, spec.output / "running" / f"{unit.run_id}.pid"): unit for unit in todo}
    bar = tqdm(total=len(spec.units), initial=result.skipped, unit="run", disable=not progress, dynamic_ncols=True)
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            unit = pending.pop(ready[0])
            try:
                rows, wall = ray.get(ready[0])
                table.add(unit.run_id, rows, wall)
                result.ran += 1
            except ray.exceptions.RayError as error:  # raised in the run, or its worker died, after every retry
                message = _last_line(error)
                table.fail(unit.run_id, unit.cell, unit.seed, message)
                result.failed.append((unit.cell, unit.seed, message))
                bar.write(f"failed after {retries + 1} tries: {unit.cell} | seed {unit.seed}: {message}")
            bar.update(1)
    finally:
        bar.close()
        if owned:
            ray.shutdown()
    table.write_parquet()
    result.wall_s = time.perf_counter() - started
    return result


def _execute(unit: Unit, marker: Path) -> tuple[list[dict[str, Any]], float]:
    """A run on a worker: its rows and its wall time."""
    started = time.perf_counter()
    rows = cell.run(unit, marker)
    return rows, time.perf_counter() - started


def start(ray: Any, address: str | None, workers: int) -> None:
    """A local instance with `workers` CPUs (workers import this checkout of circuitdsl), or a cluster's."""
    if address is not None:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        return
    path = os.pathsep.join(p for p in (str(PACKAGE_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    # Ray lowers its workers' priority by 15 below the driver's by default (nice 19 under `nice -n 5`), which on a
    # shared machine starves the sweep; workers run at the priority the command was started with instead
    ray.init(num_cpus=workers, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path, "OMP_NUM_THREADS": "1"}},
             _system_config={"worker_niceness": 0})


def _last_line(error: BaseException) -> str:
    """The cause of a task's failure in one line: the last line of the remote traceback."""
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(error).__name__
