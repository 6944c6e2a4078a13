"""How much of the achievable gain does a plan keep when its curves come from noisy runs?

Draws synthetic languages with known laws y = C − A·x^(−α) (heterogeneous exponents, ceilings and token
costs), simulates the sweep the project runs by default (4 sizes, one seed, ~1 chrF of seed noise), fits
and plans, and scores every plan with the *true* curves:

    regret = (true optimum − plan's true value) / (true optimum − uniform's true value)

0 is a perfect plan, 1 is no better than equal tokens, above 1 is worse than not planning. The figure is
pooled over instances (Σ numerators / Σ denominators, so near-tie instances do not dominate), with a
paired bootstrap interval over instances and the median of per-instance ratios.

Rows: the reference — plain per-language least squares of the three-parameter law + the exact solver —
then the project's pipeline (`fits.fit_runs` → `planner.allocation.allocate`) with the defaults of the
experiment config (what `planner run` uses) and with each alternative, so the table shows why the
defaults are what they are. "vs plain" is a row's regret divided by the reference's; the target for the
defaults is ≤ 0.5.

    python benchmarks/plan_regret.py                      # the default study (a few minutes)
    python benchmarks/plan_regret.py --instances 20       # a quick look
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from fits import fit_runs
from fits.laws import Curve
from planner.allocation import allocate
from planner.allocation.curves import CurveBank
from planner.allocation.solver import solve_sum
from core.config import PlannerConfig

METRIC = "chrf"


@dataclass(frozen=True)
class World:
    """True curves of L languages (pairs), their token costs, and the token budget to plan."""

    ceiling: np.ndarray
    scale: np.ndarray
    alpha: np.ndarray
    tokens_per_pair: np.ndarray
    budget: float

    @property
    def languages(self) -> list[str]:
        return [f"l{i:02d}" for i in range(len(self.alpha))]

    def curves(self) -> CurveBank:
        return CurveBank.from_curves(
            [Curve("power", {"offset": c, "scale": a, "alpha": al}) for c, a, al in zip(self.ceiling, self.scale, self.alpha)],
            np.ones(len(self.alpha)),
        )

    def value(self, pairs: np.ndarray) -> float:
        """The true objective (sum of chrF over languages) of an allocation."""
        return float(np.sum(self.curves().predict(pairs)))

    def optimum(self) -> np.ndarray:
        n = len(self.alpha)
        return solve_sum(self.curves(), self.tokens_per_pair, np.zeros(n), np.full(n, np.inf), np.ones(n), self.budget).pairs

    def uniform(self) -> np.ndarray:
        return self.budget / len(self.alpha) / self.tokens_per_pair


def draw_world(rng: np.random.Generator, args) -> World:
    n = args.languages
    alpha = rng.uniform(*args.alpha, n)
    ceiling = rng.uniform(*args.ceiling, n)
    y_small = rng.uniform(*args.start, n)  # chrF at the smallest size
    scale = (ceiling - y_small) * min(args.sizes) ** alpha
    tpp = rng.uniform(*args.tokens_per_pair, n)
    return World(ceiling, scale, alpha, tpp, budget=args.budget_pairs * n * tpp.mean())


def simulate_runs(rng: np.random.Generator, world: World, args) -> pd.DataFrame:
    rows = []
    for lang, c, a, al, tpp in zip(world.languages, world.ceiling, world.scale, world.alpha, world.tokens_per_pair):
        for size in args.sizes:
            for seed in range(args.seeds):
                y = c - a * size**-al + rng.normal(0.0, args.noise)
                rows.append({"language": lang, "n_pairs": size, "n_tokens": size * tpp, "seed": seed, METRIC: y})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------ the reference


def plain_least_squares(x: np.ndarray, y: np.ndarray) -> Curve:
    """Per-language y = C − A·x^−α by ordinary least squares (A, α > 0), from the best of a grid of α."""
    best = None
    for alpha in np.exp(np.linspace(np.log(0.01), np.log(4.0), 40)):
        t = x**-alpha
        design = np.column_stack([np.ones_like(t), -t])
        (c, a), *_ = np.linalg.lstsq(design, y, rcond=None)
        rss = float(np.sum((y - design @ [c, a]) ** 2))
        if a > 0 and (best is None or rss < best[0]):
            best = (rss, c, a, alpha)
    _, c, a, alpha = best
    fit = least_squares(
        lambda p: p[0] - np.exp(p[1]) * x ** -np.exp(p[2]) - y, [c, np.log(a), np.log(alpha)], method="lm"
    )
    c, log_a, log_alpha = fit.x
    return Curve("power", {"offset": c, "scale": np.exp(log_a), "alpha": np.exp(log_alpha)})


def plan_plain(world: World, runs: pd.DataFrame) -> np.ndarray:
    curves = []
    for lang in world.languages:
        r = runs[runs.language == lang]
        curves.append(plain_least_squares(r.n_pairs.to_numpy(float), r[METRIC].to_numpy(float)))
    n = len(curves)
    bank = CurveBank.from_curves(curves, np.ones(n))
    return solve_sum(bank, world.tokens_per_pair, np.zeros(n), np.full(n, np.inf), np.ones(n), world.budget).pairs


# ------------------------------------------------------------------------------- the project's pipeline


@dataclass(frozen=True)
class Method:
    name: str
    law: str
    ceiling: float | None
    risk: str


def methods() -> list[Method]:
    """The pipeline's defaults (from the config, as `planner run` uses them), then the alternatives."""
    cfg = PlannerConfig()
    out = [Method(f"project defaults (law={cfg.fit.law}, ceiling={cfg.fit.ceiling}, risk={cfg.budget.risk})",
                  cfg.fit.law, cfg.fit.ceiling, cfg.budget.risk)]
    for law, ceiling, risk in [
        ("auto", None, "mean"),
        ("power", None, "mean"),
        ("power", None, "expected"),
        ("shared", None, "mean"),
        ("shared", None, "expected"),
        ("log", None, "mean"),
        ("power", 100.0, "mean"),
        ("auto", 100.0, "expected"),
    ]:
        out.append(Method(f"law={law}" + (f", ceiling={ceiling:g}" if ceiling else "") + f", risk={risk}", law, ceiling, risk))
    return out


def plan_project(world: World, runs: pd.DataFrame, method: Method, args, cache: dict) -> np.ndarray:
    """fit_runs → allocate, as the pipeline runs them; fits are shared between methods that differ only in risk."""
    key = (method.law, method.ceiling)
    if key not in cache:
        cache[key] = fit_runs(runs, METRIC, law=method.law, ceiling=method.ceiling, bootstrap=args.bootstrap, seed=0)
    plan = allocate(cache[key], budget=world.budget, unit="tokens", risk=method.risk)
    by_lang = {p.language: p.pairs_exact for p in plan.languages}
    return np.array([by_lang[lang] for lang in world.languages])


# ------------------------------------------------------------------------------------------- report


def pooled_regret(opt, uni, val, rng, n_boot=2000):
    loss, room = opt - val, opt - uni
    point = loss.sum() / room.sum()
    idx = rng.integers(0, len(opt), size=(n_boot, len(opt)))
    boots = loss[idx].sum(1) / room[idx].sum(1)
    lo, hi = np.quantile(boots, [0.05, 0.95])
    return point, lo, hi, float(np.median(loss / room))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--instances", type=int, default=100)
    p.add_argument("--languages", type=int, default=8)
    p.add_argument("--sizes", type=float, nargs="+", default=[250, 500, 1000, 2000])
    p.add_argument("--seeds", type=int, default=1, help="runs per size")
    p.add_argument("--noise", type=float, default=1.0, help="seed noise (chrF standard deviation)")
    p.add_argument("--budget-pairs", type=float, default=4000, help="token budget = this × languages × mean tokens/pair")
    p.add_argument("--alpha", type=float, nargs=2, default=[0.15, 0.7])
    p.add_argument("--ceiling", type=float, nargs=2, default=[45, 85])
    p.add_argument("--start", type=float, nargs=2, default=[8, 30], help="chrF range at the smallest size")
    p.add_argument("--tokens-per-pair", type=float, nargs=2, default=[15, 60])
    p.add_argument("--bootstrap", type=int, default=200, help="bootstrap draws per fit")
    p.add_argument("--only", nargs="*", default=None, help="alternatives to run besides the defaults (default: all)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    chosen = [m for i, m in enumerate(methods()) if args.only is None or i == 0 or m.name in args.only]
    values = {"optimum": [], "uniform": [], "plain least squares": []} | {m.name: [] for m in chosen}
    started = time.perf_counter()
    for i in range(args.instances):
        world = draw_world(rng, args)
        runs = simulate_runs(rng, world, args)
        values["optimum"].append(world.value(world.optimum()))
        values["uniform"].append(world.value(world.uniform()))
        values["plain least squares"].append(world.value(plan_plain(world, runs)))
        cache: dict = {}
        for m in chosen:
            values[m.name].append(world.value(plan_project(world, runs, m, args, cache)))
        if (i + 1) % 10 == 0:
            print(f"  {i + 1}/{args.instances} instances, {time.perf_counter() - started:.0f} s", file=sys.stderr)

    v = {k: np.array(x) for k, x in values.items()}
    boot_rng = np.random.default_rng(args.seed + 1)
    room = v["optimum"] - v["uniform"]
    print(
        f"{args.instances} instances × {args.languages} languages; sizes {[int(s) for s in args.sizes]} × {args.seeds} "
        f"seed(s), noise {args.noise} chrF; token budget {args.budget_pairs:g} pairs/language on average; "
        f"true α ∈ {args.alpha}, ceiling ∈ {args.ceiling}"
    )
    print(f"mean gain of the true optimum over uniform: {room.mean():.3f} chrF (summed over languages)\n")
    plain = pooled_regret(v["optimum"], v["uniform"], v["plain least squares"], boot_rng)[0]
    rows = []
    for name in ["plain least squares"] + [m.name for m in chosen]:
        r, lo, hi, med = pooled_regret(v["optimum"], v["uniform"], v[name], boot_rng)
        rows.append((name, r, lo, hi, med, r / plain))
    width = max(len(r[0]) for r in rows)
    print(f"{'method':<{width}}  regret  90% interval     median  vs plain")
    for name, r, lo, hi, med, rel in rows:
        print(f"{name:<{width}}  {r:6.3f}  [{lo:6.3f}, {hi:6.3f}]  {med:6.3f}  {rel:7.2f}")
    print(f"\n{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
