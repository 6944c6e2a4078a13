"""What any design at ≤ 50% of the grid's compute could reach: designs chosen knowing the truth.

The adaptive sweep's goal is the grid's regret at ≤ 50% of its proxy compute on every truth family
(`benchmarks/adaptive_sweep.py`). It is not met there, and the fixed designs in that benchmark say two
sizes per language leave a plan no better than an equal split. This benchmark asks whether *any* way of
choosing the runs could do better within 50%, by letting an oracle choose them: it knows the true curves
(and, for the "best of" column, the run outcomes too), which no sweep does. If even these designs do not
reach the grid's regret, no choice of runs will, and the goal is out of reach for the default fit.

Every design starts from what the adaptive sweep starts from — every language at the family's two
smallest sizes, first seed, plus the zero-shot row where the family has one — and then adds runs from an
ordered list while they fit in 50% of the grid's compute (a run that does not fit is skipped, the next
tried): first the largest size for each language in the design's order, then the middle sizes, then the
further seeds of the largest size. Designs differ only in the order of languages:

- **far first**: languages whose true optimum is furthest from equal tokens (|log(optimum / uniform)|)
  get the large runs first: where the plan must move furthest from uniform;
- **near first**: the reverse;
- **random**: `--orders` random orders (default 16);
- **best of**: per instance, the design of the ones above with the smallest regret — chosen on the
  truth *and* on the run outcomes, so it is optimistic: a lower bound for what picking among these
  designs can reach.

`--start 1` asks the same of designs that do not take the start design's second size: every language
starts at the smallest size (plus zero-shot), and the additions are the largest size, then twice the
largest (a size the sweep's ladder may choose), then the sizes between, then further seeds; every
language keeps the price of its second size in reserve until it has two sizes (with one, the fit skips it
and the plan gives it nothing). Named "one-size start: …"; merged with the default start's rows,
"best of both starts" is per instance the better of the two best-of designs (36 designs).

Regret as in `benchmarks/adaptive_sweep.py` (the pipeline's default fit and plan, scored on the true
curves, pooled over instances; the same worlds, instances and run outcomes as there), each design paired
with the grid by instance (90% bootstrap interval over instances).

    python benchmarks/adaptive_bound.py                                   # every family, 10 instances
    python benchmarks/adaptive_bound.py --families log-like --instances 3
    python benchmarks/adaptive_bound.py --start 1 --out one.csv           # the one-size start's designs
    python benchmarks/adaptive_bound.py --summarise a.csv b.csv           # merge parallel pieces and report
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # see adaptive_sweep.py
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import zlib  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: `research` is not installed
from adaptive_sweep import RESULTS, Instance, merge_tables, paired_difference, run_instances  # noqa: E402
from planner.sweep.identity import GridPoint
from research.truths import FAMILIES  # noqa: E402

SHARE = 0.5
BEST = "best of"


ONE = "one-size start: "  # prefix of the designs of `--start one`


def base_design(inst: Instance, start: int = 2) -> list[GridPoint]:
    """Every language at the `start` smallest sizes (first seed), plus zero-shot; 2 is the adaptive sweep's
    start design."""
    w = inst.world
    points = [GridPoint(lang, int(s), 0) for lang in inst.languages for s in w.sizes[:start]]
    return points + ([GridPoint(lang, 0, 0) for lang in inst.languages] if w.zero_shot else [])


def additions(inst: Instance, order: list[int], start: int = 2) -> list[GridPoint]:
    """The runs a design adds, in order: the largest size per language, then (from a one-size start) twice
    the largest, as the sweep's ladder may, then the sizes between, then the largest size's further seeds —
    each pass over the languages in `order`."""
    w, langs = inst.world, inst.languages
    last, between = int(w.sizes[-1]), [int(s) for s in w.sizes[start:-1]]
    out = [GridPoint(langs[i], last, 0) for i in order]
    if start == 1:
        out += [GridPoint(langs[i], 2 * last, 0) for i in order]
    out += [GridPoint(langs[i], s, 0) for s in between for i in order]
    out += [GridPoint(langs[i], last, k) for k in range(1, w.seeds) for i in order]
    return out


def fill(inst: Instance, order: list[int], cap: float, start: int = 2) -> list[GridPoint]:
    """The base design plus every addition, in order, that still fits in `cap` training tokens. From a
    one-size start, every language keeps the price of its second size in reserve until it has two sizes:
    a language with one size cannot be fitted, and the plan would give it nothing."""
    design = base_design(inst, start)
    spent = sum(inst.tokens(p) for p in design)
    second = int(inst.world.sizes[1])
    short = set(inst.languages) if start == 1 else set()  # languages still on one trained size

    def reserve(excluding: str | None = None) -> float:
        return sum(inst.tokens(GridPoint(lang, second, 0)) for lang in short if lang != excluding)

    for p in additions(inst, order, start):
        if p not in design and spent + inst.tokens(p) + reserve(p.language) <= cap * (1 + 1e-9):
            design.append(p)
            spent += inst.tokens(p)
            short.discard(p.language)
    for lang in sorted(short, key=inst.languages.index):  # the reserve: the second size
        design.append(GridPoint(lang, second, 0))
    return design


def far_from_uniform(inst: Instance) -> np.ndarray:
    """|log(true optimum / equal tokens)| per language: how far the true plan moves from uniform."""
    w = inst.world
    return np.abs(np.log(np.maximum(w.optimum(), 1e-9) / np.maximum(w.uniform(), 1e-9)))


def evaluate(inst: Instance, n_orders: int, seed: int, start: int = 2) -> list[dict]:
    grid = inst.grid()
    full = sum(inst.tokens(p) for p in grid)
    prefix = ONE if start == 1 else ""
    rows = []

    def add(design: str, points: list[GridPoint]) -> None:
        loss, room = inst.regret_terms([inst.run(p) for p in points])
        rows.append({"family": inst.family, "instance": inst.index, "design": design, "target": SHARE,
                     "compute": sum(inst.tokens(p) for p in points) / full, "runs": len(points),
                     "loss": loss, "room": room})

    add("grid", grid)
    far = list(np.argsort(-far_from_uniform(inst), kind="stable"))
    add(prefix + "far first", fill(inst, far, SHARE * full, start))
    add(prefix + "near first", fill(inst, far[::-1], SHARE * full, start))
    rng = np.random.default_rng([seed, inst.index, 7])
    for k in range(n_orders):
        add(f"{prefix}random {k}", fill(inst, list(rng.permutation(inst.world.n)), SHARE * full, start))
    chosen = [r for r in rows if r["design"] != "grid"]
    best = min(chosen, key=lambda r: r["loss"])
    rows.append({**best, "design": prefix + BEST})
    return rows


BOTH = "best of both starts"


def with_best_of_both(table: pd.DataFrame) -> pd.DataFrame:
    """Adds, where an instance has both starts' designs, the better of their two best-of rows."""
    best = table[table.design.isin([BEST, ONE + BEST])]
    both = best.groupby(["family", "instance"]).filter(lambda g: len(g) == 2)
    if both.empty:
        return table
    picked = both.loc[both.groupby(["family", "instance"]).loss.idxmin()].assign(design=BOTH)
    return pd.concat([table, picked], ignore_index=True)


def summary(table: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Per family: the grid's pooled regret, each kind of design's (random: pooled over all orders) with its
    compute, and far first and the best-of rows minus the grid with 90% paired intervals."""
    table = with_best_of_both(table)
    t = table.assign(kind=table.design.str.replace(r"random \d+$", "random", regex=True))
    out = []
    for family, g in t.groupby("family", sort=False):
        row = {"family": family, "instances": g.instance.nunique()}
        for kind, k in g.groupby("kind", sort=False):
            row[kind] = k.loss.sum() / k.room.sum()
            row[f"{kind} compute"] = k.compute.mean()
        for design in ("far first", BEST, ONE + "far first", ONE + BEST, BOTH):
            if design in row:
                # one generator per (family, design): an interval does not move when other designs are added
                rng = np.random.default_rng([seed, zlib.crc32(f"{family}/{design}".encode())])
                d, lo, hi, _ = paired_difference(table, family, SHARE, rng, design)
                row[f"{design} - grid"], row[f"{design} lo"], row[f"{design} hi"] = d, lo, hi
        out.append(row)
    return pd.DataFrame(out)


def markdown(s: pd.DataFrame) -> str:
    """One table per start (those run), the second with the better of both starts' best-of."""
    def cell(v: float, share: float, grid: float) -> str:
        text = f"{v:.3f} ({100 * share:.0f}%)"
        return f"**{text}**" if v <= grid else text

    def diff(row, name: str) -> str:
        d, lo, hi = row[f"{name} - grid"], row[f"{name} lo"], row[f"{name} hi"]
        verdict = "better" if hi < 0 else "worse" if lo > 0 else "tied"
        return f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}] {verdict}"

    tables = []
    for prefix in ("", ONE):
        if prefix + "far first" not in s.columns:
            continue
        extra = BOTH in s.columns and prefix == ONE
        lines = [f"| family | grid | {prefix}far first | − grid [90%] | near first | random orders | best of "
                 "(optimistic) | − grid [90%] |" + (" best of both starts | − grid [90%] |" if extra else ""),
                 "|---|---:|---:|---|---:|---:|---:|---|" + ("---:|---|" if extra else "")]
        for _, r in s.iterrows():
            g, name = r["grid"], lambda k: prefix + k  # noqa: E731
            line = (f"| {r['family']} | {g:.3f} | {cell(r[name('far first')], r[name('far first') + ' compute'], g)} | "
                    f"{diff(r, name('far first'))} | {cell(r[name('near first')], r[name('near first') + ' compute'], g)} | "
                    f"{cell(r[name('random')], r[name('random') + ' compute'], g)} | "
                    f"{cell(r[name(BEST)], r[name(BEST) + ' compute'], g)} | {diff(r, name(BEST))} |")
            if extra:
                line += f" {cell(r[BOTH], r[BOTH + ' compute'], g)} | {diff(r, BOTH)} |"
            lines.append(line)
        tables.append("\n".join(lines))
    return "\n\n".join(tables)


def report(table: pd.DataFrame, out: Path) -> None:
    s = summary(table)
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.float_format", "{:.3f}".format):
        print(s.to_string(index=False))
    out.with_suffix(".md").write_text(markdown(s) + "\n", encoding="utf-8")
    print()
    print(markdown(s))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--families", nargs="*", default=list(FAMILIES), choices=list(FAMILIES))
    p.add_argument("--instances", type=int, default=10)
    p.add_argument("--orders", type=int, default=16, help="random orders of languages per instance")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--start", type=int, choices=[1, 2], default=2,
                   help="sizes every language starts with: 2, the adaptive sweep's start design (default), or 1, "
                        "then the largest and twice the largest size first (designs named 'one-size start: …')")
    p.add_argument("--out", type=Path, default=RESULTS / "adaptive_bound.csv", help="per-instance rows")
    p.add_argument("--summarise", type=Path, nargs="+", metavar="CSV",
                   help="no runs: merge these per-instance tables into --out and report")
    args = p.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.summarise:
        report(merge_tables(args.summarise, ["family", "instance", "design"], args.out), args.out)
        return 0
    started = time.perf_counter()
    report(run_instances(args.families, args.instances, args.seed,
                         lambda inst: evaluate(inst, args.orders, args.seed, args.start), args.out), args.out)
    print(f"\n{time.perf_counter() - started:.0f} s on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
