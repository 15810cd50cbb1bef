"""NeuroML2/LEMS export: the touch circuit (graded worm neurons, chemical synapses, gap junctions) and a network of
Izhikevich cells validate under pyNeuroML's validator, run under jNeuroML, and are compared with circuitdsl's
float64 simulation.  jNeuroML writes its traces as 32-bit floats, so the bound is one float32 step of the largest
|v|: 4.7e-7 mV for the touch circuit (v up to 5.6 mV; measured 4.6e-7), 7.5e-6 mV for the Izhikevich cells (v
within 128 mV; measured 7.2e-6).  Synapses and gap junctions read their peer as it was before the step whichever
cell jLEMS updates first (two cells, both orders, below)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("neuroml")
pytest.importorskip("pyneuroml")
torch = pytest.importorskip("torch")

import circuitdsl
from circuitdsl.interop import api, neuroml_run

DATA = Path(__file__).parent / "data" / "interop"
needs_java = pytest.mark.skipif(neuroml_run.java() is None, reason="jNeuroML needs a Java runtime")


@needs_java
def test_the_touch_circuit_validates_runs_and_agrees_with_ours_within_a_float32_step(tmp_path: Path) -> None:
    report = api.export("models/celegans_touch.circuit", tmp_path / "touch.net.nml")
    for name in ("touch.net.nml", "LEMS_touch.xml", "touch.types.xml", "touch.net.nml.fidelity.txt"):
        assert (tmp_path / name).is_file()
    assert "valid under pyNeuroML's validator (jNeuroML)" in report.notes  # the export raises otherwise
    entries = {e.name: e for e in report.entries}
    assert entries["N <-> N"].target == "electricalProjection" and entries["N -> N"].status == "exact"
    assert entries["N"].status == "exact", report.render()
    assert entries["N"].max_error is not None and entries["N"].max_error < 5e-7
    theirs = neuroml_run.simulate(tmp_path / "LEMS_touch.xml")
    assert len(theirs["t"]) == 101 and max(abs(theirs["N_2"])) > 1e-3  # AVAL (index 2) moves: the wiring carries


@needs_java
def test_a_peer_is_read_as_it_was_before_the_step_whichever_cell_jlems_updates_first(tmp_path: Path) -> None:
    # jLEMS updates N[0] .. N[3] in turn: 1 -> 0 comes from a cell updated later, 2 -> 3 from one updated earlier,
    # and each end of the junction 0 <-> 3 reads the other (before the fix a reading from a later cell came a step
    # late: 0.036 mV here, 1.13 mV on the touch circuit)
    (tmp_path / "order.circuit").write_text(
        "import celegans\ncircuit Order {\n  input x[n = 2]\n  population N[n = 4] : celegans.Rate(tau = 50 ms)\n"
        "  x -> N : pairs(pre = [0, 1], post = [1, 2]), weight = fixed(1)\n"
        "  N -> N : pairs(pre = [1, 2], post = [0, 3]), weight = fixed(0.5)\n"
        "  N <-> N : pairs(pre = [0], post = [3]), weight = fixed(0.3)\n}\n")
    report = api.export(tmp_path / "order.circuit", tmp_path / "order.net.nml", steps=30)
    cell = next(e for e in report.entries if e.name == "N")
    assert cell.status == "exact" and cell.max_error < 1e-7, report.render()  # v < 1 mV: a float32 step is 1.2e-7
    theirs = neuroml_run.simulate(tmp_path / "LEMS_order.xml")
    assert theirs["N_0"][2] > 0 and theirs["N_3"][2] > 0  # both reached in the second step, as in circuitdsl


@needs_java
def test_izhikevich_and_lif_cells_spike_as_ours_do(tmp_path: Path) -> None:
    report = api.export(DATA / "izhikevich_net.circuit", tmp_path / "izh.net.nml", inputs={"current": 10.0, "x": 1.0},
                        steps=400)
    cells = [e for e in report.entries if e.kind == "population"]
    assert len(cells) == 5 and all(e.status == "exact" and e.max_error < 1e-4 for e in cells), report.render()
    theirs = neuroml_run.simulate(tmp_path / "LEMS_izh.xml")
    assert np.sum(theirs["lif_1"] == 0) > 50  # reset to 0 mV after each of its spikes, every fifth step
    for name in ("rs_0", "ib_0", "ch_0", "fs_0"):
        resets = np.sum(np.diff(theirs[name]) < -0.02)  # a spike resets v by tens of mV (in volts here)
        assert resets >= 2, name


def test_neuroml_export_refuses_what_it_cannot_hold_unless_allowed(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(circuitdsl.CircuitError) as info:
        api.export("models/ncap_swimmer.circuit", tmp_path / "swim.net.nml")
    assert info.value.code == "E953" and "NeuroML2 has no counterpart of Graded" in str(info.value)
    assert not (tmp_path / "swim.net.nml").exists()
    monkeypatch.setattr(neuroml_run, "java", lambda: None)  # the schema check is enough here
    (tmp_path / "mixed.circuit").write_text("import celegans\ncircuit Mixed {\n  input x\n  population a : celegans.Rate\n"
                                            "  population g : Graded\n  x -> a : weight = fixed(1)\n"
                                            "  a -> g : weight = 0.5\n}\n")
    with pytest.raises(circuitdsl.CircuitError):
        api.export(tmp_path / "mixed.circuit", tmp_path / "mixed.net.nml")
    report = api.export(tmp_path / "mixed.circuit", tmp_path / "mixed.net.nml", allow_lossy=True)
    assert (tmp_path / "mixed.net.nml").exists() and {e.name for e in report.unsupported} == {"g", "a -> g"}


def test_without_java_the_schema_checks_it_and_the_report_says_why_nothing_ran(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(neuroml_run, "java", lambda: None)
    report = api.export("models/celegans_touch.circuit", tmp_path / "touch.net.nml")
    assert report.comparison.startswith("not run: jNeuroML needs a Java runtime")
    assert "default-jre-headless" in report.comparison
    with pytest.raises(circuitdsl.CircuitError) as info:
        neuroml_run.simulate(tmp_path / "LEMS_touch.xml")
    assert info.value.code == "E954"


@pytest.mark.parametrize("java", [True, False])
def test_a_truncated_document_is_an_error_naming_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          java: bool) -> None:
    if java and neuroml_run.java() is None:
        pytest.skip("jNeuroML needs a Java runtime")
    if not java:
        monkeypatch.setattr(neuroml_run, "java", lambda: None)
    text = "<neuroml xmlns=\"http://www.neuroml.org/schema/neuroml2\" id=\"x\">\n  <network id=\"n\">\n    <popul"
    (tmp_path / "cut.nml").write_text(text)
    with pytest.raises(circuitdsl.CircuitError) as info:
        neuroml_run.validate(tmp_path / "cut.nml")
    assert info.value.code == "E950" and "cut.nml" in str(info.value)
