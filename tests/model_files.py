"""The example models in models/ that the suites run one by one, and the arguments that keep each small enough
for a test (the multigrid operator's default grid takes seconds a step; the other defaults are small already)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = sorted((ROOT / "models").glob("*.circuit"))
TYPED = [path.relative_to(ROOT).as_posix() for path in MODELS]  # as a user types them in the checkout
_SMALL: dict[str, dict[str, object]] = {"mgno_burgers.circuit": {"n": 8}}


def small_args(path: Path) -> dict[str, object]:
    """The circuit arguments that make the model at `path` test-sized (none for most)."""
    return dict(_SMALL.get(path.name, {}))
