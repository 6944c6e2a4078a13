"""`planner report`: render the scaling-curve report from an output directory"""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser(
        "report",
        help="render the scaling-curve report from an output directory",
        description="Render figures (PNG + SVG), one self-contained HTML report and a Markdown summary from the "
        "files in OUTPUT_DIR (runs.csv, fits.json, allocation.csv, final/metrics.csv, alignment/alignment.csv). "
        "Any of them may be missing: the report shows what the present ones support and lists the absent ones.",
    )
    p.add_argument("output_dir", metavar="OUTPUT_DIR")
    p.add_argument("--out", default=None, help="report path (default OUTPUT_DIR/report.html, or report.md)")
    p.add_argument("--format", choices=["html", "md"], default="html",
                   help="html: one file with figures embedded, plus a Markdown summary beside it; md: Markdown only")
    p.add_argument("--level", type=float, default=None,
                   help="interval level of the bands (default: the allocation's interval level, else 0.9)")
    p.set_defaults(func=run)


def run(args) -> int:
    from reports import render_report  # matplotlib is imported only when a report is rendered

    result = render_report(args.output_dir, out=args.out, fmt=args.format, level=args.level)
    print(f"report: {result.report}")
    if result.markdown != result.report:
        print(f"markdown summary: {result.markdown}")
    print(f"figures: {len(result.figures)} in {result.figures[0].png.parent}" if result.figures else "figures: none")
    if result.missing:
        print(f"absent inputs (sections left out): {', '.join(result.missing)}")
    return 0
