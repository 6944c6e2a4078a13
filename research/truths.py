"""Synthetic worlds with known truth: families of scaling curves to judge fits and plans on.

A plan is only as good as the curves behind it, and its quality can only be measured where the true
curves are known. A `World` is one instance: L languages with true curves (power, offset power or log
law), token prices, a token budget, floors and caps, and the sweep design that would measure them
(sizes, seeds, an optional zero-shot row at 0 pairs, a noise model). `simulate_runs` plays the sweep and
returns a runs.csv table; `World.value(pairs)` scores any allocation on the true curves, so

    regret = (true optimum − plan's true value) / (true optimum − uniform's true value)

is 0 for a perfect plan and 1 for one no better than equal tokens per language. The same holds for the
fairness objective: `World.value(pairs, "maxmin")` is the worst language's true score and
`World.optimum("maxmin")` its optimum, found independently of the planner (`research.truths_maxmin`).

A *family* draws worlds from one distribution of truths; judging a method on many families, never one,
is the point: a default tuned to one distribution is a defect. `FAMILIES` lists them with what each
stresses. Each is a function of a random generator, so a (family, seed) pair is one fixed world.
Families whose truths lie outside the fit's laws, or whose noise is not Gaussian, are kept apart in
`research.truths_heldout` (`HELD_OUT`): the default was not designed on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import pandas as pd

from fits.laws import Curve
from planner.allocation.curves import CurveBank
from planner.allocation.solver import solve_sum

METRIC = "chrf"
GRID4 = (250.0, 500.0, 1000.0, 2000.0)


@dataclass(frozen=True)
class World:
    """True curves of L languages (x in pairs), their token prices, the budget and the sweep design."""

    curves: tuple[Curve, ...]
    tokens_per_pair: np.ndarray
    budget: float  # tokens
    sizes: tuple[float, ...]
    seeds: int = 1
    zero_shot: bool = False  # the sweep also measures every language at 0 pairs (evaluation only)
    noise: np.ndarray | float = 1.0  # σ per language (array) or for all
    noise_power: float = 0.0  # σ(x) = σ·(x/x_min)^−noise_power: noisier small runs when > 0
    noise_kind: str = "normal"  # "normal", "student-t" (3 degrees of freedom) or "outliers" (see `_noise`)
    lo: np.ndarray | None = None  # floors (pairs)
    hi: np.ndarray | None = None  # caps (pairs): max_epochs × available
    available: np.ndarray | None = None

    @property
    def languages(self) -> list[str]:
        return [f"l{i:02d}" for i in range(len(self.curves))]

    @property
    def n(self) -> int:
        return len(self.curves)

    @property
    def in_laws(self) -> bool:
        """Every true curve is one of the fit's own laws (else a held-out truth, `research.truths_heldout`)."""
        return all(isinstance(c, Curve) for c in self.curves)

    def bank(self) -> CurveBank:
        return CurveBank.from_curves(list(self.curves), np.ones(self.n))

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lo = np.zeros(self.n) if self.lo is None else self.lo
        hi = np.full(self.n, np.inf) if self.hi is None else self.hi
        return lo, hi

    def value(self, pairs: np.ndarray, objective: str = "sum") -> float:
        """The true objective of an allocation: the sum of every language's true score (`sum`), or the
        worst language's (`maxmin`)."""
        if objective == "maxmin":
            return float(np.min(self.predict(pairs)))
        if objective != "sum":
            raise ValueError(f"no true value for objective {objective!r}")
        return float(np.sum(self.predict(pairs)))

    def predict(self, pairs: np.ndarray) -> np.ndarray:
        pairs = np.asarray(pairs, dtype=float)
        if self.in_laws:
            return self.bank().predict(pairs)
        return np.array([float(c.predict(x)) for c, x in zip(self.curves, pairs)])

    def optimum(self, objective: str = "sum") -> np.ndarray:
        lo, hi = self.bounds()
        if objective == "maxmin":  # found without the planner's solver (research.truths_maxmin)
            from research.truths_maxmin import solve_maxmin_any  # noqa: PLC0415 (it imports this module)

            return solve_maxmin_any(self, lo, hi)
        if objective != "sum":
            raise ValueError(f"no true optimum for objective {objective!r}")
        if not self.in_laws:  # curves the KKT solver cannot take: the independent grid solver
            from research.truths_heldout import solve_any  # noqa: PLC0415 (it imports this module)

            return solve_any(self, lo, hi)
        return solve_sum(self.bank(), self.tokens_per_pair, lo, hi, np.ones(self.n), self.budget).pairs

    def uniform(self) -> np.ndarray:
        """Equal tokens per language, cut at the caps (the `uniform` baseline)."""
        _, hi = self.bounds()
        return np.minimum(self.budget / self.n / self.tokens_per_pair, hi)

    def sigma_at(self, lang: int, x: np.ndarray) -> np.ndarray:
        base = self.noise[lang] if np.ndim(self.noise) else float(self.noise)
        if self.noise_power == 0:
            return np.full(np.shape(x), base)
        ref = min(self.sizes)
        return base * (np.maximum(x, ref) / ref) ** -self.noise_power


def simulate_runs(world: World, rng: np.random.Generator, noise_scale: float = 1.0) -> pd.DataFrame:
    """The runs.csv a sweep of this world would write (noise_scale 0: noiseless)."""
    rows = []
    sizes = ((0.0,) if world.zero_shot else ()) + tuple(world.sizes)
    for i, (lang, curve, tpp) in enumerate(zip(world.languages, world.curves, world.tokens_per_pair)):
        for size in sizes:
            truth = float(curve.predict(size))
            for seed in range(world.seeds if size > 0 else 1):  # evaluation only: no seed to vary
                y = truth + noise_scale * _noise(world, i, size, truth, rng)
                rows.append({"language": lang, "n_pairs": int(size), "n_tokens": size * tpp, "seed": seed, METRIC: y})
    return pd.DataFrame(rows)


def _noise(world: World, lang: int, size: float, truth: float, rng: np.random.Generator) -> float:
    """One run's deviation from its true score.

    "student-t": σ·t₃ (heavy tails: a few runs several σ away). "outliers": Gaussian, except that one run
    in ten lost 20–70% of its true score (a run that diverged or was cut short, as real sweeps have).
    """
    sigma = float(world.sigma_at(lang, np.array(size)))
    if world.noise_kind == "student-t":
        return sigma * rng.standard_t(3)
    if world.noise_kind == "outliers" and rng.random() < 0.1:
        return -rng.uniform(0.2, 0.7) * truth
    return sigma * rng.standard_normal()


# ---------------------------------------------------------------------------------------- families


def power(c, a, alpha, x0=0.0) -> Curve:
    params = {"offset": float(c), "scale": float(a), "alpha": float(alpha)}
    if x0:
        params["x0"] = float(x0)
    return Curve("power", params)


def _power_from_start(c, alpha, y_first, first, x0=0.0) -> Curve:
    """A power curve with ceiling c and exponent alpha that scores y_first at `first` pairs."""
    return power(c, (c - y_first) * (first + x0) ** alpha, alpha, x0)


def _common(rng, n, sizes, budget_pairs=(1000, 5000), tpp=(15, 60)) -> dict:
    tokens = rng.uniform(*tpp, n)
    return dict(tokens_per_pair=tokens, budget=float(rng.uniform(*budget_pairs) * n * tokens.mean()), sizes=tuple(sizes))


def steep_low_ceilings(rng) -> World:
    """Ceilings far below 100 (25–60 chrF), exponents up to 1.1: several curves saturate inside the grid."""
    n = int(rng.integers(8, 13))
    c, alpha = rng.uniform(25, 60, n), rng.uniform(0.3, 1.1, n)
    curves = [_power_from_start(ci, ai, rng.uniform(0.15, 0.6) * ci, GRID4[0]) for ci, ai in zip(c, alpha)]
    return World(tuple(curves), **_common(rng, n, GRID4))


def moderate_high_ceilings(rng) -> World:
    """Moderate exponents (0.15–0.5) and high ceilings (70–98): far from saturation, large extrapolation."""
    n = int(rng.integers(8, 13))
    c, alpha = rng.uniform(70, 98, n), rng.uniform(0.15, 0.5, n)
    curves = [_power_from_start(ci, ai, rng.uniform(5, 25), GRID4[0]) for ci, ai in zip(c, alpha)]
    return World(tuple(curves), **_common(rng, n, GRID4))


def pretrained_offset(rng) -> World:
    """A pretrained model: S = C − A·(x + x₀)^−α with x₀ comparable to the grid (100–2,000 pairs) and the
    zero-shot score (1–25 chrF) measured at 0 pairs."""
    n = int(rng.integers(8, 13))
    c, alpha, x0 = rng.uniform(30, 80, n), rng.uniform(0.3, 1.2, n), np.exp(rng.uniform(np.log(100), np.log(2000), n))
    curves = [_power_from_start(ci, ai, rng.uniform(1, 25), 0.0, xi) for ci, ai, xi in zip(c, alpha, x0)]
    return World(tuple(curves), zero_shot=True, **_common(rng, n, GRID4))


def saturated_and_steep(rng) -> World:
    """Half the languages within 0.5–3 chrF of their ceiling at 2,000 pairs, half steep and far from it."""
    n = int(rng.integers(8, 13))
    curves = []
    for i in range(n):
        alpha = rng.uniform(0.4, 1.2) if i % 2 == 0 else rng.uniform(0.15, 0.45)
        c = rng.uniform(35, 75) if i % 2 == 0 else rng.uniform(60, 95)
        if i % 2 == 0:  # saturated: fix the gap left at the largest size
            gap = rng.uniform(0.5, 3.0)
            curves.append(power(c, gap * GRID4[-1] ** alpha, alpha))
        else:
            curves.append(_power_from_start(c, alpha, rng.uniform(3, 15), GRID4[0]))
    return World(tuple(curves), **_common(rng, n, GRID4))


def log_like(rng) -> World:
    """Slow log-linear curves, y = a + b·ln x (b 1–6 chrF per e-fold): no ceiling in sight."""
    n = int(rng.integers(8, 13))
    curves = [log_curve(rng) for _ in range(n)]
    return World(tuple(curves), **_common(rng, n, GRID4, budget_pairs=(1000, 4000)))


def log_curve(rng) -> Curve:
    """y = a + b·ln x with b 1–6 chrF per e-fold, scoring 3–20 at the grid's first size."""
    b = rng.uniform(1.0, 6.0)
    a = rng.uniform(3, 20) - b * np.log(GRID4[0])
    return Curve("log", {"a": float(a), "b": float(b)})


def caps_and_floors(rng) -> World:
    """Binding caps (available data 300–3,000 pairs, one epoch) and floors (every third language needs
    ≥ 1,500 pairs)."""
    n = int(rng.integers(8, 13))
    c, alpha = rng.uniform(40, 90, n), rng.uniform(0.2, 0.9, n)
    curves = [_power_from_start(ci, ai, rng.uniform(3, 20), GRID4[0]) for ci, ai in zip(c, alpha)]
    common = _common(rng, n, GRID4, budget_pairs=(2500, 6000))
    available = np.where(rng.random(n) < 0.5, np.floor(rng.uniform(300, 3000, n)), np.inf)
    lo = np.where(np.arange(n) % 3 == 0, 1500.0, 0.0)
    lo = np.minimum(lo, available)
    floor_cost = float(np.sum(lo * common["tokens_per_pair"]))
    common["budget"] = max(common["budget"], 1.5 * floor_cost)
    return World(tuple(curves), lo=lo, hi=available, available=available, **common)


def heteroscedastic(rng) -> World:
    """Noise that shrinks with data (σ ∝ x^−0.5, 2.5 chrF at the smallest size) and differs by language
    (× 0.5–2)."""
    n = int(rng.integers(8, 13))
    c, alpha = rng.uniform(40, 90, n), rng.uniform(0.2, 0.9, n)
    curves = [_power_from_start(ci, ai, rng.uniform(3, 20), GRID4[0]) for ci, ai in zip(c, alpha)]
    return World(tuple(curves), noise=2.5 * rng.uniform(0.5, 2.0, n), noise_power=0.5, **_common(rng, n, GRID4))


def six_sizes_three_seeds(rng) -> World:
    """A rich sweep: 6 sizes (125–4,000) × 3 seeds, 1.5 chrF seed noise."""
    n = int(rng.integers(6, 11))
    sizes = (125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0)
    c, alpha = rng.uniform(35, 90, n), rng.uniform(0.15, 1.0, n)
    curves = [_power_from_start(ci, ai, rng.uniform(2, 15), sizes[0]) for ci, ai in zip(c, alpha)]
    return World(tuple(curves), seeds=3, noise=1.5, **_common(rng, n, sizes, budget_pairs=(2000, 8000)))


def three_sizes_three_seeds(rng) -> World:
    """The fewest sizes a three-parameter law allows (500, 1,000, 2,000), each run with 3 seeds."""
    return replace(_three_sizes(rng), seeds=3)


def three_sizes_one_seed(rng) -> World:
    """3 sizes, one seed: as many points as a power law has parameters, so a language's noise cannot be
    told from its curve's shape (reported, not held to exact recovery on noiseless data)."""
    return _three_sizes(rng)


def _three_sizes(rng) -> World:
    n = int(rng.integers(8, 13))
    sizes = (500.0, 1000.0, 2000.0)
    c, alpha = rng.uniform(35, 90, n), rng.uniform(0.15, 1.0, n)
    curves = [_power_from_start(ci, ai, rng.uniform(5, 25), sizes[0]) for ci, ai in zip(c, alpha)]
    return World(tuple(curves), **_common(rng, n, sizes))


def thirty_languages(rng) -> World:
    """30 languages, 4 sizes (250–4,000), one seed, token prices 10–80 per pair."""
    n = 30
    sizes = (250.0, 1000.0, 2000.0, 4000.0)
    c, alpha = rng.uniform(30, 95, n), rng.uniform(0.15, 1.1, n)
    curves = [_power_from_start(ci, ai, rng.uniform(2, 20), sizes[0]) for ci, ai in zip(c, alpha)]
    return World(tuple(curves), **_common(rng, n, sizes, tpp=(10, 80)))


def four_languages(rng) -> World:
    """Only 4 languages (little to pool from), 6 sizes (100–3,200), one seed."""
    n = 4
    sizes = (100.0, 200.0, 400.0, 800.0, 1600.0, 3200.0)
    c, alpha = rng.uniform(35, 90, n), rng.uniform(0.15, 1.0, n)
    curves = [_power_from_start(ci, ai, rng.uniform(2, 15), sizes[0]) for ci, ai in zip(c, alpha)]
    return World(tuple(curves), **_common(rng, n, sizes))


@dataclass(frozen=True)
class Family:
    name: str
    draw: Callable[[np.random.Generator], World]
    doc: str = field(default="")


def as_family(fn) -> Family:
    return Family(fn.__name__.replace("_", "-"), fn, (fn.__doc__ or "").split("\n\n")[0].strip())


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in map(as_family, [
        steep_low_ceilings, moderate_high_ceilings, pretrained_offset, saturated_and_steep, log_like,
        caps_and_floors, heteroscedastic, six_sizes_three_seeds, three_sizes_three_seeds, thirty_languages,
        four_languages, three_sizes_one_seed,
    ])
}
# Designs whose noise level is not identifiable (as many points per language as parameters, one seed):
# no estimator can be exact on their noiseless data and still shrink their noisy data.
UNIDENTIFIED = frozenset({"three-sizes-one-seed"})


def family_from_curves(name: str, doc: str, curves: list[Curve], sigma: float, sizes, zero_shot: bool,
                       tokens_per_pair: np.ndarray, seeds: int = 1, jitter: float = 0.15) -> Family:
    """A family around measured curves (e.g. fitted to a real sweep): each world perturbs every
    parameter by ±`jitter` (relative; the exponent on its log scale) and keeps the measured noise."""

    def draw(rng) -> World:
        out = []
        for c in curves:
            p = dict(c.params)
            if c.family == "power":
                p["scale"] *= np.exp(rng.uniform(-jitter, jitter))
                p["alpha"] *= np.exp(rng.uniform(-jitter, jitter))
                if "x0" in p:
                    p["x0"] *= np.exp(rng.uniform(-jitter, jitter))
            else:
                p["b"] *= np.exp(rng.uniform(-jitter, jitter))
            out.append(Curve(c.family, p))
        tpp = np.asarray(tokens_per_pair, float) * np.exp(rng.uniform(-jitter, jitter, len(out)))
        budget = float(rng.uniform(1.0, 3.0) * max(sizes) * len(out) * tpp.mean())
        return World(tuple(out), tpp, budget, tuple(sizes), seeds=seeds, zero_shot=zero_shot, noise=sigma)

    return Family(name, draw, doc)


def noiseless(world: World) -> World:
    return replace(world, noise=0.0)
