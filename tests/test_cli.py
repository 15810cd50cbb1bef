"""The `circuitdsl` command: `check` and `ir`, their exit codes, and errors that are never tracebacks.

Most tests call `circuitdsl.cli.main([...])` in-process (output captured with capsys); a few run the
installed console script (or `python -m circuitdsl.cli`) as a real process.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import circuitdsl
from circuitdsl import CircuitIR
from circuitdsl.cli import main

ROOT = Path(__file__).resolve().parent.parent
MODELS = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "models").glob("*.circuit"))
SWIMMER = "models/ncap_swimmer.circuit"
SEGMENTS = "models/ncap_segments.circuit"
SWIMMER_SUMMARY = "Swimmer: 6 populations, 22 units, 8 projections, 30 synapses, 4 trainable scalars"
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
    ("joints=9", 4, 38, {"clamp"}),
    ("shared=false", 30, 22, {"clamp"}),
    ("signs=none", 4, 22, {"none"}),
    ("signs=softplus", 4, 22, {"softplus"}),
    ("period=30", 4, 22, {"clamp"}),
    ("joints=2 + 1", 4, 14, {"clamp"}),
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
    code, out, _ = run(capsys, "ir", SWIMMER, "--limit", "units=22")
    assert code == 0 and CircuitIR.from_json(out).units == 22


@pytest.mark.parametrize("limit", ["units=abc", "legs=3", "units", "units=-1"])
def test_a_bad_limit_is_a_usage_error(capsys: Capture, limit: str) -> None:
    code, out, err = run(capsys, "ir", SWIMMER, "--limit", limit)
    assert code == 2 and out == ""
    assert "bad limit" in err
    assert_no_traceback(err)


@pytest.mark.parametrize("arg", ["joints", "=5", " =5"])
def test_a_malformed_arg_exits_with_a_message(capsys: Capture, arg: str) -> None:
    with pytest.raises(SystemExit) as info:
        main(["ir", SWIMMER, "--arg", arg])
    assert isinstance(info.value.code, str) and "bad --arg" in info.value.code  # Python prints it, exit status 1


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
    for args in (["--arg", "joints=abc"], ["--arg", "joints"], ["--limit", "units=10"]):
        done = _process("ir", SWIMMER, *args)
        assert done.returncode == 1, (args, done.stderr)
        assert done.stdout == ""
        assert done.stderr.strip() and "Traceback" not in done.stderr, done.stderr


def test_python_m_circuitdsl_cli() -> None:
    done = subprocess.run([sys.executable, "-m", "circuitdsl.cli", "check", SWIMMER], capture_output=True, text=True,
                          check=False, cwd=ROOT, timeout=120)
    assert done.returncode == 0 and "4 trainable scalars" in done.stdout
