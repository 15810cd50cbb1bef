"""Bulk building: Python's cyclic garbage collector paused while a parse tree, an AST or an IR is built.

Building allocates hundreds of thousands of small objects and frees almost none; each full collection then
walks every object alive, so the collector alone took half the time of checking a 10,000-line file (parse and
elaboration).  The structures built hold no reference cycles that need collecting during the build.

What the block built is then moved to the oldest generation without a collection: left in the youngest, the
first collection after the block (at the next few allocations) would walk all of it, hundreds of thousands of
objects, once for each block.  Anything cyclic left over is collected by the next full collection.  (Done only
where nothing else froze objects: moving them takes `gc.freeze` and `gc.unfreeze`, and unfreezing would let go
of objects someone froze on purpose.)
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic collector off inside the block, restored on leaving it (nested blocks leave it off)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            if gc.get_freeze_count() == 0:
                gc.freeze()  # every generation into the permanent one,
                gc.unfreeze()  # and that into the oldest: the objects just built are old now, nothing walked
            gc.enable()
