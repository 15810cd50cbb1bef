"""`circuitdsl fmt`: canonical, idempotent, comment-preserving, and never changes what a file means.

Every .circuit file of the repository is already formatted (CI's `fmt --check`); a model with its layout
scrambled formats back to itself with the same elaborated IR; fuzz programs (valid ones) and mutated models
keep their AST (spans aside) and format to a fixed point in one pass.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

import circuitdsl
from circuitdsl.cli import main
from circuitdsl.fmt import format_source
from tests.model_files import MODELS
from tests.test_fuzz import NEURON_PROGRAM, PROGRAM, mutated_model

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted(p for p in ROOT.rglob("*.circuit") if ".venv" not in p.parts and "site-packages" not in p.parts)
LIBRARY = sorted((ROOT / "circuitdsl" / "library").glob("*.circuit"))
PROPERTY = settings(max_examples=100, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

# strings, docstrings and comments are kept as written; only the code between them is scrambled
_KEPT = re.compile(r'"""(?:.|\n)*?"""|"(?:[^"\\\n]|\\.)*"|#[^\n]*')


def scramble(text: str) -> str:
    """The same program laid out badly: no indentation, spaces inside brackets and before commas, runs of spaces."""
    out, last = [], 0
    for match in _KEPT.finditer(text):
        out.append(_scramble_code(text[last : match.start()]))
        out.append(match.group())
        last = match.end()
    out.append(_scramble_code(text[last:]))
    return "".join(out)


def _scramble_code(code: str) -> str:
    code = re.sub(r"\n[ \t]+", "\n", code)
    code = re.sub(r"([(\[\],)])", r" \1 ", code)
    return re.sub(r"(?<=\S) (?=\S)", "   ", code)


def without_spans(node: Any) -> Any:
    """An AST as nested tuples, spans left out: what the program says, not where."""
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        return (type(node).__name__, *(without_spans(getattr(node, f.name)) for f in dataclasses.fields(node)
                                       if f.name != "span"))
    if isinstance(node, tuple | list):
        return tuple(without_spans(x) for x in node)
    return node


def ir_without_spans(ir: circuitdsl.CircuitIR) -> Any:
    """The IR as JSON data without spans and the paths of its source files (a copy lives elsewhere)."""

    def strip(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if k not in ("span", "files")}
        return [strip(v) for v in x] if isinstance(x, list) else x

    return strip(json.loads(ir.to_json()))


# ---- the repository is formatted ---------------------------------------------------------------------
def test_fmt_check_passes_on_every_circuit_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert len(SOURCES) >= len(MODELS) + len(LIBRARY) >= 17
    status = main(["fmt", "--check", *map(str, SOURCES)])
    out, err = capsys.readouterr()
    assert status == 0, f"not formatted (run `circuitdsl fmt` on them):\n{out}{err}"
    assert out == ""


@pytest.mark.parametrize("path", MODELS + LIBRARY, ids=lambda p: p.name)
def test_a_scrambled_file_formats_back_to_itself(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    messy = scramble(text)
    assert messy != text
    assert format_source(messy) == text
    assert without_spans(circuitdsl.parse(messy)) == without_spans(circuitdsl.parse(text))


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.name)
def test_formatting_never_changes_the_elaborated_ir(path: Path, tmp_path: Path) -> None:
    """Scrambled and formatted again, every circuit of every model elaborates to the same IR."""
    pytest.importorskip("cect") if "celegans" in path.name else None
    text = path.read_text(encoding="utf-8")
    for other in path.parent.glob("*.circuit"):  # the files it imports, as they are
        (tmp_path / other.name).write_text(other.read_text(encoding="utf-8"), encoding="utf-8")
    formatted = tmp_path / path.name
    formatted.write_text(format_source(scramble(text)), encoding="utf-8")
    before = [ir_without_spans(r.ir) for r in circuitdsl.check(path)]
    after = [ir_without_spans(r.ir) for r in circuitdsl.check(formatted)]
    assert after == before and before


@PROPERTY
@given(PROGRAM | NEURON_PROGRAM | mutated_model())
def test_fuzz_programs_format_to_a_fixed_point_that_means_the_same(text: str) -> None:
    try:
        tree = circuitdsl.parse(text)
    except circuitdsl.CircuitError:
        return  # only valid programs are formatted; an invalid one is an error (tested below)
    once = format_source(text)
    assert format_source(once) == once
    assert without_spans(circuitdsl.parse(once)) == without_spans(tree)
    assert _comments(once) == _comments(text)


def _comments(text: str) -> list[str]:
    return [m.group().rstrip() for m in _KEPT.finditer(text) if m.group().startswith("#")]


# ---- the layout rules ----------------------------------------------------------------------------------
MESSY = '''# a leading comment


import   std
neuron N( tau:time=10 ms ){
 """Doc, kept   as written."""
   state v=0
      dv/dt=(-v+in)/tau   # the leak
 out=v


}
circuit C(n:int=3){
input q[ joint=n ]
output y[joint=n]
  param a:excitatory=+1
  param longer:inhibitory=-1,shared=true
population P[joint=n],Q[joint=n]:N( tau=5 ms )
  q[:-1]->P[1:]:one_to_one,weight=a
  P-|Q:one_to_one,weight=longer    # inhibition
  for i in 0..n { Q[i]->P[i] }
  if n>2 {
    let k=[1,2,3]
  } else {
    let k={a,b}
  }
  y=clamp(Q,0,1)*2**-1
}
'''

EXPECTED = '''# a leading comment

import std
neuron N(tau: time = 10 ms) {
  """Doc, kept   as written."""
  state v = 0
  dv/dt = (-v + in) / tau  # the leak
  out = v
}
circuit C(n: int = 3) {
  input  q[joint = n]
  output y[joint = n]
  param a      : excitatory = +1
  param longer : inhibitory = -1, shared = true
  population P[joint = n], Q[joint = n] : N(tau = 5 ms)
  q[:-1] -> P[1:] : one_to_one, weight = a
  P -| Q          : one_to_one, weight = longer  # inhibition
  for i in 0 .. n {
    Q[i] -> P[i]
  }
  if n > 2 {
    let k = [1, 2, 3]
  } else {
    let k = {a, b}
  }
  y = clamp(Q, 0, 1) * 2 ** -1
}
'''


def test_the_layout_rules() -> None:
    assert format_source(MESSY) == EXPECTED
    assert format_source(EXPECTED) == EXPECTED
    ports = "neuron M {\n  input g :conductance,I:current\n  output v[n=3] :voltage=in\n  out = v\n}\n"
    assert format_source(ports) == ("neuron M {\n  input  g: conductance, I: current\n"
                                    "  output v[n = 3]: voltage = in\n  out = v\n}\n")


def test_continuation_lines_align_after_their_bracket_and_keywords_line_up() -> None:
    source = ('circuit C(a: int = 1,\n  b: int = 2) {\n  net = f(x,\n neurons = all,\n   sign = c302)\n'
              '  let m = g(\n1,\n2\n)\n}\n')
    assert format_source(source) == ('circuit C(a: int = 1,\n          b: int = 2) {\n  net = f(x,\n'
                                     '          neurons = all,\n          sign    = c302)\n'
                                     '  let m = g(\n      1,\n      2\n  )\n}\n')


def test_comments_everywhere_are_kept() -> None:
    source = ("# head\ncircuit C {  # after the brace\n  # own line\n\n\n  population P : Graded  # trailing\n"
              "  let x = f(1,  # inside brackets\n            # alone inside\n            2)\n  # before the brace\n}"
              "\n# at the end")
    formatted = format_source(source)
    assert _comments(formatted) == _comments(source)
    assert "\n\n\n" not in formatted and formatted.endswith("# at the end\n")
    assert format_source(formatted) == formatted
    assert without_spans(circuitdsl.parse(formatted)) == without_spans(circuitdsl.parse(source))


def test_a_file_of_comments_only_and_an_empty_file() -> None:
    assert format_source("") == ""
    assert format_source("  # just a note  \n\n\n# another\n") == "# just a note\n\n# another\n"


def test_an_invalid_file_is_a_circuit_error_not_a_guess() -> None:
    with pytest.raises(circuitdsl.CircuitError) as info:
        format_source("circuit C {\n  population P Q : Graded\n}\n", "bad.circuit")
    assert info.value.code == "E001" and info.value.span is not None and info.value.span.line == 2


# ---- the command -----------------------------------------------------------------------------------------
def test_fmt_rewrites_files_in_place_and_check_names_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    messy = tmp_path / "messy.circuit"
    messy.write_text(MESSY, encoding="utf-8")
    tidy = tmp_path / "tidy.circuit"
    tidy.write_text(EXPECTED, encoding="utf-8")
    assert main(["fmt", "--check", str(messy), str(tidy)]) == 1
    out, _ = capsys.readouterr()
    assert out.splitlines() == [str(messy)]
    assert main(["fmt", "--diff", str(messy)]) == 0
    out, _ = capsys.readouterr()
    assert out.startswith(f"--- {messy}\n+++ {messy}\n") and "+  dv/dt = (-v + in) / tau  # the leak" in out
    assert messy.read_text(encoding="utf-8") == MESSY  # --check and --diff change nothing
    assert main(["fmt", str(messy), str(tidy)]) == 0
    assert messy.read_text(encoding="utf-8") == EXPECTED
    assert main(["fmt", "--check", str(messy)]) == 0


def test_fmt_reads_stdin_and_reports_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(MESSY))
    assert main(["fmt"]) == 0
    assert capsys.readouterr().out == EXPECTED
    bad = tmp_path / "bad.circuit"
    bad.write_text("circuit C {\n  population P Q : Graded\n}\n", encoding="utf-8")
    assert main(["fmt", str(bad), str(tmp_path / "missing.circuit")]) == 3
    _, err = capsys.readouterr()
    assert f"{bad}:2:" in err and "error[E001]" in err and "cannot read" in err and "Traceback" not in err
