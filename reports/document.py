"""The report as data: sections made of blocks, rendered to HTML or Markdown by separate modules.

Building the content once and rendering it twice keeps the HTML report and the Markdown summary
identical in substance (same tables, same numbers, same warnings) without two copies of the logic.
All text here is plain text; the renderers escape it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Union


@dataclass(frozen=True)
class Cell:
    """A table cell: its text and any warnings about the thing it names (shown next to it)."""

    text: str
    warnings: tuple[str, ...] = ()
    bar: float | None = None  # 0..1: draw a small inline bar (HTML only), e.g. a language's budget share


@dataclass(frozen=True)
class Table:
    columns: list[str]
    rows: list[list[Cell]]
    caption: str = ""
    numeric: frozenset[int] = frozenset()  # column indices to right-align
    id: str = ""


@dataclass(frozen=True)
class SavedFigure:
    """A figure written to disk as PNG (embedded in the HTML) and SVG (for papers and slides)."""

    id: str
    title: str
    caption: str
    png: Path
    svg: Path


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Callout:
    """A highlighted list, e.g. warnings or absent inputs."""

    title: str
    items: list[str]
    kind: str = "warn"  # warn | info


@dataclass(frozen=True)
class Preformatted:
    text: str
    caption: str = ""


@dataclass(frozen=True)
class Metric:
    """A headline number in the summary."""

    label: str
    value: str
    detail: str = ""
    tone: str = ""  # "", "good", "bad"


@dataclass(frozen=True)
class Headline:
    metrics: list[Metric]


@dataclass(frozen=True)
class VerdictLine:
    text: str
    tone: str = ""  # "good" (the plan beat it), "bad" (lost), "" (tied, or cannot tell)


@dataclass(frozen=True)
class Verdict:
    """The truth test's answer, shown first in the summary: one line per comparison."""

    title: str
    lines: list[VerdictLine]
    note: str = ""


Block = Union[Paragraph, Callout, Preformatted, Table, SavedFigure, Headline, Verdict]


@dataclass
class Section:
    id: str
    title: str
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Document:
    title: str
    subtitle: str
    sections: list[Section]
