"""`circuitdsl run`: simulate a circuit, print its signals, write traces as arrays and as a figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from circuitdsl.cli import main

MODEL = "models/ncap_swimmer.circuit"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["run", *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_run_writes_a_figure_of_the_traces(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    figure = tmp_path / "out.png"
    status, out, _ = run(capsys, MODEL, "--steps", "200", "--plot", str(figure))
    assert status == 0
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and figure.stat().st_size > 20_000
    assert "osc_d (population, 1 units): min +0, max +1" in out


def test_traces_show_the_oscillator_and_the_circuit_driven_by_an_input_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    angles = np.linspace(-1, 1, 120 * 5, dtype=np.float32).reshape(120, 5)
    np.save(tmp_path / "q.npy", angles)
    status, _, err = run(capsys, MODEL, "--steps", "120", "--input", f"q={tmp_path / 'q.npy'}",
                         "--save", str(tmp_path / "t.npz"))
    assert status == 0, err
    traces = np.load(tmp_path / "t.npz")
    assert traces["osc_d"][:, 0].tolist() == ([1.0] * 30 + [0.0] * 30) * 2  # period 60, dorsal first
    assert np.array_equal(traces["q"], angles)
    # B neurons of joints 1.. read the stretch of the joint ahead; the head's B neurons follow the oscillator
    assert np.allclose(traces["Bd"][:, 1:], np.clip(angles[:, :-1], 0, 1))
    assert np.allclose(traces["Bv"][:, 0], 1 - traces["osc_d"][:, 0])  # the ventral phase: the complement
    assert np.allclose(traces["torque"], traces["Md"] - traces["Mv"])


def test_closed_loop_through_the_swimmer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, MODEL, "--steps", "150", "--env", "swim", "--save", str(tmp_path / "t.npz"))
    assert status == 0
    traces = np.load(tmp_path / "t.npz")
    assert np.abs(traces["q"]).max() > 0.5  # the body bends: inputs come from the physics
    assert np.allclose(traces["Bd"][:, 1:], np.clip(traces["q"][:, :-1], 0, 1))
    swim_return = float(out.split("swim return over 150 steps: ")[1].split()[0])
    assert swim_return > 50


@pytest.mark.parametrize(("argv", "message"), [
    (["--input", "x=1"], "circuit 'Swimmer' has no input 'x'; its inputs are ['q']"),
    (["--input", "q=abc"], "input value 'abc' is neither a number nor a .npy file"),
    (["--input", "q=missing.npy"], "input file 'missing.npy' does not exist"),
    (["--steps", "0"], "--steps must be at least 1"),
])
def test_bad_run_arguments_give_one_clear_line(argv: list[str], message: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, MODEL, *argv)
    assert status == 2
    assert err.strip() == f"circuitdsl: {message}"


def test_an_input_array_of_the_wrong_shape_names_the_expected_one(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    np.save(tmp_path / "q.npy", np.zeros((10, 4), dtype=np.float32))
    status, _, err = run(capsys, MODEL, "--steps", "20", "--input", f"q={tmp_path / 'q.npy'}")
    assert status == 2
    assert "input 'q' has shape [10, 4]; expected a number, [joint=5] or [time >= 20, joint=5]" in err


def test_swim_loop_needs_the_swimmer_ports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "m.circuit"
    model.write_text("circuit C() {\n  input x\n  output y\n  population h : Relu\n  x -> h : weight = 1\n"
                     "  y = h\n}\n")
    status, _, err = run(capsys, str(model), "--env", "swim")
    assert status == 2
    assert "--env swim needs an input q[joint] and an output torque[joint]" in err


def test_a_mistake_in_the_circuit_is_a_circuit_error_not_a_traceback(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "bad.circuit"
    model.write_text("circuit C() {\n  population h : Relux\n}\n")
    status, _, err = run(capsys, str(model))
    assert status == 1
    assert "did you mean 'Relu'" in err and "Traceback" not in err
