"""Where a circuit may read files from: imports and connectivity data resolve inside a few folders only.

A `.circuit` file names other files (`import "lib/cells.circuit"`, `connectome("edges.csv")`).  Those paths
are read relative to the naming file's folder and must stay inside the sandbox: the folder of the file being
elaborated and the search roots declared with `--include` (`include=` from Python).  `..` may climb only as
far as a root; absolute paths need `--allow-absolute`; device, proc and sys files are never read; the working
directory is never consulted.  See docs/limits.md.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from circuitdsl.errors import Problem

# pseudo-file systems: /dev/zero never ends, /proc/self/environ holds secrets
_NEVER: Final = (Path("/dev"), Path("/proc"), Path("/sys"))


@dataclass(frozen=True)
class Sandbox:
    """The folders files may be read from (resolved, symlinks followed) and whether absolute paths are allowed."""

    roots: tuple[Path, ...] = ()
    allow_absolute: bool = False

    @classmethod
    def around(cls, top: str | Path | None, include: Iterable[str | Path] = (), allow_absolute: bool = False
               ) -> Sandbox:
        """The sandbox of an elaboration: the top file's folder (the working directory for text without a
        folder) and the declared search roots."""
        folder = Path(top).parent if top is not None else Path()
        return cls(tuple(_real(p) for p in (folder, *include)), allow_absolute)

    def resolve(self, name: str, folder: str, what: str) -> str:
        """The file `name` (as written in `folder`'s file) names; a Problem (E104) when it leaves the sandbox."""
        if "\x00" in name:
            raise Problem("E104", f"cannot read {what} '{name[:80]}': a path holds no NUL character")
        path = Path(name)
        if path.is_absolute():
            if not self.allow_absolute:
                raise Problem("E104", f"{what} '{name}' is an absolute path",
                              ("write it relative to this file, add its folder with --include DIR, or pass "
                               + "--allow-absolute",))
            candidates = [path]
        else:
            candidates = [Path(folder) / path, *(root / path for root in self.roots)]
        found = next((c for c in candidates if c.exists()), candidates[0])
        real = _real(found)
        if any(_inside(real, never) for never in _NEVER):
            raise Problem("E104", f"cannot read {what} '{name}': device, proc and sys files are never read")
        if not path.is_absolute() and not any(_inside(real, root) for root in self.roots):
            raise Problem("E104", f"{what} '{name}' is outside the folders files may be read from",
                          (f"those folders: {', '.join(str(r) for r in self.roots)}",
                           "add a folder with --include DIR (include= from Python)"))
        return os.path.normpath(found)


def _real(path: str | Path) -> Path:
    return Path(os.path.realpath(path))


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents
