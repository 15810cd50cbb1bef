"""Optional dependencies: which extra of pyproject.toml installs a missing module, and how to install it.

The core (parse, check, `ir`, `fmt`, `schema`) needs only lark, pydantic, networkx and numpy; everything else
is an extra.  A missing one is reported as one line naming the extra, never as a traceback.
"""

from __future__ import annotations

from typing import Final

# top-level module -> the extra that installs it
EXTRAS: Final[dict[str, str]] = {
    "torch": "torch",
    "jax": "jax",
    "jaxlib": "jax",
    "optax": "jax",
    "cect": "connectome",
    "dm_control": "rl",
    "mujoco": "rl",
    "graphviz": "draw",
    "matplotlib": "plot",
    "sklearn": "bench",
    "pygls": "lsp",
    "lsprotocol": "lsp",
    "pygments": "highlight",
    "nir": "interop",
    "nirtorch": "interop",
    "h5py": "interop",
    "onnx": "interop",
    "onnxruntime": "interop",
    "pyneuroml": "interop",
    "neuroml": "interop",
}


def install_hint(extra: str) -> str:
    """How to install an extra: from a clone of the repository (the package is not on an index)."""
    return f"pip install -e '.[{extra}]' in the repository (or `make`, which installs every extra)"


def missing_extra(error: ImportError) -> str | None:
    """The extra that installs the module an ImportError could not find, or None if it is not an extra's."""
    name = (error.name or "").split(".")[0]
    return EXTRAS.get(name)


def describe_missing(error: ImportError) -> str:
    """One line: which module is missing, which extra installs it, and how."""
    name = (error.name or "").split(".")[0] or "a module"
    extra = missing_extra(error)
    if extra is None:
        return f"the Python module '{name}' is not installed ({error})"
    return f"this needs the '{extra}' extra ('{name}' is not installed): {install_hint(extra)}"
