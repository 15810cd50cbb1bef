"""Activity traces as a figure (matplotlib): one panel per input, population and output, time on x."""

from __future__ import annotations

from pathlib import Path

from circuitdsl.simulate import Traces

MAX_LINES = 16  # a signal with more units than this is drawn as a raster (units x time) instead of lines


def plot_traces(traces: Traces, path: str | Path) -> None:
    """Write the traces to `path` (.png, .svg or .pdf, by its suffix)."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display is needed
    import matplotlib.pyplot as plt

    names = list(traces.signals)
    if not names:
        raise ValueError(f"circuit '{traces.circuit}' has no inputs, populations or outputs to plot")
    figure, axes = plt.subplots(len(names), 1, sharex=True, squeeze=False,
                                figsize=(9, 1.0 + 1.5 * len(names)), layout="constrained")
    colours = {"input": "tab:green", "population": "black", "output": "tab:red"}
    for axis, name in zip(axes[:, 0], names, strict=True):
        values, labels = traces.signals[name], traces.units[name]
        steps = values.shape[0]
        if values.shape[1] > MAX_LINES:
            image = axis.imshow(values.T, aspect="auto", interpolation="nearest", cmap="viridis",
                                extent=(-0.5, steps - 0.5, values.shape[1] - 0.5, -0.5))
            figure.colorbar(image, ax=axis, pad=0.01)
            axis.set_ylabel("unit")
        else:
            for unit, label in enumerate(labels):
                axis.plot(range(steps), values[:, unit], linewidth=1.0, label=label)
            if 1 < len(labels):
                axis.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize="x-small", frameon=False)
        axis.set_title(f"{name} ({traces.kinds[name]})", loc="left", fontsize="small",
                       color=colours[traces.kinds[name]])
        axis.tick_params(labelsize="x-small")
    axes[-1, 0].set_xlabel("time step")
    figure.suptitle(f"{traces.circuit}: activity over {next(iter(traces.signals.values())).shape[0]} steps")
    figure.savefig(path)
    plt.close(figure)
