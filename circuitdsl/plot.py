"""Activity traces as a figure (matplotlib): one panel per input, population, output and recorded name.

Each panel draws its signal the way the field reads it: spike trains as a raster (one row of ticks per unit),
a few units as lines with a legend inside the panel, many units as a heat map with the units' names, sorted
into their groups (a worm's sensory / inter / motor neurons) with the groups marked, in a diverging colour map
centred on 0 when the activity is signed.  Time is in ms when the circuit's neurons share a `dt`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from circuitdsl.simulate import Traces
from circuitdsl.units import canonical_unit

MAX_LINES = 8  # a signal with more units than this is drawn as a heat map (units x time) instead of lines
MAX_NAMED_ROWS = 400  # name every row of a heat map or raster up to this many units
GROUP_ORDER = ("sensory", "inter", "motor", "muscle")  # layers of a connectome, top to bottom; others after
CLIP = 98.0  # percentile of |activity| where a heat map's colour range ends
COLOURS = {"input": "tab:green", "population": "black", "output": "tab:red", "record": "tab:blue"}


def plot_traces(traces: Traces, path: str | Path) -> None:
    """Write the traces to `path` (.png, .svg or .pdf, by its suffix)."""
    import matplotlib.pyplot as plt

    figure = traces_figure(traces)
    many = max(v.shape[1] for v in traces.signals.values()) > 60
    figure.savefig(path, dpi=200 if many else 100)  # many named rows: enough pixels to read each name
    plt.close(figure)


def traces_figure(traces: Traces) -> Any:
    """The figure of the traces (a matplotlib Figure, not shown; close it with pyplot.close when done)."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display is needed
    import matplotlib.pyplot as plt

    names = list(traces.signals)
    if not names:
        raise ValueError(f"circuit '{traces.circuit}' has no inputs, populations or outputs to plot")
    heights = [_height(traces, name) for name in names]
    figure, axes = plt.subplots(len(names), 1, sharex=True, squeeze=False, figsize=(10, 0.8 + sum(heights)),
                                height_ratios=heights, layout="constrained")
    steps = next(iter(traces.signals.values())).shape[0]
    time = np.arange(steps) * (traces.dt or 1.0)
    for axis, name in zip(axes[:, 0], names, strict=True):
        axis.tick_params(labelsize="x-small")  # before the panel, which may size its row names to fit
        _panel(figure, axis, traces, name, time)
        dim = traces.dims.get(name)
        unit = f", {canonical_unit(dim)}" if dim else ""
        axis.set_title(f"{name} ({traces.kinds[name]}{unit})", loc="left", fontsize="small",
                       color=COLOURS[traces.kinds[name]])
    axes[-1, 0].set_xlabel("time (ms)" if traces.dt else "time step")
    span = f"{steps * traces.dt:g} ms ({steps} steps of {traces.dt:g} ms)" if traces.dt else f"{steps} steps"
    figure.suptitle(f"{traces.circuit}: activity over {span}")
    return figure


def _height(traces: Traces, name: str) -> float:
    """A panel's height in inches: enough for a readable row per unit in a raster or heat map."""
    units = traces.signals[name].shape[1]
    if name in traces.events or units > MAX_LINES:
        return float(np.clip(units * (0.12 if units <= 40 else 0.05), 0.6, 16.0))
    return 1.5


def _panel(figure: Any, axis: Any, traces: Traces, name: str, time: np.ndarray) -> None:
    values = traces.signals[name]
    order = _grouped(traces.groups.get(name), values.shape[1])
    labels = [traces.units[name][i] for i in order]
    if name in traces.events:
        _raster(axis, values[:, order], time)
    elif values.shape[1] > MAX_LINES:
        _heat_map(figure, axis, values[:, order], time)
    else:
        for unit, label in enumerate(labels):
            axis.plot(time, values[:, unit], linewidth=1.0, label=label or name)
        if len(labels) > 1:
            axis.legend(loc="upper right", fontsize="xx-small", ncols=min(len(labels), 4), framealpha=0.8)
        return
    _row_names(axis, labels, _height(traces, name))
    if name in traces.groups:
        _group_marks(axis, [traces.groups[name][i] for i in order])


def _raster(axis: Any, values: np.ndarray, time: np.ndarray) -> None:
    """Spike trains: a tick where each unit fired, one row per unit (the first at the top)."""
    trains = [time[values[:, unit] > 0] for unit in range(values.shape[1])]
    axis.eventplot(trains, lineoffsets=np.arange(len(trains)), linelengths=0.8, linewidths=0.8, colors="black")
    axis.set_ylim(len(trains) - 0.5, -0.5)
    axis.set_xlim(time[0], time[-1] + (time[1] - time[0] if len(time) > 1 else 1))
    if not any(len(train) for train in trains):
        axis.text(0.5, 0.5, "no spikes", transform=axis.transAxes, ha="center", va="center", color="grey",
                  fontsize="small")


def _heat_map(figure: Any, axis: Any, values: np.ndarray, time: np.ndarray) -> None:
    """Units x time; signed activity in a diverging map centred on 0, one-signed in a sequential one.  The colour
    range ends at the CLIP percentile of the magnitudes, so a few strongly driven units do not wash out the rest;
    the colour bar's arrows show that values beyond it exist."""
    low, high = float(values.min()), float(values.max())
    signed = low < 0 < high
    step = time[1] - time[0] if len(time) > 1 else 1.0
    if signed:
        limit = float(np.percentile(np.abs(values), CLIP)) or max(-low, high)
        vmin, vmax, cmap = -limit, limit, "RdBu_r"
    else:
        vmin, vmax, cmap = low, (float(np.percentile(values, CLIP)) if high > low else low + 1.0), "viridis"
        vmax = vmax if vmax > vmin else high
    image = axis.imshow(values.T, aspect="auto", interpolation="nearest", cmap=cmap, vmin=vmin, vmax=vmax,
                        extent=(time[0] - step / 2, time[-1] + step / 2, values.shape[1] - 0.5, -0.5))
    clipped = (low < vmin, high > vmax)
    extend = {(True, True): "both", (True, False): "min", (False, True): "max"}.get(clipped, "neither")
    bar = figure.colorbar(image, ax=axis, pad=0.01, fraction=0.03, extend=extend)
    bar.ax.tick_params(labelsize="xx-small")


def _row_names(axis: Any, labels: list[str], height: float) -> None:
    """Every row named, in a font that fits its row, when there are not too many; else the default ticks."""
    if len(labels) == 1 and not labels[0]:
        axis.set_yticks([])
    elif len(labels) <= MAX_NAMED_ROWS:
        row = height * 72 / len(labels)  # points per row
        axis.set_yticks(range(len(labels)), labels, fontsize=float(np.clip(0.8 * row, 2.5, 7.0)))


def _grouped(groups: list[str] | None, units: int) -> list[int]:
    """Unit order with groups together (GROUP_ORDER first, then others as they appear), order kept within."""
    if not groups:
        return list(range(units))
    ranked = [*GROUP_ORDER, *dict.fromkeys(g for g in groups if g not in GROUP_ORDER)]
    return sorted(range(units), key=lambda i: (ranked.index(groups[i]), i))


def _group_marks(axis: Any, groups: list[str]) -> None:
    """A line between groups and each group's name at its middle, on the right of the panel."""
    start = 0
    for end in [*(i for i in range(1, len(groups)) if groups[i] != groups[i - 1]), len(groups)]:
        if start:
            axis.axhline(start - 0.5, color="black", linewidth=0.8)
        axis.annotate(groups[start], xy=(1.0, (start + end - 1) / 2), xycoords=("axes fraction", "data"),
                      xytext=(4, 0), textcoords="offset points", rotation=90, va="center", ha="left",
                      fontsize="x-small", annotation_clip=False)
        start = end
