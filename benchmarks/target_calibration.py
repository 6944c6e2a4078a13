"""Does the target objective reach the targets it promises, and at what cost? Judged on true curves.

`objective: target` plans the cheapest allocation at which each language reaches its target score;
`budget.target_confidence` q says how sure the plan must be (the share of the fits' draws that reach
the target, `planner.allocation.targets`). For every truth family of `research.truths` (and the families
fitted to real sweeps, when their runs are in benchmarks/results/) or, with `--held-out`, of
`research.truths_heldout`, draw worlds, play the sweep (noisy runs.csv), ask for a target per language
(`research.truths_target.draw_targets`: each truly reachable, most beyond the measured sizes), plan, and
read every language's planned pairs off the true curve:

- **reached**: share of all targets the plan's allocation truly reaches;
- **flagged**: share the plan declares unreachable (it keeps the floor there and says so in a note);
- **reached | planned**: share reached among the targets the plan did plan for — the calibration
  figure, to compare with q;
- **planned / true need**: for each target it planned for, the pairs planned over the pairs the target
  truly needs (`research.truths_target.true_needs`, found without the planner): median, 90th percentile,
  and the share planned at more than 10× the need. (Not a pooled total: needs are heavy-tailed — a
  target near an uncertain ceiling can be planned at 10⁶× its need — so one target would decide it.)

Shares come with a 90% bootstrap interval over worlds. Methods: the pipeline's plan (`allocate`, the
config's default fit) at q = 0.5 (the default), 0.8 and 0.9; the point fit (`risk: mean`); the mean of
the draws (the rule before q existed: the inverse of the mean curve); and the notebook (per-language
three-parameter least squares, inverted).

    python benchmarks/target_calibration.py                    # every family, 20 worlds each
    python benchmarks/target_calibration.py --held-out         # the held-out truths
    python benchmarks/target_calibration.py --instances 3 --families log-like
    python benchmarks/target_calibration.py --summarise results/target_calibration.csv.gz   # tables from the rows
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # small fits: threads only slow them
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
import zlib  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: `research` is not installed

from plan_regret import METRIC, limits_of, notebook_curve, truth_families  # noqa: E402

from core.config import PlannerConfig  # noqa: E402
from fits import fit_runs  # noqa: E402
from planner.allocation import allocate  # noqa: E402
from planner.allocation.curves import MAX_PAIRS, CurveBank  # noqa: E402
from planner.allocation.problem import build_problem  # noqa: E402
from planner.allocation.solver import solve_target  # noqa: E402
from research.truths import World, simulate_runs  # noqa: E402
from research.truths_maxmin import scorer  # noqa: E402
from research.truths_target import draw_targets, true_needs  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
CONFIDENCES = (0.5, 0.8, 0.9)
METHODS = tuple(f"q {q:g}" + (" (default)" if q == 0.5 else "") for q in CONFIDENCES) + (
    "point fit (risk mean)", "mean of the draws (previous rule)", "notebook")


def plans(world: World, runs: pd.DataFrame, targets: np.ndarray) -> dict[str, np.ndarray]:
    """Each method's planned pairs per language; NaN where it declares the target unreachable."""
    cfg = PlannerConfig().fit
    fitset = fit_runs(runs.astype(str), METRIC, seed=0, law=cfg.law, pooling=cfg.pooling, ceiling=cfg.ceiling,
                      bootstrap=cfg.bootstrap)
    wanted = dict(zip(world.languages, targets))
    # Tokens: as much as the planner accepts, so every plan fits (the target objective spends only what
    # the targets need; a real budget below that is refused with the cost, see `allocate`).
    _, hi = world.bounds()
    budget = (1 - 1e-9) * float(world.tokens_per_pair @ np.minimum(hi, MAX_PAIRS))
    out = {}

    def planned(risk: str, q: float) -> np.ndarray:
        plan = allocate(fitset, budget=budget, unit="tokens", limits=limits_of(world), objective="target",
                        targets=wanted, risk=risk, target_confidence=q)
        flagged = {w.split(":")[0] for w in plan.warnings if "is unreachable within" in w}
        by = {p.language: p for p in plan.languages}
        return np.array([np.nan if lang in flagged else by[lang].pairs_exact for lang in world.languages])

    for q, name in zip(CONFIDENCES, METHODS):
        out[name] = planned("expected", q)
    out["point fit (risk mean)"] = planned("mean", 0.5)
    problem = build_problem(fitset, budget, "tokens", limits_of(world), 1.0)
    sol = solve_target(problem.utility_curves("expected"), problem.cost, problem.lo, problem.hi, problem.sign * targets)
    out["mean of the draws (previous rule)"] = np.where(sol.reachable, sol.pairs, np.nan)
    lo, hi = world.bounds()
    notebook = []
    for i, lang in enumerate(world.languages):
        r = runs[(runs.language == lang) & (runs.n_pairs > 0)]
        curve = notebook_curve(r.n_pairs.to_numpy(float), r[METRIC].to_numpy(float))
        need = float(CurveBank.from_curves([curve], [1.0]).pairs_at_utility(np.array([targets[i]]))[0])
        notebook.append(max(need, lo[i]) if np.isfinite(need) and need <= hi[i] else np.nan)
    out["notebook"] = np.array(notebook)
    return out


def judge(world: World, targets: np.ndarray, need: np.ndarray, pairs: np.ndarray) -> pd.DataFrame:
    """One method on one world, a row per language: its target, true need and planned pairs (NaN:
    declared unreachable), whether the plan truly reaches the target, the token price, and the sweep's
    largest size (how far beyond the measured sizes the target lies)."""
    planned = np.isfinite(pairs)
    lo, _ = world.bounds()
    got = scorer(world)(np.where(planned, pairs, lo))
    reached = planned & (got >= targets - 1e-9 * np.maximum(1.0, np.abs(targets)))
    return pd.DataFrame(dict(language=world.languages, target=targets, need=need, pairs=pairs, reached=reached,
                             price=world.tokens_per_pair, largest_run=max(world.sizes)))


def run_family(name: str, draw, instances: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    parts = []
    for i in range(instances):
        world = draw(rng)
        runs = simulate_runs(world, rng)
        targets = draw_targets(world, rng)
        need = true_needs(world, targets)
        for method, pairs in plans(world, runs, targets).items():
            parts.append(judge(world, targets, need, pairs).assign(family=name, instance=i, method=method))
    return pd.concat(parts, ignore_index=True)


def _share(a: np.ndarray, b: np.ndarray, rng: np.random.Generator, n_boot: int = 2000):
    """Pooled share Σa/Σb over worlds (a, b: one total per world), with a 90% bootstrap interval over worlds."""
    idx = rng.integers(0, len(a), size=(n_boot, len(a)))
    with np.errstate(divide="ignore", invalid="ignore"):
        boots = a[idx].sum(1) / b[idx].sum(1)
        point = a.sum() / b.sum()
    lo, hi = np.nanquantile(boots, [0.05, 0.95]) if np.isfinite(boots).any() else (np.nan, np.nan)
    return float(point), float(lo), float(hi)


def summarise(table: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Per family and method: the shares (pooled over worlds, 90% bootstrap interval over worlds), and
    the planned/true-need ratio of the planned targets: median, 90th percentile and the share above 10×.
    The ratio leaves out targets met by the floor itself (true need 0: at or below the zero-shot score)."""
    rng = np.random.default_rng([seed, 7])
    out = []
    table = table.assign(planned=np.isfinite(table.pairs), flagged=~np.isfinite(table.pairs), one=1.0)
    for (family, method), g in table.groupby(["family", "method"], sort=False):
        per_world = g.groupby("instance")[["reached", "flagged", "planned", "one"]].sum()
        row = dict(family=family, method=method, worlds=len(per_world), targets=len(g))
        for key, num, den in (("reached", "reached", "one"), ("flagged", "flagged", "one"),
                              ("reached_planned", "reached", "planned")):
            num_, den_ = per_world[num].to_numpy(float), per_world[den].to_numpy(float)
            row[key], row[f"{key}_lo"], row[f"{key}_hi"] = _share(num_, den_, rng)
        p = g[g.planned & (g.need > 0)]
        ratio = (p.pairs / p.need).to_numpy(float)
        row["cost_median"], row["cost_p90"] = (np.quantile(ratio, [0.5, 0.9]) if len(ratio) else (np.nan, np.nan))
        row["over_10x"] = float(np.mean(ratio > 10.0)) if len(ratio) else np.nan
        out.append(row)
    return pd.DataFrame(out)


BEYOND = (0.0, 1.0, 2.0, 4.0, np.inf)  # true need / the sweep's largest size
BY_EXTRAPOLATION = "Reached | planned, every family of the run pooled, by how far beyond the sweep's largest size the target lies:"


def by_extrapolation(table: pd.DataFrame) -> str:
    """Reached | planned per method, by how far beyond the sweep's largest size the target truly lies
    (pooled over every family in the table): where the draws' confidence holds and where it does not."""
    t = table[np.isfinite(table.pairs)]
    labels = [f"≤ {BEYOND[1]:g}×"] + [f"{a:g}–{b:g}×" for a, b in zip(BEYOND[1:-2], BEYOND[2:-1])] + [f"> {BEYOND[-2]:g}×"]
    bucket = pd.cut(t.need / t.largest_run, BEYOND, labels=labels, include_lowest=True)
    share = t.groupby([t.method, bucket], observed=False, sort=False).reached.mean().unstack()
    count = t[t.method == METHODS[0]].groupby(bucket, observed=False).size()
    lines = ["| true need / largest size (targets the default planned) | " + " | ".join(f"{c} ({count[c]})" for c in labels) + " |",
             "|---|" + "---:|" * len(labels)]
    for method in [m for m in METHODS if m in share.index]:
        cells = [f"{share.loc[method, c]:.2f}" if np.isfinite(share.loc[method, c]) else "-" for c in labels]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown(summary: pd.DataFrame) -> str:
    """Per family and method: reached, flagged, reached | planned (against q), and the cost ratios."""
    cell = lambda r, k, f="{:.2f}": f"{f.format(r[k])} [{f.format(r[k + '_lo'])}, {f.format(r[k + '_hi'])}]"  # noqa: E731
    lines = ["| family | method | reached [90%] | flagged | reached \\| planned [90%] | planned / true need: "
             "median | 90th pct. | share > 10× |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in summary.itertuples(index=False):
        r = r._asdict()
        lines.append(f"| {r['family']} | {r['method']} | {cell(r, 'reached')} | {r['flagged']:.2f} | "
                     f"{cell(r, 'reached_planned')} | {r['cost_median']:.2f} | {r['cost_p90']:.2f} | {r['over_10x']:.3f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--instances", type=int, default=20, help="worlds per family (default 20)")
    p.add_argument("--families", nargs="*", default=None, help="default: every family")
    p.add_argument("--held-out", action="store_true", help="the held-out truth families (research/truths_heldout.py)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="default: results/target_calibration[_heldout].csv.gz")
    p.add_argument("--summarise", metavar="CSV", default=None, help="only print the tables of rows written before")
    args = p.parse_args(argv)
    if args.summarise:
        table = pd.read_csv(args.summarise)
        print(markdown(summarise(table, args.seed)))
        if "largest_run" in table:
            print(f"\n{BY_EXTRAPOLATION}\n\n" + by_extrapolation(table))
        return 0
    warnings.filterwarnings("ignore", category=RuntimeWarning)  # overflow in far extrapolations of draws
    families = truth_families(args.held_out)
    names = args.families or list(families)
    unknown = sorted(set(names) - set(families))
    if unknown:
        p.error(f"unknown families {unknown}; known: {sorted(families)}")
    out = Path(args.out or RESULTS / f"target_calibration{'_heldout' if args.held_out else ''}.csv.gz")
    print(f"{os.cpu_count()} cores; {args.instances} worlds per family; confidences {CONFIDENCES}", flush=True)
    parts, started = [], time.perf_counter()
    for name in names:
        t0 = time.perf_counter()
        fam = run_family(name, families[name], args.instances, args.seed)
        parts.append(fam)
        s = summarise(fam, args.seed)
        line = "  ".join(f"{m.split(' (')[0]}: {r.reached_planned:.2f}/{r.flagged:.2f}/{r.cost_p90:.2f}"
                         for m, r in zip(s.method, s.itertuples()))
        print(f"{name:26s} reached|planned / flagged / p90 planned:need: {line}  ({time.perf_counter() - t0:.0f} s)",
              flush=True)
    table = pd.concat(parts, ignore_index=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    # A row per target and method (about 40,000): gzip keeps the shipped file small.
    table.to_csv(out, index=False, float_format="%.6g", compression={"method": "infer", "mtime": 0})
    summary = summarise(table, args.seed)
    md = f"{markdown(summary)}\n\n{BY_EXTRAPOLATION}\n\n{by_extrapolation(table)}"
    out.with_name(out.name.split(".")[0] + ".md").write_text(
        f"`python benchmarks/target_calibration.py{' --held-out' if args.held_out else ''} --instances {args.instances}`"
        f" on {os.cpu_count()} cores, {time.perf_counter() - started:.0f} s\n\n{md}\n")
    shown = os.path.relpath(out, RESULTS.parent.parent)
    print(f"\nwrote {shown} and its .md ({time.perf_counter() - started:.0f} s)\n{md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
