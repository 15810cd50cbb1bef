"""Run a circuit's grid axes at another resolution: the same params, fields sampled at more or fewer points."""

from __future__ import annotations

from typing import Any

from circuitdsl.ir.model import CircuitIR, Population, Port
from circuitdsl.ir.operators import most_modes


def at_resolution(ir: CircuitIR, **sizes: int) -> CircuitIR:
    """`ir` with each named grid axis (an axis with a domain) at the given number of points, everywhere it
    appears.  Only operator projections may touch a resized axis: their params do not depend on its size (a
    multigrid operator keeps running its V-cycle at the size it was elaborated at, its `points`), and a spectral
    one's modes must still fit each resized axis."""
    shaped: tuple[Population | Port, ...] = (*ir.populations, *ir.inputs)
    grids = {a.name for p in shaped for a in p.shape if a.domain is not None}
    unknown = set(sizes) - grids
    if unknown:
        raise ValueError(f"no grid axis {', '.join(sorted(unknown))}; grid axes: {', '.join(sorted(grids)) or 'none'}")
    for projection in ir.projections:
        touched = {a.name for a in (*projection.source_shape, *projection.target_shape) if a.domain is not None}
        if touched & set(sizes) and projection.operator is None:
            raise ValueError(f"projection {projection.id!r} is not an operator, so its synapses fix the size of "
                             f"{', '.join(sorted(touched & set(sizes)))}")
        operator = projection.operator
        if operator is not None and operator.kind == "spectral":  # its modes must still fit each axis
            for i, (name, periodic, modes) in enumerate(zip(operator.axes, operator.periodic, operator.modes)):
                last = i == len(operator.axes) - 1
                if name in sizes and modes > (most := most_modes(sizes[name], periodic, last)):
                    raise ValueError(f"{sizes[name]} points of {name} keep at most {most} modes, and the spectral "
                                     f"operator of {projection.id!r} has {modes}")
    return CircuitIR.model_validate(_resized(ir.model_dump(), sizes))


def _resized(value: Any, sizes: dict[str, int]) -> Any:
    """The dumped IR with every grid axis named in `sizes` at its new size."""
    if isinstance(value, dict):
        if value.get("domain") is not None and value.get("name") in sizes and "size" in value:
            return {**value, "size": sizes[value["name"]]}
        return {k: _resized(v, sizes) for k, v in value.items()}
    if isinstance(value, list):
        return [_resized(v, sizes) for v in value]
    return value
