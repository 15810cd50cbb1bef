"""Progress bars for long work (`circuitdsl run`): tqdm's, shown only when stderr is a terminal."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")


def progress(items: Iterable[T], total: int, description: str) -> Iterable[T]:
    """`items` with a progress bar on stderr when it is a terminal; a log, a pipe or a test sees `items` as given."""
    if not sys.stderr.isatty():
        return items
    return tqdm(items, total=total, desc=description, unit="step", leave=False, file=sys.stderr)
