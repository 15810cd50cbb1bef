"""Connectome priors: compiled circuits against cect read directly, selections, signs, weights, sharing,
files, errors with their positions, the stats, and both backends on a connectome circuit."""

from __future__ import annotations

import contextlib
import importlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import circuitdsl
from circuitdsl.cli import main
from circuitdsl.connectome.cect_data import DATASETS
from circuitdsl.connectome.worm import worm
from circuitdsl.stats import effective_rank, stats

MODULES = {"White_whole": "White_whole", "Varshney": "VarshneyDataReader", "Cook2019Herm": "Cook2019HermReader",
           "Witvliet8": "WitvlietDataReader8", "WhiteN2U": "DurbinN2UDataReader"}


def cect_dataset(name: str) -> Any:
    with contextlib.redirect_stdout(io.StringIO()):
        return importlib.import_module(f"cect.readers.{MODULES[name]}").get_instance(from_cache=True)


def circuit(dataset: str, neurons: str, **options: str) -> circuitdsl.CircuitIR:
    extra = "".join(f", {key} = {value}" for key, value in options.items())
    text = (f'import celegans\ncircuit C {{\n  net = celegans.connectome("{dataset}", neurons = {neurons}, '
            f"synapses = {{chemical, electrical}}{extra})\n  population N : Leaky from net\n}}\n")
    return circuitdsl.elaborate(None, text=text, file="t.circuit").ir


def edges(ir: circuitdsl.CircuitIR, kind: str) -> dict[tuple[str, str], tuple[float, int]]:
    """(pre, post) -> (scale, sign) of every synapse of one kind, by neuron name."""
    labels = ir.populations[0].shape[0].labels
    assert labels is not None
    p = next(p for p in ir.projections if p.kind == kind)
    assert p.weight.scale is not None and p.weight.sign is not None
    return {(labels[a], labels[b]): (float(w), int(s)) for a, b, w, s in
            zip(p.connectivity.pre.data, p.connectivity.post.data, p.weight.scale.data, p.weight.sign.data,
                strict=True)}


def direct(dataset: str, names: list[str]) -> tuple[int, int, int]:
    """From cect itself: chemical edges, unordered gap-junction pairs and self-junctions among `names`."""
    ds = cect_dataset(dataset)
    index = [ds.nodes.index(n) for n in names]
    chemical = ds.connections["Generic_CS"][np.ix_(index, index)]
    gap = ds.connections["Generic_GJ"][np.ix_(index, index)]
    pairs = {(min(a, b), max(a, b)) for a, b in zip(*np.nonzero(gap), strict=True) if a != b}
    return int(np.count_nonzero(chemical)), len(pairs), int(np.count_nonzero(np.diag(gap)))


# ---- counts and weights against cect -------------------------------------------------------------------------
@pytest.mark.parametrize(("dataset", "neurons", "options"), [
    ("White_whole", "{PLM, ALM, AVM, PVD, AVD, AVA, AVB, PVC, DVA}", {}),
    ("White_whole", "all", {"missing": "drop"}),
    ("Varshney", "motor", {"missing": "drop"}),
    ("Cook2019Herm", "all", {}),
    ("Witvliet8", "inter - {AVA}", {"missing": "drop"}),
    ("WhiteN2U", '{"^AV[A-E][LR]$", RIM}', {}),
])
def test_edge_counts_equal_cect(dataset: str, neurons: str, options: dict[str, str]) -> None:
    ir = circuit(dataset, neurons, sign="c302", **options)
    names = ir.populations[0].shape[0].labels
    assert names is not None
    chemical, pairs, _ = direct(dataset, names)
    assert len(edges(ir, "chemical")) == chemical
    assert len(edges(ir, "electrical")) == pairs
    assert names == sorted(names)  # canonical order: cect's hermaphrodite neuron order, alphabetical


@pytest.mark.parametrize(("dataset", "pre", "post", "kind"), [
    ("White_whole", "VB3", "DD2", "Generic_CS"),
    ("White_whole", "AVAL", "AVAR", "Generic_GJ"),
    ("Cook2019Herm", "ALA", "PVDL", "Generic_CS"),
    ("Cook2019Herm", "AVBL", "VB2", "Generic_GJ"),
    ("Witvliet8", "ASHL", "AVAL", "Generic_CS"),
])
def test_named_edge_weights_equal_cect(dataset: str, pre: str, post: str, kind: str) -> None:
    ds = cect_dataset(dataset)
    expected = ds.get_connection_weight(pre, post, kind)
    assert expected > 0
    ir = circuit(dataset, f"{{{pre}, {post}}}", sign="c302")
    found = edges(ir, "chemical" if kind == "Generic_CS" else "electrical")
    key = (pre, post) if (pre, post) in found else (post, pre)
    assert found[key][0] == expected


def test_whole_worm_model_matches_the_reference_numbers() -> None:
    ir = circuitdsl.load("models/celegans_whole.circuit")
    assert ir.units == 302
    assert len(edges(ir, "chemical")) == 3709 and len(edges(ir, "electrical")) == 1091
    assert direct("Cook2019Herm", ir.populations[0].shape[0].labels or []) == (3709, 1091, 14)
    source = ir.sources[0]
    assert (source.dataset, source.provider, source.sign) == ("Cook2019Herm", "cect 0.3.5", "c302")
    assert "serial sections" in source.weights and source.weight == "count / total_in"


def test_weight_normalised_per_target_sums_to_one() -> None:
    ir = circuit("White_whole", "{AVA, AVB, AVD, PVC}", sign="c302", weight="count / total_in")
    p = next(p for p in ir.projections if p.kind == "chemical")
    sums = np.bincount(p.connectivity.post.data, p.weight.scale.data)
    np.testing.assert_allclose(sums[sums > 0], 1.0)


@pytest.mark.parametrize(("weight", "transform"), [
    ("count", lambda c: c), ("1", lambda c: np.ones_like(c)), ("log(1 + count)", np.log1p),
    ("count ** 0.5 * 2", lambda c: np.sqrt(c) * 2),
])
def test_weight_scalings(weight: str, transform: Any) -> None:
    counts = circuit("White_whole", "{AVA, AVB}", sign="c302")
    scaled = circuit("White_whole", "{AVA, AVB}", sign="c302", weight=weight)
    for key, (count, _) in edges(counts, "chemical").items():
        assert edges(scaled, "chemical")[key][0] == pytest.approx(float(transform(np.float64(count))))


# ---- selections ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("neurons", "expected"), [
    ("{AVA}", ["AVAL", "AVAR"]),
    ("{VB}", [f"VB{i}" for i in range(1, 12)]),
    ("{RMD}", ["RMDDL", "RMDDR", "RMDL", "RMDR", "RMDVL", "RMDVR"]),
    ('{"^DD[0-9]+$"}', [f"DD{i}" for i in range(1, 7)]),
    ("{AVA, PLM} - {AVAR}", ["AVAL", "PLML", "PLMR"]),
    ("motor and {VB, AVA}", [f"VB{i}" for i in range(1, 12)]),
    ("{AVAL} + {DVA}", ["AVAL", "DVA"]),
])
def test_selection(neurons: str, expected: list[str]) -> None:
    labels = circuit("Cook2019Herm", neurons, sign="c302").populations[0].shape[0].labels
    assert labels == sorted(expected)


def test_categories_views_and_muscles() -> None:
    assert circuit("Cook2019Herm", "pharyngeal", sign="c302").units == 20
    assert circuit("Cook2019Herm", "sensory + inter + motor", sign="c302").units == 300  # CANL, CANR: "Other"
    escape = circuit("Cook2019Herm", "Escape", sign="c302").populations[0].shape[0].labels or []
    assert {"AVAL", "PLML", "VB1"} <= set(escape) and not any(n.startswith("MDL") for n in escape)
    with_muscles = circuit("Cook2019Herm", "{VB, MDL08}", sign="c302").populations[0].shape[0].labels
    assert with_muscles is not None and "MDL08" in with_muscles


def test_a_name_absent_from_the_dataset_is_an_error_unless_dropped() -> None:
    with pytest.raises(circuitdsl.CircuitError) as error:
        circuit("White_whole", "{AVA, CAN}", sign="c302")
    assert error.value.code == "E903" and "CANL" in error.value.render() and "missing = drop" in error.value.render()
    assert circuit("White_whole", "{AVA, CAN}", sign="c302", missing="drop").units == 2


# ---- signs ---------------------------------------------------------------------------------------------------
def test_c302_signs_dd_vd_inhibit_and_ava_excites() -> None:
    chemical = edges(circuitdsl.load("models/celegans_whole.circuit"), "chemical")
    from_d = [sign for (pre, _), (_, sign) in chemical.items() if pre[:2] in ("DD", "VD")]
    from_ava = [sign for (pre, _), (_, sign) in chemical.items() if pre in ("AVAL", "AVAR")]
    assert from_d and set(from_d) == {-1}
    assert from_ava and set(from_ava) == {1}
    assert all(sign == 1 for _, sign in edges(circuitdsl.load("models/celegans_whole.circuit"),
                                              "electrical").values())


def test_transmitter_policy_needs_and_uses_its_choices() -> None:
    with pytest.raises(circuitdsl.CircuitError) as error:
        circuit("White_whole", "{AVA, AIB, ASH, DD}", sign="transmitter")
    assert error.value.code == "E904" and "glutamate" in error.value.render()
    ir = circuit("White_whole", "{AVA, AIB, ASH, DD}", sign="transmitter", glutamate="inhibitory")
    signs = {pre: sign for (pre, _), (_, sign) in edges(ir, "chemical").items()}
    assert signs["AVAL"] == 1 and signs["AIBL"] == -1 and signs["ASHL"] == -1
    assert {sign for pre, sign in signs.items() if pre.startswith("DD")} <= {-1}


def test_overrides_and_dale() -> None:
    ir = circuitdsl.load("models/celegans_forward_locomotion.circuit")
    chemical = edges(ir, "chemical")
    assert {sign for (a, b), (_, sign) in chemical.items() if a[:2] == "DB" and b[:2] == "DD"} == {-1}
    assert {sign for (a, b), (_, sign) in chemical.items() if a[:2] == "DB" and b[:2] == "VD"} == {1}
    with pytest.raises(circuitdsl.CircuitError) as error:
        circuit("White_whole", "{VB, VD, DD}", sign="c302", inhibit='{"VB -> VD"}', dale="true")
    assert error.value.code == "E905"
    circuit("White_whole", "{VB, VD, DD}", sign="c302", inhibit='{"VB -> all"}', dale="true")


def test_no_sign_policy_is_an_error() -> None:
    with pytest.raises(circuitdsl.CircuitError) as error:
        circuit("White_whole", "{AVA}")
    assert error.value.code == "E904"


# ---- sharing and parameters -----------------------------------------------------------------------------------
def test_sharing_by_class_pair_and_parameter_counts() -> None:
    per_synapse = circuit("White_whole", "{AVA, AVB, PVC, VB}", sign="c302")
    shared = circuit("White_whole", "{AVA, AVB, PVC, VB}", sign="c302", share="class",
                     strength="0.1 / mean_count")
    chemical = edges(shared, "chemical")
    class_of = worm().class_of
    pairs = list(dict.fromkeys((class_of[a], class_of[b]) for a, b in chemical))  # groups, by first synapse
    parameter = shared.parameter("N.chemical")
    assert parameter.shape == [len(pairs)] and parameter.share == "class" and parameter.init.rule == "data"
    for group, pair in enumerate(pairs):
        counts = [c for (a, b), (c, _) in chemical.items() if (class_of[a], class_of[b]) == pair]
        assert parameter.init.values.data[group] == pytest.approx(0.1 / np.mean(counts))
    assert per_synapse.parameter("N.chemical").shape == [len(chemical)]
    s = stats(shared)
    assert s.free == shared.trainable_scalars < stats(per_synapse).free
    assert s.fixed == len(chemical) + len(edges(shared, "electrical"))


def test_fixed_signs_clamp_and_trainable_signs_are_free() -> None:
    assert circuit("White_whole", "{AVA}", sign="c302").parameter("N.chemical").sign == "excitatory"
    trainable = circuit("White_whole", "{AVA}", sign="c302", signs="trainable", trainable="false")
    assert trainable.parameter("N.chemical").sign == "free" and not trainable.parameter("N.chemical").trainable


# ---- the IR and the backends -----------------------------------------------------------------------------------
def test_ir_round_trips_and_needs_no_cect() -> None:
    ir = circuitdsl.load("models/celegans_touch.circuit")
    text = ir.to_json()
    assert circuitdsl.CircuitIR.from_json(text) == ir
    assert json.loads(text)["sources"][0]["dataset"] == "White_whole"


@pytest.mark.parametrize("backend", ["torch", "jax"])
@pytest.mark.parametrize("share", ["synapse", "class"])
def test_connectome_weights_reach_the_step(backend: str, share: str) -> None:
    """One step from known outputs x: a Leaky unit (dt/tau = 0.1, v = 0) gets 0.1 * W x, with W[post, pre] =
    sign × scale × strength summed over synapses, strength = 1 + its group index (set after compiling)."""
    from tests import backend_harness as harness

    text = ('import celegans\ncircuit C {\n  net = celegans.connectome("White_whole", neurons = {AVA, AVB, AVD, PVC, '
            f'DD, VD}}, sign = c302, weight = count * 0.1, share = {share})\n  population N : Leaky from net\n'
            "  output y[neuron = 27] = N\n}\n")
    ir = circuitdsl.elaborate(None, text=text, file="t.circuit").ir
    p = ir.projections[0]
    strength = 1.0 + np.arange(ir.parameter("N.chemical").size, dtype=np.float32)
    group = np.arange(p.synapses) if p.weight.index is None else p.weight.index.data
    matrix = np.zeros((ir.units, ir.units))
    np.add.at(matrix, (p.connectivity.post.data, p.connectivity.pre.data),
              p.weight.sign.data * p.weight.scale.data * strength[group])
    handle = harness.build(ir, backend)
    harness.set_params(handle, {"N/chemical": strength})
    x = np.random.default_rng(3).uniform(-1, 1, (1, ir.units)).astype(np.float32)
    state = harness.start(handle, 1)
    if backend == "torch":
        import torch

        state["N:out"] = torch.from_numpy(x)
    else:
        import jax.numpy as jnp

        state["N:out"] = jnp.asarray(x)
    outputs, _ = harness.step(handle, state, {})
    np.testing.assert_allclose(outputs["y"], 0.1 * x @ matrix.T, rtol=1e-5, atol=1e-6)


def test_stats_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--stats", "models/celegans_touch.circuit"]) == 0
    out = capsys.readouterr().out
    assert "synapses: 71 chemical, 14 electrical, 4 input" in out and "effective rank" in out


def test_effective_rank() -> None:
    assert effective_rank(np.eye(5)) == pytest.approx(5.0)
    assert effective_rank(np.outer(np.arange(1, 5), np.arange(1, 5))) == pytest.approx(1.0)


# ---- files ---------------------------------------------------------------------------------------------------
def test_edges_from_csv_and_npz(tmp_path: Path) -> None:
    (tmp_path / "edges.csv").write_text("pre,post,count,kind,sign\na,b,3,chemical,1\nb,c,2,chemical,-1\n"
                                        "a,c,1,electrical,1\n")
    np.savez(tmp_path / "edges.npz", pre=np.array([0, 1, 2]), post=np.array([1, 2, 0]), count=np.array([1., 2, 3]),
             names=np.array(["x", "y", "z"]), classes=np.array(["T", "T", "U"]))
    (tmp_path / "net.circuit").write_text(
        'circuit Csv {\n  net = connectome("edges.csv", synapses = {chemical, electrical}, sign = data)\n'
        "  population N : Tanh from net\n}\n"
        'circuit Npz {\n  net = connectome("edges.npz", neurons = {x, "^[yz]$"}, sign = excitatory,'
        " share = class)\n  population N : Tanh from net\n}\n")
    csv_ir, npz_ir = (r.ir for r in circuitdsl.check(tmp_path / "net.circuit"))
    assert csv_ir.populations[0].shape[0].labels == ["a", "b", "c"]
    assert edges(csv_ir, "chemical") == {("a", "b"): (3.0, 1), ("b", "c"): (2.0, -1)}
    assert edges(csv_ir, "electrical") == {("a", "c"): (1.0, 1)}
    assert npz_ir.parameter("N.chemical").shape == [3]  # groups T->T (x->y), T->U (y->z), U->T (z->x)
    assert csv_ir.sources[0].provider == "file"


# ---- errors --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "code", "marker", "note"), [
    ('celegans.connectome("Cook2019Hermm", neurons = {AVA}, sign = c302)', "E901", '"Cook',
     "did you mean 'Cook2019Herm'?"),
    ('celegans.connectome("White_whole", neurons = {AVAQ, AVB}, sign = c302)', "E902", "AVAQ", "did you mean 'AVA'?"),
    ('celegans.connectome("White_whole", neurons = {AVA, "^VQ.*$"}, sign = c302)', "E902", '"^VQ', None),
    ('celegans.connectome("White_whole", neurons = {AVA}, sign = c303)', "E801", "c303", "did you mean 'c302'?"),
    ('celegans.connectome("White_whole", neurons = {AVA}, sign = c302, wieght = count)', "E203", "wieght",
     "did you mean 'weight'?"),
    ('celegans.connectome("White_whole", neurons = {AVA}, sign = c302, weight = count - 5)', "E801", "count -",
     None),
    ('connectome("missing.npz", sign = excitatory)', "E906", '"missing', None),
])
def test_errors_point_at_the_mistake(text: str, code: str, marker: str, note: str | None) -> None:
    source = f"import celegans\ncircuit C {{\n  net = {text}\n  population N : Leaky from net\n}}\n"
    with pytest.raises(circuitdsl.CircuitError) as error:
        circuitdsl.elaborate(None, text=source, file="t.circuit")
    found = error.value
    column = len("  net = ") + text.index(marker) + 1
    assert (found.code, found.span.line, found.span.column) == (code, 3, column), found.render()
    assert note is None or note in found.render()
    assert "Traceback" not in found.render()


def test_every_listed_dataset_loads() -> None:
    assert {"White_whole", "Varshney", "Cook2019Herm", "Cook2019Male", "WhiteN2U", "WhiteJSH",
            *(f"Witvliet{i}" for i in range(1, 9))} <= set(DATASETS)
    for name in ("Cook2019Male", "WhiteJSH", "Witvliet1"):
        assert circuit(name, "{AVA}", sign="c302").units == 2


def test_a_population_from_something_else_is_an_error() -> None:
    with pytest.raises(circuitdsl.CircuitError) as error:
        circuitdsl.elaborate(None, text="circuit C {\n  let net = 3\n  population N : Leaky from net\n}\n",
                             file="t.circuit")
    assert error.value.code == "E206"


CLASS_RATE = """
import celegans

neuron ClassRate(dt: time = 10 ms) {
  param tau : free = 50, shared = SHARING
  state v = 0
  dv/dt = (-v + in) / (tau * 1 ms)
  out = tanh(v)
}

circuit Touch() {
  net = celegans.connectome("White_whole", neurons = {PLM, ALM, AVM, PVD, AVD, AVA, AVB, PVC, DVA},
          synapses = {chemical, electrical}, sign = c302, weight = count * 0.1, share = class)
  population N : ClassRate from net
  input  touch[site = 4] -> N[PLML, PLMR, ALML, ALMR] : one_to_one, weight = fixed(1)
  output reverse = N[AVAL] + N[AVAR]
}
"""


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_a_neuron_param_shared_per_class_gives_each_neuron_its_class_value(backend: str) -> None:
    """One time constant per class (9 classes, 16 neurons): equal to per-neuron values set class by class."""
    from tests import backend_harness as harness

    by_class = circuitdsl.loads(CLASS_RATE.replace("SHARING", "class"))
    per_unit = circuitdsl.loads(CLASS_RATE.replace("SHARING", "false"))
    assert by_class.parameter("N.tau").shape == [9] and by_class.parameter("N.tau").share == "class"
    axis = by_class.population("N").shape[0]
    order = list(dict.fromkeys(axis.classes))  # classes numbered in order of first appearance
    class_tau = np.linspace(20, 80, 9).astype(np.float32)
    unit_tau = class_tau[[order.index(c) for c in axis.classes]]
    a, b = harness.build(by_class, backend), harness.build(per_unit, backend)
    harness.set_params(a, {"N/tau": class_tau})
    harness.set_params(b, {"N/tau": unit_tau})
    touch = np.random.default_rng(0).uniform(0, 1, (2, 40, 4)).astype(np.float32)
    np.testing.assert_allclose(harness.run(a, {"touch": touch})["reverse"],
                               harness.run(b, {"touch": touch})["reverse"], atol=1e-6)


def test_a_param_shared_per_class_needs_units_with_classes() -> None:
    text = CLASS_RATE.replace("SHARING", "class").replace("population N : ClassRate from net",
                                                          "population N[n = 3] : ClassRate")
    with pytest.raises(circuitdsl.CircuitError) as caught:
        circuitdsl.loads(text, file="m.circuit")
    assert caught.value.code == "E505"
    assert "shared per class" in str(caught.value) and "m.circuit:15:" in str(caught.value)
