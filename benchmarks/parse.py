"""From text to checked circuit: `check` of a generated 10,000-line file against lark's raw parse of the same text.

"lark's raw parse" is lark alone, with circuitdsl's grammar and its options (LALR, contextual lexer, positions
propagated, placeholders), building lark's own parse tree from the same text; nothing of circuitdsl is imported
on that side.  Two comparisons, both printed, CPU seconds (user + system: steadier under load) and wall seconds,
min and median over interleaved rounds (so that the load of a shared machine hits every case alike):

- in one process, parsers built: lark's parse (as it comes, and with the garbage collector paused as
  circuitdsl pauses it, circuitdsl/bulk.py), circuitdsl's parse (text to AST) and `circuitdsl.check` (parse,
  elaboration, IR);
- fresh processes, where starting Python, importing and loading the parser count: `python -m circuitdsl check`
  (parser cache warm, and off with `CIRCUITDSL_CACHE=`) against a Python process that imports lark, builds the
  parser from the grammar and parses, and against one that loads the parser from lark's own cache and parses
  (the stricter reference: circuitdsl's check loads a cached parser too).

circuitdsl's byte code is compiled first, as an installed package has it.
Run: python -m benchmarks.parse [lines] [rounds]   (the reference note: 10000 lines, 5 rounds).
"""

from __future__ import annotations

import compileall
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from lark import Lark

import circuitdsl
from benchmarks.timing import Times, fresh, load_average, report
from circuitdsl import parser
from circuitdsl.bulk import gc_paused

BLOCK = """  population p{i}[unit = 4] : Graded
  let s{i} = tanh(p{j}) * 0.5 + 0.1      # a signal read by the next line
  s{i} -> p{i} : one_to_one, weight = 0.5
  p{j} -> p{i} : all_to_all
"""
OPTIONS = {"parser": "lalr", "lexer": "contextual", "propagate_positions": True, "maybe_placeholders": True}
# argv: grammar file, circuit file, lark's cache file ('' for none)
RAW_LARK = ("import sys; from lark import Lark; grammar, text = open(sys.argv[1]).read(), open(sys.argv[2]).read(); "
            f"Lark(grammar, **{OPTIONS!r}, cache=sys.argv[3] or False).parse(text)")


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


def rounds(cases: dict[str, Callable[[], object]], repeat: int) -> Times:
    """CPU and wall seconds of each case in this process, once per round, rounds interleaved."""
    for fn in cases.values():
        fn()
    times: Times = {name: {"cpu": [], "wall": []} for name in cases}
    for _ in range(repeat):
        for name, fn in cases.items():
            cpu, wall = time.process_time(), time.perf_counter()
            fn()
            times[name]["cpu"].append(time.process_time() - cpu)
            times[name]["wall"].append(time.perf_counter() - wall)
    return times


def main(lines: int = 10_000, repeat: int = 5) -> None:
    compileall.compile_dir(Path(circuitdsl.__file__).parent, quiet=1)
    text = generated(lines)
    with tempfile.TemporaryDirectory() as folder:
        path, grammar = Path(folder) / "generated.circuit", Path(folder) / "circuit.lark"
        path.write_text(text)
        grammar.write_text(parser.grammar_text())
        lark = Lark(grammar.read_text(), **OPTIONS)
        print(f"load average before: {load_average()}")
        print(f"{text.count(chr(10))} lines, in one process, {repeat} interleaved rounds:")
        report(rounds({"lark parse": lambda: lark.parse(text),
                       "lark parse, collector paused": lambda: paused(lambda: lark.parse(text)),
                       "circuitdsl parse (text to AST)": lambda: cold(lambda: parser.parse(text, str(path))),
                       "circuitdsl check": lambda: cold(lambda: circuitdsl.check(path))}, repeat),
                {"lark": "lark parse"})
        python, env = sys.executable, dict(os.environ)
        lark_cache = str(Path(folder) / "lark.cache")
        build = ([python, "-c", RAW_LARK, str(grammar), str(path), ""], env)
        cached = ([python, "-c", RAW_LARK, str(grammar), str(path), lark_cache], env)
        check = [python, "-m", "circuitdsl", "check", str(path)]
        cases = {"lark: python, build parser, parse": build, "lark: python, cached parser, parse": cached,
                 "circuitdsl check, parser cache warm": (check, env),
                 "circuitdsl check, parser cache off": (check, {**env, "CIRCUITDSL_CACHE": ""})}
        fresh(cases, 1)  # warms both parser caches
        print(f"fresh processes, {repeat} interleaved rounds:")
        report(fresh(cases, repeat), {"lark built": "lark: python, build parser, parse",
                                      "lark cached": "lark: python, cached parser, parse"})
        print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
