"""Render a `Document` as a Markdown summary (GitHub-flavoured) for pull requests and notebooks.

Same sections and tables as the HTML; figures are links to the PNG files beside it rather than embedded.
Text from input files is HTML-escaped (Markdown renderers pass raw HTML through) and table pipes escaped.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

from reports.document import Callout, Cell, Document, Headline, Paragraph, Preformatted, SavedFigure, Table, Verdict

_VERDICT_MARKS = {"good": "✓", "bad": "✗"}


def _text(text) -> str:
    return html.escape(str(text), quote=False).replace("\n", " ")


def _cell(cell: Cell) -> str:
    text = "<br>".join(_text(line) for line in cell.text.split("\n"))
    if cell.warnings:
        text += "<br>" + "<br>".join(f"⚠ {_text(w)}" for w in cell.warnings)
    return text.replace("|", "\\|") or " "


def render_table(table: Table) -> str:
    lines = []
    if table.caption:
        lines += [f"*{_text(table.caption)}*", ""]
    lines.append("| " + " | ".join(_text(c).replace("|", "\\|") for c in table.columns) + " |")
    lines.append("|" + "|".join("---:" if i in table.numeric else "---" for i in range(len(table.columns))) + "|")
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in table.rows]
    return "\n".join(lines)


def _block(block, base: Path) -> str:
    if isinstance(block, Paragraph):
        return _text(block.text)
    if isinstance(block, Table):
        return render_table(block)
    if isinstance(block, SavedFigure):
        png = Path(os.path.relpath(block.png.resolve(), base.resolve())).as_posix()
        svg = Path(os.path.relpath(block.svg.resolve(), base.resolve())).as_posix()
        return f"![{_text(block.title)}]({png})\n\n**{_text(block.title)}.** {_text(block.caption)} ([SVG]({svg}))"
    if isinstance(block, Callout):
        marker = "⚠ " if block.kind == "warn" else ""
        return "\n".join([f"> **{marker}{_text(block.title)}**", ">"] + [f"> - {_text(i)}" for i in block.items])
    if isinstance(block, Preformatted):
        fence = "````" if "```" in block.text else "```"
        title = f"{_text(block.caption)}\n\n" if block.caption else ""
        return f"{title}{fence}\n{block.text.rstrip()}\n{fence}"
    if isinstance(block, Headline):
        return "\n".join(
            f"- **{_text(m.label)}:** {_text(m.value)}" + (f" — {_text(m.detail)}" if m.detail else "")
            for m in block.metrics
        )
    if isinstance(block, Verdict):
        lines = [f"> **{_text(block.title)}**", ">"]
        # a list item is already a bullet: a neutral line gets no second one ("- • …")
        lines += [f"> - {_VERDICT_MARKS[line.tone] + ' ' if line.tone in _VERDICT_MARKS else ''}{_text(line.text)}"
                  for line in block.lines]
        return "\n".join(lines + ([">", f"> {_text(block.note)}"] if block.note else []))
    raise TypeError(f"unknown block {type(block).__name__}")


def render_markdown(doc: Document, out: Path, footer: str) -> str:
    base = out.parent
    parts = [f"# {_text(doc.title)}", "", _text(doc.subtitle), ""]
    for section in doc.sections:
        parts += [f"## {_text(section.title)}", ""]
        for block in section.blocks:
            parts += [_block(block, base), ""]
    parts += ["---", "", _text(footer), ""]
    return "\n".join(parts)
