"""`circuitdsl run --record` and the figures of `--plot`: traces by name (equal to a JAX rollout's records), a clear
error for an unknown name, rasters for spikes, labelled and grouped heat maps, time in ms."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.collections import EventCollection

import circuitdsl
from circuitdsl.cli import main
from circuitdsl.plot import traces_figure
from circuitdsl.simulate import simulate

CELLS = "models/izhikevich_cells.circuit"


def test_run_records_states_by_name_equal_to_a_jax_rollout(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    jax = pytest.importorskip("jax")
    saved = tmp_path / "traces.npz"
    status = main(["run", CELLS, "--steps", "300", "--input", "drive=10", "--record", "RS.v,FS.u",
                   "--record", "CH.s", "--dtype", "float64", "--save", str(saved)])
    out = capsys.readouterr().out
    assert status == 0 and "RS.v (record, 1 units)" in out
    traces = np.load(saved)
    with jax.enable_x64(True):
        circuit = circuitdsl.compile(CELLS, backend="jax", dtype="float64")
        records, _ = circuit.rollout(circuit.init(), jax.numpy.full((1, 300), 10.0), record=["RS.v", "FS.u", "CH.s"])
    for name in ("RS.v", "FS.u", "CH.s"):
        assert traces[name].dtype == np.float64
        np.testing.assert_allclose(traces[name][:, 0], np.asarray(records[name])[0], rtol=0, atol=1e-9)
    assert traces["RS.v"].min() < -70 and traces["FS.u"].max() > -13  # after-spike undershoot; u rises with spikes
    np.testing.assert_array_equal(traces["CH.s"][:, 0], traces["spikes"][:, 2])


def test_an_unknown_record_name_is_one_line_with_a_did_you_mean(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["run", CELLS, "--steps", "5", "--record", "RS.vv"])
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1 and "nothing to record named 'RS.vv'" in err and "did you mean 'RS.v'?" in err


def _panels(figure: object) -> dict[str, object]:
    return {axis.get_title(loc="left").split(" (")[0]: axis for axis in figure.axes  # type: ignore[attr-defined]
            if axis.get_title(loc="left")}


def test_spiking_populations_are_rasters_and_time_is_in_ms() -> None:
    ir = circuitdsl.load("models/delays_snn.circuit")
    spikes = (np.random.default_rng(0).random((100, 8)) < 0.5).astype(np.float32)
    traces = simulate(ir, 100, {"spikes": spikes}, record=["h1.mem"])
    assert traces.events == {"spikes", "h1", "h2"} and traces.dt == 1.0
    figure = traces_figure(traces)
    panels = _panels(figure)
    for name in ("spikes", "h1", "h2"):
        events = [c for c in panels[name].collections if isinstance(c, EventCollection)]
        assert len(events) == traces.signals[name].shape[1]
        assert sum(len(e.get_positions()) for e in events) == traces.signals[name].sum()
    assert panels["h1.mem"].images and panels["h1.mem"].images[0].get_cmap().name == "RdBu_r"  # signed
    legend = panels["out"].get_legend()
    figure.canvas.draw()
    inside = panels["out"].get_window_extent()
    box = legend.get_window_extent()
    assert inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0 and box.y1 <= inside.y1
    assert figure.axes[len(panels) - 1].get_xlabel() == "time (ms)"
    plt.close(figure)


def test_the_worm_is_a_heat_map_of_named_neurons_grouped_by_layer() -> None:
    pytest.importorskip("cect")
    ir = circuitdsl.load("models/celegans_whole.circuit")
    traces = simulate(ir, 30, {"sensory_drive": 1.0})
    layers = traces.groups["N"]
    assert len(layers) == 302 and {"sensory", "inter", "motor"} <= set(layers)
    figure = traces_figure(traces)
    axis = _panels(figure)["N"]
    names = [label.get_text() for label in axis.get_yticklabels()]
    order = [layers[traces.units["N"].index(name)] for name in names]
    assert len(names) == 302 and {"AVAL", "AVBR", "PLML"} <= set(names)
    assert order == sorted(order, key=["sensory", "inter", "motor", "other"].index)  # grouped, top to bottom
    marks = {text.get_text() for text in axis.texts}
    assert {"sensory", "inter", "motor"} <= marks
    assert axis.images[0].get_cmap().name == "RdBu_r"
    low, high = axis.images[0].get_clim()
    assert low == -high  # centred on 0
    plt.close(figure)
