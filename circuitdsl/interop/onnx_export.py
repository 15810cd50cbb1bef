"""circuit -> ONNX: one step as a pure function (inputs, state) -> (outputs, new state), named tensors, a
dynamic batch axis, checked against the torch module with onnxruntime.

State keys (`osc_d.t`, `h:out`, `x -> h:delay`) are kept as they are in the tensor names, prefixed
`state/` for inputs and `next_state/` for outputs, so a caller feeds `next_state/K` back as `state/K`.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch.onnx import symbolic_helper

from circuitdsl.errors import CircuitError, Diagnostic
from circuitdsl.interop.fidelity import FidelityReport
from circuitdsl.ir.model import CircuitIR

OPSET = 18


@symbolic_helper.parse_args("v", "i", "v", "v", "none")
def _index_add(g: Any, x: Any, dim: int, index: Any, values: Any, alpha: Any = None) -> Any:
    """`x.index_add(dim, index, values)` as ONNX ScatterElements with reduction `add`.

    torch 2.13's TorchScript exporter writes index_add as a ScatterElements without a reduction, so a repeated
    index (many synapses onto one neuron) keeps one value instead of their sum."""
    rank = symbolic_helper._get_tensor_rank(values)
    assert rank is not None, "index_add on a tensor of unknown rank"  # traced from fixed shapes: always known
    axes = [a for a in range(rank) if a != dim]
    spread = g.op("Unsqueeze", index, g.op("Constant", value_t=torch.tensor(axes, dtype=torch.int64)))
    expanded = g.op("Expand", spread, g.op("Shape", values))
    return g.op("ScatterElements", x, expanded, values, axis_i=dim, reduction_s="add")


class _Step(torch.nn.Module):
    """The circuit's forward over flat positional tensors, in a fixed order, so the exporter can trace it."""

    def __init__(self, module: torch.nn.Module, ir: CircuitIR, state_keys: list[str]) -> None:
        super().__init__()
        self.module, self.ir, self.state_keys = module, ir, state_keys

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        inputs = dict(zip([p.name for p in self.ir.inputs], tensors, strict=False))
        state = dict(zip(self.state_keys, tensors[len(inputs):], strict=True))
        outputs, new_state = self.module(inputs or None, state)
        return (*(outputs[o.name] for o in self.ir.outputs), *(new_state[k] for k in self.state_keys))


def _dense(module: torch.nn.Module, ir: CircuitIR) -> torch.nn.Module:
    """The same circuit and parameters with no sparse (CSR) operators, which ONNX cannot hold."""
    import circuitdsl

    dense = circuitdsl.compile(ir, lowering="dense")
    dense.load_state_dict(module.state_dict())
    return dense.eval()


def names(ir: CircuitIR, state_keys: list[str]) -> tuple[list[str], list[str]]:
    """The graph's input and output tensor names."""
    return ([p.name for p in ir.inputs] + [f"state/{k}" for k in state_keys],
            [o.name for o in ir.outputs] + [f"next_state/{k}" for k in state_keys])


def export_onnx(module: torch.nn.Module, ir: CircuitIR, path: str | Path, source: str = "<circuit>",
                steps: int = 1000, allow_lossy: bool = False) -> FidelityReport:
    """Write the step to `path` and measure it: `steps` steps in onnxruntime against torch, batch 3.

    A spectral operator (complex FFT weights, which ONNX tensors cannot hold) is unsupported: refused unless
    `allow_lossy`, and then the exporter's own error says what it could not write."""
    report = FidelityReport("circuit -> ONNX", source, str(path))
    for projection in ir.projections:
        if projection.operator is not None and projection.operator.kind == "spectral":
            report.add("projection", projection.id, "-", "unsupported",
                       "a spectral operator multiplies complex Fourier modes; ONNX (opset 18) has no complex tensors")
    report.refuse_lossy(allow_lossy)
    exported = _dense(module, ir)
    report.notes.append("every projection lowered dense or element-wise (ONNX has no sparse tensors); compared "
                        "with the module as compiled")
    state = exported.initial_state(2)  # type: ignore[operator]
    keys = sorted(state)
    inputs = [torch.zeros(2, *[a.size for a in p.shape]) for p in ir.inputs]
    in_names, out_names = names(ir, keys)
    step = _Step(exported, ir, keys).eval()
    torch.onnx.register_custom_op_symbolic("aten::index_add", _index_add, OPSET)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on Python-side constants, not about this export
        try:
            torch.onnx.export(step, (*inputs, *(state[k] for k in keys)), str(path), input_names=in_names,
                              output_names=out_names, dynamic_axes={n: {0: "batch"} for n in in_names + out_names},
                              opset_version=OPSET, dynamo=False)
        except torch.onnx.errors.OnnxExporterError as error:
            raise CircuitError([Diagnostic("E953", f"circuit -> ONNX: torch's exporter cannot write {source}", None,
                                           (str(error).splitlines()[0], report.render()))]) from None
    read = [i.name for i in onnx.load(str(path)).graph.input if i.name.startswith("state/")]
    unread = "; the other next_state tensors are outputs only" if len(read) < len(keys) else ""
    report.notes.append(f"state the step reads (feed next_state/K back as state/K): {', '.join(read) or 'none'}"
                        + unread)
    entries = [report.add("output", o.name, f"tensor '{o.name}'", "exact") for o in ir.outputs]
    entries += [report.add("state", k, f"tensor 'next_state/{k}'", "exact") for k in keys]
    errors = compare_runtime(module, ir, path, keys, steps)
    for entry in entries:
        report.measured(entry, errors[entry.name])
    report.comparison = f"{steps} steps, batch 3, uniform(-1, 1) inputs (seed 0), float32, onnxruntime"
    return report


def compare_runtime(module: torch.nn.Module, ir: CircuitIR, path: str | Path, keys: list[str],
                    steps: int, batch: int = 3) -> dict[str, float]:
    """Largest difference per output and state tensor between onnxruntime and torch over `steps` steps."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    _, out_names = names(ir, keys)
    wanted = {i.name for i in session.get_inputs()}  # the exporter drops inputs the step never reads
    rng = np.random.default_rng(0)
    state = {k: v.numpy() for k, v in module.initial_state(batch).items()}  # type: ignore[operator]
    torch_state = {k: torch.as_tensor(v) for k, v in state.items()}
    errors = dict.fromkeys([o.name for o in ir.outputs] + keys, 0.0)
    for _ in range(steps):
        x = {p.name: rng.uniform(-1, 1, (batch, *[a.size for a in p.shape])).astype(np.float32) for p in ir.inputs}
        feeds = {n: v for n, v in {**x, **{f"state/{k}": state[k] for k in keys}}.items() if n in wanted}
        results = dict(zip(out_names, session.run(out_names, feeds), strict=True))
        with torch.no_grad():
            outputs, torch_state = module({k: torch.as_tensor(v) for k, v in x.items()} or None, torch_state)
        for name, value in outputs.items():
            errors[name] = max(errors[name], float(np.max(np.abs(value.numpy() - results[name]), initial=0.0)))
        for k in keys:
            errors[k] = max(errors[k], float(np.max(np.abs(torch_state[k].numpy() - results[f"next_state/{k}"]),
                                                    initial=0.0)))
        state = {k: results[f"next_state/{k}"] for k in keys}
    return errors

