"""What the final runs say, as pure functions on their tables: paired verdicts and calibration.

Paired comparison: every mixture is trained with the same final seeds, so the plan and a baseline trained
with seed s share everything but the data mix (initialisation, batch order draws, dropout). The difference
d_s = sign·(plan_s − baseline_s) (sign: +1 when higher is better) cancels what they share; its mean over
seeds gets a t interval, mean ± t(level; n−1)·sd/√n. The verdict reads the interval: *beat* when it lies
above 0, *lost* when below, *tied* when it straddles 0; one seed has no interval and *cannot tell*.

Calibration: a prediction interval at level q should contain the achieved score in about q of the
(mixture, language, seed) cases; per language, the coverage and the error (achieved − predicted).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

OBJECTIVE_SCOPE = "(objective)"


def paired_interval(diffs: np.ndarray, level: float) -> tuple[float, float, float]:
    """Mean of paired differences and its t interval (NaN bounds for fewer than two)."""
    d = np.asarray(diffs, dtype=float)
    d = d[np.isfinite(d)]
    if len(d) == 0:
        return math.nan, math.nan, math.nan
    mean = float(d.mean())
    if len(d) < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d)))
    return mean, mean - half, mean + half


def verdict(n: int, low: float, high: float) -> str:
    if n < 2 or not (math.isfinite(low) and math.isfinite(high)):
        return "cannot tell (one seed)"
    if low > 0:
        return "beat"
    if high < 0:
        return "lost"
    return "tied"


def comparison_table(objectives: pd.DataFrame, metrics: pd.DataFrame, plans: list[str], baselines: list[str],
                     higher_is_better: bool, level: float = 0.9) -> pd.DataFrame:
    """One row per (plan mixture, baseline, scope): the objective, then each language. Columns: mixture,
    baseline, scope, n_seeds, mean_difference, low, high, verdict, seed_<s>… (positive = the plan better)."""
    sign = 1.0 if higher_is_better else -1.0
    rows = []
    for plan in plans:
        for base in baselines:
            scopes = [(OBJECTIVE_SCOPE, _by_seed(objectives, plan, "achieved_objective"),
                       _by_seed(objectives, base, "achieved_objective"))]
            for lang in sorted(set(metrics.loc[metrics["mixture"] == plan, "language"])):
                scopes.append((lang, _by_seed(metrics[metrics["language"] == lang], plan, "achieved"),
                               _by_seed(metrics[metrics["language"] == lang], base, "achieved")))
            for scope, mine, theirs in scopes:
                seeds = sorted(set(mine) & set(theirs))
                if not seeds:  # nothing to pair (a partial launch): no row rather than an empty verdict
                    continue
                diffs = np.array([sign * (mine[s] - theirs[s]) for s in seeds])
                mean, low, high = paired_interval(diffs, level)
                row = dict(mixture=plan, baseline=base, scope=scope, n_seeds=len(seeds), mean_difference=mean,
                           low=low, high=high, verdict=verdict(len(seeds), low, high))
                row.update({f"seed_{s}": d for s, d in zip(seeds, diffs)})
                rows.append(row)
    return pd.DataFrame(rows)


def _by_seed(table: pd.DataFrame, mixture: str, column: str) -> dict[int, float]:
    sub = table[table["mixture"] == mixture]
    return {int(s): float(v) for s, v in zip(sub["seed"], sub[column]) if pd.notna(v)}


def calibration_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per language and overall ("(all)"): cases with an interval, the share inside it, and the mean and
    RMS of achieved − predicted."""
    rows = []
    groups = [(lang, g) for lang, g in metrics.groupby("language", sort=True)] + [("(all)", metrics)]
    for name, g in groups:
        has = g["predicted_low"].notna() & g["predicted_high"].notna() & g["achieved"].notna()
        err = (g["achieved"] - g["predicted"]).dropna()
        inside = (g.loc[has, "achieved"] >= g.loc[has, "predicted_low"]) & (g.loc[has, "achieved"] <= g.loc[has, "predicted_high"])
        rows.append(dict(language=name, cases=int(has.sum()), coverage=float(inside.mean()) if has.any() else math.nan,
                         mean_error=float(err.mean()) if len(err) else math.nan,
                         rms_error=float(np.sqrt((err**2).mean())) if len(err) else math.nan))
    return pd.DataFrame(rows)


def headline(comparison: pd.DataFrame, metric: str, level: float) -> list[str]:
    """One sentence per (plan mixture, baseline): the verdict on the objective with its interval."""
    out = []
    for _, r in comparison[comparison["scope"] == OBJECTIVE_SCOPE].iterrows():
        who = "the plan" if r["mixture"] == "plan" else f"the {r['mixture']} mixture"
        if r["verdict"].startswith("cannot"):
            out.append(f"{who} vs {r['baseline']}: {r['mean_difference']:+.2f} {metric} with one final seed — one "
                       "seed cannot tell a plan from a baseline (seed noise is often larger than the gain)")
        else:
            word = {"beat": "beat", "lost": "lost to", "tied": "tied with"}[r["verdict"]]
            out.append(f"{who} {word} {r['baseline']}: {r['mean_difference']:+.2f} {metric} over {r['n_seeds']} paired "
                       f"seeds, {level:.0%} interval [{r['low']:+.2f}, {r['high']:+.2f}]")
    return out
