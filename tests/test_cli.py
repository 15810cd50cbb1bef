"""The `circuitdsl` command: check and ir, exit codes, and errors without tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from circuitdsl import CircuitIR
from circuitdsl.cli import main

ROOT = Path(__file__).resolve().parent.parent
SWIMMER = str(ROOT / "models" / "ncap_swimmer.circuit")
SEGMENTS = str(ROOT / "models" / "ncap_segments.circuit")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_check_prints_one_summary_per_circuit(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "check", SWIMMER, SEGMENTS)
    assert code == 0 and err == ""
    lines = out.strip().splitlines()
    assert len(lines) == 3
    assert lines[0].endswith("Swimmer: 6 populations, 22 units, 8 projections, 30 synapses, 4 trainable scalars")


def test_check_reports_errors_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.circuit"
    bad.write_text("circuit A {\n  population Bd[joint = 5] : Graded\n  Bdd -> Bd : one_to_one\n}\n")
    code, out, err = run(capsys, "check", str(bad), SWIMMER)
    assert code == 1
    assert "bad.circuit" not in out and "Swimmer" in out
    assert f"{bad}:3:3: error[E201]: unknown name 'Bdd'" in err
    assert "^^^" in err and "did you mean 'Bd'?" in err and "Traceback" not in err


@pytest.mark.parametrize(("args", "scalars", "enforce"), [
    ([], 4, {"clamp"}),
    (["--arg", "joints=9"], 4, {"clamp"}),
    (["--arg", "shared=false"], 30, {"clamp"}),
    (["--arg", "signs=none"], 4, {"none"}),
])
def test_ir_prints_json(capsys: pytest.CaptureFixture[str], args: list[str], scalars: int, enforce: set[str]) -> None:
    code, out, _ = run(capsys, "ir", SWIMMER, *args)
    assert code == 0
    ir = CircuitIR.from_json(out)
    assert ir.trainable_scalars == scalars
    assert {p.enforce for p in ir.parameters} == enforce


def test_ir_picks_a_circuit(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "ir", SEGMENTS, "--circuit", "Segment", "--arg", "head=true")
    assert code == 0 and CircuitIR.from_json(out).name == "Segment"


@pytest.mark.parametrize(("args", "code_in_message"), [
    (["--arg", "legs=3"], "E203"),
    (["--arg", "joints=1.5"], "E301"),
    (["--arg", "joints=abc"], "E201"),
    (["--arg", "signs=sideways"], "E201"),
    (["--circuit", "Swimer"], "E207"),
    (["--limit", "units=10"], "E702"),
])
def test_bad_arguments_are_circuit_errors(capsys: pytest.CaptureFixture[str], args: list[str],
                                          code_in_message: str) -> None:
    code, out, err = run(capsys, "ir", SWIMMER, *args)
    assert code == 1 and out == ""
    assert f"error[{code_in_message}]" in err and "Traceback" not in err


def test_console_script_runs_as_a_process() -> None:
    done = subprocess.run([sys.executable, "-m", "circuitdsl.cli", "check", SWIMMER], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0 and "4 trainable scalars" in done.stdout
