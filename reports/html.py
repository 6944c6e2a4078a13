"""Render a `Document` as one self-contained HTML file.

Figures are embedded as base64 PNG data URIs so the single file can be mailed or attached to a ticket;
the PNG/SVG files beside it are linked for papers and slides. The page has no scripts and no external
resources. Every string that came from an input file is passed through `html.escape` here, in one place.
"""

from __future__ import annotations

import base64
import html
import os
import struct
from importlib import resources
from pathlib import Path
from string import Template

from reports.document import (
    Callout,
    Cell,
    Document,
    Headline,
    Paragraph,
    Preformatted,
    SavedFigure,
    Section,
    Table,
    Verdict,
)

_VERDICT_MARKS = {"good": "✓", "bad": "✗"}

# Figures are saved at 150 dpi; shown at 96 CSS px per inch their text appears at its point size.
SAVE_DPI = 150
CSS_DPI = 96


def esc(text) -> str:
    return html.escape(str(text), quote=True)


def _template(name: str) -> str:
    return resources.files("reports").joinpath("templates", name).read_text(encoding="utf-8")


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    return struct.unpack(">II", data[16:24])


def _cell(cell: Cell, numeric: bool) -> str:
    cls = ' class="num"' if numeric else ""
    bar = ""
    if cell.bar is not None:
        bar = f'<span class="bar" style="width:{max(0.0, min(cell.bar, 1.0)) * 60:.1f}px"></span>'
    flag = '<span class="flag" title="see the warning below">⚠</span> ' if cell.warnings else ""
    text = "<br>".join(esc(line) for line in cell.text.split("\n"))
    return f"<td{cls}>{flag}{bar}{text}</td>"


def _row(row: list[Cell], numeric: frozenset[int]) -> str:
    """A table row; warnings about any of its cells follow in a full-width row, so long messages do not
    squeeze the column of the thing they are about."""
    html_row = "<tr>" + "".join(_cell(c, i in numeric) for i, c in enumerate(row)) + "</tr>"
    warnings = [w for c in row for w in c.warnings]
    if warnings:
        items = "".join(f"<div>⚠ {esc(w)}</div>" for w in warnings)
        html_row += f'<tr class="warn-row"><td colspan="{len(row)}">{items}</td></tr>'
    return html_row


def render_table(table: Table) -> str:
    head = "".join(
        f'<th{" class=num" if i in table.numeric else ""} scope="col">{esc(c)}</th>' for i, c in enumerate(table.columns)
    )
    body = "\n".join(_row(row, table.numeric) for row in table.rows)
    caption = f"<caption>{esc(table.caption)}</caption>" if table.caption else ""
    ident = f' id="{esc(table.id)}"' if table.id else ""
    return f'<div class="table-wrap"><table{ident}>{caption}<thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table></div>'


def render_figure(fig: SavedFigure, base: Path) -> str:
    data = fig.png.read_bytes()
    width, height = png_size(data)
    css_w, css_h = round(width * CSS_DPI / SAVE_DPI), round(height * CSS_DPI / SAVE_DPI)
    uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    links = " ".join(
        f'<a href="{esc(_relative(p, base))}">{kind}</a>' for kind, p in (("PNG", fig.png), ("SVG", fig.svg))
    )
    return (
        f'<figure id="{esc(fig.id)}"><img src="{uri}" alt="{esc(fig.title)}" width="{css_w}" height="{css_h}">'
        f"<figcaption><strong>{esc(fig.title)}.</strong> {esc(fig.caption)}"
        f' <span class="files">{links}</span></figcaption></figure>'
    )


def _relative(path: Path, base: Path) -> str:
    return Path(os.path.relpath(path.resolve(), base.resolve())).as_posix()


def render_block(block, base: Path) -> str:
    if isinstance(block, Paragraph):
        return f"<p>{esc(block.text)}</p>"
    if isinstance(block, Table):
        return render_table(block)
    if isinstance(block, SavedFigure):
        return render_figure(block, base)
    if isinstance(block, Callout):
        items = "".join(f"<li>{esc(i)}</li>" for i in block.items)
        return f'<div class="callout {esc(block.kind)}"><strong>{esc(block.title)}</strong><ul>{items}</ul></div>'
    if isinstance(block, Preformatted):
        return f"<details><summary>{esc(block.caption or 'show')}</summary><pre>{esc(block.text)}</pre></details>"
    if isinstance(block, Headline):
        cards = "".join(
            f'<div class="metric {esc(m.tone)}"><div class="label">{esc(m.label)}</div>'
            f'<div class="value">{esc(m.value)}</div><div class="detail">{esc(m.detail)}</div></div>'
            for m in block.metrics
        )
        return f'<div class="headline">{cards}</div>'
    if isinstance(block, Verdict):
        return render_verdict(block)
    raise TypeError(f"unknown block {type(block).__name__}")


def render_verdict(block: Verdict) -> str:
    items = "".join(
        f'<li class="{esc(line.tone)}"><span class="mark">{_VERDICT_MARKS.get(line.tone, "•")}</span>{esc(line.text)}</li>'
        for line in block.lines
    )
    note = f'<p class="note">{esc(block.note)}</p>' if block.note else ""
    return f'<div class="verdict" id="verdict"><strong>{esc(block.title)}</strong><ul>{items}</ul>{note}</div>'


def render_section(section: Section, base: Path) -> str:
    blocks = "\n".join(render_block(b, base) for b in section.blocks)
    return f'<section id="{esc(section.id)}"><h2>{esc(section.title)}</h2>\n{blocks}\n</section>'


def render_html(doc: Document, out: Path, generator: str, footer: str) -> str:
    """The whole page as a string; `out` is where it will be written (figure links are relative to it)."""
    base = out.parent
    toc = "".join(f'<li><a href="#{esc(s.id)}">{esc(s.title)}</a></li>' for s in doc.sections)
    return Template(_template("report.html")).substitute(
        title=esc(doc.title),
        subtitle=esc(doc.subtitle),
        generator=esc(generator),
        css=_template("report.css"),
        toc=toc,
        body="\n".join(render_section(s, base) for s in doc.sections),
        footer=esc(footer),
    )
