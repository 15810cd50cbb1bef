"""Dendritic units: ports with segments, active dendrites (gating, k-WTA, weight sparsity), threshold segments
and the false-match probability, on both backends."""

from __future__ import annotations

import numpy as np
import pytest

import circuitdsl
from circuitdsl.dendrites import (
    false_match_probability,
    false_match_sampled,
    modified_kaiming_bound,
    nearest_prototype,
    prototypes,
)
from circuitdsl.errors import CircuitError
from circuitdsl.ir.model import CircuitIR
from tests import backend_harness as harness

MODEL = "models/active_dendrites_continual.circuit"

LAYER = """
import dendrites
circuit Layer(mode: dendrite = absolute, k: int = 0) {{
  input x[feature = 4]
  input ctx[task = 3]
  output y[unit = 5]
  population h[unit = 5] : dendrites.ActiveDendrites(segments = 2, mode = mode, k = k)
  x -> h : dense{sparsity}
  ctx -> h.context : dense
  y = h
}}
"""


def _layer(sparsity: str = "", **args: object) -> CircuitIR:
    return circuitdsl.loads(LAYER.format(sparsity=sparsity), **args)


def test_a_dendrite_port_gives_weights_unit_by_segment_by_context() -> None:
    ir = _layer()
    assert ir.parameter("ctx -> h.weight").shape == [5, 2, 3]
    assert ir.parameter("x -> h.weight").shape == [5, 4]
    context = next(p for p in ir.projections if p.port == "context")
    assert [a.size for a in context.target_shape] == [5, 2] and context.synapses == 30
    model = next(iter(ir.neurons.values()))
    assert [(i.name, [a.size for a in i.shape]) for i in model.inputs] == [("in", []), ("context", [2])]
    assert CircuitIR.from_json(ir.to_json()) == ir


@pytest.mark.parametrize("mode", ["absolute", "gate", "bias"])
def test_gating_follows_the_formulas(mode: str) -> None:
    """y = in · sigmoid(d*) with d* the segment of largest |d| (sign kept), in · sigmoid(max d), in + max d."""
    import torch

    module = circuitdsl.compile(_layer(mode=mode), seed=3)
    rng = np.random.default_rng(0)
    x, ctx = rng.standard_normal((6, 4)).astype(np.float32), rng.standard_normal((6, 3)).astype(np.float32)
    out = module({"x": torch.from_numpy(x), "ctx": torch.from_numpy(ctx)})[0]["y"].detach().numpy()
    w = module.params["x -> h/weight"].detach().numpy()
    u = module.params["ctx -> h/weight"].detach().numpy()
    feed = x @ w.T
    d = np.einsum("usc,bc->bus", u, ctx)
    chosen = np.take_along_axis(d, np.abs(d).argmax(-1)[..., None], -1)[..., 0]
    expected = {"absolute": feed / (1 + np.exp(-chosen)), "gate": feed / (1 + np.exp(-d.max(-1))),
                "bias": feed + d.max(-1)}[mode]
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("ir", [pytest.param(_layer(mode=m, k=2), id=m) for m in ("absolute", "gate", "bias")]
                         + [pytest.param(circuitdsl.load(MODEL), id="model")])
def test_backends_agree_on_active_dendrites(ir: CircuitIR) -> None:
    rng = np.random.default_rng(1)
    handles = [harness.build(ir, b, seed=2) for b in harness.BACKENDS]
    inputs = {p.name: rng.uniform(-1, 1, (3, 2, *[a.size for a in p.shape])).astype(np.float32) for p in ir.inputs}
    weights = {o.name: rng.standard_normal((3, 2, *[a.size for a in o.shape])).astype(np.float32)
               for o in ir.outputs}
    (out_t, grad_t), (out_j, grad_j) = (harness.grad(h, inputs, weights) for h in handles)
    for name in out_t:
        np.testing.assert_allclose(out_j[name], out_t[name], atol=1e-5, rtol=1e-5)
    for key in grad_t:
        np.testing.assert_allclose(grad_j[key], grad_t[key], atol=1e-4, rtol=1e-4, err_msg=key)


@pytest.mark.parametrize("backend", harness.BACKENDS)
def test_kwta_keeps_k_winners_and_passes_gradient_to_them_only(backend: str) -> None:
    ir = _layer(k=2)
    handle = harness.build(ir, backend, seed=4)
    rng = np.random.default_rng(2)
    inputs = {"x": rng.standard_normal((4, 1, 4)).astype(np.float32),
              "ctx": rng.standard_normal((4, 1, 3)).astype(np.float32)}
    weights = {"y": np.ones((4, 1, 5), np.float32)}
    out, grads = harness.grad(handle, inputs, weights)
    winners = out["y"][:, 0] != 0
    assert (winners.sum(1) == 2).all()
    losers = ~winners.any(0)  # units that lose on every sample receive no gradient at all
    assert losers.any()
    np.testing.assert_array_equal(grads["x -> h/weight"][losers], 0)
    np.testing.assert_array_equal(grads["ctx -> h/weight"][losers], 0)
    assert np.abs(grads["x -> h/weight"][~losers]).sum() > 0


def test_sparse_weights_start_at_zero_and_stay_there_after_optimiser_steps() -> None:
    import torch

    ir = _layer(sparsity=", sparsity = 0.5")
    mask = ir.parameter("x -> h.weight").mask.data.reshape(5, 4)
    assert (mask.sum(1) == 2).all()  # round(0.5 · 4) zeros in every row
    module = circuitdsl.compile(ir, seed=0)
    optimiser = torch.optim.Adam(module.parameters(), lr=0.1)
    module.keep_masks(optimiser)
    rng = np.random.default_rng(0)
    for _ in range(5):
        x = {"x": torch.from_numpy(rng.standard_normal((8, 4)).astype(np.float32)),
             "ctx": torch.from_numpy(rng.standard_normal((8, 3)).astype(np.float32))}
        optimiser.zero_grad()
        module(x)[0]["y"].pow(2).sum().backward()
        optimiser.step()
    weight = module.params["x -> h/weight"].detach().numpy()
    assert (weight[mask == 0] == 0).all() and (weight[mask == 1] != 0).all()
    jax_circuit = circuitdsl.compile(ir, backend="jax")
    params = jax_circuit.init()
    assert (np.asarray(params["x -> h/weight"])[mask == 0] == 0).all()
    moved = {k: v + 1 for k, v in params.items()}
    kept = np.asarray(jax_circuit.rezero_weights(moved)["x -> h/weight"])
    assert (kept[mask == 0] == 0).all() and (kept[mask == 1] != 0).all()


def test_the_model_uses_the_modified_kaiming_init() -> None:
    ir = circuitdsl.load(MODEL)
    assert ir.parameter("x -> h1.weight").init.args[1] == pytest.approx(modified_kaiming_bound(64, 1, 0.5))
    assert ir.parameter("h1 -> h2.weight").init.args[1] == pytest.approx(modified_kaiming_bound(64, 6 / 64, 0.5))
    assert ir.parameter("context -> h1.weight").init.args[1] == pytest.approx(modified_kaiming_bound(64, 0.1))


def test_false_match_probability_closed_form_and_sampling() -> None:
    assert false_match_probability(200_000, 2_000, 20, 10) == pytest.approx(1.650e-15, rel=1e-3)
    for n, a, s, theta in [(100, 20, 10, 4), (60, 10, 8, 2), (40, 20, 6, 5)]:
        exact = false_match_probability(n, a, s, theta)
        sampled = false_match_sampled(n, a, s, theta, trials=20_000, seed=1)
        assert abs(sampled - exact) < 4 * np.sqrt(exact * (1 - exact) / 20_000) + 1e-4


@pytest.mark.parametrize("backend", harness.BACKENDS)
def test_threshold_segments_match_at_the_closed_form_rate(backend: str) -> None:
    """16 segments of 10 synapses on random cells of 100, threshold 4, driven by random patterns of 20 cells."""
    n, a, s, theta, segments = 100, 20, 10, 4, 16
    rng = np.random.default_rng(5)
    pre = np.concatenate([rng.choice(n, s, replace=False) for _ in range(segments)])
    post = np.repeat(np.arange(segments), s)
    text = f"""
import dendrites
circuit Segments {{
  input cells[cell = {n}]
  output match[segment = {segments}]
  population seg[segment = {segments}] : dendrites.ThresholdSegment(threshold = {theta})
  cells -> seg : pairs(pre = {pre.tolist()}, post = {post.tolist()}), weight = fixed(1)
  match = seg
}}"""
    handle = harness.build(text, backend)
    patterns = np.zeros((2000, 1, n), np.float32)
    for row in patterns:
        row[0, rng.choice(n, a, replace=False)] = 1
    matched = harness.run(handle, {"cells": patterns})["match"]
    assert abs(matched.mean() - false_match_probability(n, a, s, theta)) < 0.01


def test_prototype_contexts() -> None:
    x = np.array([[0, 0], [0, 2], [10, 10], [10, 12]], np.float32)
    protos = prototypes(x, np.array([0, 0, 1, 1]))
    np.testing.assert_array_equal(protos, [[0, 1], [10, 11]])
    np.testing.assert_array_equal(nearest_prototype(np.array([[1, 1], [9, 9]]), protos), [[0, 1], [10, 11]])


@pytest.mark.parametrize(("text", "code"), [
    ("neuron N {\n  input c[segment = 0]\n  out = reduce_sum(c)\n}", "E301"),
    ("neuron N {\n  input c[segment = 2]\n  state h[k = 3] = 0\n  out = c + h\n}", "E302"),
    ("neuron N {\n  param w[a = 2, b = 2] : free = 0\n  out = w\n}", "E302"),
    ("neuron N {\n  out = reduce_max(in)\n}", "E302"),
    ("neuron N {\n  out = kwta(in, 0)\n}", "E301"),
])
def test_mistakes_in_dendritic_neurons(text: str, code: str) -> None:
    with pytest.raises(CircuitError) as error:
        circuitdsl.loads(text + "\ncircuit C {\n  input x\n  population p : N\n  x -> p\n}")
    assert error.value.code == code


def test_mistakes_in_dendritic_circuits() -> None:
    with pytest.raises(CircuitError) as error:
        _layer(mode="gated")
    assert error.value.code == "E201" and "did you mean 'gate'" in str(error.value)
    with pytest.raises(CircuitError) as error:
        _layer(sparsity=", sparsity = 1.5")
    assert error.value.code == "E301"
    with pytest.raises(CircuitError) as error:  # a shared param has no weight per synapse to mask
        circuitdsl.loads("circuit C {\n  input x[i = 4]\n  param w : free = 1\n  population h[j = 2] : Relu\n"
                         "  x -> h : dense, sparsity = 0.5, weight = w\n}")
    assert error.value.code == "E305"



def test_active_dendrites_forget_less_than_an_mlp_on_permuted_digits() -> None:
    pytest.importorskip("sklearn")
    import torch

    from benchmarks.active_dendrites_continual import continual_accuracies

    torch.set_num_threads(1)
    settings = {"tasks": 2, "seed": 0, "epochs": 5, "hidden": 256, "lr": 2e-3}
    dendrites, mlp = continual_accuracies("dendrites", **settings), continual_accuracies("mlp", **settings)
    for history in (dendrites, mlp):
        assert history[0][0] > 0.85 and history[1][1] > 0.85  # both learn each task when it comes
    forgotten = {name: h[0][0] - h[1][0] for name, h in (("dendrites", dendrites), ("mlp", mlp))}  # on task 0
    assert forgotten["dendrites"] < 0.1 and forgotten["mlp"] > 0.3, forgotten  # seeds 0-2: <= 0.08 vs >= 0.34
