"""Research: alternative scales for the extrapolation term, judged on the real curves (issue 30).

The shipped term (`fits.extrapolation`) pools one scale k over a fit's languages from one backtest each
(the largest size held out): k² = mean_l (e_l² − σ²/m_l) / d_l², Student t with as many degrees of freedom
as languages. Two principled variants, both symmetric (so the point curve, every mean over draws and every
plan stay where they are), are computed here on the same default fits as benchmarks/real_curves.py:

- `hierarchical`: the languages' scales are not one number but drawn from a population (an inverse-gamma
  prior on k_l², i.e. the standardised backtest errors z_l = sqrt(max(e_l² − σ²/m_l, 0)) / d_l are
  Student t with 2a degrees of freedom and scale sqrt(b/a), a and b by maximum likelihood over the
  languages). Each language's term is its posterior predictive: a t with 2a + 1 degrees of freedom and
  scale² (b + z_l²/2)/(a + 1/2). A language whose own backtest erred much gets a wider interval, and heavy
  tails across languages (a few series missing by much) show up as few degrees of freedom.
- `distances`: backtests at two distances instead of one: besides the shipped hold-out of the largest
  size, each language is also fitted without its two largest sizes (all languages at once, the chosen law,
  as the backtest fits) and predicts both, so the cases include extrapolations about twice as far; k² is
  the same mean over all cases, the t's degrees of freedom the number of languages.

    python benchmarks/real_curves_variants.py [--fetch-dir DIR] [--only NAME ...]

Prints, per source and rule, the 90% coverage of the curve's interval and of one run's, the mean width,
and the pooled scale. No file is written; docs/results/real-curves.md reports the outcome.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import optimize, stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from real_curves import LEVEL, default_fits, run_interval, split_curve  # noqa: E402
from real_curves_sources import SOURCES  # noqa: E402

from fits.extrapolation import Extrapolation, estimate  # noqa: E402
from fits.laws import Curve as LawCurve  # noqa: E402
from fits.pooled import fit_pooled, natural_params  # noqa: E402
from fits.population import metric_bounds  # noqa: E402


@dataclass(frozen=True)
class Case:
    language: str
    error: float
    distance: float
    noise: float  # σ²/runs of the held-out value


def shipped_cases(fitset, sigma: float) -> list[Case]:
    """The backtest cases the product pools (one per language: its largest size held out)."""
    out = []
    for lang, lf in fitset.languages.items():
        bt = lf.backtest
        below = [s for s in lf.sizes if 0 < s < bt.x_held] if bt is not None else []
        if below:
            out.append(Case(lang, bt.actual - bt.predicted, float(np.log(bt.x_held / max(below))), sigma**2))
    return out


def two_out_cases(fitset, splits, source, sigma: float) -> list[Case]:
    """Each language fitted (all at once, the chosen law) without its two largest sizes, predicting both."""
    law = fitset.population["law"]
    train, held = {}, {}
    for s in splits:
        x, y = s.curve.x[s.fit], s.curve.y[s.fit]
        sizes = np.unique(x)
        if len(sizes) < 4:  # two sizes left to fit at least
            continue
        keep = x <= sizes[-3]
        train[s.curve.series] = (x[keep], y[keep])
        held[s.curve.series] = [(float(v), float(np.mean(y[x == v]))) for v in sizes[-2:]]
    if not train:
        return []

    class _Y:
        def __init__(self, y):
            self.y = y

    bounds, _ = metric_bounds(source.metric, source.higher_is_better, {k: _Y(v[1]) for k, v in train.items()})
    fit = fit_pooled(law, train, bounds)
    family = "log" if law == "log" else "power"
    out = []
    for lang, points in held.items():
        curve = LawCurve(family, natural_params(law, fit.posts[lang].phi), bounds.sign > 0)
        largest = float(train[lang][0].max())
        for xh, actual in points:
            out.append(Case(lang, actual - float(curve.predict(xh)), float(np.log(xh / largest)), sigma**2))
    return out


def hierarchical(cases: list[Case]) -> dict[str, Extrapolation]:
    """Per-language predictive scales under an inverse-gamma population of scales (module docstring)."""
    z = np.array([np.sqrt(max(c.error**2 - c.noise, 0.0)) / c.distance for c in cases])
    sym = np.r_[z, -z]  # the sign is not modelled

    def nll(p):
        nu, tau = np.exp(p)
        with np.errstate(all="ignore"):  # a degenerate population (every error inside the noise) overflows
            return -np.sum(stats.t.logpdf(sym, nu, scale=tau)) / 2

    tau0 = max(float(np.sqrt(np.mean(z**2))), 1e-12)
    best = min((optimize.minimize(nll, [np.log(nu0), np.log(tau0)], method="Nelder-Mead") for nu0 in (2.0, 10.0, 50.0)),
               key=lambda r: r.fun)
    nu, tau = np.clip(np.exp(best.x), [0.5, 0.0], [1e3, np.inf])
    a, b = nu / 2, tau**2 * nu / 2
    return {c.language: Extrapolation(float(np.sqrt((b + zi**2 / 2) / (a + 0.5))), 2 * a + 1)
            for c, zi in zip(cases, z)}


def interval_score(lo, hi, y, level: float = LEVEL) -> np.ndarray:
    """Gneiting & Raftery's interval score of a central interval (lower is better): its width plus 2/α
    times how far the truth lies outside it; a proper score, so neither too narrow nor too wide pays."""
    alpha = 1 - level
    return (hi - lo) + 2 / alpha * (np.maximum(lo - y, 0) + np.maximum(y - hi, 0))


def coverage(fitset, splits, sigma: float, rules: dict[str, Extrapolation | None]) -> tuple[float, ...]:
    cov, run, width, score = [], [], [], []
    for s in splits:
        lf = fitset.languages[s.curve.series]
        saved = lf.extrapolation
        lf.extrapolation = rules.get(s.curve.series)
        x, y = s.curve.x[s.held], s.curve.y[s.held]
        lo, hi = lf.predict_interval(x, LEVEL)
        rlo, rhi = run_interval(lf, x, sigma)
        lf.extrapolation = saved
        cov += list((lo <= y) & (y <= hi))
        run += list((rlo <= y) & (y <= rhi))
        width += list(hi - lo)
        score += list(interval_score(rlo, rhi, y))
    return float(np.mean(cov)), float(np.mean(run)), float(np.mean(width)), float(np.mean(score))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fetch-dir", type=Path, default=None)
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--draws", type=int, default=1000)
    args = ap.parse_args(argv)
    print("| source | rule | 90% coverage | one run | mean width | interval score, one run | scale (pooled / median) |\n"
          "|---|---|---|---|---|---|---|")
    for source in SOURCES:
        path = source.path(args.fetch_dir)
        if (args.only and source.name not in args.only) or path is None or not path.is_file():
            continue
        splits = [s for s in (split_curve(c) for c in source.read(path)) if s is not None]
        fitset = default_fits(source, splits, args.draws)
        sigma = float(fitset.population.get("sigma") or 0.0)
        base = shipped_cases(fitset, sigma)
        shipped = estimate((c.error, c.distance, c.noise) for c in base)
        both = base + two_out_cases(fitset, splits, source, sigma)
        dist = estimate((c.error, c.distance, c.noise) for c in both)
        dist = None if dist is None else Extrapolation(dist.scale, shipped.languages)
        hier = hierarchical(base)
        rules = {"draws only": {}, "shipped": {k: shipped for k in fitset.languages},
                 "hierarchical": hier, "distances": {k: dist for k in fitset.languages}}
        for name, rule in rules.items():
            c, r, w, score = coverage(fitset, splits, sigma, rule)
            scales = [e.scale for e in rule.values() if e is not None]
            extra = ""
            if name == "hierarchical":
                extra = f", dof {next(iter(rule.values())).languages:.1f}"
            if name == "distances":
                extra = f", {len(both)} cases"
            sc = f"{np.median(scales):.3g}{extra}" if scales else "-"
            print(f"| {source.name} | {name} | {c:.0%} | {r:.0%} | {w:.3g} | {score:.3g} | {sc} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
