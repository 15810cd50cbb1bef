"""Property-based fuzzing: no input text makes circuitdsl fail with anything but a located CircuitError.

Random text, text built from the language's own tokens, structured circuits with resource bombs, and
mutations of the shipped models are all fed to `circuitdsl.loads`.  Each either elaborates or raises
`CircuitError`, whose rendering starts at a `file:line:col` that exists in the named source and quotes
that very line.  Runs are derandomized, so a failure reproduces on every run.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import circuitdsl
from circuitdsl.errors import MAX_ERRORS
from tests.model_files import MODELS

ROOT = Path(__file__).resolve().parent.parent
FILE = "fuzz.circuit"
# Work is bounded by counts, never timed: every run gets these limits (a fifth of the default statements),
# so a runaway input stops at a known amount of work, and a CircuitError carries at most MAX_ERRORS errors.
LIMITS = circuitdsl.Limits(statements=40_000)

FUZZ = settings(max_examples=400, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                       HealthCheck.data_too_large])

# ---- the language's vocabulary ---------------------------------------------------------------------
KEYWORDS = ["import", "as", "neuron", "circuit", "let", "state", "spike", "input", "output", "param",
            "population", "for", "in", "if", "else", "true", "false", "and", "or", "not"]
NAMES = ["x", "y", "q", "n", "i", "A", "B", "Seg", "P", "Q", "Bd", "Md", "out", "v", "seg", "joint", "joints",
         "weight", "one_to_one", "all_to_all", "dense", "pairs", "random", "shared", "enforce", "signs",
         "sign", "share", "clamp", "min", "max", "abs", "relu", "exp", "log", "sqrt", "floor", "where", "step",
         "detach", "tanh", "sin", "constant", "uniform", "normal", "fixed", "excitatory", "inhibitory", "free",
         "softplus", "none", "all", "edge", "projection", "int", "float", "bool", "str", "time", "voltage",
         "current", "dimensionless", "Graded", "Identity", "Relu", "Leaky", "LIF", "SquareWave", "SineWave",
         "tau", "dt", "beta", "threshold", "surrogate", "atan", "period", "phase", "std", "celegans", "dv",
         "mem", "spk", "bend", "torque", "osc_d", "head", "labels"]
NUMBERS = ["0", "1", "2", "3", "5", "-1", "+1", "0.5", "1e3", "1e-3", "10", "100", "65536", "1e400", "1e308",
           "99999999999999999999", "1.5", "1e18"]
UNITS = ["ms", "s", "mV", "V", "nA", "pA", "uS", "nF", "MOhm", "ohm", "Hz", "kHz", "um", "mM", "C"]
OPERATORS = ["->", "-|", "<->", "[", "]", "(", ")", "{", "}", ":", "=", ",", "..", ".", "+", "-", "*", "/", "%",
             "**", "==", "!=", "<", "<=", ">", ">=", "\\\n"]
STRINGS = ['"a"', '""', '"x.circuit"', '"missing.circuit"', '"""doc"""', '"\\n"', '"""', '"', '"models"', '"."',
           '"models/ncap_swimmer.circuit"', '"models/ncap_segments.circuit"', '"a\x00b"', '"\\"']
LAYOUT = ["\n", "\n", "\n  ", " ", "# comment\n", "\t", "\r\n"]
VOCABULARY = KEYWORDS + NAMES + NUMBERS + UNITS + OPERATORS + STRINGS + LAYOUT

LOCATION = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): error\[E\d{3}\]: ")


def _source_lines(file: str, text: str, sources: dict[str, str] | None = None) -> list[str] | None:
    """The lines (split at \\n, as the parser counts them) of the file an error names, if we can read it."""
    if file == FILE:
        return text.split("\n")
    if sources and file in sources:
        return sources[file].split("\n")
    for candidate in (ROOT / file, ROOT / "circuitdsl" / "library" / file):
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8").split("\n")
    return None


def check_loads(text: str) -> None:
    """`loads` succeeds or raises CircuitError (and only that, with at most MAX_ERRORS errors) within the work
    the limits allow, with a well-located rendering."""
    try:
        ir = circuitdsl.loads(text, file=FILE, limits=LIMITS)
    except circuitdsl.CircuitError as error:
        check_rendering(error, text)
        assert len(error.diagnostics) <= MAX_ERRORS
        ir = None
    if ir is not None and ir.synapses < 100_000:  # what elaborates is valid IR: it survives JSON (no inf, no nan)
        assert circuitdsl.CircuitIR.from_json(ir.to_json()) == ir


def check_rendering(error: circuitdsl.CircuitError, text: str, sources: dict[str, str] | None = None) -> None:
    rendered = str(error)
    assert "error[E" in rendered, rendered
    first = rendered.split("\n", 1)[0]
    match = LOCATION.match(first)
    if match is None:  # no span: the message must at least say which file
        assert first.startswith("error[E"), rendered
        assert FILE in first or any(name in first for name in sources or ()), rendered
        return
    lines = _source_lines(match["file"], text, sources)
    assert lines is not None, f"error in an unknown file: {rendered}"
    line, column = int(match["line"]), int(match["col"])
    assert 1 <= line <= len(lines), f"line {line} of {len(lines)}: {rendered}"
    assert 1 <= column <= len(lines[line - 1]) + 2, f"column {column} of {lines[line - 1]!r}: {rendered}"
    quoted = re.search(rf"^ {line} \| (.*)$", rendered, re.MULTILINE)
    if quoted is not None:  # the source line shown under the location is that very line
        assert quoted[1] == lines[line - 1].rstrip("\r").expandtabs(1), rendered


# ---- strategies ------------------------------------------------------------------------------------
def vocabulary_text(min_size: int = 0, max_size: int = 40) -> st.SearchStrategy[str]:
    token = st.sampled_from(VOCABULARY)
    separator = st.sampled_from(["", " ", " ", " ", "\n"])
    return st.lists(st.tuples(token, separator), min_size=min_size, max_size=max_size).map(
        lambda pairs: "".join(t + s for t, s in pairs))


def wrapped(body: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Token soup inside a circuit (or neuron) body, so that more of it gets past the parser."""
    header = st.sampled_from(["circuit A {\n", "circuit A(n: int = 3, s: bool = true) {\n",
                              "neuron N(tau: time = 10 ms) {\n", "circuit A {\n  population P[n = 3] : Graded\n"])
    return st.tuples(header, body, st.sampled_from(["\n}\n", "}", "\n}\ncircuit B { population R : N }\n"])).map(
        "".join)


# Structured statements: a small generator following the grammar, with numbers that reach the limits.
BIG = st.sampled_from(["0", "1", "3", "-2", "0.5", "10 ** 6", "10 ** 9", "2 ** 62", "2 ** 10 ** 10", "9 ** 9 ** 9",
                       "1e300", "1e400", "10 ** 400", "n", "n * n", "-n", "2 ** 64", "3 ms", "1 / 0", "0 % 0",
                       "(2 ** 31) * (2 ** 31) * (2 ** 31)", "1e308 * 10", "65536"])
ATOM = st.one_of(BIG, st.sampled_from(["x", "P", "Q", "q", "P[0]", "P[1:]", "P[n = 0]", "q[:-1]", "true", "false",
                                       "[1, 2, 3]", "{a, b}", '"s"', "clamp(q, 0, 1)", "none", "excitatory"]))
EXPR = st.recursive(ATOM, lambda e: st.one_of(
    st.tuples(e, st.sampled_from(["+", "-", "*", "/", "%", "**", "==", "<", "and", "or"]), e).map(" ".join),
    e.map(lambda x: f"({x})"),
    e.map(lambda x: f"-{x}"),
    st.tuples(e, e, e).map(lambda t: f"{t[0]} if {t[1]} else {t[2]}"),
    st.tuples(st.sampled_from(["clamp", "min", "max", "abs", "exp", "sqrt", "floor", "where", "A", "Graded"]),
              st.lists(e, max_size=3)).map(lambda t: f"{t[0]}({', '.join(t[1])})"),
), max_leaves=6)
STATEMENT = st.one_of(
    EXPR.map(lambda e: f"let x = {e}"),
    st.tuples(BIG, st.sampled_from(["Graded", "LIF", "Leaky(tau = 5 ms)", "SquareWave(period = 7)", "N", "A"])).map(
        lambda t: f"population P[n = {t[0]}] : {t[1]}"),
    st.tuples(BIG, BIG).map(lambda t: f"population Q[a = {t[0]}, b = {t[1]}] : Graded"),
    st.tuples(BIG, EXPR).map(lambda t: f"param w[k = {t[0]}] : excitatory = {t[1]}, shared = false"),
    st.tuples(EXPR, EXPR, st.sampled_from(["", " : one_to_one", " : all_to_all", " : dense, weight = 2",
                                          " : random(p = 0.5)", " : pairs([[0, 1]])", " : weight = w"])).map(
        lambda t: f"{t[0]} -> {t[1]}{t[2]}"),
    st.tuples(BIG, BIG, st.sampled_from(["let y = i", "population R[m = i + 1] : Graded", "seg[i] = B()",
                                         "for j in 0 .. i { let z = j }", "P[i] -> Q"])).map(
        lambda t: f"for i in {t[0]} .. {t[1]} {{\n{t[2]}\n}}"),
    EXPR.map(lambda e: f"if {e} {{\nlet y = 1\n}} else {{\nlet y = 2\n}}"),
    st.tuples(BIG, EXPR).map(lambda t: f"output y[n = {t[0]}]\ny = {t[1]}"),
    st.tuples(BIG).map(lambda t: f"input q[n = {t[0]}]"),
    EXPR.map(lambda e: f"inst = B(k = {e})"),
)
PROGRAM = st.tuples(
    st.lists(STATEMENT, max_size=6),
    st.sampled_from(["", "circuit B(k: int = 2) { population S[m = k] : Graded }\n",
                     "circuit B(k: int = 2) { b = B(k = k - 1) }\n",
                     "neuron N { state v = 0\n dv/dt = -v / (1 ms)\n out = v }\n"]),
).map(lambda t: f"{t[1]}circuit A(n: int = 3) {{\n  input q[n = n]\n  population P[n = n] : Graded\n"
                f"  population Q[n = n] : Graded\n  " + "\n  ".join(t[0]) + "\n}\n")


# Neuron models: equations over states, inputs and arguments, with units, spikes and conditions.
NEURON_ATOM = st.sampled_from(["in", "v", "s", "tau", "k", "dt", "0", "1", "-1", "0.5", "2", "1 ms", "10 mV", "3 nA",
                               "1e400", "2 ** 10 ** 10", "true", "t", "out", "x", "clamp(v, 0, 1)", "detach(s)"])
NEURON_EXPR = st.recursive(NEURON_ATOM, lambda e: st.one_of(
    st.tuples(e, st.sampled_from(["+", "-", "*", "/", "%", "**", ">", "==", "and"]), e).map(" ".join),
    e.map(lambda x: f"({x})"),
    e.map(lambda x: f"-{x}"),
    st.tuples(e, e, e).map(lambda t: f"{t[0]} if {t[1]} else {t[2]}"),
    st.tuples(st.sampled_from(["exp", "tanh", "sqrt", "relu", "step", "where", "clamp", "abs"]),
              st.lists(e, max_size=3)).map(lambda t: f"{t[0]}({', '.join(t[1])})"),
), max_leaves=5)
NEURON_STATEMENT = st.one_of(
    NEURON_EXPR.map(lambda e: f"state v = {e}"),
    NEURON_EXPR.map(lambda e: f"state s = {e}"),
    NEURON_EXPR.map(lambda e: f"dv/dt = {e}"),
    NEURON_EXPR.map(lambda e: f"v = {e}"),
    NEURON_EXPR.map(lambda e: f"out = {e}"),
    NEURON_EXPR.map(lambda e: f"let x = {e}"),
    st.tuples(NEURON_EXPR, st.sampled_from(["atan(alpha = 2)", "fast_sigmoid(slope = 25)", "straight_through",
                                            "sigmoid", "atan(beta = 1)", "nope", "atan(alpha = 1 ms)"])).map(
        lambda t: f"spike s = {t[0]} : surrogate = {t[1]}"),
    NEURON_EXPR.map(lambda e: f"spike s = {e}"),
    NEURON_EXPR.map(lambda e: f"if {e} {{\n    v = 0\n  }} else {{\n    v = 1\n  }}"),
    st.sampled_from(["input I: current", "input extra", "output o", "population P : Graded", "P -> P",
                     "for i in 0 .. 3 {\n    v = i\n  }", "param w : excitatory = 1", "t = t + 1", "dt/dt = 1"]),
)
NEURON_PROGRAM = st.tuples(
    st.lists(NEURON_STATEMENT, max_size=6),
    st.sampled_from(["", "(tau: time = 10 ms, k: int = 1, dt: time = 1 ms)", "(tau: time = 2, k: float = 1 ms)"]),
    st.sampled_from(["N", "N(tau = 5 ms)", "N(k = 2)", "N(tau = 1)", "N(nope = 1)", "N[1]", "LIF(beta = 2)",
                     "LIF(reset = zero, surrogate = straight_through)", "Leaky(tau = 0 ms)", "SquareWave(period = 0)",
                     "SineWave(period = -1)"]),
).map(lambda t: f"neuron N{t[1]} {{\n  state v = 0\n  " + "\n  ".join(t[0]) + f"\n}}\n"
                f"circuit A {{\n  population P[n = 2] : {t[2]}\n  P -> P : one_to_one\n}}\n")


# ---- (a) random text -------------------------------------------------------------------------------
@FUZZ
@given(st.text(max_size=200))
@example("")
@example("\n\n\n")
@example("circuit")
@example('"""')
@example("circuit A {\n")
@example("circuit A { let x = 2 ** 10 ** 10 }")
@example("circuit A { population P[n = 10 ** 9] : Graded }")
@example("circuit A { for i in 0 .. 10 ** 12 { } }")
@example("circuit A(n: int = 3) { x = A(n = n) }")
@example("circuit A { let x = 1 }\n\x0c\u2028\x85 # comment\u2029\ncircuit B { x -> }")
@example("circuit A { let x = " + "9" * 5000 + " }")
@example("circuit A { let x = " + "(" * 2000 + "1" + ")" * 2000 + " }")
@example("circuit A { let x = " + "-" * 3000 + "1 }")
@example("circuit A { let x = " + " + ".join(["1"] * 3000) + " }")
def test_random_text(text: str) -> None:
    check_loads(text)


@FUZZ
@given(vocabulary_text())
def test_vocabulary_text(text: str) -> None:
    check_loads(text)


@FUZZ
@given(wrapped(vocabulary_text(max_size=25)))
def test_vocabulary_in_a_body(text: str) -> None:
    check_loads(text)


@FUZZ
@given(PROGRAM)
@example("circuit A { for i in 0 .. 99999 { for j in 0 .. 99999 { let y = 1 } } }")
@example("circuit A { population P[a = 1000, b = 1000, c = 1000] : Graded }")
@example("circuit A { population P[a = 7000], Q[b = 7000] : Graded\n  P -> Q : all_to_all }")
@example("circuit A { population P[a = 50000], Q[b = 50000] : Graded\n  P -> Q : dense }")
@example("circuit B(k: int = 2) { b = B(k = k - 1) }\ncircuit A { a = B() }")
@example("circuit A { let x = 1 ms ** (10 ** 18) }")
@example("circuit A {\n  input q[n = 3]\n  input q[n = 1]\n  output y[n = 2]\n  y = q[:-1]\n}")
@example("circuit A {\n  input q[n = 3]\n  for i in 0 .. 65536 {\n    let x = q[i]\n  }\n}")
@example("circuit A {\n  population P[n = 3] : Graded\n  for i in 0 .. 65536 {\n    P[i] -> P\n  }\n}")
def test_structured_programs(text: str) -> None:
    check_loads(text)


# Deep nesting: each form at depths around the parser's nesting limit and far beyond it.
DEEP = {
    "sum": lambda n: "circuit A { let x = " + " + ".join(["1"] * n) + " }",
    "negation": lambda n: "circuit A { let x = " + "-" * n + "1 }",
    "power": lambda n: "circuit A { let x = " + " ** ".join(["1"] * n) + " }",
    "parentheses": lambda n: "circuit A { let x = " + "(" * n + "1" + ")" * n + " }",
    "calls": lambda n: "circuit A { let x = " + "abs(" * n + "1" + ")" * n + " }",
    "lists": lambda n: "circuit A { let x = " + "[" * n + "]" * n + " }",
    "conditionals": lambda n: "circuit A { let x = " + "1 if true else " * n + "1 }",
    "not": lambda n: "circuit A { let x = " + "not " * n + "true }",
    "slices": lambda n: "circuit A { let x = [1]" + "[0:]" * n + " }",
    "signal sum": lambda n: "circuit A {\n  input q[n = 2]\n  output y[n = 2]\n  y = " + " + ".join(["q"] * n) + "\n}",
    "signal calls": lambda n: "circuit A {\n  input q[n = 2]\n  output y[n = 2]\n  y = " + "abs(" * n + "q"
                              + ")" * n + "\n}",
    "ifs": lambda n: "circuit A {\n" + "if true {\n" * n + "}\n" * n + "}",
    "fors": lambda n: "circuit A {\n" + "for i in 0 .. 1 {\n" * n + "}\n" * n + "}",
    "else ifs": lambda n: "circuit A {\n  if false { }" + " else if false { }" * n + "\n}",
    "neuron sum": lambda n: "neuron N { out = " + " + ".join(["in"] * n) + " }\ncircuit A { population P : N }",
    "neuron ifs": lambda n: "neuron N(k: int = 1) {\n  state v = 0\n" + "if k == 1 {\n" * n + "v = in\n"
                            + "}\n" * n + "  out = v\n}\ncircuit A { population P : N }",
}


@pytest.mark.parametrize("depth", [10, 45, 95, 101, 300, 3000])
@pytest.mark.parametrize("form", sorted(DEEP))
def test_deep_nesting(form: str, depth: int) -> None:
    text = DEEP[form](depth)
    check_loads(text)
    if depth >= 300 and form != "parentheses":  # parentheses add no level to the tree
        with pytest.raises(circuitdsl.CircuitError) as info:
            circuitdsl.loads(text, file=FILE)
        assert info.value.code == "E006", str(info.value)


def test_deep_but_legal_sum_elaborates_to_json() -> None:
    text = "circuit A {\n  input q[n = 2]\n  output y[n = 2]\n  y = " + " + ".join(["q"] * 80) + "\n}"
    ir = circuitdsl.loads(text, file=FILE)
    assert circuitdsl.CircuitIR.from_json(ir.to_json()) == ir


def test_a_loop_failing_on_every_pass_stops_early() -> None:
    text = "circuit A {\n  input q[n = 3]\n  for i in 0 .. 65536 {\n    let x = q[i]\n  }\n}"
    with pytest.raises(circuitdsl.CircuitError) as info:
        circuitdsl.loads(text, file=FILE)
    assert set(info.value.codes) == {"E303"} and len(info.value.diagnostics) == MAX_ERRORS
    assert info.value.diagnostics[-1].span.line == 4  # type: ignore[union-attr]  # stopped inside the loop


# Command-line style arguments (`--arg joints=...`) are read in the language's own syntax, so fuzz them too.
SWIMMER = ROOT / "models" / "ncap_swimmer.circuit"


@settings(FUZZ, max_examples=150)  # each example reads and elaborates the swimmer file: the suite's slowest fuzz test
@given(st.sampled_from(["joints", "period", "shared", "signs"]),
       st.one_of(st.text(max_size=30), vocabulary_text(max_size=8), st.sampled_from(
           ["1\nlet y = 2", "5\ncircuit X { }", "2 ** 10 ** 10", "10 ** 9", "(" * 300 + "1" + ")" * 300,
            "-" * 300 + "1", '"""', "Swimmer()", "q", "1e400", "9" * 5000])))
def test_arguments(name: str, value: str) -> None:
    try:
        circuitdsl.load(SWIMMER, limits=LIMITS, **{name: value})
    except circuitdsl.CircuitError as error:
        check_rendering(error, "", {f"<argument {name}>": value})
        assert len(error.diagnostics) <= MAX_ERRORS


@FUZZ
@given(NEURON_PROGRAM)
@example("neuron N {\n  state v = 0\n  dv/dt = -v / (0 ms)\n  out = v\n}\ncircuit A { population P : N }")
@example("neuron N {\n  state v = 0\n  spike v = v > 1\n  out = v\n}\ncircuit A { population P : N }")
def test_structured_neurons(text: str) -> None:
    check_loads(text)


# ---- (b) mutations of the shipped models ------------------------------------------------------------
TOKEN = re.compile(r'"""(?:.|\n)*?"""|"[^"\n]*"|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|[A-Za-z_]\w*|<->|->|-\||\*\*|\.\.'
                   r"|[=!<>]=|\S")


def _doc_examples() -> list[str]:
    """The ```circuit and ```circuit-error blocks of the docs: every construct of the language, to mutate."""
    blocks = []
    for doc in (ROOT / "docs" / "language.md", ROOT / "docs" / "errors.md"):
        if doc.is_file():
            text = doc.read_text(encoding="utf-8")
            blocks += re.findall(r"^```circuit(?:-error)?\n(.*?)^```", text, re.DOTALL | re.MULTILINE)
    return blocks


DOC_EXAMPLES = _doc_examples()


@st.composite
def mutated_model(draw: st.DrawFn, corpus: list[str] | None = None) -> str:
    if corpus is None:
        text = draw(st.sampled_from(MODELS)).read_text(encoding="utf-8")
    else:
        text = draw(st.sampled_from(corpus))
    for _ in range(draw(st.integers(1, 3))):
        text = draw(st.sampled_from(MUTATIONS))(draw, text)
    return text


def _position(draw: st.DrawFn, text: str) -> int:
    return draw(st.integers(0, len(text)))


def _delete_span(draw: st.DrawFn, text: str) -> str:
    start = _position(draw, text)
    end = draw(st.integers(start, min(len(text), start + 80)))
    return text[:start] + text[end:]


def _duplicate_line(draw: st.DrawFn, text: str) -> str:
    lines = text.split("\n")
    i = draw(st.integers(0, len(lines) - 1))
    return "\n".join(lines[: i + 1] + [lines[i]] + lines[i + 1:])


def _tokens(text: str) -> list[re.Match[str]]:
    return list(TOKEN.finditer(text))


def _swap_tokens(draw: st.DrawFn, text: str) -> str:
    tokens = _tokens(text)
    if len(tokens) < 2:
        return text
    i, j = sorted(draw(st.lists(st.integers(0, len(tokens) - 1), min_size=2, max_size=2, unique=True)))
    a, b = tokens[i], tokens[j]
    return text[: a.start()] + b[0] + text[a.end(): b.start()] + a[0] + text[b.end():]


def _replace_token(draw: st.DrawFn, text: str) -> str:
    tokens = _tokens(text)
    if not tokens:
        return text
    t = tokens[draw(st.integers(0, len(tokens) - 1))]
    return text[: t.start()] + draw(st.sampled_from(VOCABULARY)) + text[t.end():]


def _insert_character(draw: st.DrawFn, text: str) -> str:
    i = _position(draw, text)
    char = draw(st.one_of(st.sampled_from(list("()[]{}\"'#:=,.-|<>+*/%;\\\n\t 0x_")), st.characters()))
    return text[:i] + char + text[i:]


def _truncate(draw: st.DrawFn, text: str) -> str:
    return text[: _position(draw, text)]


MUTATIONS = [_delete_span, _duplicate_line, _swap_tokens, _replace_token, _insert_character, _truncate]


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.name)
def test_models_load_unmutated(path: Path) -> None:
    circuitdsl.loads(path.read_text(encoding="utf-8"), file=str(path))  # imports are next to it


@settings(FUZZ, max_examples=500)
@given(mutated_model())
def test_mutated_models(text: str) -> None:
    check_loads(text)


@pytest.mark.skipif(not DOC_EXAMPLES, reason="no docs/*.md examples in this checkout")
@settings(FUZZ, max_examples=500)
@given(st.data())
def test_mutated_doc_examples(data: st.DataObject) -> None:
    check_loads(data.draw(mutated_model(DOC_EXAMPLES)))


# ---- (b') what elaborates also compiles and steps ------------------------------------------------------
# CI runs a few dozen; `CIRCUITDSL_FUZZ_STEPS=20000` runs the long campaign (see docs/limits.md).
STEP_EXAMPLES = int(os.environ.get("CIRCUITDSL_FUZZ_STEPS", "40"))
# small enough that one compile and step of whatever elaborates stays cheap
STEP_LIMITS = circuitdsl.Limits(statements=20_000, units=20_000, synapses=200_000, parameters=200_000,
                                grid_points=4_096, delay=1_000)


def check_compiles_and_steps(text: str) -> None:
    """`loads`, torch `compile` and one step raise nothing but CircuitError."""
    try:
        ir = circuitdsl.loads(text, file=FILE, limits=STEP_LIMITS)
    except circuitdsl.CircuitError as error:
        check_rendering(error, text)
        return
    torch = pytest.importorskip("torch")
    module = circuitdsl.compile(ir, backend="torch")
    inputs = {p.name: torch.zeros(1, *(a.size for a in p.shape)) for p in ir.inputs}
    outputs, _ = module(inputs)
    assert set(outputs) == {o.name for o in ir.outputs}


# the grammar (structured programs and neurons, token soup in a body) and mutations of every model and docs example
EVERYTHING = st.one_of(mutated_model(), *([mutated_model(DOC_EXAMPLES)] if DOC_EXAMPLES else []), PROGRAM,
                       NEURON_PROGRAM, wrapped(vocabulary_text()))


@settings(FUZZ, max_examples=STEP_EXAMPLES)
@given(EVERYTHING)
def test_mutations_compile_and_step(text: str) -> None:
    check_compiles_and_steps(text)


# ---- (c) where errors point --------------------------------------------------------------------------
@pytest.mark.parametrize("text, code, line", [
    ("circuit A {\n  let x = \n}\n", "E001", 2),
    ("circuit A {\n  population P : Graded(\n", "E002", 2),
    ("circuit A {\n  let x = 1 ; \n}\n", "E003", 2),
    ("circuit A {\n", "E002", 1),
    ("circuit A {\n}\ncircuit A", "E004", 3),
    ("circuit A {\n  let x = y\n}\n", "E201", 2),
    ("circuit A {\n  let x = 2 ** 10 ** 10\n}\n", "E801", 2),
    ("circuit A {\n  population P[n = 10 ** 9] : Graded\n}\n", "E702", 2),
    ("circuit A {\n  for i in 0 .. 10 ** 9 {\n  }\n}\n", "E701", 2),
    ("# a comment with a form feed \x0c and a line separator \u2028\ncircuit A {\n  let x = y\n}\n", "E201", 3),
])
def test_error_locations(text: str, code: str, line: int) -> None:
    with pytest.raises(circuitdsl.CircuitError) as info:
        circuitdsl.loads(text, file=FILE)
    assert info.value.code == code, str(info.value)
    assert str(info.value).startswith(f"{FILE}:{line}:"), str(info.value)
    check_rendering(info.value, text)


@pytest.mark.parametrize("path", ["/dev/zero", "/dev/stdin", "a\x00b.circuit", "models", "missing.circuit"])
def test_imports_that_cannot_be_read(monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    real = Path.read_text

    def read_text(self: Path, *args: object, **kwargs: object) -> str:  # reading /dev/zero would never end
        assert str(self) not in ("/dev/zero", "/dev/stdin"), f"tried to read {self}"
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", read_text)
    text = f'import "{path}"\ncircuit A {{\n}}\n'
    with pytest.raises(circuitdsl.CircuitError) as info:
        circuitdsl.loads(text, file=FILE)
    assert info.value.code in ("E101", "E104"), str(info.value)
    assert str(info.value).startswith(f"{FILE}:1:8: "), str(info.value)
    check_rendering(info.value, text)


def test_no_circuit_names_the_file() -> None:
    with pytest.raises(circuitdsl.CircuitError) as info:
        circuitdsl.loads("let x = 1\n", file=FILE)
    check_rendering(info.value, "let x = 1\n")
