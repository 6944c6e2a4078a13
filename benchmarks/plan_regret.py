"""How much of the achievable gain does a plan keep, across many kinds of truth?

For every truth family of `research.truths` (and the families fitted to real sweeps, when their runs are
in benchmarks/results/), draw worlds with known curves, play the sweep (noisy runs.csv), fit and plan,
and score every plan on the true curves:

    regret = (true optimum − plan's true value) / (true optimum − uniform's true value)

0 is a perfect plan, 1 no better than equal tokens, above 1 worse than not planning. Per family the
figure is pooled over instances (Σ numerators / Σ denominators, so near-tie worlds do not dominate),
with a 90% bootstrap interval over instances; "ratio" is a method's regret over the notebook's, with a
paired bootstrap interval.

Rows:
- `notebook`: what a careful analyst does by hand — per-language three-parameter least squares of
  C − A·x^−α (zero-shot rows dropped: the law diverges there) and the exact KKT allocation, under the
  same budget, floors and caps;
- `default`: the pipeline as `planner run` runs it (`fits.fit_runs` → `planner.allocation.allocate`,
  every setting from the config's defaults);
- `oracle`: the Bayes decision of someone who knows the family's true distribution of curves (its prior
  is 4,000 curves drawn from the family itself, its posterior exact by likelihood weighting with the true
  noise, its plan the expected-utility optimum): no method can be expected to do better, so it shows
  how much regret is irreducible on each family;
- alternatives, so the table shows why the defaults are what they are.

A second table checks exact recovery on noiseless data: per family, the worst relative error of the
default fit's prediction at the allocated sizes and the worst relative gap between the plan's true value
and the true optimum.

`--objective maxmin` judges the fairness objective instead: every plan (notebook and default) is solved
for maxmin, its true value is the worst language's true score, and the true optimum comes from
`research.truths_maxmin` (independent of the planner's solver). There is no oracle row: its plan
maximises expected utility, which for a minimum is not the maxmin of the expected curves. Worlds where
uniform is already near the maxmin optimum (a capped bottleneck that uniform also caps) have almost no
room, so the table also gives the room, mean (optimum − uniform), the pooled regret divides by.

    python benchmarks/plan_regret.py                         # every family, 30 worlds each (long)
    python benchmarks/plan_regret.py --instances 5 --families steep-low-ceilings log-like
    python benchmarks/plan_regret.py --objective maxmin [--held-out]   # the fairness objective
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from core.config import PlannerConfig
from fits import fit_runs
from fits.laws import Curve
from planner.allocation import LanguageLimits, allocate
from planner.allocation.curves import CurveBank
from planner.allocation.solver import solve_maxmin, solve_sum

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: `research` is not installed
from research.truths import FAMILIES, METRIC, UNIDENTIFIED, World, noiseless, simulate_runs  # noqa: E402
from research.truths_heldout import HELD_OUT  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


# ------------------------------------------------------------------------------------ the notebook


def notebook_curve(x: np.ndarray, y: np.ndarray) -> Curve:
    """Per-language y = C − A·x^−α by ordinary least squares (A, α > 0), from the best of a grid of α."""
    best = None
    for alpha in np.exp(np.linspace(np.log(0.01), np.log(4.0), 40)):
        t = x**-alpha
        design = np.column_stack([np.ones_like(t), -t])
        (c, a), *_ = np.linalg.lstsq(design, y, rcond=None)
        rss = float(np.sum((y - design @ [c, a]) ** 2))
        if a > 0 and (best is None or rss < best[0]):
            best = (rss, c, a, alpha)
    if best is None:  # never improves: a flat curve (the solver keeps it at its floor)
        return Curve("power", {"offset": float(np.mean(y)), "scale": 0.0, "alpha": 1.0})
    _, c, a, alpha = best
    fit = least_squares(lambda p: p[0] - np.exp(p[1]) * x ** -np.exp(p[2]) - y, [c, np.log(a), np.log(alpha)], method="lm")
    c, log_a, log_alpha = fit.x
    return Curve("power", {"offset": c, "scale": float(np.exp(log_a)), "alpha": float(np.exp(log_alpha))})


def plan_notebook(world: World, runs: pd.DataFrame, objective: str = "sum") -> np.ndarray:
    curves = []
    for lang in world.languages:
        r = runs[(runs.language == lang) & (runs.n_pairs > 0)]
        curves.append(notebook_curve(r.n_pairs.to_numpy(float), r[METRIC].to_numpy(float)))
    lo, hi = world.bounds()
    bank = CurveBank.from_curves(curves, np.ones(world.n))
    if objective == "maxmin":
        return solve_maxmin(bank, world.tokens_per_pair, lo, hi, world.budget).pairs
    return solve_sum(bank, world.tokens_per_pair, lo, hi, np.ones(world.n), world.budget).pairs


# ------------------------------------------------------------------------------------- the oracle


def oracle_prior(draw: Callable, seed: int, worlds: int = 400) -> CurveBank:
    rng = np.random.default_rng([seed, 99])
    curves = [c for _ in range(worlds) for c in draw(rng).curves]
    return CurveBank.from_curves(curves, np.ones(len(curves)))


def plan_oracle(world: World, runs: pd.DataFrame, prior: CurveBank, draws: int = 400) -> np.ndarray:
    from planner.allocation.curves import ExpectedCurves

    rng = np.random.default_rng(0)
    picks = []
    for i, lang in enumerate(world.languages):
        r = runs[runs.language == lang]
        x, y = r.n_pairs.to_numpy(float), r[METRIC].to_numpy(float)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            pred = prior.predict(x[:, None])  # (n, K)
        sigma = np.array([float(world.sigma_at(i, np.array(v))) for v in x])[:, None]
        loglik = np.where(np.isfinite(pred), -0.5 * ((y[:, None] - pred) / sigma) ** 2, -np.inf).sum(0)
        w = np.exp(loglik - loglik.max())
        picks.append(rng.choice(len(w), size=draws, p=w / w.sum()))
    idx = np.array(picks).T  # (draws, L)
    bank = CurveBank(is_power=prior.is_power[idx], offset=prior.offset[idx], scale=prior.scale[idx],
                     alpha=prior.alpha[idx], x0=prior.x0[idx], a=prior.a[idx], b=prior.b[idx],
                     x_per_pair=np.ones(world.n), sign=1.0)
    lo, hi = world.bounds()
    return solve_sum(ExpectedCurves.from_bank(bank), world.tokens_per_pair, lo, hi, np.ones(world.n), world.budget).pairs


# ------------------------------------------------------------------------------- the project's pipeline


@dataclass(frozen=True)
class Method:
    name: str
    fit: dict  # fit_runs keyword arguments
    risk: str


def methods() -> list[Method]:
    """The pipeline's defaults (from the config, as `planner run` uses them), then the alternatives."""
    cfg = PlannerConfig()
    default = Method(
        "default", dict(law=cfg.fit.law, pooling=cfg.fit.pooling, ceiling=cfg.fit.ceiling, bootstrap=cfg.fit.bootstrap),
        cfg.budget.risk,
    )
    return [
        default,
        Method("population, plug-in point fit (risk mean)", {**default.fit}, "mean"),
        Method("per-language robust fits, ceiling 100 (previous default)",
               dict(law="auto", pooling="none", ceiling=100.0, bootstrap=200), "mean"),
        Method("per-language robust fits, ceiling fitted", dict(law="auto", pooling="none", bootstrap=200), "mean"),
    ]


def limits_of(world: World) -> dict[str, LanguageLimits]:
    lo, hi = world.bounds()
    return {lang: LanguageLimits(min_pairs=float(l) or None, max_pairs=None if not np.isfinite(h) else float(h))
            for lang, l, h in zip(world.languages, lo, hi)}


def plan_pipeline(world: World, runs: pd.DataFrame, method: Method, cache: dict, objective: str = "sum"):
    """fit_runs → allocate as the pipeline runs them; returns (pairs, point-fit predictions at them)."""
    key = tuple(sorted(method.fit.items()))
    if key not in cache:
        cache[key] = fit_runs(runs.astype(str), METRIC, seed=0, **method.fit)
    fitset = cache[key]
    plan = allocate(fitset, budget=world.budget, unit="tokens", limits=limits_of(world), risk=method.risk,
                    objective=objective)
    by_lang = {p.language: p for p in plan.languages}
    pairs = np.array([by_lang[lang].pairs_exact for lang in world.languages])
    point = np.array([float(fitset.languages[lang].predict(pairs[i])) for i, lang in enumerate(world.languages)])
    return pairs, point


# ------------------------------------------------------------------------------------------ scoring


def pooled_regret(opt, uni, val, rng, n_boot=2000):
    loss, room = opt - val, opt - uni
    idx = rng.integers(0, len(opt), size=(n_boot, len(opt)))
    with np.errstate(divide="ignore", invalid="ignore"):
        boots = loss[idx].sum(1) / room[idx].sum(1)
    # A resample of only worlds without room (uniform already optimal: maxmin with a bottleneck that
    # uniform also caps) has no regret, 0/0: it is left out rather than making the interval NaN.
    return float(loss.sum() / room.sum()), *np.nanquantile(boots, [0.05, 0.95])


def ratio_interval(opt, uni, a, b, rng, n_boot=2000):
    """regret(a) / regret(b) with a paired bootstrap interval over instances."""
    room = opt - uni
    idx = rng.integers(0, len(opt), size=(n_boot, len(opt)))
    ra = (opt - a)[idx].sum(1) / room[idx].sum(1)
    rb = (opt - b)[idx].sum(1) / room[idx].sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        boots = ra / rb
    point = ((opt - a).sum() / room.sum()) / ((opt - b).sum() / room.sum())
    return float(point), *np.nanquantile(boots, [0.05, 0.95])


def run_family(name: str, draw: Callable, instances: int, chosen: list[Method], seed: int,
               oracle: bool, objective: str = "sum") -> dict[str, np.ndarray]:
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    values = {"optimum": [], "uniform": [], "notebook": []} | {m.name: [] for m in chosen}
    prior = oracle_prior(draw, seed) if oracle else None
    if oracle:
        values["oracle"] = []
    for _ in range(instances):
        world = draw(rng)
        runs = simulate_runs(world, rng)
        values["optimum"].append(world.value(world.optimum(objective), objective))
        values["uniform"].append(world.value(world.uniform(), objective))
        values["notebook"].append(world.value(plan_notebook(world, runs, objective), objective))
        if oracle:
            values["oracle"].append(world.value(plan_oracle(world, runs, prior)))
        cache: dict = {}
        for m in chosen:
            values[m.name].append(world.value(plan_pipeline(world, runs, m, cache, objective)[0], objective))
    return {k: np.array(v) for k, v in values.items()}


def clean_check(name: str, draw: Callable, instances: int, seed: int, objective: str = "sum") -> tuple[float, float]:
    """Worst relative prediction error at the allocated sizes and worst relative value gap, noiseless."""
    rng = np.random.default_rng([seed + 7, zlib.crc32(name.encode())])
    default = methods()[0]
    worst_pred = worst_gap = 0.0
    for _ in range(instances):
        world = noiseless(draw(rng))
        runs = simulate_runs(world, rng, noise_scale=0.0)
        pairs, point = plan_pipeline(world, runs, default, {}, objective)
        truth = world.predict(pairs)
        worst_pred = max(worst_pred, float(np.max(np.abs(point - truth) / np.abs(truth))))
        opt = world.value(world.optimum(objective), objective)
        worst_gap = max(worst_gap, (opt - world.value(pairs, objective)) / abs(opt))
    return worst_pred, worst_gap


def real_families() -> dict[str, Callable]:
    """Families around curves fitted to real sweeps (benchmarks/results/*_runs.csv), when present."""
    from benchmarks_real import families_from_results  # noqa: PLC0415 (optional, see benchmarks_real.py)

    return families_from_results(RESULTS)


def truth_families(held_out: bool) -> dict[str, Callable]:
    """The held-out families, or the in-law ones plus those fitted to real sweeps (when present)."""
    if held_out:
        return {name: f.draw for name, f in HELD_OUT.items()}
    families = {name: f.draw for name, f in FAMILIES.items()}
    try:
        families.update(real_families())
    except ImportError:
        pass
    return families


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--instances", type=int, default=30, help="worlds per family (default 30)")
    p.add_argument("--clean", type=int, default=5, help="noiseless worlds per family for the exactness check")
    p.add_argument("--families", nargs="*", default=None, help="default: every family")
    p.add_argument("--alternatives", action="store_true", help="also run the alternative methods")
    p.add_argument("--no-oracle", action="store_true", help="skip the Bayes-oracle reference row")
    p.add_argument("--held-out", action="store_true",
                   help="the held-out families instead (truths outside the fit's laws, research/truths_heldout.py); "
                        "no oracle row, and results go to plan_regret_heldout.csv unless --out says otherwise")
    p.add_argument("--objective", choices=["sum", "maxmin"], default="sum",
                   help="the objective planned for and judged (maxmin: no oracle row; results go to "
                        "plan_regret_maxmin[_heldout].csv)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="default: results/plan_regret.csv (plan_regret_heldout.csv)")
    args = p.parse_args(argv)

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    families = truth_families(args.held_out)
    if args.held_out:  # the oracle's prior is a bank of the fit's laws; held-out truths are by design outside them
        args.no_oracle = True
    if args.objective == "maxmin":
        args.no_oracle = True  # the oracle maximises expected utility: for a minimum that is not maxmin
    stem = "plan_regret" + ("_maxmin" if args.objective == "maxmin" else "") + ("_heldout" if args.held_out else "")
    args.out = args.out or str(RESULTS / f"{stem}.csv")
    names = args.families or list(families)
    unknown = sorted(set(names) - set(families))
    if unknown:
        p.error(f"unknown families {unknown}; known: {sorted(families)}")
    chosen = methods() if args.alternatives else methods()[:1]
    judged = "" if args.objective == "sum" else f"; objective {args.objective}"
    print(f"{os.cpu_count()} cores; {args.instances} worlds per family; default = {chosen[0].fit} risk={chosen[0].risk}"
          f"{judged}", flush=True)
    rows, started = [], time.perf_counter()
    boot = np.random.default_rng(args.seed + 1)
    for name in names:
        t0 = time.perf_counter()
        v = run_family(name, families[name], args.instances, chosen, args.seed, not args.no_oracle, args.objective)
        pred_err, gap = (clean_check(name, families[name], args.clean, args.seed, args.objective) if args.clean
                         else (np.nan, np.nan))
        note = "noise not identifiable" if name in UNIDENTIFIED else ""
        for m in ["notebook"] + [c.name for c in chosen] + ([] if args.no_oracle else ["oracle"]):
            r, lo, hi = pooled_regret(v["optimum"], v["uniform"], v[m], boot)
            ratio, rlo, rhi = ratio_interval(v["optimum"], v["uniform"], v[m], v["notebook"], boot)
            rows.append(dict(family=name, method=m, regret=r, regret_lo=lo, regret_hi=hi, ratio=ratio, ratio_lo=rlo,
                             ratio_hi=rhi, instances=args.instances, gain_of_optimum=float(np.mean(v["optimum"] - v["uniform"])),
                             clean_pred_error=pred_err if m == "default" else np.nan,
                             clean_value_gap=gap if m == "default" else np.nan, note=note))
        extra = 0 if args.no_oracle else 1
        d = rows[-len(chosen) - extra]
        nb = rows[-len(chosen) - extra - 1]
        orc = "" if args.no_oracle else f"  oracle {rows[-1]['regret']:.3f} ({rows[-1]['ratio']:.2f}×)"
        print(f"{name:26s} notebook {nb['regret']:.3f}  default {d['regret']:.3f} [{d['regret_lo']:.3f}, {d['regret_hi']:.3f}]"
              f"  ratio {d['ratio']:.2f} [{d['ratio_lo']:.2f}, {d['ratio_hi']:.2f}]  clean: pred {pred_err:.1e} value {gap:.1e}"
              f"{orc}{room_note(v) if args.objective != 'sum' else ''}  ({time.perf_counter() - t0:.0f} s) {note}",
              flush=True)
    table = pd.DataFrame(rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    shown = os.path.relpath(args.out, RESULTS.parent.parent)  # the results files name no machine's paths
    print(f"\nwrote {shown} ({time.perf_counter() - started:.0f} s)")
    print(markdown(table, room=args.objective != "sum"))
    return 0


def room_note(v: dict[str, np.ndarray]) -> str:
    """The pooled room (mean optimum − uniform) and how many worlds had next to none (uniform within
    1e-6 of the optimum, relative): their regret would be 0/0, pooling keeps them from mattering."""
    room = v["optimum"] - v["uniform"]
    tied = int(np.sum(room <= 1e-6 * np.abs(v["optimum"])))
    return f"  room {np.mean(room):.3f} ({tied} worlds without)"


def markdown(table: pd.DataFrame, room: bool = False) -> str:
    """The results table; `room` adds the mean (optimum − uniform) the pooled regret divides by."""
    head = "| family | notebook | default [90%] | default / notebook [90%] | oracle (/ notebook) | "
    head += "room: optimum − uniform | " if room else ""
    lines = [head + "noiseless: pred. error, value gap |", "|---|---:|---:|---:|---:|" + ("---:|" if room else "") + "---|"]
    for name, g in table.groupby("family", sort=False):
        nb = g[g.method == "notebook"].iloc[0]
        d = g[g.method == "default"].iloc[0]
        o = g[g.method == "oracle"]
        oracle = f"{o.iloc[0].regret:.3f} ({o.iloc[0].ratio:.2f})" if len(o) else "-"
        clean = f"{d.clean_pred_error:.0e}, {d.clean_value_gap:.0e}" + (f" ({d.note})" if isinstance(d.note, str) and d.note else "")
        gain = f"{d.gain_of_optimum:.3g} | " if room else ""
        lines.append(f"| {name} | {nb.regret:.3f} | {d.regret:.3f} [{d.regret_lo:.3f}, {d.regret_hi:.3f}] | "
                     f"**{d.ratio:.2f}** [{d.ratio_lo:.2f}, {d.ratio_hi:.2f}] | {oracle} | {gain}{clean} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
