"""The `circuitdsl` command: `check` and `ir`, their exit codes, and errors that are never tracebacks.

Most tests call `circuitdsl.cli.main([...])` in-process (output captured with capsys); a few run the
installed console script (or `python -m circuitdsl.cli`) as a real process.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import circuitdsl
from circuitdsl import CircuitIR
from circuitdsl.cli import main
from tests.model_files import TYPED as MODELS

ROOT = Path(__file__).resolve().parent.parent
SWIMMER = "models/ncap_swimmer.circuit"
SEGMENTS = "models/ncap_segments.circuit"
SWIMMER_SUMMARY = "Swimmer: 5 populations, 21 units, 8 projections, 30 synapses, 4 trainable scalars"
BAD = "circuit A {\n  population Bd[joint = 5] : Graded\n  Bdd -> Bd : one_to_one\n}\n"

Capture = pytest.CaptureFixture[str]


@pytest.fixture(autouse=True)
def _in_the_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # paths as a user types them: models/ncap_swimmer.circuit


def run(capsys: Capture, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def caret_column(rendered: str, line: int) -> int:
    """The 1-based column of the first caret under the quoted source line `line` of a rendered error."""
    lines = rendered.splitlines()
    quoted = next(i for i, text in enumerate(lines) if re.match(rf"^ {line} \| ", text))
    marker = lines[quoted + 1]
    bar = marker.index("| ")
    return marker.index("^") - bar - 1


def assert_no_traceback(text: str) -> None:
    assert "Traceback" not in text and "Error:" not in text.replace("error[", ""), text


# ---- check -------------------------------------------------------------------------------------------
def test_check_models_prints_one_summary_line_per_circuit(capsys: Capture) -> None:
    code, out, err = run(capsys, "check", *MODELS)
    assert code == 0, err
    assert err == ""
    lines = out.splitlines()
    expected = [(file, result.ir.name) for file in MODELS for result in circuitdsl.check(file)]
    assert len(lines) == len(expected) >= 3
    for line, (file, name) in zip(lines, expected, strict=True):
        assert line.startswith(f"{file}: {name}: "), line
        assert re.fullmatch(r".*: \d+ populations, \d+ units, \d+ projections, \d+ synapses, \d+ trainable scalars",
                            line), line
    assert f"{SWIMMER}: {SWIMMER_SUMMARY}" in lines
    swimmer = [line for line in lines if line.startswith(SWIMMER)]
    assert len(swimmer) == 1 and "4 trainable scalars" in swimmer[0]
    assert any(line.startswith(f"{SEGMENTS}: Worm: ") and line.endswith("4 trainable scalars") for line in lines)


def test_check_a_bad_file_fails_on_stderr_only(tmp_path: Path, capsys: Capture) -> None:
    bad = tmp_path / "bad.circuit"
    bad.write_text(BAD)
    code, out, err = run(capsys, "check", str(bad), SWIMMER)
    assert code == 1
    assert str(bad) not in out and "bad.circuit" not in out  # nothing on stdout for the bad file
    assert out.splitlines() == [f"{SWIMMER}: {SWIMMER_SUMMARY}"]  # the good file is still checked
    assert err.startswith(f"{bad}:3:3: error[E201]: unknown name 'Bdd'"), err
    assert " 3 |   Bdd -> Bd : one_to_one" in err
    assert caret_column(err, 3) == 3 and "^^^" in err
    assert "did you mean 'Bd'?" in err
    assert_no_traceback(err)


def test_check_only_a_bad_file_prints_nothing_on_stdout(tmp_path: Path, capsys: Capture) -> None:
    bad = tmp_path / "syntax.circuit"
    bad.write_text("circuit A {\n  population P : Graded\n  P -> -> P\n}\n")
    code, out, err = run(capsys, "check", str(bad))
    assert code == 1 and out == ""
    match = re.match(rf"^{re.escape(str(bad))}:(\d+):(\d+): error\[E00\d\]: ", err)
    assert match is not None, err
    assert match[1] == "3"
    assert caret_column(err, 3) == int(match[2])
    assert_no_traceback(err)


@pytest.mark.parametrize(("content", "code"), [
    (None, "E101"),  # no such file
    ("let x = 1\n", "E207"),  # no circuit in it
    ("circuit A {\n  let x = 2 ** 10 ** 10\n}\n", "E801"),
    ("circuit A {\n  population P[n = 10 ** 9] : Graded\n}\n", "E702"),
])
def test_check_failures_are_circuit_errors(tmp_path: Path, capsys: Capture, content: str | None, code: str) -> None:
    path = tmp_path / "f.circuit"
    if content is not None:
        path.write_text(content)
    status, out, err = run(capsys, "check", str(path))
    assert status == 1 and out == ""
    assert f"error[{code}]" in err and str(path) in err, err
    assert_no_traceback(err)


def test_check_with_a_limit(capsys: Capture) -> None:
    code, out, err = run(capsys, "check", SWIMMER, "--limit", "units=10")
    assert code == 1 and out == ""
    assert "error[E702]" in err


# ---- ir ----------------------------------------------------------------------------------------------
def test_ir_prints_json_that_loads(capsys: Capture) -> None:
    code, out, err = run(capsys, "ir", SWIMMER)
    assert code == 0 and err == ""
    ir = CircuitIR.from_json(out)
    assert ir.name == "Swimmer"
    assert ir.trainable_scalars == 4
    assert ir.args == {"joints": 5, "period": 60, "shared": True, "signs": "clamp", "init": "constant(1)"}
    assert ir.summary() == SWIMMER_SUMMARY
    assert {p.enforce for p in ir.parameters} == {"clamp"}


@pytest.mark.parametrize(("arg", "scalars", "units", "enforce"), [
    ("joints=9", 4, 37, {"clamp"}),
    ("shared=false", 30, 21, {"clamp"}),
    ("signs=none", 4, 21, {"none"}),
    ("signs=softplus", 4, 21, {"softplus"}),
    ("period=30", 4, 21, {"clamp"}),
    ("joints=2 + 1", 4, 13, {"clamp"}),
])
def test_ir_with_arguments(capsys: Capture, arg: str, scalars: int, units: int, enforce: set[str]) -> None:
    code, out, err = run(capsys, "ir", SWIMMER, "--arg", arg)
    assert code == 0, err
    ir = CircuitIR.from_json(out)
    assert ir.trainable_scalars == scalars
    assert ir.units == units
    assert {p.enforce for p in ir.parameters} == enforce
    for parameter in ir.parameters:  # every parameter, not just some
        assert parameter.enforce in enforce


def test_ir_signs_none_sets_every_enforce(capsys: Capture) -> None:
    code, out, _ = run(capsys, "ir", SWIMMER, "--arg", "signs=none")
    assert code == 0
    ir = CircuitIR.from_json(out)
    assert ir.trainable_scalars == 4
    assert ir.parameters and all(p.enforce == "none" for p in ir.parameters)
    assert ir.args["signs"] == "none"


def test_ir_several_arguments(capsys: Capture) -> None:
    code, out, _ = run(capsys, "ir", SWIMMER, "--arg", "joints=9", "--arg", "shared=false")
    assert code == 0
    ir = CircuitIR.from_json(out)
    assert ir.args["joints"] == 9 and ir.args["shared"] is False
    assert ir.trainable_scalars == 54  # unshared: one weight per synapse (9 joints: 54 synapses)


def test_ir_picks_a_circuit(capsys: Capture) -> None:
    code, out, err = run(capsys, "ir", SEGMENTS, "--circuit", "Segment")
    assert code == 0, err
    ir = CircuitIR.from_json(out)
    assert ir.name == "Segment"
    assert {p.name for p in ir.populations} == {"Bd", "Bv", "Md", "Mv"}
    code, out, _ = run(capsys, "ir", SEGMENTS, "--circuit", "Segment", "--arg", "head=true")
    assert code == 0 and CircuitIR.from_json(out).args["head"] is True


def test_ir_defaults_to_the_last_circuit(capsys: Capture) -> None:
    code, out, _ = run(capsys, "ir", SEGMENTS)
    assert code == 0
    ir = CircuitIR.from_json(out)
    assert ir.name == "Worm" and ir.trainable_scalars == 4


@pytest.mark.parametrize(("args", "error_code", "where"), [
    (["--arg", "legs=3"], "E203", "<argument legs>:1:1"),
    (["--arg", "joints=1.5"], "E301", "<argument joints>:1:1"),
    (["--arg", "joints=abc"], "E201", "<argument joints>:1:1"),
    (["--arg", "joints=1 + abc"], "E201", "<argument joints>:1:5"),
    (["--arg", "joints=1 +"], "E301", "<argument joints>:1:1"),
    (["--arg", "joints="], "E301", "<argument joints>:1:1"),
    (["--arg", "joints=5\nlet y = 2"], "E301", "<argument joints>:1:1"),  # one expression, nothing after it
    (["--arg", "joints=true"], "E301", "<argument joints>:1:1"),
    (["--arg", "shared=1"], "E301", "<argument shared>:1:1"),
    (["--arg", "signs=sideways"], "E201", "<argument signs>:1:1"),
    (["--arg", "joints=2 ** 100"], "E801", "<argument joints>:1:1"),
    (["--arg", "joints=1 / 0"], "E802", "<argument joints>:1:5"),
    (["--circuit", "Swimer"], "E207", None),
    (["--limit", "units=10"], "E702", "models/ncap_swimmer.circuit:"),
])
def test_bad_arguments_are_circuit_errors(capsys: Capture, args: list[str], error_code: str,
                                          where: str | None) -> None:
    code, out, err = run(capsys, "ir", SWIMMER, *args)
    assert code == 1 and out == ""
    assert f"error[{error_code}]" in err, err
    if where is not None:
        assert err.startswith(where), err
    assert_no_traceback(err)


def test_an_argument_error_points_into_the_argument(capsys: Capture) -> None:
    code, _, err = run(capsys, "ir", SWIMMER, "--arg", "joints=1 + abc")
    assert code == 1
    assert " 1 | 1 + abc" in err
    assert caret_column(err, 1) == 5  # under 'abc', not 12 columns further (the parser's `let value = `)


def test_limit_fails_the_swimmer_with_e702(capsys: Capture) -> None:
    code, out, err = run(capsys, "ir", SWIMMER, "--limit", "units=10")
    assert code == 1 and out == ""
    assert err.splitlines()[0].startswith(f"{SWIMMER}:") and "error[E702]" in err.splitlines()[0]
    code, out, _ = run(capsys, "ir", SWIMMER, "--limit", "units=21")
    assert code == 0 and CircuitIR.from_json(out).units == 21


@pytest.mark.parametrize("limit", ["units=abc", "legs=3", "units", "units=-1"])
def test_a_bad_limit_is_a_usage_error(capsys: Capture, limit: str) -> None:
    code, out, err = run(capsys, "ir", SWIMMER, "--limit", limit)
    assert code == 2 and out == ""
    assert "bad limit" in err
    assert_no_traceback(err)


@pytest.mark.parametrize("arg", ["joints", "=5", " =5"])
def test_a_malformed_arg_is_a_usage_error(capsys: Capture, arg: str) -> None:
    code, out, err = run(capsys, "ir", SWIMMER, "--arg", arg)
    assert code == 2 and out == "" and "bad --arg" in err
    assert_no_traceback(err)


# ---- as a process --------------------------------------------------------------------------------------
def _command() -> list[str]:
    script = Path(sys.executable).parent / "circuitdsl"
    if script.is_file():
        return [str(script)]
    found = shutil.which("circuitdsl")
    return [found] if found else [sys.executable, "-m", "circuitdsl.cli"]


def _process(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*_command(), *args], capture_output=True, text=True, check=False, cwd=ROOT, timeout=120)


def test_console_script_check() -> None:
    done = _process("check", *MODELS)
    assert done.returncode == 0, done.stderr
    assert f"{SWIMMER}: {SWIMMER_SUMMARY}" in done.stdout.splitlines()
    assert done.stderr == ""


def test_console_script_ir_and_errors() -> None:
    done = _process("ir", SWIMMER, "--arg", "shared=false")
    assert done.returncode == 0, done.stderr
    assert CircuitIR.from_json(done.stdout).trainable_scalars == 30
    for args, status in ((["--arg", "joints=abc"], 1), (["--arg", "joints"], 2), (["--limit", "units=10"], 1)):
        done = _process("ir", SWIMMER, *args)
        assert done.returncode == status, (args, done.stderr)
        assert done.stdout == ""
        assert done.stderr.strip() and "Traceback" not in done.stderr, done.stderr


def test_python_m_circuitdsl_cli() -> None:
    done = subprocess.run([sys.executable, "-m", "circuitdsl.cli", "check", SWIMMER], capture_output=True, text=True,
                          check=False, cwd=ROOT, timeout=120)
    assert done.returncode == 0 and "4 trainable scalars" in done.stdout


# ---- polish: version, python -m circuitdsl, check --arg/--circuit, JSON, schema, missing extras ----------
def test_version_and_python_m_circuitdsl() -> None:
    done = subprocess.run([sys.executable, "-m", "circuitdsl", "--version"], capture_output=True, text=True,
                          check=False, cwd=ROOT, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == f"circuitdsl {circuitdsl.__version__}"
    done = subprocess.run([sys.executable, "-m", "circuitdsl", "check", SWIMMER], capture_output=True, text=True,
                          check=False, cwd=ROOT, timeout=120)
    assert done.returncode == 0 and done.stdout == f"{SWIMMER}: {SWIMMER_SUMMARY}\n"


def test_help_documents_the_exit_codes(capsys: Capture) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    assert "exit codes: 0 ok, 1 circuit errors, 2 usage, 3 missing optional dependency" in capsys.readouterr().out


def test_check_with_arguments_and_a_circuit(capsys: Capture) -> None:
    code, out, err = run(capsys, "check", SWIMMER, "--arg", "joints=9", "--arg", "shared=false")
    assert code == 0 and err == ""
    assert out == f"{SWIMMER}: Swimmer: 5 populations, 37 units, 8 projections, 54 synapses, 54 trainable scalars\n"
    code, out, _ = run(capsys, "check", SEGMENTS, "--circuit", "Segment")
    assert code == 0 and out.splitlines() == [f"{SEGMENTS}: {circuitdsl.check(SEGMENTS)[0].ir.summary()}"]
    code, out, err = run(capsys, "check", SEGMENTS, "--circuit", "Segmnt")
    assert code == 1 and out == "" and "error[E207]" in err and "did you mean 'Segment'?" in err
    code, _, err = run(capsys, "check", SWIMMER, "--arg", "joint=9")
    assert code == 1 and "error[E203]" in err and "did you mean 'joints'?" in err


_HEADER = re.compile(r"^(?P<file>\S+?):(?P<line>\d+):(?P<column>\d+): (?:error|warning)\[(?P<code>[EW]\d+)\]",
                     re.MULTILINE)


def test_check_json_has_the_codes_and_positions_of_the_text_output(tmp_path: Path, capsys: Capture) -> None:
    """Every case of the error corpus, checked as a file: JSON and text report the same diagnostics."""
    from tests.test_errors import CASES

    files = []
    for number, (_, source, code, _line, _column) in enumerate(CASES):
        path = tmp_path / f"case{number}.circuit"
        path.write_text(source, encoding="utf-8")
        files.append((str(path), code))
    status, out, text = run(capsys, "check", *(f for f, *_ in files))
    json_status, document, err = run(capsys, "check", "--format", "json", *(f for f, *_ in files))
    assert status == json_status == 1 and err == "" and out == ""
    report = json.loads(document)
    assert report["version"] == 1 and report["exit_code"] == 1
    from_text = [(m["file"], int(m["line"]), int(m["column"]), m["code"]) for m in _HEADER.finditer(text)]
    from_json = [(d["file"], d["line"], d["column"], d["code"]) for f in report["files"] for d in f["diagnostics"]
                 if d["file"] is not None and not d["file"].startswith("<")]
    assert from_json == from_text and len(from_json) >= len(CASES)
    for entry, (file, code) in zip(report["files"], files, strict=True):
        assert entry["file"] == file and entry["circuits"] == [] and entry["missing"] is None
        # `check` elaborates every circuit of a file (the corpus only the last one): the corpus' code is among these
        assert code in [d["code"] for d in entry["diagnostics"]]
        for d in entry["diagnostics"]:
            assert d["severity"] == "error" and d["message"] and isinstance(d["hints"], list)
            assert d["end"] is None or (d["end"]["line"], d["end"]["column"]) > (d["line"], d["column"])


def test_check_json_of_a_valid_file(capsys: Capture) -> None:
    code, out, _ = run(capsys, "check", "--format", "json", SWIMMER)
    report = json.loads(out)
    assert code == 0 and report["files"] == [{"file": SWIMMER, "circuits": [{"name": "Swimmer",
                                                                              "summary": SWIMMER_SUMMARY}],
                                              "diagnostics": [], "missing": None}]


def test_schema_validates_the_ir_of_the_models(capsys: Capture) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    code, out, _ = run(capsys, "schema")
    schema = json.loads(out)
    assert code == 0 and schema["title"] == "CircuitIR"
    jsonschema.Draft202012Validator.check_schema(schema)
    # every kind of IR content: templates, arrays of a connectome, operators and grids, delays, neuron params,
    # operations over named axes
    for file in (SEGMENTS, "models/celegans_touch.circuit", "models/operator_burgers.circuit",
                 "models/delays_snn.circuit", "models/ctm_neurons.circuit", "models/transformer_block.circuit"):
        if "celegans" in file and importlib.util.find_spec("cect") is None:
            continue
        for result in circuitdsl.check(file):
            jsonschema.validate(json.loads(result.ir.to_json()), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"schema_version": 1, "name": 3}, schema)


# Optional modules made unimportable, as in an install without extras (a real one is tested below).
_BLOCKER = '''
import sys
class _Missing:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"torch", "jax", "cect", "graphviz", "matplotlib", "dm_control", "mujoco", "pygls"}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, _Missing())
'''


@pytest.mark.parametrize(("args", "module", "extra"), [
    (["run", SWIMMER, "--steps", "3"], "torch", "torch"),
    (["draw", SWIMMER], "graphviz", "draw"),
    (["lsp"], "pygls", "lsp"),
])
def test_a_missing_extra_is_one_line_and_exit_3(tmp_path: Path, args: list[str], module: str, extra: str) -> None:
    (tmp_path / "sitecustomize.py").write_text(_BLOCKER, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    done = subprocess.run([sys.executable, "-m", "circuitdsl", *args], capture_output=True, text=True, check=False,
                          cwd=ROOT, timeout=120, env=env)
    assert done.returncode == 3 and done.stdout == ""
    assert done.stderr == (f"circuitdsl: this needs the '{extra}' extra ('{module}' is not installed): "
                           f"pip install -e '.[{extra}]' in the repository (or `make`, which installs every extra)\n")


def test_check_in_a_venv_with_only_the_core_installed(tmp_path: Path) -> None:
    """`pip install -e .` alone: every model that needs no extra is checked, the others name theirs, exit 3."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    install = subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "-e", str(ROOT)], capture_output=True,
                             text=True, check=False, timeout=600)
    if install.returncode != 0:
        if re.search(r"(?i)connection|network|resolve|no matching distribution|temporary failure", install.stderr):
            pytest.skip(f"no package index reachable: {install.stderr.strip().splitlines()[-1]}")
        pytest.fail(install.stderr)
    done = subprocess.run([str(venv / "bin" / "circuitdsl"), "check", *MODELS], capture_output=True, text=True,
                          check=False, cwd=ROOT, timeout=300)
    assert done.returncode == 3 and "Traceback" not in done.stderr, done.stderr
    missing = [line for line in done.stderr.splitlines() if "not checked" in line]
    needs_cect = [file for file in MODELS if "import celegans" in (ROOT / file).read_text(encoding="utf-8")]
    assert [line.split(":")[0] for line in missing] == needs_cect and len(missing) == len(done.stderr.splitlines())
    assert all("the 'connectome' extra" in line and "pip install -e '.[connectome]'" in line for line in missing)
    checked = {line.split(":")[0] for line in done.stdout.splitlines()}
    assert checked == set(MODELS) - set(needs_cect)
    lexers = subprocess.run([str(venv / "bin" / "python"), "-c", ("from importlib.metadata import entry_points; "
                             "print([e.value for e in entry_points(group='pygments.lexers')])")],
                            capture_output=True, text=True, check=True, timeout=60)
    assert lexers.stdout.strip() == "['circuitdsl.highlight:CircuitLexer']"  # `pygmentize -l circuit` finds it


def test_the_json_example_of_the_tooling_docs_is_what_check_prints(tmp_path: Path, capsys: Capture,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_docs import blocks

    [typo] = [b for b in blocks(ROOT / "docs" / "tutorial" / "3-errors.md") if b.file == "typo.circuit"]
    [shown] = [b for b in blocks(ROOT / "docs" / "tooling.md") if b.kind == "json"]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "typo.circuit").write_text(typo.text, encoding="utf-8")
    code, out, _ = run(capsys, "check", "--format", "json", "typo.circuit")
    assert code == 1 and out == shown.text
