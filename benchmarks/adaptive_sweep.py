"""Regret against proxy compute: the adaptive sweep beside the grid, on the truth families.

For each family of `research.truths` (worlds with known curves), a synthetic runner answers every proxy
run from the world's true curve plus its noise (the same outcome for the same run in every design, so
designs are compared on equal luck). Each design ends in the pipeline's own fit (`fits.fit_runs` with the
config defaults) and plan (the exact solver on that fit, exactly what `allocate` returns as `pairs_exact`
under `budget.risk: expected` and the default `budget.smallest_run_floor: auto`, which does not floor
sum plans), scored on the true curves:

    regret = (true optimum − plan's true value) / (true optimum − uniform's true value)

pooled over instances (Σ numerators / Σ denominators). Designs:

- **grid**: the family's own sweep (its sizes × seeds, plus the zero-shot row where it has one), the
  compute every fraction below refers to;
- **adaptive** at 25/50/75/100% of the grid's compute: one adaptive sweep (`planner.sweep.adaptive.decide`
  in a loop, batches of `--batch` runs as if that many workers) with the grid's compute as its budget,
  stopped after the last batch that fits in each fraction (its actual compute is reported: batches are
  whole, so a fraction may be undershot; no fraction is ever exceeded);
- **adaptive, own budget** (`--budgets`, default 50%): a separate adaptive sweep told that fraction of the
  grid's compute as its `sweep.budget`, as a user would set it — it plans its runs for that budget and
  fills it, where the checkpoint above stops short;
- **smaller grids** for reference: the grid's first k sizes (k ≥ 2) — what a user saves by hand — and
  sparse grids (every language at the first and last size; at the first two and the last): what the
  default fit needs before its plan is any good, whoever picks the runs.

The goal: adaptive at ≤ 50% of the grid's compute reaches the grid's regret, on every family. Each
adaptive design is compared with the grid paired by instance (same worlds, same run outcomes): the
difference of pooled regrets with a 90% bootstrap interval over instances.

    python benchmarks/adaptive_sweep.py                          # every family, 10 instances
    python benchmarks/adaptive_sweep.py --instances 3 --families steep-low-ceilings log-like
    python benchmarks/adaptive_sweep.py --no-checkpoints --no-references --out b.csv  # grid + own-budget sweep
    python benchmarks/adaptive_sweep.py --summarise a.csv b.csv     # merge runs (families or designs) and report
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: `research` is not installed

from fits import fit_runs  # noqa: E402
from planner.allocation.problem import LanguageLimits, build_problem  # noqa: E402
from planner.allocation.solver import solve_sum  # noqa: E402
from research.adaptive.adaptive import AdaptiveSpec, Compute, decide  # noqa: E402
from research.adaptive.design import default_ladder, start_design  # noqa: E402  # noqa: E402
from planner.sweep.identity import GridPoint
from research.truths import FAMILIES, METRIC, World  # noqa: E402

FRACTIONS = (0.25, 0.5, 0.75, 1.0)
BUDGETED = "adaptive, own budget"  # a sweep told the fraction as its budget, as a user would set sweep.budget
# Fixed designs that skip sizes (indices into the family's sizes, every language alike): how much compute
# a design needs before the plan is any good, whoever chooses it.
SPARSE = ((0, -1), (0, 1, -1))


def sparse_name(picked: tuple[int, ...]) -> str:
    return "sizes " + ", ".join("last" if i == -1 else str(i + 1) for i in picked)
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


def evaluate(inst: Instance, batch: int, checkpoints: bool = True, budgets: tuple[float, ...] = (0.5,),
             references: bool = True) -> list[dict]:
    """One row per (design, fraction) of one instance: the grid; with `references` the fixed designs
    (smaller grids, the sparse designs of SPARSE); with `checkpoints` one full-budget adaptive sweep read
    at each of FRACTIONS; then one adaptive sweep per fraction in `budgets` whose `sweep.budget` is that
    fraction of the grid's compute."""
    grid = inst.grid()
    full = sum(inst.tokens(p) for p in grid)
    rows = []

    def add(design: str, target: float, points: list[GridPoint], note: str = "") -> None:
        loss, room = inst.regret_terms([inst.run(p) for p in points])
        rows.append({"family": inst.family, "instance": inst.index, "design": design, "target": target,
                     "compute": sum(inst.tokens(p) for p in points) / full, "runs": len(points),
                     "loss": loss, "room": room, "note": note})

    def too_small(design: str, f: float) -> None:
        rows.append({"family": inst.family, "instance": inst.index, "design": design, "target": f,
                     "compute": np.nan, "runs": 0, "loss": np.nan, "room": np.nan,
                     "note": "the start design alone exceeds this fraction"})

    add("grid", 1.0, grid)
    sizes = inst.world.sizes
    if references:
        for k in range(2, len(sizes)):
            add(f"grid, first {k} sizes", np.nan, inst.grid(sizes[:k]))
        for picked in SPARSE:
            chosen = tuple(sizes[i] for i in picked)
            if len(set(chosen)) == len(picked) and chosen != tuple(sizes):
                add(sparse_name(picked), np.nan, inst.grid(chosen))
    if checkpoints:
        trajectory = adaptive_trajectory(inst, full, batch)
        for f in FRACTIONS:
            fitting = [t for t in trajectory if t[0] <= f * full * (1 + 1e-9)]
            if fitting:
                _, points, stop = fitting[-1]
                add("adaptive", f, points, stop or "")
            else:
                too_small("adaptive", f)
    for f in budgets:
        trajectory = adaptive_trajectory(inst, f * full, batch)
        _, points, stop = trajectory[-1]
        if trajectory[0][0] > f * full * (1 + 1e-9):
            too_small(BUDGETED, f)
        else:
            add(BUDGETED, f, points, stop or "")
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


def paired_difference(table: pd.DataFrame, family: str, target: float, rng: np.random.Generator,
                      design: str = "adaptive", n_boot: int = 2000) -> tuple[float, float, float, int]:
    """An adaptive design's pooled regret at `target` minus the grid's, on the instances both have, with a 90%
    bootstrap interval over instances (paired: each instance's room — true optimum minus uniform — is the
    same for every design, and both designs met the same run outcomes)."""
    t = table[table.family == family]
    grid = t[t.design == "grid"].set_index("instance")
    ada = t[(t.design == design) & (t.target == target)].dropna(subset=["loss"]).set_index("instance")
    common = grid.index.intersection(ada.index)
    if len(common) == 0:
        return np.nan, np.nan, np.nan, 0
    diff = (ada.loss[common] - grid.loss[common]).to_numpy()
    room = grid.room[common].to_numpy()
    idx = rng.integers(0, len(common), size=(n_boot, len(common)))
    boots = diff[idx].sum(1) / room[idx].sum(1)
    lo, hi = np.quantile(boots, [0.05, 0.95])
    return float(diff.sum() / room.sum()), float(lo), float(hi), len(common)


def verdicts(summary: pd.DataFrame, table: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Per family: the grid's regret, adaptive's at each fraction, adaptive at 50% minus the grid (90%
    paired interval) and the least fraction at which adaptive's regret is at or below the grid's."""
    rng = np.random.default_rng(seed)
    rows = []
    for family, g in summary.groupby("family", sort=False):
        grid = float(g[g.design == "grid"].regret.iloc[0])
        row = {"family": family, "instances": int(g[g.design == "grid"].instances.iloc[0]), "grid": grid}
        reached = None
        for f in FRACTIONS:
            a = g[(g.design == "adaptive") & (g.target == f)]
            row[f"adaptive {int(100 * f)}%"] = float(a.regret.iloc[0]) if len(a) else np.nan
            row[f"compute {int(100 * f)}%"] = float(a.compute.iloc[0]) if len(a) else np.nan
            if reached is None and len(a) and a.regret.iloc[0] <= grid:
                reached = f
        b = g[(g.design == BUDGETED) & (g.target == 0.5)]  # the checkpoint readings are in the loop above
        row["budget 50% regret"] = float(b.regret.iloc[0]) if len(b) else np.nan
        row["budget 50% compute"] = float(b.compute.iloc[0]) if len(b) else np.nan
        for name, design, target in (("50%", "adaptive", 0.5), ("100%", "adaptive", 1.0), ("budget 50%", BUDGETED, 0.5)):
            d, lo, hi, n = paired_difference(table, family, target, rng, design)
            row.update({f"{name} - grid": d, f"{name} lo": lo, f"{name} hi": hi,
                        f"{name} verdict": "better" if hi < 0 else "worse" if lo > 0 else "tied" if n else ""})
        fixed = g[g.design.str.startswith(("grid, first", "sizes "))]
        for r in fixed.itertuples(index=False):
            row[f"fixed: {r.design}"], row[f"fixed compute: {r.design}"] = float(r.regret), float(r.compute)
        row["reaches grid at"] = reached
        rows.append(row)
    return pd.DataFrame(rows)


def _cell(value: float, share: float, grid: float) -> str:
    """'regret (compute)', bold at or below the grid's regret; — where not run (or the start design alone
    exceeds the fraction)."""
    if not np.isfinite(value):
        return "—"
    text = f"{value:.3f} ({100 * share:.0f}%)"
    return f"**{text}**" if value <= grid else text


def markdown(v: pd.DataFrame) -> str:
    """The README's two tables: adaptive against the grid (paired), and the fixed designs."""
    def diff(row, name: str) -> str:
        d = row[f"{name} - grid"]
        return f"{d:+.3f} [{row[f'{name} lo']:+.3f}, {row[f'{name} hi']:+.3f}] {row[f'{name} verdict']}" if np.isfinite(d) else "—"

    def get(row, key):
        return row[key] if key in row.index else np.nan

    lines = ["| family | grid | own budget 50% | − grid [90%] | read at ≈50% | − grid [90%] | read at ≈25% "
             "| read at ≈75% | read at ≈100% | − grid [90%] |", "|---|---:|---:|---|---:|---|---:|---:|---:|---|"]
    for _, row in v.iterrows():
        reads = {f: _cell(row[f"adaptive {int(100 * f)}%"], row[f"compute {int(100 * f)}%"], row["grid"]) for f in FRACTIONS}
        lines.append(f"| {row['family']} | {row['grid']:.3f} | "
                     f"{_cell(row['budget 50% regret'], row['budget 50% compute'], row['grid'])} | {diff(row, 'budget 50%')} | "
                     f"{reads[0.5]} | {diff(row, '50%')} | {reads[0.25]} | {reads[0.75]} | {reads[1.0]} | {diff(row, '100%')} |")
    names = [c.removeprefix("fixed: ") for c in v.columns if c.startswith("fixed: ")]
    order = sorted(set(names), key=lambda n: (not n.startswith("grid"), n))
    lines += ["", "| family | grid | " + " | ".join(order) + " |", "|---|---:|" + "---:|" * len(order)]
    for _, row in v.iterrows():
        cells = [_cell(get(row, f"fixed: {n}"), get(row, f"fixed compute: {n}"), row["grid"]) for n in order]
        lines.append(f"| {row['family']} | {row['grid']:.3f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(table: pd.DataFrame, out: Path) -> None:
    """Summary CSV next to the rows, the verdicts printed, the README's table in `<out>.md`."""
    summary = summarise(table)
    summary.to_csv(out.with_name(out.stem + "_summary.csv"), index=False)
    v = verdicts(summary, table)
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.float_format", "{:.3f}".format):
        print(summary.to_string(index=False))
        print()
        print(v.to_string(index=False))
    out.with_suffix(".md").write_text(markdown(v) + "\n", encoding="utf-8")
    print()
    print(markdown(v))


def merge_tables(files: list[Path], key: list[str], out: Path) -> pd.DataFrame:
    """Per-instance tables run in parallel pieces, as one (a row repeated across pieces — the grid, which
    every piece pairs its designs with — kept once), written to `out`."""
    table = pd.concat([pd.read_csv(f) for f in files], ignore_index=True).drop_duplicates(subset=key, keep="last")
    table.to_csv(out, index=False)
    return table


def run_instances(families: list[str], n: int, seed: int, evaluate_one, out: Path) -> pd.DataFrame:
    """`evaluate_one(instance)` on n instances of every family; the rows so far are written to `out` after
    each instance, so a long run can be read while it goes."""
    rows: list[dict] = []
    for family in families:
        t0 = time.perf_counter()
        for inst in instances(family, n, seed):
            rows += evaluate_one(inst)
            pd.DataFrame(rows).to_csv(out, index=False)
        print(f"  {family}: {n} instances, {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--families", nargs="*", default=list(FAMILIES), choices=list(FAMILIES))
    p.add_argument("--instances", type=int, default=10)
    p.add_argument("--batch", type=int, default=4, help="runs per decision (the number of workers)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=RESULTS / "adaptive_sweep.csv", help="per-instance rows (appended per family)")
    p.add_argument("--budgets", type=float, nargs="*", default=[0.5],
                   help="fractions of the grid's compute given to separate adaptive sweeps as their budget")
    p.add_argument("--no-checkpoints", action="store_true", help="skip the full-budget sweep read at 25/50/75/100%%")
    p.add_argument("--no-references", action="store_true", help="skip the smaller and sparse grids")
    p.add_argument("--summarise", type=Path, nargs="+", metavar="CSV",
                   help="no runs: merge these per-instance tables (e.g. families run in parallel) into --out and report")
    args = p.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.summarise:
        report(merge_tables(args.summarise, ["family", "instance", "design", "target"], args.out), args.out)
        return 0
    started = time.perf_counter()
    table = run_instances(args.families, args.instances, args.seed, lambda inst: evaluate(
        inst, args.batch, not args.no_checkpoints, tuple(args.budgets), not args.no_references), args.out)
    report(table, args.out)
    print(f"\n{time.perf_counter() - started:.0f} s on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
