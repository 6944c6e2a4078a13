"""A rejected alternative, kept measurable: trust a language's own acceleration over the fitted law.

On S-shaped truths (`research.truths_heldout`, sigmoid-in-log-x) the default plan only ties uniform: a
language whose curve is still in its slow start looks flat on the grid, every law the fit knows is
concave, and the plan starves exactly the languages that have the most to gain beyond the grid. The
obvious repair is a per-language override: when the gain of the last doubling exceeds the gain of the
one before by more than `z` standard errors (σ from the pooled fit), and exceeds the law's own local
slope, replace that language's curve by a log line through its last point with the last segment's slope
(concave, so the allocation solver stays exact; its draws carry the slope's standard error).

This script measures the override against the default on the same worlds and runs, for several `z`:

    python benchmarks/acceleration_override.py --instances 30

Regret as in `benchmarks/plan_regret.py` (0 perfect, 1 uniform), pooled over instances.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import zlib
from pathlib import Path

import numpy as np

from fits import fit_runs
from fits.laws import Curve
from planner.allocation import allocate

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root: `research` is not installed
from research.truths import FAMILIES, METRIC, simulate_runs  # noqa: E402
from research.truths_heldout import HELD_OUT  # noqa: E402
from plan_regret import limits_of, methods  # noqa: E402

FAMILY_NAMES = ["sigmoid-in-log-x", "exponential-saturation", "mixed-laws", "dip-then-rise",
                "moderate-high-ceilings", "log-like", "steep-low-ceilings", "pretrained-offset"]


def plan(world, fitset) -> np.ndarray:
    p = allocate(fitset, budget=world.budget, unit="tokens", limits=limits_of(world), risk="expected")
    by = {q.language: q for q in p.languages}
    return np.array([by[lang].pairs_exact for lang in world.languages])


def accelerating(x: np.ndarray, y: np.ndarray, n: np.ndarray, sigma: float) -> tuple[float, float, float]:
    """(last slope per ln x, its standard error, z of last − previous slope) from the last three sizes."""
    d1, d0 = np.log(x[-1] / x[-2]), np.log(x[-2] / x[-3])
    g1, g0 = (y[-1] - y[-2]) / d1, (y[-2] - y[-3]) / d0
    sd_diff = sigma * np.sqrt(1 / (n[-1] * d1**2) + 1 / (n[-3] * d0**2) + (1 / d1 + 1 / d0) ** 2 / n[-2])
    return g1, sigma * np.sqrt(1 / n[-1] + 1 / n[-2]) / d1, (g1 - g0) / sd_diff


def override(fitset, runs, z: float, rng) -> tuple[object, int]:
    """The fit set with accelerating languages' curves replaced by their last-segment log line."""
    langs, sigma, changed = dict(fitset.languages), float(fitset.population["sigma"]), 0
    for lang, fit in fitset.languages.items():
        m = runs[(runs.language == lang) & (runs.n_pairs > 0)].groupby("n_pairs")[METRIC].agg(["mean", "count"])
        if len(m) < 3:
            continue
        x, y, n = m.index.to_numpy(float), m["mean"].to_numpy(), m["count"].to_numpy()
        slope, se, z_acc = accelerating(x, y, n, sigma)
        if z_acc <= z or slope <= float(fit.curve.marginal_utility(x[-1])) * x[-1]:
            continue
        draws = len(np.atleast_1d(next(iter(fit.boot.params.values()))))
        b = np.maximum(slope + se * rng.standard_normal(draws), 1e-6)
        langs[lang] = dataclasses.replace(
            fit, law="log", curve=Curve("log", {"a": y[-1] - slope * np.log(x[-1]), "b": slope}),
            boot=Curve("log", {"a": y[-1] - b * np.log(x[-1]), "b": b}))
        changed += 1
    return dataclasses.replace(fitset, languages=langs), changed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--instances", type=int, default=30)
    ap.add_argument("--z", type=float, nargs="+", default=[0.0, 1.0, 2.0, 3.0])
    ap.add_argument("--families", nargs="+", default=FAMILY_NAMES)
    args = ap.parse_args(argv)
    families, default = {**FAMILIES, **HELD_OUT}, methods()[0]
    print(f"{os.cpu_count()} cores; {args.instances} worlds per family; regret pooled (1 = uniform)")
    print("| family | default | " + " | ".join(f"override z>{z:g} (languages changed)" for z in args.z) + " |")
    print("|---|---:|" + "---:|" * len(args.z))
    for name in args.families:
        rng = np.random.default_rng([0, zlib.crc32(name.encode())])
        room, loss, losses, changed = 0.0, 0.0, np.zeros(len(args.z)), np.zeros(len(args.z), int)
        for _ in range(args.instances):
            world = families[name].draw(rng)
            runs = simulate_runs(world, rng)
            fitset = fit_runs(runs.astype(str), METRIC, seed=0, **default.fit)
            best = world.value(world.optimum())
            room += best - world.value(world.uniform())
            loss += best - world.value(plan(world, fitset))
            for k, z in enumerate(args.z):
                fs, c = override(fitset, runs, z, np.random.default_rng(1))
                changed[k] += c
                losses[k] += best - world.value(plan(world, fs))
        cells = " | ".join(f"{lk / room:.3f} ({c})" for lk, c in zip(losses, changed))
        print(f"| {name} | {loss / room:.3f} | {cells} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
