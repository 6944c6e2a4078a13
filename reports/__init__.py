"""Figures, tables and the self-contained HTML report.

`render_report(output_dir)` reads whatever a planner output directory holds (runs.csv, fits.json,
allocation.csv + allocation_summary.json, final/metrics.csv, objectives.csv, comparison.csv and
calibration.csv, alignment/alignment.csv, resolved_config.yaml),
writes PNG and SVG figures into `<report stem>_figures/` beside the report, the report itself (HTML with
the figures embedded, or Markdown), and, for HTML, a Markdown summary of the same content beside it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from core import __version__
from core.errors import UserError
from core.files import atomic_write_text, check_output_file

from reports.build import ReportBuilder
from reports.document import Document, SavedFigure
from reports.html import render_html
from reports.inputs import ReportInputs, input_paths, load_inputs
from reports.markdown import render_markdown

__all__ = ["ReportResult", "render_report", "load_inputs", "build_document", "ReportInputs"]


@dataclass(frozen=True)
class ReportResult:
    report: Path  # the HTML (or Markdown) report
    markdown: Path  # the Markdown summary (the report itself when format is md)
    figures: list[SavedFigure]
    document: Document
    missing: list[str]  # inputs that were absent

    def __str__(self) -> str:  # printing a result names the report, e.g. in `planner run`'s stage log
        return str(self.report)


def build_document(inputs: ReportInputs, figures_dir: Path, level: float | None = None) -> tuple[Document, list[SavedFigure]]:
    builder = ReportBuilder(inputs, figures_dir, level)
    experiment = (inputs.config or {}).get("experiment")
    title = f"Experiment {experiment}" if experiment else f"Report for {inputs.output_dir.resolve().name}"
    return builder.build(title), builder.saved


def render_report(
    output_dir: str | Path, out: str | Path | None = None, fmt: str = "html", level: float | None = None,
    sources: Mapping[str, str | Path] | None = None,
) -> ReportResult:
    """Render the report of `output_dir` (written there unless `out` says otherwise); `sources` names inputs
    read from elsewhere (`reports.inputs.input_paths`); `level` is the interval level (default: the
    allocation's, else 0.9)."""
    if fmt not in ("html", "md"):
        raise UserError(f"Unknown report format {fmt!r}.", "Use --format html or --format md.")
    if level is not None and not 0.0 < level < 1.0:
        raise UserError(f"Interval level {level} is not between 0 and 1.", "Pass e.g. --level 0.9.")
    inputs = load_inputs(output_dir, sources)
    out = Path(out) if out is not None else Path(output_dir) / f"report.{fmt}"
    if fmt == "html" and out.suffix.lower() == ".md":
        raise UserError(f"--out {out} ends in .md but the format is html.", "Pass --format md, or an .html path.")
    if fmt == "md" and out.suffix.lower() != ".md":  # it would be written beside, under another name
        raise UserError(f"--out {out} does not end in .md but the format is md.", "Pass a path ending in .md.")
    read = list(input_paths(Path(output_dir), sources).values())
    check_output_file(out, "The report (--out)", read)  # before any figure is drawn
    markdown_path = out.with_suffix(".md")
    figures_dir = out.parent / f"{out.stem}_figures"
    check_output_file(markdown_path, "The Markdown summary beside the report", read)
    if figures_dir.exists() and not figures_dir.is_dir():
        raise UserError(f"The report's figures go to {figures_dir}, which is a file.", "Move it away, or pass another --out.")
    out.parent.mkdir(parents=True, exist_ok=True)
    previous = set(figures_dir.glob("*.png")) | set(figures_dir.glob("*.svg")) if figures_dir.is_dir() else set()

    doc, saved = build_document(inputs, figures_dir, level)
    footer = (f"Rendered by planner {__version__} from the files in {inputs.output_dir.resolve().name}/; "
              f"figures (PNG, SVG) are in {figures_dir.name}/.")
    atomic_write_text(markdown_path, render_markdown(doc, markdown_path, footer))
    if fmt == "html":
        atomic_write_text(out, render_html(doc, out, generator=f"planner {__version__}", footer=footer))
    # A page count that shrank since the last render would leave stale pages beside the new report.
    for stale in previous - {p for f in saved for p in (f.png, f.svg)}:
        stale.unlink()
    return ReportResult(report=out, markdown=markdown_path, figures=saved, document=doc, missing=list(inputs.missing))

