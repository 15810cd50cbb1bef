"""From text to checked circuit: `check` of a generated 10,000-line file against lark's raw parse of the same text.

In one process (parser built, interleaved rounds, min and median): lark's parse alone (as it comes, and with the
garbage collector paused as circuitdsl pauses it, circuitdsl/bulk.py), circuitdsl's parse (lark plus the AST),
and `circuitdsl.check` (parse, elaboration, IR).  Then fresh processes, where building the parser
counts: `circuitdsl check` with the parser cache warm and with it off (`CIRCUITDSL_CACHE=`), against a process
that builds lark's parser and parses.  Times are CPU seconds of the process (wall time swings with the load of a
shared machine; CPU time much less), each round interleaved so that the load hits all cases alike.
Run: python -m benchmarks.parse [lines] [rounds]   (the reference note: 10000 lines, 5 rounds).
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import circuitdsl
from circuitdsl import parser
from circuitdsl.bulk import gc_paused

BLOCK = """  population p{i}[unit = 4] : Graded
  let s{i} = tanh(p{j}) * 0.5 + 0.1      # a signal read by the next line
  s{i} -> p{i} : one_to_one, weight = 0.5
  p{j} -> p{i} : all_to_all
"""


def generated(lines: int) -> str:
    """A circuit of about `lines` lines: a chain of populations, each fed through a let and directly."""
    blocks = max(lines // 4 - 2, 1)
    body = "".join(BLOCK.format(i=i, j=i - 1) for i in range(1, blocks + 1))
    return (f"circuit Generated {{\n  input x[unit = 4]\n  output y[unit = 4]\n  population p0[unit = 4] : Graded\n"
            f"  x -> p0 : one_to_one\n{body}  y = p{blocks}\n}}\n")


def cold(fn: Callable[[], object]) -> object:
    """`fn` with circuitdsl's parsed files forgotten (a file is parsed once per process)."""
    parser._parse.cache_clear()
    return fn()


def paused(fn: Callable[[], object]) -> object:
    """`fn` with the cyclic garbage collector off, as circuitdsl runs its parse and elaboration."""
    with gc_paused():
        return fn()


def rounds(cases: dict[str, Callable[[], object]], repeat: int) -> dict[str, list[float]]:
    """Each case timed once per round, rounds interleaved so that load on the machine hits all alike."""
    for fn in cases.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeat):
        for name, fn in cases.items():
            start = time.process_time()
            fn()
            times[name].append(time.process_time() - start)
    return times


def fresh(commands: dict[str, tuple[list[str], dict[str, str]]], repeat: int) -> dict[str, list[float]]:
    """CPU time (user + system) of a fresh process per command, `repeat` interleaved rounds."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, (command, env) in commands.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            times[name].append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return times


def report(times: dict[str, list[float]], reference: str) -> None:
    base_min, base_median = min(times[reference]), statistics.median(times[reference])
    for name, values in times.items():
        print(f"  {name:38s} min {min(values):7.3f} s  median {statistics.median(values):7.3f} s  "
              f"ratio {min(values) / base_min:5.2f} (min) {statistics.median(values) / base_median:5.2f} (median)")


def main(lines: int = 10_000, repeat: int = 5) -> None:
    text = generated(lines)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "generated.circuit"
        path.write_text(text)
        lark, _ = parser._parser()
        print(f"{text.count(chr(10))} lines, in one process:")
        report(rounds({"lark parse": lambda: lark.parse(text),
                       "lark parse, collector paused": lambda: paused(lambda: lark.parse(text)),
                       "circuitdsl parse (lark + AST)": lambda: cold(lambda: parser.parse(text, str(path))),
                       "circuitdsl check": lambda: cold(lambda: circuitdsl.check(path))}, repeat), "lark parse")
        python, env = sys.executable, dict(os.environ)
        raw = ("from circuitdsl.parser import grammar_text; from lark import Lark; "
               "import sys; Lark(grammar_text(), parser='lalr', lexer='contextual', propagate_positions=True, "
               "maybe_placeholders=True).parse(open(sys.argv[1]).read())")
        off = {**env, "CIRCUITDSL_CACHE": ""}
        print("fresh processes:")
        check = [python, "-m", "circuitdsl.cli", "check", str(path)]
        report(fresh({"python + lark build + parse": ([python, "-c", raw, str(path)], env),
                      "circuitdsl check, parser cache warm": (check, env),
                      "circuitdsl check, parser cache off": (check, off)}, repeat), "python + lark build + parse")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
