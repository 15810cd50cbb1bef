"""What `circuitdsl check` costs from a fresh process, bounded by counts (never by time): the modules it imports
(no deep-learning framework, no graph library, no simulator: circuitdsl/__init__.py and the CLI import those
when used) and the parsers it builds (none when the per-user parser cache is warm).  See docs/startup.md."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = """circuit C {
  input x[unit = 4]
  output y[unit = 4]
  population a[unit = 4], b[unit = 4] : Graded
  x -> a : one_to_one
  let s = tanh(a) * 0.5
  s -> b : one_to_one, weight = 0.5
  a -> b : all_to_all
  y = b
}
"""
# run as `python -m circuitdsl check FILE`, counting the parsers lark builds from a grammar (not from its
# cache), then report the status, the count and every module imported
SCRIPT = """
import json, runpy, sys
from lark import Lark

built = []
build = Lark._build_parser
Lark._build_parser = lambda self: (built.append(1), build(self))[1]
sys.argv = ["circuitdsl", "check", sys.argv[1]]
try:
    runpy.run_module("circuitdsl", run_name="__main__", alter_sys=True)
except SystemExit as end:
    print(json.dumps({"status": end.code, "built": len(built), "modules": sorted(sys.modules)}), file=sys.stderr)
"""
NOT_FOR_CHECK = ("torch", "jax", "jaxlib", "networkx", "scipy", "pandas", "matplotlib", "graphviz", "tqdm", "ray",
                 "cect", "circuitdsl.backends", "circuitdsl.simulate", "circuitdsl.fmt", "circuitdsl.draw.render")


def run_check(file: Path, cache: Path) -> dict[str, object]:
    env = {**os.environ, "CIRCUITDSL_CACHE": str(cache), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(file)], env=env, capture_output=True, text=True,
                          check=True)
    report: dict[str, object] = json.loads(done.stderr.strip().splitlines()[-1])
    assert report["status"] == 0, done.stderr
    assert "C: 2 populations" in done.stdout
    return report


def test_check_builds_the_parser_once_per_user_and_imports_no_framework(tmp_path: Path) -> None:
    file = tmp_path / "small.circuit"
    file.write_text(SOURCE)
    first = run_check(file, tmp_path / "cache")
    warm = run_check(file, tmp_path / "cache")
    assert first["built"] == 1  # the cache was empty: built once, and stored
    assert warm["built"] == 0  # loaded from the cache
    modules = warm["modules"]
    assert isinstance(modules, list)
    imported = [m for m in modules if any(m == name or m.startswith(name + ".") for name in NOT_FOR_CHECK)]
    assert imported == []
