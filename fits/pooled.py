"""Partial pooling across languages: every language's scaling law fitted at once, by empirical Bayes.

Why: a proxy sweep gives each language 3–6 sizes, often one seed each, so a language's own three- or
four-parameter fit is mostly noise — its exponent and its ceiling trade off along a ridge the data cannot
resolve, and the plan inherits that noise. Languages trained with one recipe are alike, though: their
exponents, ceilings and offsets come from one population. Estimating that population from all languages
and using it as each language's prior moves a language's estimate toward the others exactly as far as its
own data are uninformative (Efron & Morris's shrinkage), and not at all where its data are decisive.

Model, for a score (a loss flips the sign d, and its offset is a floor E ≥ 0):

    y_lj = C_l − d·A_l·(x_lj + x0_l)^(−α_l) + ε_lj,    ε ~ N(0, σ²)              (law "offset")
    x0_l = 0, rows with x = 0 left out                                             (law "power")
    y_lj = a_l + b_l·ln x_lj, rows with x = 0 left out                            (law "log")

Each language's parameters φ_l = (C, ln A, ln α[, ln x0]); the pooled ones (C, ln α, ln x0) have a
population prior N(μ, τ²) whose μ and τ are estimated from all languages (EM on the Laplace posteriors:
μ = mean of posterior means, τ² = mean of squared deviations plus posterior variances). ln A is left
free: a curve's scale is what the data measure best. The noise level σ is one number for all languages
(σ² = residual sum of squares / (N − effective parameters)), which is what makes pooling possible with
one seed and as many sizes as parameters. A score's ceiling never exceeds the metric's maximum
(`bounds`), and is otherwise learned, not fixed.

Exactness: on noiseless data the estimated σ falls towards 0, the data then outweigh any prior, and the
fit interpolates — each round's residuals are of order σ² of the last, so it converges quadratically.

Uncertainty: each language's posterior is approximated by a Gaussian at its MAP (Laplace, covariance
(JᵀJ)⁻¹ of the whitened residuals); draws from it are the `boot` curves the allocator averages over.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares

LAWS = ("power", "offset", "log")
ALPHA_BOUNDS = (0.01, 4.0)
# Parameter layout per law; the first three are shared by power and offset.
PARAMS = {"power": ("C", "lnA", "lnalpha"), "offset": ("C", "lnA", "lnalpha", "lnx0"), "log": ("a", "b")}
POOLED = {"power": ("C", "lnalpha"), "offset": ("C", "lnalpha", "lnx0"), "log": ()}
_LN_A_BOUNDS = (-60.0, 60.0)
# Grids of the global start: ln α over its range, ln x0 from far below to far above the measured sizes.
_ALPHA_GRID = np.exp(np.linspace(np.log(ALPHA_BOUNDS[0]), np.log(ALPHA_BOUNDS[1]), 41))
_X0_GRID_DECADES = (-2.0, 2.0, 21)  # relative to the geometric mean of the positive sizes
_MAX_ROUNDS = 40  # EM/σ rounds; quadratic convergence on clean data, a few rounds on noisy data
_TAU_FLOOR = {"C": 1e-3, "lnalpha": 1e-3, "lnx0": 1e-3}


@dataclass(frozen=True)
class Bounds:
    """What a metric allows: the sign d (+1 higher is better) and the range of the curve's offset."""

    sign: float = 1.0
    offset_max: float | None = None  # a bounded score's maximum (100 for chrF): the ceiling cannot exceed it
    offset_min: float | None = None  # a non-negative loss's floor E ≥ 0


@dataclass
class Prior:
    """Population prior of the pooled parameters: name → (mean, sd); sd = inf means flat."""

    mean: dict[str, float]
    sd: dict[str, float]

    @classmethod
    def flat(cls, law: str) -> "Prior":
        return cls({p: 0.0 for p in POOLED[law]}, {p: np.inf for p in POOLED[law]})


@dataclass
class LanguagePosterior:
    """One language's MAP under the prior, its Laplace covariance, and what the noise estimate needs."""

    phi: np.ndarray
    cov: np.ndarray
    rss: float  # Σ (y − f)² at the MAP, metric units
    hat: float  # effective parameters spent on the data (trace of the hat matrix)
    n: int
    converged: bool


@dataclass
class PooledFit:
    """All languages' posteriors under one law, the population prior and the pooled noise level."""

    law: str
    languages: list[str]
    posts: dict[str, LanguagePosterior]
    prior: Prior
    sigma: float
    dof: float  # N − Σ effective parameters: the degrees of freedom behind σ
    rounds: int
    notes: list[str] = field(default_factory=list)

    def params(self, lang: str) -> dict[str, float]:
        return natural_params(self.law, self.posts[lang].phi)


# -------------------------------------------------------------------------------------- the law math


def usable_rows(law: str, x: np.ndarray) -> np.ndarray:
    """Rows a law can use: the offset law takes the zero-shot rows (x = 0) too."""
    return x >= 0 if law == "offset" else x > 0


def curve_and_jacobian(law: str, phi: np.ndarray, x: np.ndarray, sign: float) -> tuple[np.ndarray, np.ndarray]:
    """f(x; φ) and ∂f/∂φ (n × p)."""
    if law == "log":
        return phi[0] + phi[1] * np.log(x), np.column_stack([np.ones_like(x), np.log(x)])
    c, ln_a, ln_alpha = phi[:3]
    x0 = np.exp(phi[3]) if law == "offset" else 0.0
    a, alpha = np.exp(ln_a), np.exp(ln_alpha)
    z = x + x0
    term = a * z**-alpha  # A·z^−α
    f = c - sign * term
    cols = [np.ones_like(x), -sign * term, sign * term * alpha * np.log(z)]
    if law == "offset":
        cols.append(sign * term * alpha * x0 / z)
    return f, np.column_stack(cols)


def natural_params(law: str, phi: np.ndarray) -> dict[str, float]:
    """φ → the `fits.laws` parameters (power family: offset, scale, alpha[, x0]; log: a, b)."""
    if law == "log":
        return {"a": float(phi[0]), "b": float(phi[1])}
    out = {"offset": float(phi[0]), "scale": float(np.exp(phi[1])), "alpha": float(np.exp(phi[2]))}
    if law == "offset":
        out["x0"] = float(np.exp(phi[3]))
    return out


def natural_draws(law: str, phis: np.ndarray) -> dict[str, np.ndarray]:
    """Rows of φ → arrays of `fits.laws` parameters."""
    if law == "log":
        return {"a": phis[:, 0].copy(), "b": phis[:, 1].copy()}
    out = {"offset": phis[:, 0].copy(), "scale": np.exp(phis[:, 1]), "alpha": np.exp(phis[:, 2])}
    if law == "offset":
        out["x0"] = np.exp(phis[:, 3])
    return out


def phi_bounds(law: str, bounds: Bounds, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if law == "log":
        return np.array([-np.inf, -np.inf]), np.array([np.inf, np.inf])
    lo_c = -np.inf if bounds.offset_min is None else bounds.offset_min
    hi_c = np.inf if bounds.offset_max is None else bounds.offset_max
    lo = [lo_c, _LN_A_BOUNDS[0], np.log(ALPHA_BOUNDS[0])]
    hi = [hi_c, _LN_A_BOUNDS[1], np.log(ALPHA_BOUNDS[1])]
    if law == "offset":
        ref = _x_ref(x)
        lo.append(np.log(ref) + _X0_GRID_DECADES[0] * 2 * np.log(10))
        hi.append(np.log(ref) + _X0_GRID_DECADES[1] * 2 * np.log(10))
    return np.array(lo), np.array(hi)


def _x_ref(x: np.ndarray) -> float:
    pos = np.unique(x[x > 0])
    return float(np.exp(np.mean(np.log(pos)))) if len(pos) else 1.0


def _prior_rows(law: str, prior: Prior) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices, means and sds of the parameters with a proper (finite-sd) prior."""
    names = PARAMS[law]
    idx = [names.index(p) for p in POOLED[law] if np.isfinite(prior.sd[p])]
    return (np.array(idx, dtype=int), np.array([prior.mean[names[i]] for i in idx]),
            np.array([prior.sd[names[i]] for i in idx]))


# ------------------------------------------------------------------------------ one language's MAP


def _grid_start(law: str, x, y, sigma, prior: Prior, bounds: Bounds, lo, hi) -> np.ndarray:
    """The best point of a grid over the nonlinear parameters (α, and x0 for the offset law), with C and
    ln A in closed form (least squares, then C clipped to its bounds and A refitted ≥ 0): a global start
    that a ridge in (C, α) or a second basin cannot trap."""
    d = bounds.sign
    x0s = np.array([0.0])
    if law == "offset":
        x0s = np.exp(np.linspace(lo[3], hi[3], _X0_GRID_DECADES[2]))
    alpha = np.repeat(_ALPHA_GRID, len(x0s))
    x0 = np.tile(x0s, len(_ALPHA_GRID))
    t = (x[None, :] + x0[:, None]) ** -alpha[:, None]  # (G, n)
    tm, ym = t.mean(1), y.mean()
    stt = ((t - tm[:, None]) ** 2).sum(1)
    sty = ((t - tm[:, None]) * (y - ym)).sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(stt > 0, sty / stt, 0.0)  # y ≈ c + slope·t, slope = −d·A
    c = np.clip(ym - slope * tm, lo[0], hi[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.maximum(-d * ((t * (y - c[:, None])).sum(1)) / (t * t).sum(1), 1e-300)
    resid = y[None, :] - (c[:, None] - d * a[:, None] * t)
    phi = np.column_stack([c, np.clip(np.log(a), *_LN_A_BOUNDS), np.log(alpha)] + ([np.log(x0)] if law == "offset" else []))
    idx, mean, sd = _prior_rows(law, prior)
    score = (resid**2).sum(1) / sigma**2 + (((phi[:, idx] - mean) / sd) ** 2).sum(1)
    return phi[int(np.nanargmin(score))]


def fit_language(law: str, x, y, sigma: float, prior: Prior, bounds: Bounds, start=None) -> LanguagePosterior:
    """The MAP of one language's parameters under `prior` and noise σ, with its Laplace covariance."""
    if law == "log":
        design = np.column_stack([np.ones_like(x), np.log(x)])
        phi, *_ = np.linalg.lstsq(design, y, rcond=None)
        rss = float(np.sum((y - design @ phi) ** 2))
        cov = sigma**2 * np.linalg.pinv(design.T @ design)
        return LanguagePosterior(phi, cov, rss, float(min(2, len(np.unique(x)))), len(y), True)
    lo, hi = phi_bounds(law, bounds, x)
    idx, mean, sd = _prior_rows(law, prior)
    if start is None:
        start = _grid_start(law, x, y, sigma, prior, bounds, lo, hi)
    # least_squares needs a strictly feasible start.
    width = np.where(np.isfinite(hi - lo), hi - lo, 1.0)
    start = np.clip(start, lo + 1e-9 * width, hi - 1e-9 * width)

    def residuals(phi):
        f, _ = curve_and_jacobian(law, phi, x, bounds.sign)
        return np.concatenate([(y - f) / sigma, (phi[idx] - mean) / sd])

    def jacobian(phi):
        _, jac = curve_and_jacobian(law, phi, x, bounds.sign)
        prior_rows = np.zeros((len(idx), len(phi)))
        prior_rows[np.arange(len(idx)), idx] = 1.0 / sd
        return np.vstack([-jac / sigma, prior_rows])

    res = least_squares(residuals, start, jac=jacobian, bounds=(lo, hi), method="trf", x_scale="jac",
                        ftol=1e-15, xtol=1e-15, gtol=1e-15, max_nfev=400)
    phi = res.x
    f, jac = curve_and_jacobian(law, phi, x, bounds.sign)
    whitened = jacobian(phi)
    info = whitened.T @ whitened
    cov = np.linalg.pinv(info, rcond=1e-12, hermitian=True)
    data = jac / sigma
    hat = float(np.trace(data @ cov @ data.T))
    return LanguagePosterior(phi, cov, float(np.sum((y - f) ** 2)), hat, len(y), bool(res.status > 0))


# ------------------------------------------------------------------------------------ all languages


def _update_prior(law: str, posts: dict[str, LanguagePosterior], prior: Prior) -> Prior:
    """One EM step for the population prior: μ = mean of posterior means; τ² = mean squared deviation
    plus the mean posterior variance (floored, so the prior never becomes a point mass)."""
    names = PARAMS[law]
    mean, sd = dict(prior.mean), dict(prior.sd)
    for p in POOLED[law]:
        i = names.index(p)
        m = np.array([post.phi[i] for post in posts.values()])
        v = np.array([post.cov[i, i] for post in posts.values()])
        mu = float(m.mean())
        tau2 = float(np.mean((m - mu) ** 2 + np.minimum(v, 1e6)))
        mean[p], sd[p] = mu, max(np.sqrt(tau2), _TAU_FLOOR[p])
    return Prior(mean, sd)


def _noise(posts: dict[str, LanguagePosterior], floor: float) -> tuple[float, float]:
    """Pooled σ and its degrees of freedom: Σ RSS / (N − Σ effective parameters)."""
    rss = sum(p.rss for p in posts.values())
    dof = sum(p.n for p in posts.values()) - sum(p.hat for p in posts.values())
    if dof <= 0.5:
        return float("nan"), float(dof)
    return max(float(np.sqrt(rss / dof)), floor), float(dof)


def fit_pooled(law: str, data: dict[str, tuple[np.ndarray, np.ndarray]], bounds: Bounds,
               pooled: tuple[str, ...] | None = None, sigma0: float | None = None) -> PooledFit:
    """Fit `law` to every language of `data` ({language: (x, y)}, rows already usable by the law).

    `pooled` restricts which parameters get a population prior (default: all of `POOLED[law]`; () is a
    plain per-language fit with a pooled σ). `sigma0` seeds the noise level (default: from a first round
    in which every language shares one exponent, which leaves degrees of freedom even with as many sizes
    as parameters)."""
    langs = list(data)
    scale = max(float(np.ptp(np.concatenate([y for _, y in data.values()]))), 1e-12)
    floor = 1e-10 * scale  # σ never reaches 0, so whitened residuals stay finite on noiseless data
    wanted = POOLED[law] if pooled is None else tuple(p for p in pooled if p in POOLED[law])
    prior = Prior.flat(law)
    notes: list[str] = []
    if law != "log" and "lnalpha" in wanted:
        # Round 0: a tight prior on ln α around the languages' median exponent ≈ one shared exponent.
        first = {lang: fit_language(law, x, y, scale, Prior.flat(law), bounds) for lang, (x, y) in data.items()}
        prior.mean["lnalpha"] = float(np.median([p.phi[2] for p in first.values()]))
        prior.sd["lnalpha"] = 0.05
    sigma = sigma0 if sigma0 is not None else scale
    posts: dict[str, LanguagePosterior] = {}
    rounds = 0
    for rounds in range(1, _MAX_ROUNDS + 1):
        posts = {lang: fit_language(law, x, y, sigma, prior, bounds, posts[lang].phi if lang in posts else None)
                 for lang, (x, y) in data.items()}
        new_sigma, dof = _noise(posts, floor)
        if not np.isfinite(new_sigma):  # no degrees of freedom left: keep the last σ
            new_sigma = sigma
        new_prior = _update_prior(law, posts, prior) if wanted else prior
        for p in POOLED[law]:
            if p not in wanted:
                new_prior.sd[p] = np.inf
        settled = abs(np.log(new_sigma / sigma)) < 1e-3 and all(
            abs(new_prior.mean[p] - prior.mean[p]) < 1e-4 and abs(np.log(new_prior.sd[p] / prior.sd[p])) < 1e-3
            for p in wanted)
        sigma, prior = new_sigma, new_prior
        if settled:
            break
    posts = {lang: fit_language(law, x, y, sigma, prior, bounds, posts[lang].phi) for lang, (x, y) in data.items()}
    _, dof = _noise(posts, floor)
    return PooledFit(law, langs, posts, prior, float(sigma), float(dof), rounds, notes)


def posterior_draws(law: str, post: LanguagePosterior, n: int, rng: np.random.Generator, bounds: Bounds,
                    x: np.ndarray, widen: float = 1.0) -> dict[str, np.ndarray]:
    """`n` draws of one language's parameters from its Laplace posterior (clipped to the bounds),
    the covariance scaled by widen² (the small-sample t correction of the noise estimate)."""
    cov = post.cov * widen**2
    # A symmetric square root tolerates the near-singular covariance of a parameter the data do not pin.
    vals, vecs = np.linalg.eigh((cov + cov.T) / 2)
    root = vecs * np.sqrt(np.clip(vals, 0.0, None))
    phis = post.phi + rng.standard_normal((n, len(post.phi))) @ root.T
    lo, hi = phi_bounds(law, bounds, x)
    return natural_draws(law, np.clip(phis, lo, hi))
