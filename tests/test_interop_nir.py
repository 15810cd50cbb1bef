"""NIR export and import against the NIR ecosystem's own readers and writers.

Export: a LIF network exported by circuitdsl is read by snnTorch's NIR importer and run by nirtorch; both give
our spikes over 100 steps.  Import: a network exported by snnTorch, and the NIR paper's `lif_norse.nir` and
`braille.nir` (from nirtorch's source distribution), convert into .circuit files whose outputs equal nirtorch's
execution of the same graphs.  Bad files fail with a CircuitError naming the file and the node.
"""

from __future__ import annotations

import contextlib
import io
import shutil
from pathlib import Path

import numpy as np
import pytest

nir = pytest.importorskip("nir")
torch = pytest.importorskip("torch")
snn = pytest.importorskip("snntorch")
snn_import = pytest.importorskip("snntorch.import_nir")
snn_export = pytest.importorskip("snntorch.export_nir")

import circuitdsl
from circuitdsl.interop import api, compare, nir_exec

DATA = Path(__file__).parent / "data" / "interop"
LIF_NET = DATA / "lif_net.circuit"
STEPS = 100


def spikes_in(batch: int, units: int, seed: int = 0) -> np.ndarray:
    """Random input spikes [batch, time, units], dense enough that every layer fires."""
    return (np.random.default_rng(seed).random((batch, STEPS, units)) < 0.5).astype(np.float32)


def run_snntorch(module: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    """A module built by snnTorch's importer over time (its neurons keep their state inside)."""
    outputs = []
    with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
        for t in range(x.shape[1]):
            out, _ = module(torch.as_tensor(x[:, t]))
            outputs.append(out)
    return torch.stack(outputs, 1).numpy()


def ours(path: Path | circuitdsl.CircuitIR, x: np.ndarray) -> np.ndarray:
    module = circuitdsl.compile(path)
    with torch.no_grad():
        trace, _ = module.rollout(torch.as_tensor(x))
    return next(iter(trace.values())).reshape(x.shape[0], x.shape[1], -1).numpy()


def test_exported_lif_network_runs_the_same_in_snntorch_and_nirtorch(tmp_path: Path) -> None:
    report = api.export(LIF_NET, tmp_path / "lif.nir")
    graph = nir.read(tmp_path / "lif.nir")
    assert graph.metadata["dt"] == pytest.approx(1e-4)
    assert {type(n).__name__ for n in graph.nodes.values()} == {"Input", "Linear", "LIF", "Output"}
    assert all(e.status == "exact" for e in report.entries)
    assert [e.max_error for e in report.entries if e.kind == "output"] == [0.0]
    x = spikes_in(3, 6)
    expected = ours(LIF_NET, x)
    assert 0.05 < expected.mean() < 0.95  # the output layer spikes, and not always
    with contextlib.redirect_stdout(io.StringIO()):  # the importer prints its progress
        imported = snn_import.import_from_nir(graph)
    np.testing.assert_array_equal(run_snntorch(imported, x), expected)
    np.testing.assert_array_equal(nir_exec.run(graph, x, graph.metadata["dt"])[0], expected)
    assert (tmp_path / "lif.nir.fidelity.txt").read_text().startswith("fidelity report: circuit -> NIR")


@pytest.mark.filterwarnings("ignore:nirtorch.extract_nir_graph is being deprecated:DeprecationWarning")  # snnTorch's
def test_a_network_exported_by_snntorch_imports_and_agrees(tmp_path: Path) -> None:
    torch.manual_seed(0)
    def leaky(n: int, beta: float, **kwargs: bool) -> torch.nn.Module:  # per-neuron values: snnTorch exports a
        return snn.Leaky(beta=torch.full((n,), beta), threshold=torch.ones(n), reset_mechanism="zero",  # scalar
                         init_hidden=True, **kwargs)  # beta as a 0-d array that NIR's type check rejects

    net = torch.nn.Sequential(torch.nn.Linear(5, 8), leaky(8, 0.85), torch.nn.Linear(8, 3),
                              leaky(3, 0.7, output=True))
    with torch.no_grad():
        for layer in (net[0], net[2]):
            layer.weight.mul_(2.0)
    graph = snn_export.export_to_nir(net, torch.zeros(5))
    ir, report = api.convert(graph, tmp_path / "from_snntorch.circuit")
    assert all(e.status == "exact" for e in report.entries), report.render()
    assert "from_file(\"from_snntorch.npz\"" in (tmp_path / "from_snntorch.circuit").read_text()
    x = spikes_in(2, 5, seed=1)
    for layer in (net[1], net[3]):  # the export ran a sample through them
        layer.reset_mem()
    expected = []
    with torch.no_grad():
        for t in range(STEPS):
            expected.append(net(torch.as_tensor(x[:, t]))[0])
    expected_spikes = torch.stack(expected, 1).numpy()
    assert 0.02 < expected_spikes.mean() < 0.98
    np.testing.assert_array_equal(ours(ir, x), expected_spikes)


@pytest.mark.parametrize("name", ["lif_norse", "braille"])
def test_the_nir_papers_graphs_import_and_equal_nirtorch(tmp_path: Path, name: str) -> None:
    """Exact: the converted circuit and nirtorch (forward Euler at the paper's dt, 1e-4 s) spike alike."""
    shutil.copy(DATA / f"{name}.nir", tmp_path)
    ir, report = api.convert(tmp_path / f"{name}.nir", tmp_path / f"{name}.circuit")
    assert report.entries and all(e.status == "exact" for e in report.entries), report.render()
    measured = [e.max_error for e in report.entries if e.max_error is not None]
    assert measured and max(measured) == 0.0
    graph = nir.read(DATA / f"{name}.nir")
    x = compare.random_inputs(ir, STEPS, batch=2, seed=3)[ir.inputs[0].name] * 3
    theirs = nir_exec.run(graph, x, 1e-4)[0]
    assert theirs.sum() > 0
    np.testing.assert_array_equal(ours(ir, x), theirs)


def test_lif_norse_spikes_as_snntorch_reads_it(tmp_path: Path) -> None:
    """snnTorch's importer scales the threshold instead of the input (w_scale); the spikes are the same."""
    ir, _ = api.convert(DATA / "lif_norse.nir", tmp_path / "lif_norse.circuit")
    x = np.full((1, STEPS, 1), 0.2, dtype=np.float32)
    with contextlib.redirect_stdout(io.StringIO()):
        imported = snn_import.import_from_nir(nir.read(DATA / "lif_norse.nir"))
    expected = run_snntorch(imported, x)
    assert expected.sum() >= 3
    np.testing.assert_array_equal(ours(ir, x), expected)


def test_nir_export_refuses_what_nir_cannot_hold_unless_allowed(tmp_path: Path) -> None:
    with pytest.raises(circuitdsl.CircuitError) as info:
        api.export("models/ncap_swimmer.circuit", tmp_path / "swim.nir")
    assert info.value.code == "E953"
    assert "NIR has no Graded neuron" in str(info.value) and "--allow-lossy" in str(info.value)
    assert not (tmp_path / "swim.nir").exists()
    report = api.export("models/ncap_swimmer.circuit", tmp_path / "swim.nir", allow_lossy=True)
    assert len(report.unsupported) == 14 and (tmp_path / "swim.nir").exists()


def test_subtractive_reset_is_approximate_with_its_error_measured() -> None:
    graph, report = api.export_nir("models/delays_snn.circuit")
    h1 = next(e for e in report.entries if e.name == "h1")
    assert h1.status == "approximate" and "subtracts the threshold" in h1.why and h1.max_error is not None
    delays = [n for n in graph.nodes.values() if isinstance(n, nir.Delay)]
    assert delays and {float(np.unique(d.delay)[0]) for d in delays} <= {k * 1e-3 for k in range(1, 11)}


def _bad(tmp_path: Path, name: str) -> circuitdsl.CircuitError:
    with pytest.raises(circuitdsl.CircuitError) as info:
        api.convert(tmp_path / name, tmp_path / "out.circuit")
    return info.value


def test_a_truncated_or_foreign_file_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "cut.nir").write_bytes((DATA / "braille.nir").read_bytes()[:5000])
    error = _bad(tmp_path, "cut.nir")
    assert error.code == "E950" and "cut.nir" in str(error) and "truncated" in str(error)
    (tmp_path / "text.nir").write_text("not hdf5")
    assert _bad(tmp_path, "text.nir").code == "E950"


def test_an_unknown_node_type_names_the_node(tmp_path: Path) -> None:
    import h5py

    shutil.copy(DATA / "lif_norse.nir", tmp_path / "odd.nir")
    with h5py.File(tmp_path / "odd.nir", "r+") as handle:
        del handle["node/nodes/1/type"]
        handle["node/nodes/1/type"] = b"LIFF"
    error = _bad(tmp_path, "odd.nir")
    assert error.code == "E951" and "node '1'" in str(error) and "did you mean 'LIF'" in str(error)


def _write(tmp_path: Path, name: str, nodes: dict, edges: list) -> None:
    nir.write(tmp_path / name, nir.NIRGraph(nodes=nodes, edges=edges, type_check=False))


def test_a_cycle_without_a_neuron_and_a_shape_mismatch_name_their_nodes(tmp_path: Path) -> None:
    w = np.ones((2, 2), dtype=np.float32)
    _write(tmp_path, "loop.nir", {"in": nir.Input(np.array([2])), "a": nir.Linear(w), "b": nir.Linear(w),
                                  "lif": nir.LIF(*(np.ones(2),) * 4), "out": nir.Output(np.array([2]))},
           [("in", "a"), ("a", "b"), ("b", "a"), ("b", "lif"), ("lif", "out")])
    error = _bad(tmp_path, "loop.nir")
    assert error.code == "E952" and "a -> b -> a" in str(error)
    _write(tmp_path, "shape.nir", {"in": nir.Input(np.array([3])), "a": nir.Linear(w),
                                   "out": nir.Output(np.array([2]))}, [("in", "a"), ("a", "out")])
    error = _bad(tmp_path, "shape.nir")
    assert error.code == "E952" and "'in' gives 3 values but 'a' takes 2" in str(error)


def test_cli_export_and_convert_print_and_write_the_report(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from circuitdsl.cli import main

    assert main(["export", str(LIF_NET), "-o", str(tmp_path / "lif.nir")]) == 0
    assert "6 exact, 0 approximate, 0 unsupported" in capsys.readouterr().out
    assert main(["convert", str(tmp_path / "lif.nir"), "-o", str(tmp_path / "back.circuit")]) == 0
    assert (tmp_path / "back.npz").exists() and (tmp_path / "back.circuit.fidelity.json").exists()
    assert main(["export", "models/ncap_swimmer.circuit", "-o", str(tmp_path / "swim.nir")]) == 1
    assert "error[E953]" in capsys.readouterr().err


def test_load_reads_weights_from_a_npz_beside_the_circuit(tmp_path: Path) -> None:
    np.savez(tmp_path / "w.npz", a=np.arange(6.0).reshape(3, 2), b=np.ones(4))
    body = "circuit C {{\n  input x[n = 2]\n  population h[m = 3] : Identity\n  x -> h : all_to_all, weight = {}\n}}\n"
    (tmp_path / "ok.circuit").write_text(body.format('load("w.npz", "a")'))
    with torch.no_grad():
        outputs, _ = circuitdsl.compile(tmp_path / "ok.circuit")(torch.tensor([[1.0, 10.0]]), record=["h"])
    np.testing.assert_array_equal(outputs["h"].numpy(), [[10.0, 32.0, 54.0]])
    for weight, code, text in [('load("w.npz", "b")', "E302", "needs 6 values [3, 2], but load() gives 4"),
                               ('load("w.npz", "zz")', "E907", "has no array 'zz'"),
                               ('load("none.npz", "a")', "E907", "cannot read array 'a' of 'none.npz'")]:
        (tmp_path / "bad.circuit").write_text(body.format(weight))
        with pytest.raises(circuitdsl.CircuitError) as info:
            circuitdsl.load(tmp_path / "bad.circuit")
        assert info.value.code == code and text in str(info.value) and info.value.span.line == 4


def test_nir_import_refuses_a_node_it_cannot_write_unless_allowed(tmp_path: Path) -> None:
    w = np.eye(2, dtype=np.float32)
    _write(tmp_path, "integrator.nir", {"in": nir.Input(np.array([2])), "w": nir.Linear(w),
                                        "lif": nir.LIF(*(np.full(2, 1e-3),) * 2, np.zeros(2), np.ones(2)),
                                        "acc": nir.I(np.ones(2)), "out": nir.Output(np.array([2]))},
           [("in", "w"), ("w", "lif"), ("lif", "acc"), ("acc", "out")])
    error = _bad(tmp_path, "integrator.nir")
    assert error.code == "E953" and "NIR I has no circuitdsl counterpart" in str(error)
    ir, report = api.convert(tmp_path / "integrator.nir", tmp_path / "out.circuit", allow_lossy=True)
    assert [p.name for p in ir.populations] == ["lif"]
    assert {(e.kind, e.status) for e in report.entries if e.status != "exact"} == {("node", "unsupported"),
                                                                                   ("output", "unsupported")}
