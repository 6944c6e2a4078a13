"""`planner report`: render the scaling-curve report from an output directory"""

from __future__ import annotations

from pathlib import Path

from planner.commands import add_config_option, config_from_args


def add_parser(sub) -> None:
    p = sub.add_parser(
        "report",
        help="render the scaling-curve report from an output directory",
        description="Render figures (PNG + SVG), one self-contained HTML report and a Markdown summary from the "
        "files in OUTPUT_DIR (runs.csv, fits.json, allocation.csv, final/metrics.csv, alignment/alignment.csv), "
        "or from the files --runs, --fits, --allocation and --final name instead. Any of them may be missing: "
        "the report shows what the present ones support and lists the absent ones.",
    )
    p.add_argument("output_dir_arg", metavar="OUTPUT_DIR", nargs="?", default=None,
                   help="the directory the stages wrote (default: --output-dir, else the config's output_dir)")
    add_config_option(p)
    p.add_argument("--runs", metavar="RUNS_CSV", default=None, help="the runs table (default: OUTPUT_DIR/runs.csv)")
    p.add_argument("--fits", metavar="FITS_JSON", default=None, help="the fits (default: OUTPUT_DIR/fits.json)")
    p.add_argument("--allocation", metavar="ALLOCATION_CSV", default=None,
                   help="the plan, its summary beside it (default: OUTPUT_DIR/allocation.csv)")
    p.add_argument("--final", metavar="DIR", default=None, help="the final runs' tables (default: OUTPUT_DIR/final)")
    p.add_argument("--out", default=None, help="report path (default OUTPUT_DIR/report.html, or report.md)")
    p.add_argument("--format", choices=["html", "md"], default="html",
                   help="html: one file with figures embedded, plus a Markdown summary beside it; md: Markdown only")
    p.add_argument("--level", type=float, default=None,
                   help="interval level of the bands (default: the allocation's interval level, else 0.9)")
    p.set_defaults(func=run)


def run(args) -> int:
    from reports import render_report  # matplotlib is imported only when a report is rendered

    output_dir = args.output_dir_arg or config_from_args(args).output_dir
    sources = {"runs": args.runs, "fits": args.fits, "allocation": args.allocation, "final": args.final}
    result = render_report(Path(output_dir), out=args.out, fmt=args.format, level=args.level, sources=sources)
    print(f"report: {result.report}")
    if result.markdown != result.report:
        print(f"markdown summary: {result.markdown}")
    print(f"figures: {len(result.figures)} in {result.figures[0].png.parent}" if result.figures else "figures: none")
    if result.missing:
        print(f"absent inputs (sections left out): {', '.join(result.missing)}")
    return 0
