"""Rendered blocks in markdown files: ``<!-- results:<spec> start -->`` ... ``<!-- results:<spec>
end -->``, whose content a renderer writes from data (results files, the method registry).

A spec is ``<source>[:<view>]``; ``<source>`` is one or more names joined by ``+`` (results files
``docs/results/<name>.json``, or a registry source such as ``methods``). The text between the two
markers belongs to the renderer: :func:`replace_blocks` rewrites it, :func:`stale_blocks` lists
the blocks whose text differs from what the renderer gives now.
"""

import re
from dataclasses import dataclass
from typing import Callable, List, Tuple

__all__ = ["Block", "find_blocks", "replace_blocks", "stale_blocks"]

_START = re.compile(r"^<!-- results:(?P<spec>[^\s>]+) start -->[ \t]*$", re.M)
_END = "<!-- results:{spec} end -->"


@dataclass(frozen=True)
class Block:
    """One rendered block of a file.

    Attributes:
        spec: the marker's ``<source>[:<view>]``.
        start / end: character offsets of the block's content (between the two marker lines).
        line: 1-based line of the start marker.
    """

    spec: str
    start: int
    end: int
    line: int


def find_blocks(text: str, path: str = "<text>") -> List[Block]:
    """Every rendered block of ``text``, in order.

    Raises:
        ValueError: a start marker without its end marker, naming ``path`` and the line.
    """
    blocks = []
    for match in _START.finditer(text):
        spec = match.group("spec")
        end_marker = _END.format(spec=spec)
        content_start = match.end() + 1
        end = text.find(end_marker, content_start - 1)
        if end < 0:
            line = text.count("\n", 0, match.start()) + 1
            raise ValueError(f"{path}:{line}: no '{end_marker}' after '{match.group(0)}'")
        line = text.count("\n", 0, match.start()) + 1
        blocks.append(Block(spec, min(content_start, end), end, line))
    return blocks


def replace_blocks(text: str, render: Callable[[str], str], path: str = "<text>") -> str:
    """``text`` with the content of every block replaced by ``render(spec)`` (one trailing newline
    added when missing)."""
    out, last = [], 0
    for block in find_blocks(text, path):
        content = render(block.spec)
        if content and not content.endswith("\n"):
            content += "\n"
        out += [text[last : block.start], content]
        last = block.end
    out.append(text[last:])
    return "".join(out)


def stale_blocks(text: str, render: Callable[[str], str], path: str = "<text>") -> List[Tuple]:
    """``(line, spec)`` of the blocks of ``text`` whose content differs from ``render(spec)``."""
    stale = []
    for block in find_blocks(text, path):
        content = render(block.spec)
        if content and not content.endswith("\n"):
            content += "\n"
        if text[block.start : block.end] != content:
            stale.append((block.line, block.spec))
    return stale
