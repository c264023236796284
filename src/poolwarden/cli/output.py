"""Terminal output shared by the commands: wrapped paragraphs with a hanging indent, and
tables without trailing blanks."""

from __future__ import annotations

import textwrap

from rich.console import Console, RenderableType
from rich.text import Text

__all__ = ["print_table", "print_wrapped"]


def print_wrapped(
    console: Console, text: str, indent: int, first: Text | str = "", style: str = ""
) -> None:
    """Print ``text`` wrapped to the console's width behind ``first`` (a label), the
    following lines indented by ``indent`` columns."""
    label = first if isinstance(first, Text) else Text(first)
    width = max(40, console.width)
    lines = textwrap.wrap(
        text,
        width=width,
        initial_indent=" " * len(label.plain),
        subsequent_indent=" " * indent,
        break_on_hyphens=False,
        break_long_words=False,
    ) or [" " * len(label.plain)]
    console.print(Text.assemble(label, (lines[0][len(label.plain) :], style)), soft_wrap=True)
    for line in lines[1:]:
        console.print(Text(line, style=style), soft_wrap=True)


def print_table(console: Console, table: RenderableType, min_width: int = 0) -> None:
    """Print ``table`` with the blanks rich pads each line's end with removed; given
    ``min_width`` columns even on a narrower console, rather than wrap cells."""
    width = console.width
    console.width = max(width, min_width)  # print(width=) cannot exceed the console's
    try:
        with console.capture() as capture:
            console.print(table)
    finally:
        console.width = width
    for line in capture.get().splitlines():
        console.file.write(line.rstrip() + "\n")
    console.file.flush()
