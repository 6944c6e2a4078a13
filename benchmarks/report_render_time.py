"""How long `planner report` takes, and how big the report gets, as the number of languages grows.

    python benchmarks/report_render_time.py                 # 6 and 24 languages
    python benchmarks/report_render_time.py --languages 100

Each size builds the synthetic output directory the tests use (real fits and allocation; final run and
alignment simulated), then times `render_report` alone. Figures are paged (12 curve panels, 10 lines,
about 56 bars per figure), so the time grows with the number of figures, roughly linearly in languages.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--languages", type=int, nargs="+", default=[6, 24])
    parser.add_argument("--bootstrap", type=int, default=200)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "tests"))
    import report_fixture  # noqa: E402  (a test helper, not an installed module)

    from reports import render_report

    print(f"{'languages':>9} {'figures':>7} {'render s':>8} {'s/figure':>8} {'html MB':>7}")
    for n in args.languages:
        # Synthetic codes beyond the fixture's named languages.
        report_fixture.LANGUAGES = tuple(report_fixture.LANGUAGES) + tuple(
            f"x{i:03d}" for i in range(max(0, n - len(report_fixture.LANGUAGES))))
        with tempfile.TemporaryDirectory() as tmp:
            out = report_fixture.make_output_dir(Path(tmp) / "out", n_languages=n, bootstrap=args.bootstrap)
            start = time.perf_counter()
            result = render_report(out)
            seconds = time.perf_counter() - start
            size = result.report.stat().st_size / 1e6
        figures = len(result.figures)
        print(f"{n:>9} {figures:>7} {seconds:>8.1f} {seconds / figures:>8.2f} {size:>7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
