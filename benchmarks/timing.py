"""Timing shared by the benchmark scripts (run from the repository root: `python -m benchmarks.<script>`)."""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import time
from collections.abc import Callable


def best_seconds(fn: Callable[[], object], repeat: int) -> float:
    """The fastest of `repeat` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def per_call(fn: Callable[[], object], repeat: int) -> float:
    """Seconds per call: best of 3 runs of `repeat` calls after a warm-up."""
    for _ in range(10):
        fn()
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        best = min(best, (time.perf_counter() - start) / repeat)
    return best


Times = dict[str, dict[str, list[float]]]  # case -> clock ("cpu" or "wall") -> seconds per round


def fresh(commands: dict[str, tuple[list[str], dict[str, str]]], repeat: int) -> Times:
    """CPU (user + system of the child) and wall seconds of a fresh process per command (its argv and
    environment), `repeat` interleaved rounds so that the load of a shared machine hits all commands alike."""
    times: Times = {name: {"cpu": [], "wall": []} for name in commands}
    for _ in range(repeat):
        for name, (command, env) in commands.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
            wall = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            times[name]["cpu"].append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            times[name]["wall"].append(wall)
    return times


def report(times: Times, references: dict[str, str]) -> None:
    """Min and median of each case per clock, and its ratios (min to min, median to median) to each reference
    (a short label -> the case)."""
    for clock in ("cpu", "wall"):
        for name, measured in times.items():
            values = measured[clock]
            ratios = "  ".join(
                f"/ {label}: {min(values) / min(times[reference][clock]):4.2f} (min) "
                f"{statistics.median(values) / statistics.median(times[reference][clock]):4.2f} (median)"
                for label, reference in references.items() if reference != name)
            print(f"  {clock:4s} {name:42s} min {min(values):6.3f} s  median {statistics.median(values):6.3f} s  "
                  f"{ratios}")


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, for the closing note of a benchmark on a shared machine."""
    return " ".join(f"{v:.2f}" for v in os.getloadavg())
