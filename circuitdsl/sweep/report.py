"""A sweep's report: the tidy table aggregated over seeds (mean ± 95% CI), a summary table and learning curves.

Writes into the report folder: `summary.md` (one row per variant and body size: the return at init and after
training), `summary.csv` (every cell at every checkpoint, aggregated), `at_init.png` (return at init against body
size) and `learning_curves.png` (return against training env steps, one panel per body size).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

CELL = ["variant", "args", "env", "joints", "trainer"]


def aggregate(results: pd.DataFrame) -> pd.DataFrame:
    """Mean, standard deviation, count and 95% confidence half-width (Student t) of eval_return per cell and
    checkpoint."""
    groups = results.fillna({"args": ""}).groupby([*CELL, "generation", "env_steps"], sort=False)["eval_return"]
    table = groups.agg(mean="mean", std="std", n="count").reset_index()
    t = stats.t.ppf(0.975, np.maximum(table["n"] - 1, 1))
    table["ci95"] = np.where(table["n"] > 1, t * table["std"] / np.sqrt(table["n"]), np.nan)
    return table


def summary(table: pd.DataFrame, order: list[str] | None = None) -> pd.DataFrame:
    """One row per variant, task and body size: the return at init and, for trained cells, after the last
    generation, each as 'mean ± ci95 (n)'.  Variants in `order` (the spec's), else as they first appear."""
    rank = {name: i for i, name in enumerate(variants(table, order))}
    rows, keys = [], []
    for key, group in table.groupby(["variant", "args", "env", "joints"], sort=False):
        init = _at_init(group).iloc[0]
        trained = group[(group["trainer"] != "none") & (group["generation"] > 0)]
        final = trained[trained["generation"] == trained["generation"].max()].iloc[0] if len(trained) else None
        rows.append({"variant": key[0] + (f" [{key[1]}]" if key[1] else ""), "env": key[2], "joints": key[3],
                     "at init": _cell(init), "trained": _cell(final) if final is not None else "",
                     "generations": int(final["generation"]) if final is not None else ""})
        keys.append((rank[key[0]], key[2], key[3]))
    return pd.DataFrame([row for _, row in sorted(zip(keys, rows, strict=True), key=lambda pair: pair[0])])


def _at_init(table: pd.DataFrame) -> pd.DataFrame:
    """The checkpoints at init, those over the most seeds first: a body size trained on fewer seeds than the spec
    evaluates at init reports its return at init from the untrained cell, whichever finished first."""
    return table[table["generation"] == 0].sort_values("n", ascending=False, kind="stable")


def _ordered(table: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """The aggregated table in variant order, then by task, body size, trainer and checkpoint: the report does not
    depend on which run finished first (a sweep with 1 worker and one with 2 write the same files)."""
    rank = table["variant"].map({name: i for i, name in enumerate(names)})
    columns = ["_rank", "args", "env", "joints", "trainer", "generation"]
    return table.assign(_rank=rank).sort_values(columns, kind="stable").drop(columns="_rank").reset_index(drop=True)


def variants(table: pd.DataFrame, order: list[str] | None = None) -> list[str]:
    """The table's variant names: those named in `order` first, in its order, then the rest as they first appear
    (so the summary and both figures list variants the same way, whichever run finished first)."""
    present = list(dict.fromkeys(table["variant"]))
    named = [name for name in order or [] if name in present]
    return named + [name for name in present if name not in named]


def write(results_csv: Path, folder: Path, title: str, order: list[str] | None = None) -> list[Path]:
    """Aggregate `results_csv` and write the summary and figures into `folder`; returns the files written.
    `order` lists variant names in the order the table and legends show them (the spec's)."""
    results = pd.read_csv(results_csv)
    table = aggregate(results)
    table = _ordered(table, variants(table, order))
    folder.mkdir(parents=True, exist_ok=True)
    table.to_csv(folder / "summary.csv", index=False)
    overview = summary(table, order)
    (folder / "summary.md").write_text(f"# {title}\n\nReturn (mean ± 95% CI over seeds, n seeds in brackets).\n\n"
                                       + _markdown(overview) + "\n")
    styles = _styles(table, variants(table, order))
    files = [folder / "summary.csv", folder / "summary.md", _plot_at_init(table, folder / "at_init.png", styles)]
    if (table["generation"] > 0).any():
        files.append(_plot_curves(table, folder / "learning_curves.png", styles))
    return files


def _cell(row: pd.Series) -> str:
    ci = "" if np.isnan(row["ci95"]) else f" ± {row['ci95']:.1f}"
    return f"{row['mean']:.1f}{ci} ({int(row['n'])})"


def _markdown(frame: pd.DataFrame) -> str:
    """A GitHub table without tabulate (pandas' to_markdown needs it)."""
    header = "| " + " | ".join(frame.columns) + " |\n|" + "---|" * len(frame.columns) + "\n"
    return header + "\n".join("| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False))


def _label(row: pd.Series | tuple) -> str:
    variant, args = row[0], row[1]
    return f"{variant} [{args}]" if args else str(variant)


MARKERS, LINES = "os^Dvpx*", ["-", "--", ":", "-."]


def _styles(table: pd.DataFrame, names: list[str]) -> dict[str, dict[str, Any]]:
    """One colour, marker and line style per variant (with its arguments), the same in every figure, in legend
    order; variants that coincide (NCAP at ±1 with signs off or unshared) stay visible by marker and dash."""
    keys = table[["variant", "args"]].drop_duplicates()
    keys = keys.assign(rank=keys["variant"].map({name: i for i, name in enumerate(names)})).sort_values(
        "rank", kind="stable")
    colours = list(_pyplot().get_cmap("tab10").colors)
    return {_label(key): {"color": colours[i % len(colours)], "marker": MARKERS[i % len(MARKERS)],
                          "linestyle": LINES[i % len(LINES)]}
            for i, key in enumerate(keys[["variant", "args"]].itertuples(index=False))}


def _pyplot() -> Any:
    """pyplot on the Agg backend: figures are files, never windows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _by_style(frame: pd.DataFrame, styles: dict[str, dict[str, Any]]) -> list[tuple[str, pd.DataFrame]]:
    """The frame's curves (one per variant and arguments) in legend order."""
    order = {label: i for i, label in enumerate(styles)}
    groups = [(_label(key), group) for key, group in frame.groupby(["variant", "args"], sort=False)]
    return sorted(groups, key=lambda pair: order[pair[0]])


def _plot_at_init(table: pd.DataFrame, path: Path, styles: dict[str, dict[str, Any]]) -> Path:
    """Return at init against body size, one line per variant, nudged sideways so error bars do not hide each
    other; the legend sits beside the axes, off the data."""
    plt = _pyplot()
    init = _at_init(table).drop_duplicates(["variant", "args", "env", "joints"])
    curves = _by_style(init, styles)
    figure, axis = plt.subplots(figsize=(10.0, 4.6))
    for i, (label, group) in enumerate(curves):
        group = group.sort_values("joints")
        nudge = 0.12 * (i - (len(curves) - 1) / 2)
        axis.errorbar(group["joints"] + nudge, group["mean"], yerr=group["ci95"].fillna(0), capsize=3,
                      markersize=5, label=label, **styles[label])
    axis.set_xticks(sorted(init["joints"].unique()))
    axis.set(xlabel="joints", ylabel="return at init (one episode)",
             title="Return at initialisation (mean ± 95% CI over seeds)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def _plot_curves(table: pd.DataFrame, path: Path, styles: dict[str, dict[str, Any]]) -> Path:
    """Held-out return against training env steps (thousands), one panel per trained body size."""
    plt = _pyplot()
    trained = table[table["trainer"] != "none"]
    bodies = sorted(trained["joints"].unique())
    figure, axes = plt.subplots(1, len(bodies), figsize=(4.2 * len(bodies) + 4.6, 4.2), squeeze=False,
                                sharey=True)
    for axis, body in zip(axes[0], bodies, strict=True):
        for label, group in _by_style(trained[trained["joints"] == body], styles):
            group = group.sort_values("env_steps")
            steps = group["env_steps"] / 1000
            axis.plot(steps, group["mean"], markersize=5, label=label, **styles[label])
            axis.fill_between(steps, group["mean"] - group["ci95"].fillna(0),
                              group["mean"] + group["ci95"].fillna(0), color=styles[label]["color"], alpha=0.12)
        axis.set(xlabel="training env steps (thousands)", title=f"ES on {body} joints")
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel("held-out return (mean ± 95% CI)")
    axes[0][-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path

