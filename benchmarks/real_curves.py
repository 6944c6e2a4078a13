"""Real curves judge the statistics: the default fit against a careful per-series fit on published curves.

Every series of every available source (benchmarks/real_curves_sources.py) is cut at one eighth of its
largest size: the sizes at or below it (at least three) are fitted, the larger ones (2-8x beyond the
largest fitted size; 10x for Goldfish, whose sizes are 5/10/100/1000 MB) are predicted. Two fits see the
same small sizes:

- the default: what `planner fit` does with the default config (`fit.law: auto`, `fit.pooling:
  population`, 1,000 posterior draws), all series of a source fitted together as the languages of one
  runs table; its point curve predicts, its 90% interval (`LanguageFit.predict_interval`) is checked, and
  so is the interval for one run (its draws plus the fit's run noise: a held-out point is one run);
- the careful fit: each series alone, the offset power law y = C − A·(x + x0)^−α for scores and
  E + A·(x + x0)^−α for losses, by least squares from many starts within sane bounds (`careful_fit`).
  x0 is fitted only with five or more sizes (four parameters and a residual); with fewer it is 0.

Per source: mean absolute error of the predictions (metric units and relative to the true value), the
ratio default/careful with a 90% bootstrap interval over series, and the share of held-out points inside
the default's 90% intervals. Writes benchmarks/results/real_curves.md (the table) and real_curves.csv
(one row per predicted point; true values only for sources whose licence allows redistributing them).

    python benchmarks/real_curves.py [--fetch-dir DIR] [--ratio 8] [--draws 1000] [--out-dir DIR]

DIR holds the raw files of the fetch-only sources as their repositories ship them
(docs/results/real-curves.md says where to get each); a source whose file is missing is listed as such.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_curves_sources import SOURCES, Curve, Source  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
RATIO = 8.0  # fit the sizes ≤ largest / RATIO
MIN_FIT_SIZES = 3
SIZE_TOLERANCE = 1.02  # "12.5% of the data" measured in bytes can exceed 100%/8 by a rounding
LEVEL = 0.9

# ------------------------------------------------------------------------------------- the split


@dataclass(frozen=True)
class Split:
    curve: Curve
    fit: np.ndarray  # mask over curve.x: the sizes fitted
    held: np.ndarray  # the sizes predicted

    @property
    def fold(self) -> np.ndarray:
        """How far beyond the largest fitted size each held-out size lies."""
        return self.curve.x[self.held] / self.curve.x[self.fit].max()


def split_curve(curve: Curve, ratio: float = RATIO) -> Split | None:
    """Fit the sizes ≤ largest/ratio, predict the rest; None when fewer than MIN_FIT_SIZES sizes are small
    enough or nothing is left to predict."""
    fit = curve.x <= curve.x.max() / ratio * SIZE_TOLERANCE
    if len(np.unique(curve.x[fit])) < MIN_FIT_SIZES or fit.all():
        return None
    return Split(curve, fit, ~fit)


# ----------------------------------------------------------------------------- the careful reference

ALPHA_BOUNDS = (0.01, 4.0)
X0_MAX = 10.0  # x0 ≤ X0_MAX × the largest fitted size (beyond it the curve is a line over the data)
FREE_X0_SIZES = 5  # distinct sizes needed to fit x0 (four parameters and one residual)
_ALPHAS = np.exp(np.linspace(np.log(ALPHA_BOUNDS[0]), np.log(ALPHA_BOUNDS[1]), 60))
_STARTS = 16  # best grid cells polished by least squares


@dataclass(frozen=True)
class CarefulFit:
    """y = c − sign·a·((x + x0)/x_ref)^−alpha (sign +1 for a score, −1 for a loss); x_ref keeps a in range."""

    c: float
    a: float
    alpha: float
    x0: float
    sign: float
    x_ref: float
    sse: float

    def predict(self, x) -> np.ndarray:
        z = (np.asarray(x, float) + self.x0) / self.x_ref
        return self.c - self.sign * self.a * z**-self.alpha


def _c_bounds(y: np.ndarray, sign: float, metric_max: float | None) -> tuple[float, float]:
    if sign > 0:
        return -np.inf, (np.inf if metric_max is None else metric_max)  # a score's ceiling ≤ its maximum
    return (0.0 if y.min() >= 0 else -np.inf), np.inf  # a non-negative loss's floor ≥ 0


def _linear(t: np.ndarray, y: np.ndarray, sign: float, c_lo: float, c_hi: float) -> tuple[float, float, float]:
    """Best (c, a ≥ 0) for fixed t = z^−α, c within its bounds; returns (c, a, sse)."""
    X = np.column_stack([np.ones_like(t), -sign * t])
    (c, a), *_ = np.linalg.lstsq(X, y, rcond=None)
    if a < 0 or not c_lo <= c <= c_hi:
        c = float(np.clip(c if a >= 0 else y.mean(), c_lo, c_hi))
        a = max(float(np.sum(sign * (c - y) * t) / np.sum(t * t)), 0.0)
    r = y - (c - sign * a * t)
    return float(c), float(a), float(r @ r)


def careful_fit(x, y, higher_is_better: bool, metric_max: float | None = None) -> CarefulFit:
    """The offset power law fitted to one series alone: a grid over (α, x0) with (C, A) in closed form,
    then least squares over all parameters from the best `_STARTS` cells; the lowest residual wins."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    sign = 1.0 if higher_is_better else -1.0
    sizes = np.unique(x)
    x_ref = float(np.exp(np.mean(np.log(sizes))))
    u = x / x_ref
    free_x0 = len(sizes) >= FREE_X0_SIZES
    z0_lo, z0_hi = sizes[0] / x_ref * 1e-6, X0_MAX * sizes[-1] / x_ref
    z0s = np.r_[z0_lo, np.exp(np.linspace(np.log(sizes[0] / x_ref / 100), np.log(z0_hi), 30))] if free_x0 else [0.0]
    c_lo, c_hi = _c_bounds(y, sign, metric_max)
    cells = sorted((_linear((u + z0) ** -al, y, sign, c_lo, c_hi)[::-1], al, z0) for al in _ALPHAS for z0 in z0s)

    def unpack(p):
        return p[0], np.exp(p[1]), np.exp(p[2]), (np.exp(p[3]) if free_x0 else 0.0)

    def residuals(p):
        c, a, al, z0 = unpack(p)
        return y - (c - sign * a * (u + z0) ** -al)

    lo = [c_lo, -60.0, np.log(ALPHA_BOUNDS[0])] + ([np.log(z0_lo)] if free_x0 else [])
    hi = [c_hi, 60.0, np.log(ALPHA_BOUNDS[1])] + ([np.log(z0_hi)] if free_x0 else [])
    best = None
    for (sse, a, c), al, z0 in cells[:_STARTS]:
        p0 = [c, np.log(max(a, 1e-12)), np.log(al)] + ([np.log(max(z0, z0_lo))] if free_x0 else [])
        p0 = np.clip(p0, np.nextafter(lo, np.inf), np.nextafter(hi, -np.inf))
        res = least_squares(residuals, p0, bounds=(lo, hi), method="trf", x_scale="jac", max_nfev=3000)
        cand = (float(res.fun @ res.fun), res.x) if res.success else (sse, p0)
        if best is None or cand[0] < best[0]:
            best = cand
    c, a, al, z0 = unpack(best[1])
    return CarefulFit(float(c), float(a), float(al), float(z0) * x_ref, sign, x_ref, best[0])


# ------------------------------------------------------------------------------------- the default


def default_fits(source: Source, splits: list[Split], draws: int):
    """What `planner fit` does with the default config, on the fitted sizes of every series at once."""
    from fits import fit_runs

    rows = [{"language": s.curve.series, "n_pairs": float(x), source.metric: float(y)}
            for s in splits for x, y in zip(s.curve.x[s.fit], s.curve.y[s.fit])]
    runs = pd.DataFrame(rows).astype(str)  # as read from runs.csv (repr of a float round-trips exactly)
    return fit_runs(runs, source.metric, bootstrap=draws, seed=0, higher_is_better=source.higher_is_better,
                    level=LEVEL)


# ------------------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class Point:
    source: str
    series: str
    x: float
    fold: float
    actual: float
    default: float
    lo: float
    hi: float
    careful: float
    run_lo: float  # the interval for one run there: each draw plus one run's noise (as the planner's are)
    run_hi: float

    @property
    def covered(self) -> bool:
        return bool(self.lo <= self.actual <= self.hi)

    @property
    def run_covered(self) -> bool:
        return bool(self.run_lo <= self.actual <= self.run_hi)


@dataclass(frozen=True)
class Summary:
    source: Source
    series: int
    points: int
    fitted_sizes: str  # e.g. "8-9"
    fold: str  # e.g. "2-8x"
    law: str
    mae_default: float
    mae_careful: float
    rel_default: float
    rel_careful: float
    ratio_ci: tuple[float, float]
    coverage: float
    run_coverage: float  # held-out points inside the 90% interval for one run (curve draws plus run noise)
    width: float  # mean width of the default's intervals at the held-out points
    bias: float  # mean of default − actual: errors shared by every series, which no interval of one covers


def evaluate(source: Source, curves: list[Curve], draws: int = 1000, ratio: float = RATIO
             ) -> tuple[Summary, list[Point]]:
    splits = [s for s in (split_curve(c, ratio) for c in curves) if s is not None]
    fitset = default_fits(source, splits, draws)
    points = []
    sigma = float(fitset.population.get("sigma") or 0.0)
    for s in splits:
        x, actual = s.curve.x[s.held], s.curve.y[s.held]
        lf = fitset.languages[s.curve.series]
        lo, hi = lf.predict_interval(x, LEVEL)
        run_lo, run_hi = run_interval(lf, x, sigma)
        careful = careful_fit(s.curve.x[s.fit], s.curve.y[s.fit], source.higher_is_better, source.metric_max)
        points += [Point(source.name, s.curve.series, float(xi), float(f), float(a), float(d), float(l), float(h),
                         float(c), float(rl), float(rh)) for xi, f, a, d, l, h, c, rl, rh in
                   zip(x, s.fold, actual, lf.predict(x), lo, hi, careful.predict(x), run_lo, run_hi)]
    return summarise(source, splits, points, fitset.population.get("law", "?")), points


def run_interval(lf, x: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """The 90% interval of one run's score at x: every draw of `predict_draws` plus one run's noise σ (the
    fit's pooled noise level), as `planner.allocation.risk.predictive_draws` makes the plan's. A held-out
    point is one run, so this, not the curve's interval, is the one that should hold it."""
    draws = lf.predict_draws(x)
    noisy = draws + np.random.default_rng([0, 1]).standard_normal(draws.shape) * sigma
    tail = (1 - LEVEL) / 2
    return np.quantile(noisy, tail, axis=-1), np.quantile(noisy, 1 - tail, axis=-1)


def ratio_interval(points: list[Point], draws: int = 2000, seed: int = 0) -> tuple[float, float]:
    """90% bootstrap interval of MAE(default)/MAE(careful), resampling whole series (their points move
    together: one extrapolation error per series, seen at several sizes)."""
    errs = pd.DataFrame({"series": [p.series for p in points],
                         "d": [abs(p.default - p.actual) for p in points],
                         "c": [abs(p.careful - p.actual) for p in points]}).groupby("series").sum()
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(errs), size=(draws, len(errs)))
    d, c = errs["d"].to_numpy()[idx].sum(1), errs["c"].to_numpy()[idx].sum(1)
    r = d / np.maximum(c, 1e-300)
    return float(np.quantile(r, 0.05)), float(np.quantile(r, 0.95))


def _span(values) -> str:
    lo, hi = min(values), max(values)
    return f"{lo:g}" if lo == hi else f"{lo:g}-{hi:g}"


def summarise(source: Source, splits: list[Split], points: list[Point], law: str) -> Summary:
    a = np.array([p.actual for p in points])
    d, c = np.abs(np.array([p.default for p in points]) - a), np.abs(np.array([p.careful for p in points]) - a)
    return Summary(
        source=source, series=len(splits), points=len(points),
        fitted_sizes=_span([int(s.fit.sum()) for s in splits]),
        fold=_span([round(p.fold, 1) for p in points]) + "x", law=law,
        mae_default=float(d.mean()), mae_careful=float(c.mean()),
        rel_default=float(np.mean(d / np.abs(a))), rel_careful=float(np.mean(c / np.abs(a))),
        ratio_ci=ratio_interval(points), coverage=float(np.mean([p.covered for p in points])),
        run_coverage=float(np.mean([p.run_covered for p in points])),
        width=float(np.mean([p.hi - p.lo for p in points])),
        bias=float(np.mean([p.default - p.actual for p in points])),
    )


# ---------------------------------------------------------------------------------------- report


def table(summaries: list[Summary], missing: list[Source]) -> str:
    head = ("| source | metric | series | fitted sizes | held-out points | beyond | default law | default MAE | "
            "careful MAE | ratio [90% CI] | default rel. | careful rel. | default 90% coverage | "
            "90% coverage, one run | mean interval width | default mean signed error |\n|" + "---|" * 16)
    rows = [
        f"| {s.source.name} | {s.source.metric} ({'higher' if s.source.higher_is_better else 'lower'} is better) "
        f"| {s.series} | {s.fitted_sizes} | {s.points} | {s.fold} | {s.law} | {s.mae_default:.4g} | "
        f"{s.mae_careful:.4g} | {s.mae_default / s.mae_careful:.2f} [{s.ratio_ci[0]:.2f}, {s.ratio_ci[1]:.2f}] | "
        f"{100 * s.rel_default:.2f}% | {100 * s.rel_careful:.2f}% | {100 * s.coverage:.0f}% | "
        f"{100 * s.run_coverage:.0f}% | {s.width:.3g} | {s.bias:+.3g} |"
        for s in summaries]
    rows += [f"| {s.name} | {s.metric} | not available: fetch-only, no `{s.file}` in --fetch-dir | | | | | | | | | | | | | |"
             for s in missing]
    return "\n".join([head, *rows])


def points_frame(points: list[Point], sources: dict[str, Source]) -> pd.DataFrame:
    """One row per predicted point; the true value (and so the errors' signs) only where the source's data
    may be redistributed."""
    rows = []
    for p in points:
        shipped = sources[p.source].shipped
        rows.append({"source": p.source, "series": p.series, "x": p.x, "fold": round(p.fold, 3),
                     "actual": p.actual if shipped else None, "default": p.default, "default_lo": p.lo,
                     "default_hi": p.hi, "covered": p.covered, "run_lo": p.run_lo, "run_hi": p.run_hi,
                     "run_covered": p.run_covered, "careful": p.careful,
                     "default_abs_error": abs(p.default - p.actual), "careful_abs_error": abs(p.careful - p.actual)})
    return pd.DataFrame(rows)


def report(summaries: list[Summary], missing: list[Source], ratio: float, draws: int) -> str:
    lines = ["# Real curves: the default fit against a careful per-series offset fit", "",
             f"Each series fitted at sizes ≤ 1/{ratio:g} of its largest, the larger sizes predicted. Default: "
             f"`planner fit` defaults (law auto, population pooling, {draws} posterior draws); careful: the "
             "offset power law per series by multi-start least squares (x0 free with ≥ 5 sizes, else 0). "
             "Ratio: default MAE / careful MAE, 90% bootstrap interval over series. Coverage: held-out "
             f"points inside the default's {LEVEL:.0%} intervals (`predict_interval`: the curve's), and inside "
             "the interval for one run (its draws plus the fit's run noise σ; a held-out point is one run).", "",
             table(summaries, missing), "",
             "Sources:", ""]
    lines += [f"- **{s.source.name}** ({s.source.study}; x = {s.source.unit}; "
              f"{'shipped' if s.source.shipped else 'fetch-only'}): {s.source.provenance}." for s in summaries]
    lines += [f"- **{s.name}** ({s.study}): {s.provenance}. Not run: its file was not given." for s in missing]
    lines += ["", "Command: `python benchmarks/real_curves.py --fetch-dir DIR` (see docs/results/real-curves.md)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fetch-dir", type=Path, default=None, help="directory with the fetch-only sources' raw files")
    ap.add_argument("--ratio", type=float, default=RATIO, help="fit sizes ≤ largest/RATIO (default 8)")
    ap.add_argument("--draws", type=int, default=1000, help="the default fit's posterior draws (default 1000)")
    ap.add_argument("--out-dir", type=Path, default=RESULTS)
    ap.add_argument("--only", nargs="*", default=None, help="source names to run (default: all available)")
    args = ap.parse_args(argv)
    summaries, points, missing = [], [], []
    for source in SOURCES:
        if args.only and source.name not in args.only:
            continue
        path = source.path(args.fetch_dir)
        if path is None or not path.is_file():
            missing.append(source)
            continue
        summary, pts = evaluate(source, source.read(path), args.draws, args.ratio)
        summaries.append(summary)
        points += pts
        print(f"{source.name}: default {summary.mae_default:.4g} ({summary.law}), careful {summary.mae_careful:.4g}, "
              f"coverage {summary.coverage:.0%}, one run {summary.run_coverage:.0%}", flush=True)
    text = report(summaries, missing, args.ratio, args.draws)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "real_curves.md").write_text(text, encoding="utf-8")
    points_frame(points, {s.name: s for s in SOURCES}).to_csv(args.out_dir / "real_curves.csv", index=False)
    print()
    print(table(summaries, missing))
    print(f"\nwrote {args.out_dir / 'real_curves.md'} and {args.out_dir / 'real_curves.csv'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
