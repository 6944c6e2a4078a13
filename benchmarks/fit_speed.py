"""How long `planner fit` takes: 100 languages × 5 sizes, 1,000 bootstrap draws each (the target is < 10 s
on a 2-core machine).

Synthetic runs follow a power law per language (random ceiling, scale and exponent, Gaussian noise), so
`--law auto` has all three families to fit, backtest and choose between. Prints wall-clock and CPU time
of the fit alone (data generation and file writing excluded), the best of --repeat runs.

    python benchmarks/fit_speed.py [--languages 100] [--sizes 5] [--seeds 1] [--bootstrap 1000] [--law auto]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import pandas as pd

from fits import fit_runs


def synthetic_runs(languages: int, sizes: int, seeds: int, noise: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    xs = 250 * 2 ** np.arange(sizes)
    rows = []
    for i in range(languages):
        ceiling, scale, alpha = rng.uniform(40, 70), rng.uniform(300, 3000), rng.uniform(0.2, 0.8)
        for x in xs:
            for s in range(seeds):
                chrf = ceiling - scale * x**-alpha + rng.normal(0, noise)
                rows.append({"language": f"l{i:03d}", "n_pairs": int(x), "seed": s, "chrf": chrf})
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--languages", type=int, default=100)
    ap.add_argument("--sizes", type=int, default=5)
    ap.add_argument("--seeds", type=int, default=1, help="runs per size")
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--law", default="auto", choices=["auto", "power", "log", "shared"])
    ap.add_argument("--noise", type=float, default=0.5, help="chrF noise of one run")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    runs = synthetic_runs(args.languages, args.sizes, args.seeds, args.noise, args.seed)
    walls, cpus = [], []
    for _ in range(args.repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        fitset = fit_runs(runs, "chrf", law=args.law, bootstrap=args.bootstrap, seed=args.seed)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    laws = pd.Series([lf.law for lf in fitset.languages.values()]).value_counts().to_dict()
    print(
        f"fit {args.languages} languages × {args.sizes} sizes × {args.seeds} seed(s), law {args.law}, "
        f"{args.bootstrap} bootstrap draws each"
    )
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible")
    print(f"wall time: best {min(walls):.2f} s, median {np.median(walls):.2f} s over {args.repeat} runs")
    print(f"CPU time:  best {min(cpus):.2f} s (wall time exceeds it when other processes share the cores)")
    print(f"laws chosen: {laws}; not fitted: {len(fitset.skipped)}")


if __name__ == "__main__":
    main()
