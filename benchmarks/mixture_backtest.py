"""Which model of a language inside a mixture predicts trained final mixtures: a backtest on real runs.

Fits on a finished sweep's proxy rows only (per-language runs and mixture proxy runs of `runs.csv`),
then predicts every trained final mixture of one or more `final/metrics.csv` files (held out: no final
run is fitted) with three models of a language l inside a mixture:

- own curve:    S_l(D_l), the per-language curve (what the plan is planned on);
- τ:            S_l(D_l + τ_l·D_other), the effective-data law on the own curve;
- in-mixture:   M_l(D_l), the curve fitted on l's own scores inside the mixture proxy runs.

Printed per model: the RMS error of the per-language means over final seeds, each mixture's predicted
objective (sum over languages) against the achieved mean, and whether the model orders the mixtures as
training did. Then the headroom: under the in-mixture curves' posterior draws, how much the best
allocation of the same budget is predicted to gain over uniform (each draw's own optimum, so it is an
upper bound on what any plan could be expected to gain).

Usage: python benchmarks/mixture_backtest.py
       [--runs benchmarks/results/demo_adaptive_runs.csv]
       [--finals benchmarks/results/demo_adaptive_final_metrics_v1.csv ...]
       (writes benchmarks/results/mixture_backtest.md)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"

from fits import fit_runs  # noqa: E402
from planner.allocation.curves import CurveBank  # noqa: E402
from planner.allocation.problem import run_noise  # noqa: E402
from planner.allocation.solver import solve_sum  # noqa: E402
from planner.allocation.transfer import _larger_noise  # noqa: E402
from research.adaptive.adaptive import tokens_per_pair  # noqa: E402


def final_rows(paths: list[Path]) -> pd.DataFrame:
    """One row per (mixture composition, seed, language) of the final metrics files, labelled. Files are
    unioned; a composition trained in two files (same pairs, same seed) counts once."""
    rows = pd.concat([pd.read_csv(p).assign(file=p.stem) for p in paths], ignore_index=True)
    key = rows.groupby(["file", "mixture", "seed"]).apply(
        lambda g: "/".join(f"{lang}{int(p)}" for lang, p in sorted(zip(g["language"], g["pairs"]))),
        include_groups=False)
    rows["composition"] = [key[(f, m, s)] for f, m, s in zip(rows["file"], rows["mixture"], rows["seed"])]
    rows = rows.drop_duplicates(["composition", "seed", "language"])
    # A name trained with other pairs in another file (a plan re-planned) is told apart by its file.
    clash = rows.groupby("mixture")["composition"].nunique()
    rows["label"] = [f"{m} ({f})" if clash[m] > 1 else m for m, f in zip(rows["mixture"], rows["file"])]
    return rows


def final_means(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (mixture composition, language) of `final_rows`: its pairs and the achieved mean over
    seeds."""
    names = rows.groupby("composition")["label"].agg(lambda s: " = ".join(sorted(set(s))))
    out = rows.groupby(["composition", "language"]).agg(pairs=("pairs", "first"), achieved=("achieved", "mean"),
                                                        seeds=("seed", "nunique")).reset_index()
    out["mixture"] = out["composition"].map(names)
    return out


def predictions(fitset, finals: pd.DataFrame) -> pd.DataFrame:
    """The three models' predictions for every (composition, language) of `finals` (fits in pairs)."""
    out = finals.copy()
    own, tau, inside = [], [], []
    for comp, lang, pairs in zip(out["composition"], out["language"], out["pairs"]):
        group = out[out["composition"] == comp]
        other = float(group.loc[group["language"] != lang, "pairs"].sum())
        fit, t = fitset.languages[lang], fitset.transfer.get(lang)
        own.append(float(np.ravel(fit.predict(max(pairs, 1.0)))[0]))
        tau.append(float(np.ravel(fit.predict(max(pairs + (t.tau if t else 0.0) * other, 1.0)))[0]))
        mf = t.mixture_fit if t is not None else None
        inside.append(float(np.ravel(mf.predict(float(pairs)))[0]) if mf is not None else np.nan)
    out["own curve"], out["τ"], out["in-mixture"] = own, tau, inside
    return out


def _at(fit, x) -> np.ndarray | None:
    """Every posterior draw of `fit` read at x (a scalar, or one x per draw: draw i at x[i]), clipped
    where the law is defined (as the allocator reads it)."""
    if fit.boot is None:
        return None
    x = np.maximum(np.asarray(x, float), 0.0 if fit.curve.has_offset else 1.0)
    if x.ndim == 0:
        return np.asarray(fit.predict_draws(x), float).ravel()
    return np.diagonal(np.asarray(fit.predict_draws(x), float))[: x.size]  # [i, j]: draw j at x[i]


OWN_RESIDUALS = "in-mixture, own residuals"


def coverage(fitset, rows: pd.DataFrame, level: float = 0.9) -> dict[str, tuple[int, int]]:
    """Per model, (achieved scores inside the model's central `level` interval for one run, scores), each
    final seed's per-language score counted once. One run = each posterior draw plus the run noise, as the
    planner makes its predicted intervals (`planner.allocation.risk.predictive_draws`); the τ model reads
    each draw at its own effective data. The in-mixture model's noise is the larger of the proxy runs' and
    its own residual RMS (`planner.allocation.transfer.mixture_problem`); "in-mixture, own residuals" is
    the rule before, its residual RMS alone."""
    langs = sorted(fitset.languages)
    # one run's noise as the planner takes it: the proxy runs' (pooled where they are), and under the
    # in-mixture curves the larger of that and the in-mixture fit's residual RMS
    proxy = dict(zip(langs, run_noise(fitset, langs)))
    tail = (1 - level) / 2
    hits = {"own curve": [0, 0], "τ": [0, 0], "in-mixture": [0, 0], OWN_RESIDUALS: [0, 0]}
    for (_, seed), run in rows.groupby(["composition", "seed"]):
        for lang, pairs, achieved in zip(run["language"], run["pairs"], run["achieved"]):
            other = float(run.loc[run["language"] != lang, "pairs"].sum())
            fit, t = fitset.languages[lang], fitset.transfer.get(lang)
            own = _at(fit, pairs)
            tau_read = None
            if own is not None and t is not None:
                tau = np.asarray(t.draws, float)[: own.size] if t.draws is not None else np.full(own.size, t.tau)
                tau_read = _at(fit, pairs + tau * other)
            mf = t.mixture_fit if t is not None else None
            inside = _at(mf, pairs) if mf is not None else None
            residual = float(mf.rmse) if mf is not None and mf.rmse is not None else np.nan
            models = {"own curve": (own, proxy[lang]), "τ": (tau_read, proxy[lang]),
                      "in-mixture": (inside, float(_larger_noise(np.array([proxy[lang]]), np.array([residual]))[0])),
                      OWN_RESIDUALS: (inside, residual)}
            for name, (draws, sd) in models.items():
                if draws is None:
                    continue
                one_run = draws + np.random.default_rng([0, 1]).standard_normal(draws.size) * np.nan_to_num(sd)
                lo, hi = np.nanquantile(one_run, [tail, 1 - tail])
                hits[name][0] += int(lo <= achieved <= hi)
                hits[name][1] += 1
    return {k: (v[0], v[1]) for k, v in hits.items()}


def ordered_pairs(achieved: np.ndarray, predicted: np.ndarray, tie: float = 0.1) -> tuple[int, int]:
    """(pairs of mixtures a model orders as training did, pairs compared); a predicted difference under
    `tie` summed chrF counts as no order, so it is not right."""
    right = total = 0
    for i in range(len(achieved)):
        for j in range(i + 1, len(achieved)):
            total += 1
            d = predicted[i] - predicted[j]
            right += abs(d) >= tie and np.sign(d) == np.sign(achieved[i] - achieved[j])
    return int(right), total


def best_over_uniform(fits: list, cost: np.ndarray, budget: float) -> tuple[float, float, float]:
    """Under the fits' posterior draws (one fit per language, drawn jointly by index): each draw's optimal
    summed score minus uniform's (equal tokens), as (median, 5%, 95%) — an upper bound on what any plan
    could be expected to gain over uniform."""
    from fits.laws import Curve

    r = min(np.size(next(iter(f.boot.params.values()))) for f in fits)
    bank = CurveBank.from_curves([Curve(f.boot.family, {k: np.asarray(v, float)[:r] for k, v in f.boot.params.items()})
                                  for f in fits], np.ones(len(fits)))
    n = len(fits)
    best = solve_sum(bank, cost, np.zeros(n), np.full(n, np.inf), np.ones(n), budget).pairs
    uniform = np.broadcast_to(budget / n / cost, best.shape)
    gain = bank.utility(best).sum(-1) - bank.utility(uniform).sum(-1)
    gain = gain[np.isfinite(gain)]
    return float(np.median(gain)), float(np.quantile(gain, 0.05)), float(np.quantile(gain, 0.95))


def headroom(fitset, tokens_per_pair: dict[str, float], budget: float) -> tuple[float, float, float]:
    """`best_over_uniform` under the in-mixture curves."""
    langs = sorted(fitset.transfer)
    return best_over_uniform([fitset.transfer[lang].mixture_fit for lang in langs],
                             np.array([tokens_per_pair[lang] for lang in langs]), budget)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=Path, default=RESULTS / "demo_adaptive_runs.csv")
    ap.add_argument("--finals", type=Path, nargs="+", default=[RESULTS / "demo_adaptive_final_metrics_v1.csv",
                                                              RESULTS / "demo_adaptive_final_metrics.csv"])
    ap.add_argument("--budget", type=float, default=30000.0, help="tokens, for the headroom (the default's budget)")
    ap.add_argument("--out", type=Path, default=RESULTS / "mixture_backtest.md")
    args = ap.parse_args(argv)

    runs = pd.read_csv(args.runs)
    fitset = fit_runs(runs.astype(str), "chrf", bootstrap=1000, seed=0)
    rows = final_rows(args.finals)
    finals = final_means(rows)
    pred = predictions(fitset, finals)
    models = ["own curve", "τ", "in-mixture"]
    objectives = pred.groupby("mixture")[["achieved", *models]].sum().sort_values("achieved")
    lines = [f"Fitted on {args.runs.name} (proxy rows only); predicting the trained final mixtures of "
             f"{', '.join(p.name for p in args.finals)} (per-language means over "
             f"{int(pred['seeds'].min())}–{int(pred['seeds'].max())} seeds).", "",
             "| model | RMS error, per language (chrF) | pairs of mixtures ordered as achieved "
             "| one run's 90% interval held |", "|---|---:|---:|---:|"]
    held = coverage(fitset, rows)
    for m in models:
        rms = float(np.sqrt(np.mean((pred[m] - pred["achieved"]) ** 2)))
        right, pairs = ordered_pairs(objectives["achieved"].to_numpy(), objectives[m].to_numpy())
        inside, n = held[m]
        lines.append(f"| {m} | {rms:.2f} | {right} of {pairs} | {inside} of {n} ({inside / max(n, 1):.0%}) |")
    inside, n = held[OWN_RESIDUALS]
    lines += ["", f"The in-mixture intervals take the proxy runs' noise where it is the larger; with the in-mixture "
              f"fits' own residual RMS as the noise (the rule before) they held {inside} of {n} ({inside / max(n, 1):.0%})."]
    lines += ["", "Summed chrF per mixture, achieved mean and each model's prediction:", "",
              "| mixture | achieved | " + " | ".join(models) + " |", "|---|---:|" + "---:|" * len(models)]
    for name, row in objectives.iterrows():
        lines.append(f"| {name} | {row['achieved']:.2f} | " + " | ".join(f"{row[m]:.2f}" for m in models) + " |")
    lines += ["", "Per language, achieved mean and each model's prediction:", "",
              "| mixture | language | pairs | achieved | " + " | ".join(models) + " |",
              "|---|---|---:|---:|" + "---:|" * len(models)]
    for _, row in pred.sort_values(["mixture", "language"]).iterrows():
        lines.append(f"| {row['mixture']} | {row['language']} | {row['pairs']:.0f} | {row['achieved']:.2f} | "
                     + " | ".join(f"{row[m]:.2f}" for m in models) + " |")
    tpp = tokens_per_pair(runs[runs["mixture"].isna()], sorted(fitset.transfer))
    med, low, high = headroom(fitset, tpp, args.budget)
    lines += ["", f"Headroom at {args.budget:,.0f} tokens under the in-mixture curves: each posterior draw's best "
              f"allocation over uniform (equal tokens), median {med:+.2f} summed chrF, 90% of draws in "
              f"[{low:+.2f}, {high:+.2f}]: an upper bound on what a plan can be expected to gain here."]
    text = "\n".join(lines) + "\n"
    args.out.write_text(text)  # before printing: a closed pipe (| head) must not lose the table
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
