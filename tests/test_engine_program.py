"""The lowering pass: per-target fusion, CSR for large sparse groups, shared subexpressions once per step, a
bounded number of torch operations per step, and parameter names that never clash with framework attributes."""

from __future__ import annotations

from collections import Counter
from typing import Any

import jax
import numpy as np
import pytest
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

import circuitdsl
from circuitdsl.ir.model import Binary, Ref, Shared
from tests import backend_harness as harness

SWIMMER = "models/ncap_swimmer.circuit"


class _Calls(TorchFunctionMode):
    """Counts the torch functions and tensor methods called (attribute reads such as .shape excluded)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        name = getattr(func, "__name__", str(func))
        if name != "__get__":
            self.calls[name] += 1
        return func(*args, **(kwargs or {}))


class _Aten(TorchDispatchMode):
    """Counts the aten operations run (what torch executes, below Python)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        self.calls[func.overloadpacket.__name__] += 1
        return func(*args, **(kwargs or {}))


def test_ncap_runs_each_target_as_one_to_one_layers_in_as_many_aten_operations_as_by_hand() -> None:
    """Every NCAP port is one or two layers of one-to-one runs (a product with a weight vector each, no matrix
    product), and an inference step runs about the aten operations of the hand-written NCAP (HandNCAP in
    benchmarks/ncap_step.py: 31)."""
    module = circuitdsl.compile(SWIMMER)
    program = module._program()
    assert {key: (g.lowering, len(g.layers)) for key, g in program.groups.items()} == {
        ("Bd", "in"): ("diagonal", 1), ("Bv", "in"): ("diagonal", 1),
        ("Md", "in"): ("diagonal", 2), ("Mv", "in"): ("diagonal", 2)}
    q, state = torch.rand(1, 5), module.initial_state(1)
    with torch.no_grad():
        module({"q": q}, state)  # prepares the parameters, reused by the next call
        ours = _Aten()
        with ours:
            module({"q": q}, state)
        assert not {"mm", "matmul", "index_select", "index_add"} & set(ours.calls)
        # 29 for the step (the hand version's 31 less its 4 parameter clamps, plus a second clock of 5), 4 to see
        # that the parameters are unchanged (one equal each), 2 for the NaN check (a sum, read): the interpreter
        # ran 249
        assert sum(ours.calls.values()) <= 35
        assert ours.calls["equal"] == 4 and ours.calls["clamp"] == 6  # the parameters' sign clamps are reused
        rollout = _Calls()
        with rollout:
            module.rollout(torch.rand(1, 50, 5))
        assert rollout.calls["clamp"] <= 4 + 50 * 8  # parameters clamped once per rollout, not per step


def _equations(jaxpr: Any) -> list[Any]:
    """Every equation of a jaxpr, those of nested ones (jit, scan, custom_jvp) included."""
    found = []
    for equation in jaxpr.eqns:
        found.append(equation)
        for value in equation.params.values():
            inner = getattr(value, "jaxpr", value)
            if hasattr(inner, "eqns"):
                found += _equations(inner)
    return found


def test_ncap_under_jax_scans_element_wise_layers_and_carries_only_its_clock() -> None:
    circuit = circuitdsl.compile(SWIMMER, backend="jax")
    assert {g.lowering for g in circuit._program().groups.values()} == {"ell"}
    params, x = circuit.init(), np.zeros((1, 50, 5), np.float32)
    closed = jax.make_jaxpr(lambda p, x: circuit.rollout(p, {"q": x})[0]["torque"])(params, x)
    (scan,) = [e for e in _equations(closed.jaxpr) if e.primitive.name == "scan"]
    assert scan.params["num_carry"] == 1  # osc_d.t: no output is read a step later
    body = Counter(e.primitive.name for e in _equations(scan.params["jaxpr"].jaxpr))
    assert not {"dot_general", "gather", "scatter-add"} & set(body)  # slices and arithmetic: one fused loop
    assert sum(body.values()) <= 80


def test_a_large_sparse_group_runs_as_csr_or_ellpack_and_equals_the_dense_lowering() -> None:
    """Auto runs the group as CSR under torch and in ELLPACK form under JAX (at most 16 synapses per unit: XLA
    fuses it); every lowering gives the dense one's outputs and gradients."""
    rng = np.random.default_rng(0)
    pairs = ", ".join(f"[{a}, {b}]" for a, b in rng.integers(0, 200, (600, 2)))
    text = f"""
circuit Sparse {{
  input x[n = 200]
  output y[n = 200]
  param w : free = 0.1, shared = false
  population h[n = 200] : Tanh
  x -> h : one_to_one, weight = fixed(1.0)
  h -> h : pairs([{pairs}]), weight = w
  y = h
}}"""
    results = {}
    for batch in (2, 8):  # a few samples run a small sparse group's dense twin (FEW_SAMPLES), more the CSR product
        x = {"x": rng.uniform(-1, 1, (batch, 4, 200)).astype(np.float32)}
        weights = {"y": rng.standard_normal((batch, 4, 200)).astype(np.float32)}
        for backend in harness.BACKENDS:
            expected = {"auto": "sparse" if backend == "torch" else "ell", "dense": "dense", "sparse": "sparse"}
            for lowering in expected if backend == "jax" else ("auto", "dense"):
                handle = harness.build(text, backend, seed=1, lowering=lowering)
                program = handle.circuit._program()
                assert program.groups["h", "in"].lowering == expected[lowering]
                twinned = lowering == "auto" and expected[lowering] == "sparse"
                assert set(program.twins) == ({"h:in"} if twinned else set())
                results[backend, lowering, batch] = harness.grad(handle, x, weights)
    for (backend, lowering, batch), (outputs, grads) in results.items():
        reference = results["torch", "dense", batch]
        key = str((backend, lowering, batch))
        np.testing.assert_allclose(outputs["y"], reference[0]["y"], rtol=1e-5, atol=1e-6, err_msg=key)
        np.testing.assert_allclose(grads["w"], reference[1]["w"], rtol=1e-4, atol=1e-5, err_msg=key)


def test_inference_reuses_the_prepared_parameters_until_one_changes_even_through_data() -> None:
    module = circuitdsl.compile(SWIMMER, seed=2)
    q, state = torch.rand(2, 5) * 2 - 1, module.initial_state(2)
    with torch.no_grad():
        calls = []
        for _ in range(2):
            counter = _Calls()
            with counter:
                first = module({"q": q}, state)[0]["torque"]
            calls.append(counter.calls["clamp"])
        assert calls[0] - calls[1] == 4  # the four parameters' sign clamps ran for the first call only
        module.params["ipsi"].data.mul_(0.5)  # an edit no version counter sees
        edited = module({"q": q}, state)[0]["torque"]
    expected = module({"q": q}, state)[0]["torque"]  # autograd recording: prepared afresh
    assert not torch.equal(edited, first)
    torch.testing.assert_close(edited, expected.detach(), rtol=0, atol=0)


@pytest.mark.parametrize("model", ["ncap_swimmer", "celegans_whole", "delays_snn", "transformer_block", "attention",
                                   "operator_burgers"])
def test_a_step_and_a_rollout_read_no_value_back_from_their_tensors_but_the_finite_check(model: str) -> None:
    # on a GPU each such read waits for the device: a step must queue its work and return
    module = circuitdsl.compile(f"models/{model}.circuit")
    inputs = {p.name: torch.rand(2, 3, *[a.size for a in p.shape]) for p in module.ir.inputs}
    state = module.initial_state(2)
    module({k: v[:, 0] for k, v in inputs.items()} or None, state)
    for nonfinite, reads in (("ignore", 0), ("warn", len(inputs))):
        module.nonfinite = nonfinite
        for call in (lambda: module({k: v[:, 0] for k, v in inputs.items()} or None, state),
                     lambda: module.rollout(inputs or None, steps=3)):
            counter = _Aten()
            with counter:
                call()  # autograd recording (the CPU's inference compares the parameters with the last call's)
            assert counter.calls["_local_scalar_dense"] + counter.calls["equal"] + counter.calls["is_nonzero"] \
                == reads, (nonfinite, counter.calls)


def _doubling(lets: int) -> Any:
    """y = x doubled `lets` times through a chain of shared entries (`let a1 = a0 + a0` ...): 2^lets as a tree."""
    ir = circuitdsl.loads("circuit C {\n input x\n output y\n population p : Identity\n"
                          " x -> p : weight = fixed(1.0)\n y = p\n}")
    shared: list[Any] = [Binary(op="+", left=Ref(source="x"), right=Ref(source="x"))]
    shared += [Binary(op="+", left=Shared(index=i), right=Shared(index=i)) for i in range(lets - 1)]
    projection = ir.projections[0].model_copy(update={"source": Shared(index=lets - 1)})
    return ir.model_copy(update={"shared": shared, "projections": [projection]})


def test_a_shared_subexpression_is_evaluated_once_per_step_on_both_backends() -> None:
    ir = _doubling(30)
    module = circuitdsl.compile(ir)
    counter = _Calls()
    with torch.no_grad(), counter:
        outputs, _ = module(torch.full((2,), 3.0))
    torch.testing.assert_close(outputs["y"], torch.full((2,), 3.0 * 2 ** 30))
    assert counter.calls["add"] == 30  # one per entry, not 2^30
    circuit = circuitdsl.compile(ir, backend="jax")
    jax_outputs, _ = jax.jit(lambda p, x: circuit.step(p, None, x))(circuit.init(), np.full((2,), 3.0, np.float32))
    np.testing.assert_allclose(np.asarray(jax_outputs["y"]), 3.0 * 2 ** 30)


CLASHING = ["pop", "train", "copy", "type", "get", "update", "to", "double", "forward", "params"]


def test_parameter_names_that_are_framework_attributes_compile_and_agree_on_both_backends() -> None:
    text = ("circuit P {\n input x\n output y\n population h : Tanh\n"
            + "".join(f" param {n} : excitatory = {(i + 1) / 10}\n" for i, n in enumerate(CLASHING))
            + "".join(f" x -> h : weight = {n}\n" for n in CLASHING) + " y = h\n}")
    module = circuitdsl.compile(circuitdsl.loads(text))
    assert sorted(module.state_dict()) == sorted(f"params.{n}" for n in CLASHING)
    assert module.params["train"].item() == pytest.approx(0.2) and callable(module.train)
    x = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
    with torch.no_grad():
        outputs, _ = module.rollout(torch.from_numpy(x))
    circuit = circuitdsl.compile(circuitdsl.loads(text), backend="jax")
    params = circuit.from_torch(module.state_dict())
    jax_outputs, _ = circuit.rollout(params, x)
    np.testing.assert_allclose(np.asarray(jax_outputs["y"]), outputs["y"].numpy(), rtol=1e-6)
    np.testing.assert_allclose(outputs["y"].numpy(), np.tanh(x * 5.5), rtol=1e-6)


def test_one_to_one_runs_into_parts_of_a_port_run_as_diagonal_layers_and_equal_the_dense_lowering() -> None:
    """Runs into parts of a port (two halves swapped) and a whole-port run on top (a second layer), a gap junction
    alone (+g from the other end, -g from the own: two layers), a junction's other end fed by one more projection
    (three layers) and a port left partly uncovered (both dense): auto gives the dense lowering's outputs and
    gradients on both backends."""
    text = """
circuit Diagonal {
  input x[n = 6]
  output y[n = 6]
  param a : free = 0.5, shared = false
  param b : free = -0.3, shared = false
  population h[n = 6] : Tanh
  population g[n = 6] : Tanh
  population k[n = 6] : Tanh
  population m[n = 6] : Tanh
  x[:4] -> h[2:] : one_to_one, weight = a
  x[4:] -> h[:2] : one_to_one, weight = a
  x -> h : one_to_one, weight = b
  h -> g : one_to_one, weight = b
  g <-> k : one_to_one, weight = 0.2
  x[1:] -> m[1:] : one_to_one, weight = a
  y = g + k + m
}"""
    rng = np.random.default_rng(3)
    x = {"x": rng.uniform(-1, 1, (3, 5, 6)).astype(np.float32)}
    weights = {"y": rng.standard_normal((3, 5, 6)).astype(np.float32)}
    torch_auto = harness.build(text, "torch", seed=1)
    lowered = {key: (g.lowering, len(g.layers)) for key, g in torch_auto.circuit._program().groups.items()}
    assert lowered == {("h", "in"): ("diagonal", 2), ("g", "in"): ("dense", 0), ("k", "in"): ("diagonal", 2),
                       ("m", "in"): ("dense", 0)}
    reference = harness.grad(harness.build(text, "torch", seed=1, lowering="dense"), x, weights)
    for handle in (torch_auto, harness.build(text, "jax", seed=1)):
        outputs, grads = harness.grad(handle, x, weights)
        np.testing.assert_allclose(outputs["y"], reference[0]["y"], rtol=1e-6, atol=1e-6, err_msg=handle.backend)
        for key in ("a", "b"):
            np.testing.assert_allclose(grads[key], reference[1][key], rtol=1e-5, atol=1e-6, err_msg=handle.backend)


def test_a_neurons_let_and_port_read_more_than_once_run_once_per_step_and_the_update_is_read_after_it() -> None:
    """A flat model's step is one tree of closures: a let read three times (twice by the output, once by an
    update) and a port read twice are computed once per step, the output reads the state's new value, and a step
    that records (which runs the equations over a dict of values) gives the same numbers."""
    module = circuitdsl.compile(circuitdsl.loads("""
neuron L {
  state v = 0
  let a = exp(in)
  v = v + a
  out = a * a + v + in * in
}
circuit C {
  input x[n = 3]
  output y[n = 3]
  population p[n = 3] : L
  x -> p : one_to_one, weight = fixed(1.0)
  y = p
}"""))
    x = torch.rand(2, 3)
    state = module.initial_state(2)
    with torch.no_grad():
        module({"x": x}, state)  # prepares the parameters
        calls = _Aten()
        with calls:
            outputs, new_state = module({"x": x}, state)
        recorded, recorded_state = module({"x": x}, state, record=["p.a", "p.v"])
    assert calls.calls["exp"] == 1 and calls.calls["mul"] == 3  # the port's product x * w, a * a, in * in
    a = torch.exp(x)
    torch.testing.assert_close(outputs["y"], a * a + a + x * x, rtol=0, atol=0)
    torch.testing.assert_close(new_state["p.v"], a, rtol=0, atol=0)
    torch.testing.assert_close(recorded["y"], outputs["y"], rtol=0, atol=0)
    torch.testing.assert_close(recorded["p.a"], a, rtol=0, atol=0)
    assert list(recorded_state) == list(new_state) == list(state)  # the same entries, in the same order


READOUT = """
circuit Readout {
  input x[i = 3]
  param w : free = normal(0, 1), shared = false
  population h[j = 4] : Leaky(tau = 5 ms, dt = 1 ms)
  x -> h : all_to_all, weight = w
  h -> h : all_to_all, weight = w
  output first = h[0] + h[1]
  output second = h[2] * h[3] - h[0]
}"""


def test_a_torch_rollout_assembles_its_outputs_once_over_all_steps_not_once_per_step() -> None:
    """A rollout steps the populations the outputs read and assembles the outputs after its time loop, on all
    steps at once: the torch operations a longer rollout adds per step are those of the circuit without outputs."""
    added = []
    for text in (READOUT, "\n".join(line for line in READOUT.splitlines() if "output" not in line)):
        module = circuitdsl.compile(circuitdsl.loads(text))
        counts = []
        for steps in (1, 9):
            calls = _Calls()
            with torch.no_grad(), calls:
                module.rollout({"x": torch.rand(2, steps, 3)})
            counts.append(sum(calls.calls.values()))
        added.append(counts[1] - counts[0])
    assert added[0] == added[1] > 0


@pytest.mark.parametrize("batch", [2, 2100])  # 2100 x 4 units kept per step is past DEFERRED_STEP: step by step
@pytest.mark.parametrize("backend", ["torch", "numpy"])
def test_a_rollouts_outputs_equal_those_of_single_steps_assembled_after_its_loop_or_not(backend: str,
                                                                                       batch: int) -> None:
    compiled = circuitdsl.compile(circuitdsl.loads(READOUT), backend=backend)
    x = np.random.default_rng(0).uniform(-1, 1, (batch, 9, 3)).astype(np.float32)
    sequence: Any = torch.from_numpy(x) if backend == "torch" else x
    with torch.no_grad():
        outputs, _ = compiled.rollout({"x": sequence})
        state = None
        for t in range(9):
            step, state = (compiled(sequence[:, t], state) if backend == "torch"
                           else compiled.step(sequence[:, t], state))
            for name in ("first", "second"):
                np.testing.assert_array_equal(np.asarray(outputs[name][:, t]), np.asarray(step[name]))


KINDS = """
circuit Kinds {
  input x[n = 3]
  output y[n = 3]
  population a[n = 3] : Tanh
  population b[n = 3] : LIF(threshold = 0.3)
  population c[n = 3] : Tanh
  population d[n = 3] : Tanh
  population e[n = 3] : Tanh
  x -> a : one_to_one, weight = fixed(1)
  a -> b : dense
  b -| a : pairs([[0, 1], [2, 0]]), weight = -0.4
  a <-> c : one_to_one, weight = 0.1
  c -> d : one_to_one, delay = 2
  d -> e : one_to_one
  y = b + e
}"""


@pytest.mark.parametrize("backend", ["torch", "jax", "numpy"])
def test_the_state_holds_what_the_next_step_reads_and_record_gives_the_other_outputs(backend: str) -> None:
    """Neuron states (b's LIF), delay lines and the outputs a recurrent edge (b -| a) or a gap junction (a <-> c,
    both ends) reads a step later; not the outputs of d (read this step by e) or e (read by the output only).  The
    swimmer's state is its clock.  `record` gives any population's output."""
    kinds = circuitdsl.compile(circuitdsl.loads(KINDS), backend=backend)
    assert set(kinds.initial_state(2)) == {"b.mem", "b.spk", "b:out", "a:out", "c:out", "c -> d:delay"}
    assert list(circuitdsl.compile(SWIMMER, backend=backend).initial_state(1)) == ["osc_d.t"]
    x = np.random.default_rng(1).uniform(-1, 1, (2, 3)).astype(np.float32)
    args: Any = (kinds.init(), None, x) if backend == "jax" else (torch.from_numpy(x) if backend == "torch" else x,)
    step = kinds.step if backend in ("jax", "numpy") else kinds
    with torch.no_grad():
        outputs, state = step(*args, record=["a", "d", "e"])
        np.testing.assert_allclose(np.asarray(outputs["a"]), np.tanh(x), rtol=1e-6)  # nothing fed back yet
        np.testing.assert_array_equal(np.asarray(outputs["d"]), 0.0)  # its delay line starts empty
        assert "a:out" in state and "d:out" not in state and "e:out" not in state


@pytest.mark.filterwarnings("ignore:.*should not be instantiated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf:UserWarning")
def test_the_compiled_ncap_graph_returns_the_torque_and_the_clock_as_the_hand_written_step_does() -> None:
    """Each tensor a compiled graph returns is a buffer its wrapper allocates and hands back: the state that held
    every population's output made the graph return 9 (docs/engine.md, "The state")."""
    returned: list[int] = []

    def backend(graph: torch.fx.GraphModule, example: Any) -> Any:
        (output,) = [node for node in graph.graph.nodes if node.op == "output"]
        returned.append(len(torch.fx.node.map_aggregate(output.args[0], lambda n: n) or ()))
        return graph.forward

    torch._dynamo.reset()
    module = circuitdsl.compile(SWIMMER)
    with torch.no_grad():
        module.compile(backend=backend, fullgraph=True)
        module({"q": torch.rand(1, 5)}, module.initial_state(1))
    assert returned == [2]


def test_the_lean_state_steps_alike_on_torch_and_jax_from_a_state_handed_back() -> None:
    """The circuit of every state kind stepped 6 times from the state each step returned, torch against JAX with
    the same parameters (float64): outputs, the recorded outputs that are not state, and the state itself."""
    module = circuitdsl.compile(circuitdsl.loads(KINDS), dtype="float64")
    with jax.enable_x64(True):
        circuit = circuitdsl.compile(circuitdsl.loads(KINDS), backend="jax", dtype="float64")
        params = circuit.from_torch(module.state_dict())
        x = np.random.default_rng(2).uniform(-1, 1, (3, 6, 3))
        ours, theirs = None, None
        for t in range(6):
            with torch.no_grad():
                torch_out, ours = module(torch.from_numpy(x[:, t]), ours, record=["d", "e"])
            jax_out, theirs = circuit.step(params, theirs, x[:, t], record=["d", "e"])
            for name in ("y", "d", "e"):
                np.testing.assert_allclose(torch_out[name].numpy(), np.asarray(jax_out[name]), atol=1e-12)
            for key in ours:
                np.testing.assert_allclose(ours[key].numpy(), np.asarray(theirs[key]), atol=1e-12, err_msg=key)


def test_a_module_off_the_cpu_runs_a_sparse_group_dense_up_to_the_accelerators_threshold(monkeypatch: Any) -> None:
    # a GPU's dense product costs little more than its launch at the whole worm's size, where the CPU's CSR wins
    # from a few samples on (fusion.ACCELERATOR_DENSE_CELLS, measured on an H200); "meta" stands for the GPU here
    from circuitdsl.backends import fusion

    module = circuitdsl.compile(circuitdsl.load("models/celegans_whole.circuit"))
    on_cpu = module._program()
    group = on_cpu.groups["N", "in"]
    cells = group.size * group.width
    assert cells <= fusion.ACCELERATOR_DENSE_CELLS
    assert group.lowering == "sparse" and set(on_cpu.twins) == {"N:in"}
    on_gpu = module.to("meta")._program()
    assert on_gpu.groups["N", "in"].lowering == "dense" and not on_gpu.twins
    monkeypatch.setattr(fusion, "ACCELERATOR_DENSE_CELLS", cells - 1)  # a larger group stays CSR there too
    larger = circuitdsl.compile(module.ir).to("meta")._program()
    assert larger.groups["N", "in"].lowering == "sparse"
    monkeypatch.undo()
    forced = circuitdsl.compile(module.ir, lowering="sparse").to("meta")._program()
    assert forced.groups["N", "in"].lowering == "sparse"  # lowering= still forces one


def test_a_rollout_off_the_cpu_assembles_its_outputs_after_its_time_loop_at_any_batch_that_fits() -> None:
    # on a GPU each of the worm's column reads and sums per step is a kernel launch, while keeping its 302 units a
    # step is memory traffic it does not notice (program.ACCELERATOR_DEFERRED_TOTAL); the CPU defers up to a batch
    from circuitdsl.backends.program import ACCELERATOR_DEFERRED_TOTAL

    module = circuitdsl.compile(circuitdsl.load("models/celegans_whole.circuit"))
    on_cpu, on_gpu = module._program(), module.to("meta")._program()
    assert on_cpu.rollout_step(1, 1000) == on_cpu.step_sources and on_cpu.rollout_step(64, 1000) == on_cpu.step
    assert on_gpu.rollout_step(64, 1000) == on_gpu.step_sources
    longest = ACCELERATOR_DEFERRED_TOTAL // (64 * 302)
    assert on_gpu.rollout_step(64, longest + 1) == on_gpu.step  # what it would keep is bounded there too
    module.nonfinite = "ignore"  # a meta tensor has no values to check
    with torch.no_grad(), _Aten() as aten:
        outputs, _ = module.rollout({"sensory_drive": torch.rand(64, 10, device="meta")})
    assert outputs["forward"].shape == (64, 10)
    assert aten.calls["slice"] == 4  # the four columns read once over all steps, not once a step
