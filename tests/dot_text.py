"""Reading diagrams back from their DOT text: edges, nodes, pinned positions and edge labels by name."""

from __future__ import annotations

import html
import re


def edges(source: str, tail: str, head: str) -> list[str]:
    """The attribute lists of every edge from `tail` to `head` (node names as DOT writes them)."""
    return re.findall(rf"^\t{re.escape(tail)} -> {re.escape(head)} \[(.*)\]$", source, flags=re.MULTILINE)


def edge_label(attributes: str) -> str | None:
    """The signal an unrolled view's edge is labelled with (None: the source unit as is)."""
    found = re.search(r"<td>(.*?)</td>", attributes)
    return None if found is None else html.unescape(found.group(1))


def node(source: str, name: str) -> str:
    """The attribute list of a node statement."""
    found = re.findall(rf"^\t+{re.escape(name)} \[(.*)\]$", source, flags=re.MULTILINE)
    assert len(found) == 1, f"{name}: {len(found)} statements"
    return found[0]


def pins(source: str) -> dict[str, tuple[float, float]]:
    """The pinned positions of the unrolled view, by node name."""
    return {name.strip('"'): (float(x), float(y))
            for name, x, y in re.findall(r'^\t(\S+) \[.*pos="([-\d.]+),([-\d.]+)!"', source, flags=re.MULTILINE)}
