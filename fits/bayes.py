"""The default fit: every language's posterior on a grid, under a population prior learned from all
languages (nonparametric empirical Bayes), sampled for decisions under uncertainty.

Why not one least-squares curve per language: with 3–6 sizes and one seed a language's exponent and
ceiling trade off along a ridge its data cannot resolve, so its point fit is mostly noise, and a plan
built on point fits inherits it. Two things fix that, and `benchmarks/plan_regret.py` measures each:

1. **The whole posterior, not a point.** Work in utility u = d·y (higher is better) and write the power
   law through its level m at a reference size z_ref:

       u = U·(1 − t) + m·t,   t = ((x + x0)/z_ref)^(−α)        (x0 = 0: plain power; x0 > 0: offset law)

   Given (α, U[, x0]) the law is linear in m, so m integrates out in closed form (flat prior, truncated
   to m < U: the curve improves with data) and only α, the ceiling U and the offset x0 need a grid. The
   log law u = m + b·ln(x/x_ref) needs a grid over b only. Every cell's likelihood is exact.
2. **A population prior.** Languages trained with one recipe are alike: their exponents, ceilings and
   offsets come from one population. Its distribution over the grid is estimated from all languages
   at once — EM for the mixing weights (the Kiefer–Wolfowitz NPMLE), smoothed with a Gaussian kernel of
   fixed width per axis and a small uniform floor — and is each language's prior. Unlike one normal
   prior, this can be bimodal (saturated languages beside steep ones) and never pins a ceiling: a
   bounded score's maximum (100 for chrF) is only the grid's edge.

Draws: importance sampling from a mixture of the grid posterior (a cell, then uniform inside it) and a
Gaussian around the language's continuous fit (`fits.pooled`; Laplace width × 1.5), weighted by the
exact target density (population prior × marginal likelihood) and resampled. The Gaussian part makes
noiseless data come out exact: the noise estimate falls to ~0, the likelihood collapses onto the
interpolating curve, and every draw lands on it. The point curve is the most probable candidate (the
continuous fit is always one of them, so on noiseless data it is the interpolating curve). The noise level σ is one number for all languages, from the pooled
continuous fit (`fits.pooled`), which has degrees of freedom even with as many sizes as parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import gaussian_filter
from scipy.special import log_ndtr

from fits.pooled import ALPHA_BOUNDS, PARAMS, Bounds, LanguagePosterior, Prior, fit_languages, fit_pooled

_N_ALPHA, _N_CEIL, _N_X0, _N_SLOPE = 48, 61, 17, 64
_X0_DECADES = 2.0  # the offset grid spans x_ref·10^±2
# Kernel widths of the population density, per axis in natural units: ln α, ceiling (fraction of its
# range), ln x0, log-law slope (fraction of its range). Measured paired on 30 worlds per family
# (benchmarks/plan_regret.py): doubling the α and ceiling widths cost steep saturating curves 6% of their
# regret and helped nothing else beyond noise; the offset axis wants a wide kernel (x0 spans decades and
# few languages pin it). Choosing the width per fit by leave-one-language-out likelihood was worse than
# either fixed width on both families, so the widths are fixed.
_BANDWIDTH = {"lnalpha": 0.3, "ceiling": 0.06, "lnx0": 1.5, "slope": 0.06}
_UNIFORM_FLOOR = 1e-3  # mixed into the population density: no cell is ever impossible
_EM_ITERATIONS = 150
_LAPLACE_WIDEN = 1.5


@dataclass
class Grid:
    """The cells of one law's nonlinear parameters (axes in the order of `names`)."""

    law: str
    names: tuple[str, ...]  # ("lnalpha", "ceiling"[, "lnx0"]) or ("slope",)
    axes: tuple[np.ndarray, ...]
    # The metric's own bounds on the ceiling U (utility units; None: unbounded). The outermost cells'
    # centres sit on them, so without this a draw, uniform inside its cell, could fall half a cell beyond:
    # a loss floor below 0 (Goldfish: 50 of 67 languages' floors at about −1.7, each then predicting the
    # 10x-larger size 0.13 worse than the same law held at its floor).
    ceiling_limits: tuple[float | None, float | None] = (None, None)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(a) for a in self.axes)

    @property
    def steps(self) -> np.ndarray:
        return np.array([a[1] - a[0] if len(a) > 1 else 1.0 for a in self.axes])

    @property
    def lower(self) -> np.ndarray:
        """The lowest value each parameter may take: the grid's outer cell edge, or the metric's bound."""
        edge = np.array([a[0] - s / 2 for a, s in zip(self.axes, self.steps)])
        return self._limit(edge, 0, np.maximum)

    @property
    def upper(self) -> np.ndarray:
        edge = np.array([a[-1] + s / 2 for a, s in zip(self.axes, self.steps)])
        return self._limit(edge, 1, np.minimum)

    def _limit(self, edge: np.ndarray, side: int, tighter) -> np.ndarray:
        bound = self.ceiling_limits[side]
        if bound is not None and "ceiling" in self.names:
            k = self.names.index("ceiling")
            edge[k] = tighter(edge[k], bound)
        return edge

    def points(self) -> np.ndarray:
        """Every cell centre, (cells, dims), C order."""
        mesh = np.meshgrid(*self.axes, indexing="ij")
        return np.stack([m.ravel() for m in mesh], axis=-1)


def utility_range(data: dict[str, tuple[np.ndarray, np.ndarray]], bounds: Bounds) -> tuple[float, float]:
    """The range of the ceiling U (utility units): the metric's bounds where known, else wide around the
    data (a ceiling below the worst observation or far above the best is not plausible)."""
    u = np.concatenate([bounds.sign * y for _, y in data.values()])
    spread = max(float(np.ptp(u)), 1e-9 * max(1.0, float(np.abs(u).max())))
    ceiling_max = bounds.offset_max if bounds.sign > 0 else (None if bounds.offset_min is None else -bounds.offset_min)
    ceiling_min = bounds.offset_min if bounds.sign > 0 else (None if bounds.offset_max is None else -bounds.offset_max)
    hi = ceiling_max if ceiling_max is not None else float(u.max()) + 10.0 * spread
    lo = ceiling_min if ceiling_min is not None else float(u.min()) - spread
    return (max(lo, float(u.min()) - spread) if ceiling_min is None else lo), hi


def build_grid(law: str, data: dict[str, tuple[np.ndarray, np.ndarray]], bounds: Bounds, x_ref: float) -> Grid:
    if law == "log":
        slopes = []
        for x, y in data.values():
            pos = x > 0
            if len(np.unique(x[pos])) >= 2:
                slopes.append(np.polyfit(np.log(x[pos]), bounds.sign * y[pos], 1)[0])
        top = max(3.0 * max(slopes, default=0.0), 1e-9 + 0.0)
        top = top if top > 0 else float(np.ptp(np.concatenate([y for _, y in data.values()]))) or 1.0
        return Grid(law, ("slope",), (np.linspace(0.0, top, _N_SLOPE),))
    lnalpha = np.linspace(np.log(ALPHA_BOUNDS[0]), np.log(ALPHA_BOUNDS[1]), _N_ALPHA)
    lo, hi = utility_range(data, bounds)
    axes = (lnalpha, np.linspace(lo, hi, _N_CEIL))
    names = ("lnalpha", "ceiling")
    if law == "offset":
        axes += (np.linspace(np.log(x_ref) - _X0_DECADES * np.log(10), np.log(x_ref) + _X0_DECADES * np.log(10), _N_X0),)
        names += ("lnx0",)
    return Grid(law, names, axes, _ceiling_limits(bounds))


def _ceiling_limits(bounds: Bounds) -> tuple[float | None, float | None]:
    """The metric's bounds on the ceiling U = sign·offset, utility units (a loss: U = −E ≤ −floor)."""
    if bounds.sign > 0:
        return bounds.offset_min, bounds.offset_max
    return (None if bounds.offset_max is None else -bounds.offset_max,
            None if bounds.offset_min is None else -bounds.offset_min)


# -------------------------------------------------------------------------------- exact likelihoods


def log_likelihood(grid: Grid, theta: np.ndarray, x: np.ndarray, u: np.ndarray, sigma: float, x_ref: float):
    """Log marginal likelihood (m integrated out) at parameter points theta (K, dims), plus the
    conditional mean and sd of m given each point. Constant terms common to every point are dropped."""
    if grid.law == "log":
        t = np.log(x / x_ref)[None, :]
        resid = u[None, :] - theta[:, :1] * t  # u − b·ln(x/x_ref) = m + ε
        n = len(u)
        mhat = resid.mean(1)
        rss = ((resid - mhat[:, None]) ** 2).sum(1)
        return -rss / (2 * sigma**2) - 0.5 * np.log(n), mhat, np.full(len(theta), sigma / np.sqrt(n))
    alpha, ceil = np.exp(theta[:, 0]), theta[:, 1]
    x0 = np.exp(theta[:, 2]) if grid.law == "offset" else np.zeros(len(theta))
    z_ref = x_ref + x0
    t = ((x[None, :] + x0[:, None]) / z_ref[:, None]) ** -alpha[:, None]  # (K, n)
    r = u[None, :] - ceil[:, None] * (1.0 - t)  # = m·t + ε
    stt = (t * t).sum(1)
    mhat = (t * r).sum(1) / stt
    # Residuals summed directly: Σr² − m̂²·Σt² cancels catastrophically when t is huge (large α, an x = 0
    # row and a tiny x0), and a negative RSS would be an infinitely good fit.
    rss = ((r - mhat[:, None] * t) ** 2).sum(1)
    sd = sigma / np.sqrt(stt)
    # m < U: the curve must improve with data (scale > 0).
    return -0.5 * np.log(stt) - rss / (2 * sigma**2) + log_ndtr((ceil - mhat) / sd), mhat, sd


def grid_log_likelihood(grid: Grid, x, u, sigma, x_ref) -> np.ndarray:
    """Log likelihood of every cell, shaped like the grid. Computed per (α, x0) column so the arrays
    stay small: the ceiling enters the residual linearly."""
    pts = grid.points()
    out = np.empty(len(pts))
    chunk = 20000
    for i in range(0, len(pts), chunk):
        out[i:i + chunk] = log_likelihood(grid, pts[i:i + chunk], x, u, sigma, x_ref)[0]
    return out.reshape(grid.shape)


# ------------------------------------------------------------------------------- population prior


def _widths(grid: Grid) -> list[float]:
    """Kernel widths in grid steps."""
    widths = []
    for name, axis, step in zip(grid.names, grid.axes, grid.steps):
        if len(axis) < 2:
            widths.append(0.0)
            continue
        bw = _BANDWIDTH[name] * (np.ptp(axis) if name in ("ceiling", "slope") else 1.0)
        widths.append(bw / step)
    return widths


def _smoothed_npmle(lik: np.ndarray, grid: Grid, widths: list[float]) -> np.ndarray:
    """EM on the mixing weights, each step smoothed."""
    axes = (-1,) + (1,) * len(grid.shape)
    pi = np.full(grid.shape, 1.0 / np.prod(grid.shape))
    for _ in range(_EM_ITERATIONS):
        post = lik * pi
        post /= post.reshape(len(post), -1).sum(1).reshape(axes)
        pi = _smooth(post.mean(0), widths)
    return pi


def _smooth(mass: np.ndarray, widths: list[float]) -> np.ndarray:
    pi = gaussian_filter(mass, widths, mode="nearest")
    return (1 - _UNIFORM_FLOOR) * pi / pi.sum() + _UNIFORM_FLOOR / pi.size


def population_prior(loglik: np.ndarray, grid: Grid) -> np.ndarray:
    """The smoothed NPMLE of the population density over the cells (summing to 1), from every
    language's cell log-likelihoods (L, *grid.shape): EM on the mixing weights, each step smoothed."""
    peak = loglik.reshape(len(loglik), -1).max(1)
    lik = np.exp(loglik - peak.reshape((-1,) + (1,) * len(grid.shape)))
    return _smoothed_npmle(lik, grid, _widths(grid))


def _log_prior_density(grid: Grid, pi: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """log of the piecewise-constant population density at theta (−inf outside the grid)."""
    idx = np.round((theta - np.array([a[0] for a in grid.axes])) / grid.steps).astype(int)
    inside = np.all((idx >= 0) & (idx < np.array(grid.shape)), axis=1)
    idx = np.clip(idx, 0, np.array(grid.shape) - 1)
    dens = pi[tuple(idx.T)] / np.prod(grid.steps)
    with np.errstate(divide="ignore"):
        return np.where(inside, np.log(dens), -np.inf)


# --------------------------------------------------------------------------------------- sampling


@dataclass
class LanguageDraws:
    """One language's posterior: draws of the law's parameters (utility units), its mode, and the mode
    of its own data alone (what pooling moved)."""

    theta: np.ndarray  # (R, dims) nonlinear parameters
    level: np.ndarray  # (R,) m
    mode: np.ndarray  # (dims + 1,) θ and m of the most probable candidate (the point curve)
    own: np.ndarray | None  # (dims + 1,) the language's own continuous fit (flat prior), when identified
    ess: float  # effective sample size of the importance weights


def _laplace(grid: Grid, post: LanguagePosterior, sign: float) -> tuple[np.ndarray, np.ndarray]:
    """The continuous fit's Gaussian in grid coordinates, utility units (the pooled fit's φ is
    (C, lnA, lnα[, lnx0]) or (a, b) in metric units)."""
    if grid.law == "log":
        return np.array([sign * post.phi[1]]), post.cov[1:2, 1:2]
    order = [2, 0] + ([3] if grid.law == "offset" else [])  # (lnα, C[, lnx0])
    flip = np.r_[1.0, sign, 1.0][: len(order)]
    mean = post.phi[order] * flip
    cov = post.cov[np.ix_(order, order)] * np.outer(flip, flip)
    return mean, cov


def sample_language(grid: Grid, pi: np.ndarray, loglik: np.ndarray, x, u, sigma, x_ref, sign: float,
                    laplace: LanguagePosterior | None, draws: int, rng: np.random.Generator,
                    alone: LanguagePosterior | None = None) -> LanguageDraws:
    """Importance-sample `draws` posterior draws of one language (see module docstring)."""
    dims = len(grid.shape)
    post = (np.exp(loglik - loglik.max()) * pi).ravel()
    post /= post.sum()
    n_cand = 2 * draws
    cells = grid.points()
    n_grid = n_cand if laplace is None else n_cand // 2
    pick = rng.choice(len(post), size=n_grid, p=post)
    cand = [cells[pick] + (rng.random((n_grid, dims)) - 0.5) * grid.steps]
    gauss = None
    if laplace is not None:
        mean, cov = _laplace(grid, laplace, sign)
        cov = (cov + cov.T) / 2 * _LAPLACE_WIDEN**2 + np.diag((1e-12 * grid.steps) ** 2)
        vals, vecs = np.linalg.eigh(cov)
        root = vecs * np.sqrt(np.clip(vals, 0, None))
        # The continuous fit itself is a candidate: on noiseless data it is the interpolating curve.
        cand.append(np.vstack([mean, mean + rng.standard_normal((n_cand - n_grid - 1, dims)) @ root.T]))
        gauss = (mean, np.linalg.pinv(cov, hermitian=True), np.sum(np.log(np.clip(vals, 1e-300, None))))
    theta = np.vstack(cand)
    inside = np.all((theta >= grid.lower) & (theta <= grid.upper), axis=1)
    theta = theta[inside]
    ll, mhat, sd = log_likelihood(grid, theta, x, u, sigma, x_ref)
    target = _log_prior_density(grid, pi, theta) + ll
    # Proposal density: the grid part is piecewise constant (cell posterior / cell volume).
    log_q_grid = _log_prior_density(grid, post.reshape(grid.shape), theta)
    log_q = log_q_grid + np.log(n_grid / n_cand)
    if gauss is not None:
        mean, prec, logdet = gauss
        d = theta - mean
        log_g = -0.5 * np.einsum("ki,ij,kj->k", d, prec, d) - 0.5 * logdet - dims / 2 * np.log(2 * np.pi)
        log_q = np.logaddexp(log_q, log_g + np.log((n_cand - n_grid) / n_cand))
    logw = target - log_q
    logw = np.where(np.isfinite(logw), logw, -np.inf)
    w = np.exp(logw - logw.max())
    w /= w.sum()
    ess = float(1.0 / np.sum(w**2))
    chosen = rng.choice(len(theta), size=draws, p=w)
    # m | θ: its Gaussian, truncated to m < U (power laws); the log law's level is unconstrained.
    m = mhat[chosen] + sd[chosen] * rng.standard_normal(draws)
    if grid.law != "log":
        ceil = theta[chosen, 1]
        bad = m >= ceil
        for _ in range(50):
            if not bad.any():
                break
            m[bad] = mhat[chosen][bad] + sd[chosen][bad] * rng.standard_normal(int(bad.sum()))
            bad = m >= ceil
        m = np.where(bad, ceil - 1e-9 * np.maximum(1.0, np.abs(ceil)), m)
    best = int(np.argmax(target))
    mode = np.r_[theta[best], mhat[best]]  # the most probable candidate: the point curve
    own = None
    if alone is not None:
        mean, _ = _laplace(grid, alone, sign)
        _, m_own, _ = log_likelihood(grid, mean[None], x, u, sigma, x_ref)
        own = np.r_[mean, m_own[0]]
    return LanguageDraws(theta[chosen], m, mode, own, ess)


# ------------------------------------------------------------------------------------ in law units


def curve_params(law: str, theta: np.ndarray, level: np.ndarray, sign: float, x_ref: float) -> dict[str, np.ndarray]:
    """Grid coordinates (utility units) → `fits.laws` parameters in metric units."""
    theta = np.atleast_2d(theta)
    level = np.atleast_1d(level)
    if law == "log":
        b = theta[:, 0]
        return {"a": sign * (level - b * np.log(x_ref)), "b": sign * b}
    alpha, ceil = np.exp(theta[:, 0]), theta[:, 1]
    x0 = np.exp(theta[:, 2]) if law == "offset" else np.zeros(len(alpha))
    out = {"offset": sign * ceil, "scale": np.maximum(ceil - level, 0.0) * (x_ref + x0) ** alpha, "alpha": alpha}
    if law == "offset":
        out["x0"] = x0
    return out


@dataclass
class LawPosterior:
    """One law fitted to every language: the population prior, σ and each language's draws."""

    law: str
    grid: Grid
    prior: np.ndarray
    sigma: float
    dof: float
    x_ref: float
    languages: dict[str, LanguageDraws]
    notes: list[str] = field(default_factory=list)

    def params(self, lang: str, sign: float) -> dict[str, float]:
        d = self.languages[lang]
        p = curve_params(self.law, d.mode[:-1], d.mode[-1], sign, self.x_ref)
        return {k: float(v[0]) for k, v in p.items()}

    def own_params(self, lang: str, sign: float) -> dict[str, float] | None:
        d = self.languages[lang]
        if d.own is None:
            return None
        p = curve_params(self.law, d.own[:-1], d.own[-1], sign, self.x_ref)
        return {k: float(v[0]) for k, v in p.items()}

    def draws(self, lang: str, sign: float) -> dict[str, np.ndarray]:
        d = self.languages[lang]
        return curve_params(self.law, d.theta, d.level, sign, self.x_ref)

    def population_summary(self, sign: float) -> dict[str, list[float]]:
        """5%, 50% and 95% of the population prior along each axis, in law units."""
        out = {}
        for k, (name, axis) in enumerate(zip(self.grid.names, self.grid.axes)):
            marginal = self.prior.sum(axis=tuple(i for i in range(self.prior.ndim) if i != k))
            cdf = np.cumsum(marginal) / marginal.sum()
            q = [float(axis[min(np.searchsorted(cdf, p), len(axis) - 1)]) for p in (0.05, 0.5, 0.95)]
            label = {"lnalpha": "alpha", "lnx0": "x0", "ceiling": "offset", "slope": "b"}[name]
            if name in ("lnalpha", "lnx0"):
                q = list(np.exp(q))
            if name in ("ceiling", "slope"):
                q = sorted(sign * v for v in q)
            out[label] = [float(v) for v in q]
        return out


_MIN_DOF = 0.5  # fits.pooled leaves σ at its start value below this


def fit_law(law: str, data: dict[str, tuple[np.ndarray, np.ndarray]], bounds: Bounds, draws: int,
            rng: np.random.Generator) -> LawPosterior:
    """Fit `law` to every language of `data` (rows already usable by the law)."""
    sign = bounds.sign
    x_all = np.concatenate([x for x, _ in data.values()])
    x_ref = float(np.exp(np.mean(np.log(np.unique(x_all[x_all > 0])))))
    pooled = fit_pooled(law, data, bounds, pooled=("C",))
    if pooled.dof <= _MIN_DOF:
        # As many parameters as runs (three sizes of a four-parameter law): per-language fits leave no
        # residual to measure the noise with, and σ stayed at its start (the whole metric's spread), so the
        # prior swamped every curve (flat lines through the mean). Fitting all languages with the shared
        # exponent the population prior starts from leaves degrees of freedom.
        pooled = fit_pooled(law, data, bounds)
    grid = build_grid(law, data, bounds, x_ref)
    sigma = pooled.sigma
    logliks = np.stack([grid_log_likelihood(grid, x, sign * y, sigma, x_ref) for x, y in data.values()])
    prior = population_prior(logliks, grid)
    # Each language's own estimate: the same law on its data alone (flat prior), where its distinct sizes
    # identify every parameter; it is what the report compares the pooled estimate with.
    alone = fit_languages(law, data, sigma, Prior.flat(law), bounds)
    identified = {lang: len(np.unique(x)) >= len(PARAMS[law]) for lang, (x, _) in data.items()}
    langs = {}
    for (lang, (x, y)), ll in zip(data.items(), logliks):
        langs[lang] = sample_language(grid, prior, ll, x, sign * y, sigma, x_ref, sign, pooled.posts[lang], draws, rng,
                                      alone[lang] if identified[lang] else None)
    return LawPosterior(law, grid, prior, sigma, pooled.dof, x_ref, langs)
