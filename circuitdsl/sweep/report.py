"""A sweep's report: the tidy table aggregated over seeds (mean ± 95% CI), a summary table and learning curves.

Writes into the report folder: `summary.md` (one row per variant and body size: the return at init and after
training), `summary.csv` (every cell at every checkpoint, aggregated), `at_init.png` (return at init against body
size) and `learning_curves.png` (return against training env steps, one panel per body size).
"""

from __future__ import annotations

from pathlib import Path

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


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """One row per variant, task and body size: the return at init and, for trained cells, after the last
    generation, each as 'mean ± ci95 (n)'."""
    rows = []
    for key, group in table.groupby(["variant", "args", "env", "joints"], sort=False):
        init = group[group["generation"] == 0].iloc[0]
        trained = group[(group["trainer"] != "none") & (group["generation"] > 0)]
        final = trained[trained["generation"] == trained["generation"].max()].iloc[0] if len(trained) else None
        rows.append({"variant": key[0] + (f" [{key[1]}]" if key[1] else ""), "env": key[2], "joints": key[3],
                     "at init": _cell(init), "trained": _cell(final) if final is not None else "",
                     "generations": int(final["generation"]) if final is not None else ""})
    order = {name: i for i, name in enumerate(dict.fromkeys(row["variant"] for row in rows))}
    return pd.DataFrame(sorted(rows, key=lambda row: (order[row["variant"]], row["env"], row["joints"])))


def write(results_csv: Path, folder: Path, title: str) -> list[Path]:
    """Aggregate `results_csv` and write the summary and figures into `folder`; returns the files written."""
    results = pd.read_csv(results_csv)
    table = aggregate(results)
    folder.mkdir(parents=True, exist_ok=True)
    table.to_csv(folder / "summary.csv", index=False)
    overview = summary(table)
    (folder / "summary.md").write_text(f"# {title}\n\nReturn (mean ± 95% CI over seeds, n seeds in brackets).\n\n"
                                       + _markdown(overview) + "\n")
    files = [folder / "summary.csv", folder / "summary.md", _plot_at_init(table, folder / "at_init.png")]
    if (table["generation"] > 0).any():
        files.append(_plot_curves(table, folder / "learning_curves.png"))
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


def _plot_at_init(table: pd.DataFrame, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    init = table[table["generation"] == 0].drop_duplicates(["variant", "args", "env", "joints"])
    figure, axis = plt.subplots(figsize=(6.4, 4.0))
    for key, group in init.groupby(["variant", "args"], sort=False):
        group = group.sort_values("joints")
        axis.errorbar(group["joints"], group["mean"], yerr=group["ci95"].fillna(0), marker="o", capsize=3,
                      label=_label(key))
    axis.set(xlabel="joints", ylabel="return at init", title="Return at initialisation (mean ± 95% CI)")
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def _plot_curves(table: pd.DataFrame, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trained = table[table["trainer"] != "none"]
    bodies = sorted(trained["joints"].unique())
    figure, axes = plt.subplots(1, len(bodies), figsize=(4.2 * len(bodies), 3.6), squeeze=False, sharey=True)
    for axis, body in zip(axes[0], bodies, strict=True):
        for key, group in trained[trained["joints"] == body].groupby(["variant", "args"], sort=False):
            group = group.sort_values("env_steps")
            axis.plot(group["env_steps"], group["mean"], marker=".", label=_label(key))
            axis.fill_between(group["env_steps"], group["mean"] - group["ci95"].fillna(0),
                              group["mean"] + group["ci95"].fillna(0), alpha=0.2)
        axis.set(xlabel="training env steps", title=f"{body} joints")
    axes[0][0].set_ylabel("eval return")
    axes[0][-1].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
