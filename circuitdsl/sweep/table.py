"""The sweep's results on disk: a tidy table (one row per run x checkpoint) and a ledger of finished runs.

`results.csv` grows as runs finish; a run's rows are appended in one write, and only then is the run entered in
`runs.jsonl` (the ledger).  On a re-run, rows of runs the ledger does not list (a driver killed mid-write) are
dropped, runs it lists as done are skipped, and failed ones are tried again: the table never holds a run twice.
`results.parquet` is written beside the CSV at the end when pyarrow is installed.
"""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path
from typing import Any

from circuitdsl.sweep.cell import COLUMNS


class ResultsTable:
    """The table and ledger in the folder `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.csv, self.ledger = root / "results.csv", root / "runs.jsonl"
        root.mkdir(parents=True, exist_ok=True)
        self.done = {entry["run_id"] for entry in self.entries() if entry["status"] == "done"}
        self._drop_unfinished()

    def entries(self) -> list[dict[str, Any]]:
        """The ledger, oldest first (a run tried twice has two entries)."""
        if not self.ledger.exists():
            return []
        return [json.loads(line) for line in self.ledger.read_text().splitlines() if line.strip()]

    def rows(self) -> list[dict[str, str]]:
        """The table's rows, as text."""
        if not self.csv.exists():
            return []
        with self.csv.open(newline="") as handle:
            return list(csv.DictReader(handle))

    def add(self, run_id: str, rows: list[dict[str, Any]], wall_s: float) -> None:
        """A finished run: its rows, then its ledger entry (both flushed to disk)."""
        new = not self.csv.exists()
        with self.csv.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, COLUMNS)
            if new:
                writer.writeheader()
            writer.writerows(rows)
            handle.flush()
            os.fsync(handle.fileno())
        self._log({"run_id": run_id, "status": "done", "rows": len(rows), "wall_s": round(wall_s, 3)})
        self.done.add(run_id)

    def fail(self, run_id: str, cell: str, seed: int, error: str) -> None:
        """A run that failed after its retries: in the ledger with its error, tried again on the next run."""
        self._log({"run_id": run_id, "status": "failed", "cell": cell, "seed": seed, "error": error})

    def write_parquet(self) -> Path | None:
        """results.parquet beside the CSV, when pyarrow is installed."""
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            return None
        import pandas as pd

        path = self.root / "results.parquet"
        pd.read_csv(self.csv).to_parquet(path)
        return path

    def _log(self, entry: dict[str, Any]) -> None:
        with self.ledger.open("a") as handle:
            handle.write(json.dumps({**entry, "time": time.strftime("%Y-%m-%dT%H:%M:%S")}) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def _drop_unfinished(self) -> None:
        """Rows of runs missing from the ledger (written, then the driver died) go; each done run's rows stay."""
        rows = self.rows()
        kept = [row for row in rows if row["run_id"] in self.done]
        if len(kept) == len(rows):
            return
        with self.csv.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, COLUMNS)
            writer.writeheader()
            writer.writerows(kept)
