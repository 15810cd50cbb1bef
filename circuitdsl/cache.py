"""The per-user cache: what one process built or read slowly, kept for the next (the parser's tables, the cect
data in a quick-to-read form).

One directory only this user can write: `$CIRCUITDSL_CACHE`, else `$XDG_CACHE_HOME/circuitdsl`, else
`~/.cache/circuitdsl`; no cache at all when `$CIRCUITDSL_CACHE` is empty or that directory cannot be made private.
A file is named by everything it depends on (a version, a hash), so a stale one is never read; a damaged one
is rebuilt by its reader, and writes go through a temporary file, so a reader never sees half a file.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path


def file(name: str) -> Path | None:
    """Where the cache keeps `name` (a plain file name), or None when there is no cache."""
    root = os.environ.get("CIRCUITDSL_CACHE")
    if root == "":
        return None
    if root is None:
        root = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache"), "circuitdsl")
    folder, path = Path(root), Path(root) / name
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not all(_private(p) for p in (folder, path) if p.exists()):
            return None
    except OSError:
        return None
    return path


def _private(path: Path) -> bool:
    """Owned by this user and writable by no one else (on systems with owners)."""
    info = path.stat()
    return (not hasattr(os, "getuid") or info.st_uid == os.getuid()) and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def write(path: Path, save: Callable[[Path], None]) -> None:
    """`save(temporary path)`, then the result moved to `path` in one step; a cache that cannot be written is
    simply not written (the next process reads the original again)."""
    try:
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
        os.close(handle)
        try:
            save(Path(temporary))
            os.replace(temporary, path)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
    except OSError:
        return
