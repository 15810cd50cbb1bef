"""The diagnostics corpus: small invalid programs a scientist could plausibly write, and what each reports.

Every case names the code and the `line:column` of the first diagnostic.  Further tests check that
independent mistakes are all reported in one run, that a message quotes its source line with a caret,
that syntax errors speak in words, that resource bombs fail before allocating, and that docs/errors.md
documents exactly the codes of `circuitdsl.errors.CODES`.
"""

from __future__ import annotations

import re
import tracemalloc
from pathlib import Path

import pytest

import circuitdsl
from circuitdsl.errors import CODES

FILE = "t.circuit"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "errors.md"


def fail(text: str, **kwargs: object) -> circuitdsl.CircuitError:
    with pytest.raises(circuitdsl.CircuitError) as info:
        circuitdsl.loads(text, file=FILE, **kwargs)  # type: ignore[arg-type]
    return info.value


# (id, source, code, line, column) of the first diagnostic.
CASES: list[tuple[str, str, str, int, int]] = [
    # ---- syntax ------------------------------------------------------------------------------------
    ("missing-comma-between-populations", """
circuit C {
  population Bd Bv : Graded
}
""", "E001", 3, 17),
    ("missing-comma-between-options", """
circuit C {
  population A, B : Graded
  A -> B : one_to_one weight = 1
}
""", "E001", 4, 23),
    ("for-with-to-instead-of-dots", """
circuit C(joints: int = 5) {
  population A[joint = joints] : Graded
  for i in 0 to joints {
    A[i] -> A[0]
  }
}
""", "E001", 4, 17),
    ("unclosed-paren-of-a-call", """
circuit C {
  population A, B : Graded
  A -> B : weight = uniform(0, 1
  B -> A
}
""", "E002", 4, 28),
    ("unclosed-list", """
circuit C {
  let sizes = [3, 4, 5
  population A[n = sizes[0]] : Graded
}
""", "E002", 3, 15),
    ("unclosed-brace-at-end-of-file", """
circuit C {
  population A : Graded
  if true {
    A -> A
  }
""", "E002", 2, 11),
    ("semicolon", """
circuit C {
  population A : Graded;
}
""", "E003", 3, 24),
    ("single-quoted-string", """
import 'motifs.circuit'
circuit C {
  population A : Graded
}
""", "E003", 2, 8),
    ("unterminated-string", """
import "motifs.circuit
circuit C {
  population A : Graded
}
""", "E003", 2, 8),
    ("end-of-file-after-circuit-name", "circuit Swimmer", "E004", 1, 16),
    ("state-in-a-circuit", """
circuit C {
  population A : Graded
  state v = 0
}
""", "E005", 4, 3),
    ("population-in-a-neuron", """
neuron N {
  population A : Graded
  out = in
}
circuit C {
  population B : N
}
""", "E005", 3, 3),
    ("input-given-a-value", """
circuit C {
  input drive = 1
}
""", "E005", 3, 9),
    ("derivative-by-x", """
neuron N(tau: time = 10 ms, dt: time = 1 ms) {
  state v = 0
  dv/dx = -v / tau
  out = v
}
circuit C {
  population A : N
}
""", "E006", 4, 3),
    ("spike-without-comparison", """
neuron N {
  state v = 0
  v = v + in
  spike s = v
  out = s
}
circuit C {
  population A : N
}
""", "E006", 5, 13),
    # ---- names -------------------------------------------------------------------------------------
    ("unknown-population", """
circuit C {
  population Bd, Bv : Graded
  Bdd -> Bv
}
""", "E201", 4, 3),
    ("unknown-argument-type", """
circuit C(joints: integer = 5) {
  population A[joint = joints] : Graded
}
""", "E201", 2, 19),
    ("unknown-dimension-of-an-input", """
neuron Membrane(dt: time = 1 ms) {
  input I : curent
  out = I
}
circuit C {
  population m : Membrane
}
""", "E201", 3, 13),
    ("duplicate-population", """
circuit C {
  population Bd : Graded
  population Md : Graded
  population Bd : Relu
}
""", "E202", 5, 14),
    ("duplicate-neuron-definition", """
neuron Unit {
  out = in
}
neuron Unit {
  out = relu(in)
}
circuit C {
  population A : Unit
}
""", "E202", 5, 8),
    ("unknown-model-argument", """
circuit C {
  population osc : SquareWave(periodd = 60)
}
""", "E203", 3, 31),
    ("unknown-projection-option", """
circuit C {
  population A, B : Graded
  A -> B : wieght = 0.5
}
""", "E203", 4, 12),
    ("missing-circuit-argument", """
circuit Segment(head: bool) {
  output bend = 1
}
circuit Worm {
  seg = Segment()
  output torque = seg.bend
}
""", "E204", 6, 9),
    ("fixed-param-without-value", """
circuit C {
  population A, B : Graded
  param g : fixed
  A -> B : weight = g
}
""", "E204", 4, 3),
    ("unknown-output-of-an-instance", """
circuit Segment {
  population M : Graded
  output bend = M
}
circuit Worm {
  seg = Segment()
  output torque = seg.bent
}
""", "E205", 8, 23),
    ("unknown-input-port-of-a-neuron", """
circuit C {
  input drive
  population m : Leaky
  drive -> m.current
}
""", "E205", 5, 12),
    ("neuron-instantiated-like-a-circuit", """
neuron Unit {
  out = in
}
circuit C {
  u = Unit()
}
""", "E206", 6, 7),
    ("projection-to-a-constant", """
circuit C {
  population A : Graded
  let gain = 2
  A -> gain
}
""", "E206", 5, 8),
    ("output-read-back", """
circuit C {
  population Md, Mv : Graded
  output bend = Md - Mv
  output torque = bend
}
""", "E206", 5, 19),
    ("gap-junction-from-an-input", """
circuit C {
  input x[n = 2]
  population a[n = 2] : Graded
  x <-> a : one_to_one
}
""", "E206", 5, 3),
    ("population-port-read-as-output", """
circuit C {
  population Md : Graded
  output bend = Md.out
}
""", "E206", 4, 17),
    ("unknown-neuron-model", """
circuit C {
  population A : Gradd
}
""", "E207", 3, 18),
    # ---- types -------------------------------------------------------------------------------------
    ("fractional-axis-size", """
circuit C {
  population A[n = 2.5] : Graded
}
""", "E301", 3, 20),
    ("if-on-a-number", """
circuit C(joints: int = 5) {
  population A : Graded
  if joints {
    A -> A
  }
}
""", "E301", 4, 6),
    # ---- shapes ------------------------------------------------------------------------------------
    ("one-to-one-of-different-sizes", """
circuit C {
  population Bd[joint = 5] : Graded
  population Md[joint = 4] : Graded
  Bd -> Md : one_to_one
}
""", "E302", 5, 14),
    ("axis-name-mismatch", """
circuit C {
  population Md[joint = 4] : Graded
  population Mv[segment = 4] : Graded
  output torque[joint = 4] = Md - Mv
}
""", "E302", 5, 30),
    ("index-out-of-range", """
circuit C {
  population Bd[joint = 5] : Graded
  population osc : Graded
  osc -> Bd[5]
}
""", "E303", 5, 10),
    ("unnamed-axis", """
circuit C {
  population Bd[5] : Graded
}
""", "E304", 3, 17),
    ("unknown-axis-name-in-an-index", """
circuit C {
  population Bd[joint = 5] : Graded
  population osc : Graded
  osc -> Bd[segment = 0]
}
""", "E304", 5, 10),
    ("axis-indexed-twice", """
circuit C {
  population Bd[joint = 5] : Graded
  population osc : Graded
  osc -> Bd[joint = 0, joint = 1]
}
""", "E304", 5, 10),
    ("argument-to-one-to-one", """
circuit C {
  population Bd[joint = 5], Md[joint = 5] : Graded
  Bd -> Md : one_to_one(5)
}
""", "E203", 4, 14),
    ("arrays-without-a-rule", """
circuit C {
  population Bd[joint = 5], Md[joint = 5] : Graded
  Bd -> Md
}
""", "E305", 4, 3),
    ("output-not-fully-assigned", """
circuit C {
  input q[joint = 3]
  output torque[joint = 3]
  torque[0] = q[0]
  torque[1] = q[1]
}
""", "E306", 4, 10),
    ("unconnected-sub-circuit-input", """
circuit Segment {
  input drive
  population B : Graded
  drive -> B
  output bend = B
}
circuit Worm {
  seg = Segment()
  output torque = seg.bend
}
""", "E307", 5, 3),
    # ---- units -------------------------------------------------------------------------------------
    ("unknown-unit", """
circuit C {
  population m : Leaky(tau = 20 msec)
}
""", "E402", 3, 33),
    ("adding-ms-to-mV", """
circuit C(rest: voltage = -65 mV) {
  let threshold = rest + 15 ms
}
""", "E401", 3, 19),
    ("rate-without-a-time-constant", """
neuron Leak(tau: time = 10 ms, dt: time = 1 ms) {
  state v = 0
  dv/dt = -v + in
  out = v
}
circuit C {
  population m : Leak
}
""", "E401", 4, 11),
    ("argument-of-the-wrong-dimension", """
circuit C {
  population m : Leaky(tau = 20 mV)
}
""", "E401", 3, 24),
    ("argument-without-its-unit", """
circuit C {
  population m : Leaky(tau = 20)
}
""", "E401", 3, 24),
    # ---- signs -------------------------------------------------------------------------------------
    ("inhibitory-arrow-with-excitatory-param", """
circuit C {
  population Bd, Mv : Graded
  param ipsi : excitatory = 1
  Bd -| Mv : weight = ipsi
}
""", "E501", 5, 23),
    ("excitatory-param-initialised-negative", """
circuit C {
  population Bd, Md : Graded
  param ipsi : excitatory = -0.5
  Bd -> Md : weight = ipsi
}
""", "E502", 4, 29),
    ("enforce-on-a-free-param", """
circuit C {
  population A, B : Graded
  param w : free = 0.1, enforce = clamp
  A -> B : weight = w
}
""", "E503", 4, 25),
    ("fixed-param-trainable", """
circuit C {
  population A, B : Graded
  param g : fixed = 1, trainable = true
  A -> B : weight = g
}
""", "E504", 4, 24),
    ("bad-shared-value", """
circuit C {
  population A, B : Graded
  param w : excitatory = 1, shared = "neurons"
  A -> B : weight = w
}
""", "E505", 4, 29),
    # ---- cycles ------------------------------------------------------------------------------------
    ("circuit-instantiates-itself", """
circuit Worm {
  population A : Graded
  tail = Worm()
}
""", "E601", 4, 10),
    ("circuits-instantiate-each-other", """
circuit Head {
  body = Body()
}
circuit Body {
  head = Head()
}
""", "E601", 3, 10),
    # ---- limits (each fails before allocating anything) ------------------------------------------
    ("loop-of-a-billion", """
circuit C {
  population A[n = 10] : Graded
  for i in 0 .. 10**9 {
    A[0] -> A[1]
  }
}
""", "E701", 4, 3),
    ("population-of-a-trillion", """
circuit C {
  population A[n = 10**12] : Graded
}
""", "E702", 3, 20),
    ("grid-population-of-a-trillion", """
circuit C {
  population retina[x = 10**6, y = 10**6] : Graded
}
""", "E702", 3, 14),
    ("all-to-all-between-huge-populations", """
circuit C {
  population retina[x = 1000, y = 1000] : Graded
  population cortex[x = 1000, y = 1000] : Graded
  retina -> cortex : all_to_all
}
""", "E703", 5, 22),
    ("random-between-huge-populations", """
circuit C {
  population retina[x = 1000, y = 1000] : Graded
  population cortex[x = 1000, y = 1000] : Graded
  retina -> cortex : random(p = 0.001, seed = 1)
}
""", "E703", 5, 22),
    # ---- values ------------------------------------------------------------------------------------
    ("division-by-zero-in-a-constant", """
let dt = 0
let rate = 1 / dt
circuit C {
  population A : Graded
}
""", "E802", 3, 16),
    ("division-by-zero-in-an-equation", """
neuron Gain(g: float = 0) {
  out = in / g
}
circuit C {
  population A : Gain
}
""", "E802", 3, 14),
    ("probability-above-one", """
circuit C {
  population A[n = 3], B[n = 3] : Graded
  A -> B : random(p = 1.5, seed = 1)
}
""", "E801", 4, 12),
    ("power-too-large", """
circuit C {
  let n = 10 ** 10 ** 9
}
""", "E801", 3, 11),
    ("signal-as-an-axis-size", """
circuit C {
  input n
  population A[i = n] : Graded
}
""", "E803", 4, 20),
    ("neuron-without-output", """
neuron Integrator {
  state v = 0
  v = v + in
}
circuit C {
  population A : Integrator
}
""", "E804", 2, 8),
    ("derivative-without-dt", """
neuron Leak(tau: time = 10 ms) {
  state v = 0
  dv/dt = -v / tau
  out = v
}
circuit C {
  population A : Leak
}
""", "E804", 4, 3),
]


def test_the_corpus_is_large_and_distinct() -> None:
    assert len(CASES) >= 45
    assert len({case[0] for case in CASES}) == len(CASES)
    assert len({case[1] for case in CASES}) == len(CASES)


@pytest.mark.parametrize(("source", "code", "line", "column"), [case[1:] for case in CASES],
                         ids=[case[0] for case in CASES])
def test_invalid_program(source: str, code: str, line: int, column: int) -> None:
    error = fail(source)
    assert error.code == code, error.render()
    assert error.span is not None
    assert (error.span.file, error.span.line, error.span.column) == (FILE, line, column), error.render()
    assert error.code in CODES and error.kind == CODES[error.code][0]
    rendered = error.render()
    assert rendered.startswith(f"{FILE}:{line}:{column}: error[{code}]: ")
    assert "Traceback" not in rendered


def test_every_error_family_is_covered() -> None:
    kinds = {CODES[case[2]][0] for case in CASES} | {"import"}  # imports: test_import_errors
    assert kinds >= {"syntax", "name", "type", "shape", "unit", "sign", "cycle", "limit", "value", "import"}


# ---- messages ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("source", "note"), [
    ("circuit C {\n  population Bd, Bv : Graded\n  Bdd -> Bv\n}\n", "did you mean 'Bd'?"),
    ("circuit C {\n  population Bd, Bv : Graded\n  Bvv -> Bd\n}\n", "did you mean 'Bv'?"),
    ("circuit C {\n  population A : Gradd\n}\n", "did you mean 'Graded'?"),
    ("circuit C {\n  population m : Leaky(tau = 20 msec)\n}\n", "did you mean 'ms'?"),
    ("circuit C {\n  population osc : SquareWave(periodd = 60)\n}\n", "did you mean 'period'?"),
    ("circuit C {\n  population A, B : Graded\n  A -> B : wieght = 0.5\n}\n", "did you mean 'weight'?"),
    ("circuit C(n: integer = 5) {\n}\n", "did you mean 'int'?"),
    ("circuit C {\n  population A, B : Graded\n  param w : excitatory = 1\n  A -| B : weight = w\n}\n",
     "write '->'"),
])
def test_suggestions(source: str, note: str) -> None:
    assert note in fail(source).render()


def test_rendering_quotes_the_line_with_a_caret_under_the_span() -> None:
    error = fail("circuit C {\n  population Bd, Bv : Graded\n  Bdd -> Bv\n}\n")
    assert error.render().splitlines() == [
        "t.circuit:3:3: error[E201]: unknown name 'Bdd'",
        " 3 |   Bdd -> Bv",
        "   |   ^^^",
        "   = did you mean 'Bd'?",
    ]


def test_unclosed_bracket_points_at_the_opening_bracket() -> None:
    error = fail(CASES[[c[0] for c in CASES].index("unclosed-paren-of-a-call")][1])
    lines = error.render().splitlines()
    assert lines[0] == "t.circuit:4:28: error[E002]: unclosed '('"
    assert lines[1] == " 4 |   A -> B : weight = uniform(0, 1"
    assert lines[2] == "   |                            ^"
    assert "expected ')' before" in lines[3]


@pytest.mark.parametrize(("source", "expected"), [
    ("circuit C {\n  population Bd Bv : Graded\n}\n", "expected ',', ':' or '['"),
    ("circuit C {\n  for i in 0 to 5 {\n  }\n}\n", "expected '..' or an operator"),
    ("circuit C {\n  population A : Graded\n  A ->\n}\n", "expected an expression"),
    ("circuit C(n: int = 3 {\n}\n", "expected ')' or ','"),
    ("circuit C {\n  population A[n = 3 : Graded\n}\n", "expected ',' or ']'"),
    ("circuit C {\n  population A : Graded\n  A -> A : one_to_one)\n}\n", "expected ',', '}' or a new line"),
    ("circuit C {\n  A B\n}\n", "expected '=', an arrow ('->', '-|' or '<->') or an operator"),
    ("import", "expected a name or a string"),
    ("}\n", "expected 'circuit', 'import', 'let', 'neuron', a docstring, a new line or the end of the file"),
])
def test_syntax_errors_say_what_was_expected_in_words(source: str, expected: str) -> None:
    rendered = fail(source).render()
    assert expected in rendered, rendered
    for token in ("RPAR", "LPAR", "LSQB", "RSQB", "LBRACE", "RBRACE", "__ANON", "$END", "_NL", "COMMA", "NAME"):
        assert token not in rendered, rendered


def test_a_misplaced_token_in_a_block_is_not_an_unclosed_brace() -> None:
    error = fail("circuit C {\n  population A : Graded\n  A -> A : weight = 1 ms ms\n}\n")
    assert (error.code, error.span.line, error.span.column) == ("E001", 3, 26)  # type: ignore[union-attr]


def test_a_syntax_error_in_an_imported_file_is_reported_there(tmp_path: Path) -> None:
    (tmp_path / "motifs.circuit").write_text("neuron Unit {\n  out = in +\n}\n")
    (tmp_path / "main.circuit").write_text('import "motifs.circuit"\ncircuit C {\n  population A : Unit\n}\n')
    with pytest.raises(circuitdsl.CircuitError) as info:
        circuitdsl.load(tmp_path / "main.circuit")
    assert info.value.codes == ["E001"]
    assert info.value.span is not None and info.value.span.file.endswith("motifs.circuit")
    assert info.value.span.line == 2


# ---- several errors in one run -----------------------------------------------------------------------
def test_independent_errors_are_all_reported() -> None:
    error = fail("""
circuit Swimmer(joints: int = 5) {
  population Bd[joint = joints], Bv[joint = joints] : Graded
  population M : Gradd
  param ipsi : excitatory = -1
  Bdd -> Bv : one_to_one
  Bd -> Bv : one_to_one, wieght = ipsi
  let tau = 10 ms + 2 mV
}
""")
    assert error.codes == ["E207", "E502", "E201", "E203", "E401"]
    assert [d.span.line for d in error.diagnostics] == [4, 5, 6, 7, 8]  # type: ignore[union-attr]
    rendered = error.render()
    assert rendered.count("error[E") == 5 and "did you mean 'Bd'?" in rendered


def test_errors_in_a_neuron_and_a_circuit_are_reported_together() -> None:
    error = fail("""
neuron Leak(tau: time = 10 ms, dt: time = 1 ms) {
  state v = 0 mV
  dv/dt = (-v + 1) / tau
  out = v
}
circuit C {
  population m : Leak
  population n[k = 0] : Graded
  output y = m + q
}
""")
    assert error.codes == ["E401", "E304", "E201"]


def test_a_failed_declaration_does_not_cascade() -> None:
    """Uses of a name whose declaration failed stay quiet: one mistake, one error."""
    assert fail("circuit C {\n  population A : Gradd\n  output y = A\n}\n").codes == ["E207"]
    assert fail("circuit S(n: int) {\n  output y = n\n}\ncircuit C {\n  s = S()\n  output y = s.y\n}\n").codes == [
        "E204"]
    assert fail("circuit C {\n  population A : Graded\n  output y : voltage = A\n}\n").codes == ["E401"]
    neuron = "neuron N {\n  state v = 0\n  spike s = v\n  out = s\n}\ncircuit C {\n  population A : N\n}\n"
    assert fail(neuron).codes == ["E006"]


def test_a_template_instantiated_many_times_reports_its_error_once() -> None:
    error = fail("""
circuit Segment {
  output bend = 1 ms + 1
}
circuit Worm {
  for i in 0 .. 5 {
    seg[i] = Segment()
  }
}
""")
    assert error.codes == ["E401"]


# ---- imports -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("files", "code", "file", "line", "column"), [
    ({"main.circuit": 'import "motifs.circuit"\ncircuit C {\n  population A : Graded\n}\n'},
     "E101", "main.circuit", 1, 8),
    ({"main.circuit": 'import "a.circuit"\ncircuit C {\n  population A : Graded\n}\n',
      "a.circuit": 'import "b.circuit"\nneuron UnitA {\n  out = in\n}\n',
      "b.circuit": 'import "a.circuit"\nneuron UnitB {\n  out = in\n}\n'},
     "E102", "b.circuit", 1, 8),
    ({"main.circuit": 'import "main.circuit"\ncircuit C {\n  population A : Graded\n}\n'},
     "E102", "main.circuit", 1, 8),
    ({"main.circuit": "import celegan\ncircuit C {\n  population A : Graded\n}\n"},
     "E103", "main.circuit", 1, 8),
    ({"main.circuit": 'import "motifs"\ncircuit C {\n  population A : Graded\n}\n', "motifs/x.circuit": ""},
     "E104", "main.circuit", 1, 8),
    ({"main.circuit": 'import "motifs.circuit" as m\ncircuit C {\n  population A : m.Unti\n}\n',
      "motifs.circuit": "neuron Unit {\n  out = in\n}\n"},
     "E207", "main.circuit", 3, 20),
])
def test_import_errors(tmp_path: Path, files: dict[str, str], code: str, file: str, line: int,
                       column: int) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    with pytest.raises(circuitdsl.CircuitError) as info:
        circuitdsl.load(tmp_path / "main.circuit")
    error = info.value
    assert error.code == code, error.render()
    assert error.span is not None
    assert (Path(error.span.file).name, error.span.line, error.span.column) == (file, line, column), error.render()


def test_cyclic_import_names_the_chain(tmp_path: Path) -> None:
    (tmp_path / "a.circuit").write_text('import "b.circuit"\n')
    (tmp_path / "b.circuit").write_text('import "a.circuit"\n')
    (tmp_path / "main.circuit").write_text('import "a.circuit"\ncircuit C {\n}\n')
    with pytest.raises(circuitdsl.CircuitError) as info:
        circuitdsl.load(tmp_path / "main.circuit")
    assert re.search(r"import chain: \S*a\.circuit -> \S*b\.circuit -> \S*a\.circuit", info.value.render())


def test_unknown_library_suggests_a_known_one(tmp_path: Path) -> None:
    (tmp_path / "main.circuit").write_text("import stdd\ncircuit C {\n}\n")
    with pytest.raises(circuitdsl.CircuitError) as info:
        circuitdsl.load(tmp_path / "main.circuit")
    assert info.value.code == "E103" and "did you mean 'std'?" in info.value.render()


# ---- API-level mistakes --------------------------------------------------------------------------------
def test_api_arguments_and_circuit_names() -> None:
    text = "circuit Swimmer(joints: int = 3) {\n  population A[joint = joints] : Graded\n}\n"
    assert "did you mean 'joints'?" in fail(text, jionts=3).render()
    assert fail(text, jionts=3).code == "E203"
    assert fail(text, joints=2.5).code == "E301"
    error = fail(text, circuit="Swimer")
    assert error.code == "E207" and "did you mean 'Swimmer'?" in error.render()
    assert fail("neuron N {\n  out = in\n}\n").code == "E207"


def test_too_many_statements() -> None:
    text = "circuit C {\n  for i in 0 .. 100 {\n    let k = i\n  }\n}\n"
    error = fail(text, limits=circuitdsl.Limits(statements=50))
    assert (error.code, error.span.line) == ("E704", 3)  # type: ignore[union-attr]


# ---- resource bombs fail fast --------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["loop-of-a-billion", "population-of-a-trillion", "grid-population-of-a-trillion",
                                  "all-to-all-between-huge-populations", "random-between-huge-populations",
                                  "power-too-large"])
def test_limits_fail_fast_without_allocating(name: str) -> None:
    source, code = next((c[1], c[2]) for c in CASES if c[0] == name)
    fail(source)  # warm the grammar and the standard library
    tracemalloc.start()
    try:
        error = fail(source)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert error.code == code
    assert peak < 20 * 2**20, f"{peak / 2**20:.0f} MiB allocated"  # memory, not time: nothing was sized by it


# ---- docs/errors.md ------------------------------------------------------------------------------------
def test_docs_document_exactly_the_codes() -> None:
    text = DOCS.read_text(encoding="utf-8")
    headings = re.findall(r"^## (\S+) — (.+)$", text, flags=re.MULTILINE)
    assert len({code for code, _ in headings}) == len(headings), "a code is documented twice"
    documented = dict(headings)
    assert set(documented) == set(CODES)
    for code, (_, title) in CODES.items():
        assert documented[code] == title, code


def _doc_sections() -> list[tuple[str, list[tuple[str, str]]]]:
    """(code, [(fence, block text)]) for each `## CODE — title` section of docs/errors.md, but the interop codes,
    which converters raise on the files they read (tests/test_interop_*.py raise each), not .circuit text."""
    text = DOCS.read_text(encoding="utf-8")
    sections = re.split(r"^## (\S+) — .+$", text, flags=re.MULTILINE)[1:]
    return [(code, re.findall(r"^```(circuit(?:-error)?|csv)\n(.*?)^```$", body, flags=re.MULTILINE | re.DOTALL))
            for code, body in zip(sections[::2], sections[1::2], strict=True) if CODES[code][0] != "interop"]


# the limits an example of docs/errors.md is run with (its section says so)
DOC_LIMITS = {"E704": circuitdsl.Limits(statements=100), "E708": circuitdsl.Limits(string_length=16),
              "E709": circuitdsl.Limits(imports=2), "E710": circuitdsl.Limits(data_rows=2),
              "E711": circuitdsl.Limits(pattern_length=8)}


@pytest.mark.parametrize(("code", "blocks"), _doc_sections() if DOCS.is_file() else [],
                         ids=[code for code, _ in _doc_sections()] if DOCS.is_file() else [])
def test_docs_example_gives_its_code(tmp_path: Path, code: str, blocks: list[tuple[str, str]]) -> None:
    """The first example block of a section makes its code (`# file:` blocks are written next to each other).

    A block is run without its last newline: the E004 example is a file that ends in mid-statement.
    """
    assert blocks, f"{code} has no example"
    blocks = [(fence, text.rstrip("\n")) for fence, text in blocks]
    limits = DOC_LIMITS.get(code)
    first = blocks[0][1]
    files = [re.match(r"# file: (\S+)\n", text) for _, text in blocks]
    try:
        if files[0] is None:
            result = circuitdsl.elaborate(None, text=first, file="example.circuit", limits=limits)
        else:
            for match, (fence, text) in zip(files, blocks, strict=True):
                assert match is not None
                (tmp_path / match.group(1)).parent.mkdir(parents=True, exist_ok=True)
                (tmp_path / match.group(1)).write_text(text if fence != "csv" else text[match.end():] + "\n")
            result = circuitdsl.elaborate(tmp_path / files[0].group(1), limits=limits)
        found = [w.code for w in result.warnings]
    except circuitdsl.CircuitError as error:
        found = error.codes
    assert blocks[0][0] == ("circuit" if code.startswith("W") else "circuit-error")
    assert code in found, found
