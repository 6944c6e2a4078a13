"""Regret against proxy compute: the adaptive sweep beside the grid, on the truth families.

For each family of `planner.truths` (worlds with known curves), a synthetic runner answers every proxy
run from the world's true curve plus its noise (the same outcome for the same run in every design, so
designs are compared on equal luck). Each design ends in the pipeline's own fit (`fits.fit_runs` with the
config defaults) and plan (the exact solver on that fit, exactly what `allocate` returns as `pairs_exact`
under `budget.risk: expected`), scored on the true curves:

    regret = (true optimum − plan's true value) / (true optimum − uniform's true value)

pooled over instances (Σ numerators / Σ denominators). Designs:

- **grid**: the family's own sweep (its sizes × seeds, plus the zero-shot row where it has one), the
  compute every fraction below refers to;
- **adaptive** at 25/50/75/100% of the grid's compute: one adaptive sweep (`planner.sweep.adaptive.decide`
  in a loop, batches of `--batch` runs as if that many workers) with the grid's compute as its budget,
  stopped after the last batch that fits in each fraction (its actual compute is reported: batches are
  whole, so a fraction may be undershot; no fraction is ever exceeded);
- **smaller grids** for reference: the grid's first k sizes (k ≥ 2) — what a user saves by hand.

The goal: adaptive at ≤ 50% of the grid's compute reaches the grid's regret, on every family.

    python benchmarks/adaptive_sweep.py                          # every family, 10 instances (~40 min)
    python benchmarks/adaptive_sweep.py --instances 3 --families steep-low-ceilings log-like
"""

from __future__ import annotations

import os

# One BLAS thread: the fits are many small matrix problems, which threads only slow down (10× measured
# on a loaded 2-core machine). Set before numpy loads.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import zlib  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from fits import fit_runs  # noqa: E402
from planner.allocation.problem import LanguageLimits, build_problem  # noqa: E402
from planner.allocation.solver import solve_sum  # noqa: E402
from planner.sweep.adaptive import AdaptiveSpec, Compute, decide  # noqa: E402
from planner.sweep.design import default_ladder, start_design  # noqa: E402  # noqa: E402
from planner.sweep.identity import GridPoint  # noqa: E402
from planner.truths import FAMILIES, METRIC, World  # noqa: E402

FRACTIONS = (0.25, 0.5, 0.75, 1.0)
EVAL_PAIRS = 100  # evaluation pairs of every run: ranks runs (a zero-shot run is not free), never budgeted
RESULTS = Path(__file__).resolve().parent / "results"


# ------------------------------------------------------------------------------------------ a world


@dataclass(frozen=True)
class Instance:
    family: str
    index: int
    world: World

    @property
    def languages(self) -> list[str]:
        return self.world.languages

    def tokens(self, p: GridPoint) -> float:
        return p.n_pairs * float(self.world.tokens_per_pair[self.languages.index(p.language)])

    def run(self, p: GridPoint) -> dict:
        """The synthetic runner: the true curve plus the world's noise, fixed per (instance, run)."""
        i = self.languages.index(p.language)
        key = zlib.crc32(f"{self.family}/{self.index}/{p.key}".encode())
        noise = np.random.default_rng(key).standard_normal()
        x = float(p.n_pairs)
        y = float(self.world.curves[i].predict(x)) + float(self.world.sigma_at(i, np.array(x))) * noise
        return {"language": p.language, "n_pairs": p.n_pairs, "n_tokens": self.tokens(p), "seed": p.seed, METRIC: y}

    def grid(self, sizes=None) -> list[GridPoint]:
        w = self.world
        sizes = w.sizes if sizes is None else sizes
        points = [GridPoint(lang, int(s), k) for lang in self.languages for s in sizes for k in range(w.seeds)]
        return points + ([GridPoint(lang, 0, 0) for lang in self.languages] if w.zero_shot else [])

    def limits(self) -> dict[str, LanguageLimits]:
        lo, hi = self.world.bounds()
        return {lang: LanguageLimits(min_pairs=float(lo[i]), max_pairs=float(hi[i]) if np.isfinite(hi[i]) else None,
                                     tokens_per_pair=float(self.world.tokens_per_pair[i]))
                for i, lang in enumerate(self.languages)}

    def spec(self, budget: float) -> AdaptiveSpec:
        w = self.world
        start = start_design(self.languages, [int(s) for s in w.sizes[:2]], range(w.seeds), w.zero_shot)
        _, hi = w.bounds()
        ladder = default_ladder([int(s) for s in w.sizes])
        return AdaptiveSpec(
            languages=tuple(self.languages), start=tuple(start),
            ladder={lang: tuple(n for n in ladder if not np.isfinite(hi[i]) or n <= hi[i])
                    for i, lang in enumerate(self.languages)},
            seeds=tuple(range(w.seeds)), grid=tuple(self.grid()), compute=Compute(1.0, None, 16, EVAL_PAIRS),
            budget=budget, stop_interval=None, plan_budget=w.budget, plan_unit="tokens", limits=self.limits(),
            max_epochs=1.0, metric=METRIC,
        )

    def regret_terms(self, rows: list[dict]) -> tuple[float, float]:
        """(true optimum − plan's true value, true optimum − uniform's true value) of the pipeline's plan."""
        fitset = fit_runs(pd.DataFrame(rows), METRIC, bootstrap=1000, seed=0)
        problem = build_problem(fitset, self.world.budget, "tokens", {k: v for k, v in self.limits().items()
                                                                      if k in fitset.languages}, 1.0)
        pairs = solve_sum(problem.utility_curves("expected"), problem.cost, problem.lo, problem.hi,
                          problem.weights, problem.budget).pairs
        by_lang = dict(zip(problem.languages, pairs))
        lo, _ = self.world.bounds()
        plan = np.array([by_lang.get(lang, lo[i]) for i, lang in enumerate(self.languages)])
        w = self.world
        best = w.value(w.optimum())
        return best - w.value(plan), best - w.value(w.uniform())


# ------------------------------------------------------------------------------------------ designs


def adaptive_trajectory(inst: Instance, budget: float, batch: int) -> list[tuple[float, list[GridPoint], str | None]]:
    """(compute so far, design) after the start design and after every batch, until the sweep stops."""
    spec = inst.spec(budget)
    design = list(spec.start)
    rows = [inst.run(p) for p in design]
    out = [(sum(inst.tokens(p) for p in design), list(design), None)]
    for r in range(1, 1000):
        d = decide(spec, pd.DataFrame(rows), batch=batch, round_index=r)
        if not d.choices:
            out[-1] = (*out[-1][:2], d.stop)
            return out
        for c in d.choices:
            design.append(c.point)
            rows.append(inst.run(c.point))
        out.append((sum(inst.tokens(p) for p in design), list(design), None))
    return out


def evaluate(inst: Instance, batch: int) -> list[dict]:
    """One row per (design, fraction) of one instance."""
    grid = inst.grid()
    full = sum(inst.tokens(p) for p in grid)
    rows = []

    def add(design: str, target: float, points: list[GridPoint], note: str = "") -> None:
        loss, room = inst.regret_terms([inst.run(p) for p in points])
        rows.append({"family": inst.family, "instance": inst.index, "design": design, "target": target,
                     "compute": sum(inst.tokens(p) for p in points) / full, "runs": len(points),
                     "loss": loss, "room": room, "note": note})

    add("grid", 1.0, grid)
    sizes = inst.world.sizes
    for k in range(2, len(sizes)):
        small = inst.grid(sizes[:k])
        add(f"grid, first {k} sizes", np.nan, small)
    trajectory = adaptive_trajectory(inst, full, batch)
    for f in FRACTIONS:
        fitting = [t for t in trajectory if t[0] <= f * full * (1 + 1e-9)]
        if not fitting:
            rows.append({"family": inst.family, "instance": inst.index, "design": "adaptive", "target": f,
                         "compute": np.nan, "runs": 0, "loss": np.nan, "room": np.nan,
                         "note": "the start design alone exceeds this fraction"})
            continue
        _, points, stop = fitting[-1]
        add("adaptive", f, points, stop or "")
    return rows


# ------------------------------------------------------------------------------------------- report


def instances(family: str, n: int, seed: int) -> list[Instance]:
    base = zlib.crc32(family.encode())
    return [Instance(family, i, FAMILIES[family].draw(np.random.default_rng([seed, base, i]))) for i in range(n)]


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    groups = table.dropna(subset=["loss"]).groupby(["family", "design", "target"], sort=False, dropna=False)
    out = groups.agg(instances=("instance", "nunique"), compute=("compute", "mean"), loss=("loss", "sum"),
                     room=("room", "sum")).reset_index()
    out["regret"] = out["loss"] / out["room"]
    return out[["family", "design", "target", "instances", "compute", "regret"]]


def verdicts(summary: pd.DataFrame) -> pd.DataFrame:
    """Per family: the grid's regret, adaptive's at each fraction, and the least fraction that reaches it."""
    rows = []
    for family, g in summary.groupby("family", sort=False):
        grid = float(g[g.design == "grid"].regret.iloc[0])
        row = {"family": family, "grid": grid}
        reached = None
        for f in FRACTIONS:
            a = g[(g.design == "adaptive") & (g.target == f)]
            row[f"adaptive {int(100 * f)}%"] = float(a.regret.iloc[0]) if len(a) else np.nan
            row[f"compute {int(100 * f)}%"] = float(a.compute.iloc[0]) if len(a) else np.nan
            if reached is None and len(a) and a.regret.iloc[0] <= grid:
                reached = f
        row["reaches grid at"] = reached
        rows.append(row)
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--families", nargs="*", default=list(FAMILIES), choices=list(FAMILIES))
    p.add_argument("--instances", type=int, default=10)
    p.add_argument("--batch", type=int, default=4, help="runs per decision (the number of workers)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=RESULTS / "adaptive_sweep.csv", help="per-instance rows (appended per family)")
    args = p.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    rows = []
    for family in args.families:
        t0 = time.perf_counter()
        for inst in instances(family, args.instances, args.seed):
            rows += evaluate(inst, args.batch)
            pd.DataFrame(rows).to_csv(args.out, index=False)  # a long run can be read while it goes
        print(f"  {family}: {args.instances} instances, {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    table = pd.DataFrame(rows)
    summary = summarise(table)
    summary.to_csv(args.out.with_name(args.out.stem + "_summary.csv"), index=False)
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.3f}".format):
        print(summary.to_string(index=False))
        print()
        print(verdicts(summary).to_string(index=False))
    print(f"\n{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
