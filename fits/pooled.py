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


# ------------------------------------------------------------------------ every language's MAP at once
#
# All languages share the law and the parameter layout, so they are packed into padded (L, n) arrays
# (`mask` marks real rows) and solved together: a global start from a grid over the nonlinear parameters,
# then a bound-constrained Levenberg–Marquardt on the whitened residuals — one batched linear solve per
# iteration for every language, where a per-language optimiser call would cost milliseconds each.


@dataclass
class _Packed:
    x: np.ndarray  # (L, n), padding 1 (finite under every law; masked out)
    y: np.ndarray
    mask: np.ndarray  # (L, n) 1.0 for real rows
    lo: np.ndarray  # (L, p) parameter bounds
    hi: np.ndarray

    @classmethod
    def build(cls, law: str, data: list[tuple[np.ndarray, np.ndarray]], bounds: Bounds) -> "_Packed":
        n = max(len(x) for x, _ in data)
        x, y, mask = (np.zeros((len(data), n)) for _ in range(3))
        for i, (xi, yi) in enumerate(data):
            x[i, : len(xi)], y[i, : len(yi)], mask[i, : len(xi)] = xi, yi, 1.0
            # Padding at x = 1, not 0: a plain power law at 0 is 0^-α = inf, and the masked residual
            # 0·inf = NaN then broke the fit of every language with fewer runs than the others.
            x[i, len(xi):] = 1.0
        lo, hi = zip(*(phi_bounds(law, bounds, xi) for xi, _ in data))
        return cls(x, y, mask, np.array(lo), np.array(hi))


def _batch_curve(law: str, phi: np.ndarray, x: np.ndarray, sign: float) -> tuple[np.ndarray, np.ndarray]:
    """f (L, n) and ∂f/∂φ (L, n, p) for every language at once."""
    if law == "log":
        lx = np.log(np.where(x > 0, x, 1.0))
        return phi[:, :1] + phi[:, 1:2] * lx, np.stack([np.ones_like(x), lx], axis=-1)
    c, a, alpha = phi[:, :1], np.exp(phi[:, 1:2]), np.exp(phi[:, 2:3])
    x0 = np.exp(phi[:, 3:4]) if law == "offset" else 0.0
    z = np.maximum(x + x0, 1e-300)
    term = a * z**-alpha
    cols = [np.ones_like(x), -sign * term, sign * term * alpha * np.log(z)]
    if law == "offset":
        cols.append(sign * term * alpha * x0 / z)
    return c - sign * term, np.stack(cols, axis=-1)


def _batch_start(law: str, pk: _Packed, sigma: float, prior: Prior, sign: float) -> np.ndarray:
    """Per language, the best point of a grid over α (and x0) with C and ln A in closed form (weighted
    least squares, C clipped to its bounds, A refitted ≥ 0): a global start no ridge or basin can trap."""
    L, p = pk.lo.shape
    if law == "log":
        lx = np.log(np.where(pk.x > 0, pk.x, 1.0))
        w = pk.mask
        sw, sx, sy = w.sum(1), (w * lx).sum(1), (w * pk.y).sum(1)
        sxx, sxy = (w * lx * lx).sum(1), (w * lx * pk.y).sum(1)
        det = np.where(sw * sxx - sx * sx > 0, sw * sxx - sx * sx, 1.0)
        b = (sw * sxy - sx * sy) / det
        return np.column_stack([(sy - b * sx) / np.maximum(sw, 1), b])
    x0s = np.array([0.0])
    if law == "offset":
        x0s = np.exp(np.linspace(pk.lo[:, 3], pk.hi[:, 3], _X0_GRID_DECADES[2])).T  # (L, G0)
    else:
        x0s = np.zeros((L, 1))
    alpha = np.repeat(_ALPHA_GRID, x0s.shape[1])  # (G,)
    x0 = np.tile(x0s, (1, len(_ALPHA_GRID)))  # (L, G)
    w = pk.mask[:, None, :]
    z = np.maximum(pk.x[:, None, :] + x0[:, :, None], 1e-300)
    with np.errstate(over="ignore"):  # defensive: an x + x0 far below 1 under the steepest α of the grid
        t = np.where(w > 0, z ** -alpha[None, :, None], 0.0)  # (L, G, n)
    y = pk.y[:, None, :]
    sw = w.sum(-1)
    tm, ym = (w * t).sum(-1) / sw, (w * y).sum(-1) / sw
    stt = (w * (t - tm[..., None]) ** 2).sum(-1)
    sty = (w * (t - tm[..., None]) * (y - ym[..., None])).sum(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(stt > 0, sty / stt, 0.0)  # y ≈ c + slope·t, slope = −d·A
        c = np.clip(ym - slope * tm, pk.lo[:, :1], pk.hi[:, :1])
        a = np.maximum(-sign * (w * t * (y - c[..., None])).sum(-1) / (w * t * t).sum(-1), 1e-300)
    resid = w * (y - (c[..., None] - sign * a[..., None] * t))
    cols = [c, np.clip(np.log(a), *_LN_A_BOUNDS), np.broadcast_to(np.log(alpha), c.shape)]
    if law == "offset":
        cols.append(np.log(x0))
    phi = np.stack(cols, axis=-1)  # (L, G, p)
    idx, mean, sd = _prior_rows(law, prior)
    score = (resid**2).sum(-1) / sigma**2 + (((phi[..., idx] - mean) / sd) ** 2).sum(-1)
    best = np.nanargmin(np.where(np.isfinite(score), score, np.inf), axis=1)
    return phi[np.arange(L), best]


def _residuals(law, phi, pk: _Packed, sigma, idx, mean, sd, sign):
    """Whitened residuals e (L, m) and their Jacobian (L, m, p): data rows (f − y)/σ, then prior rows."""
    f, jac = _batch_curve(law, phi, pk.x, sign)
    e_data = pk.mask * (f - pk.y) / sigma
    j_data = pk.mask[..., None] * jac / sigma
    L, p = phi.shape
    e_prior = (phi[:, idx] - mean) / sd
    j_prior = np.zeros((L, len(idx), p))
    j_prior[:, np.arange(len(idx)), idx] = 1.0 / sd
    return np.concatenate([e_data, e_prior], 1), np.concatenate([j_data, j_prior], 1), f


def _levenberg_marquardt(law, phi, pk: _Packed, sigma, prior: Prior, sign, tol=1e-15, max_iter=200):
    """Bound-constrained LM for every language: a parameter at a bound whose gradient points outward is
    held there (active set) and the step solved in the others; steps are clipped into the box. A
    language stops when its cost no longer falls by more than rounding. Returns φ and whether each
    language converged."""
    idx, mean, sd = _prior_rows(law, prior)
    L, p = phi.shape
    phi = np.clip(phi, pk.lo, pk.hi)
    e, J, _ = _residuals(law, phi, pk, sigma, idx, mean, sd, sign)
    cost = 0.5 * (e**2).sum(1)
    lam = np.full(L, 1e-3)
    active = np.ones(L, bool)
    converged = np.zeros(L, bool)
    eye = np.eye(p)
    for _ in range(max_iter):
        if not active.any():
            break
        a = np.flatnonzero(active)
        Ja, ea = J[a], e[a]
        g = np.einsum("lmp,lm->lp", Ja, ea)
        H = np.einsum("lmp,lmq->lpq", Ja, Ja)
        at_lo, at_hi = phi[a] <= pk.lo[a], phi[a] >= pk.hi[a]
        free = ~((at_lo & (g > 0)) | (at_hi & (g < 0)))
        F = free[:, :, None] & free[:, None, :]
        diag = np.einsum("lpp->lp", H)
        A = np.where(F, H, 0.0) + (lam[a, None, None] * np.maximum(diag, 1e-12)[:, :, None]) * eye
        A = np.where(free[:, :, None] | free[:, None, :], A, eye)
        step = -np.linalg.solve(A, np.where(free, g, 0.0)[..., None])[..., 0]
        trial = np.clip(phi[a] + step, pk.lo[a], pk.hi[a])
        e_t, J_t, _ = _residuals(law, trial, _take(pk, a), sigma, idx, mean, sd, sign)
        cost_t = 0.5 * (e_t**2).sum(1)
        better = cost_t < cost[a]
        b = a[better]
        phi[b], e[b], J[b] = trial[better], e_t[better], J_t[better]
        gain = cost[a] - cost_t
        cost[b] = cost_t[better]
        lam[a] = np.where(better, np.maximum(lam[a] / 3.0, 1e-12), lam[a] * 4.0)
        done = (better & (gain <= tol * np.maximum(cost_t, 1e-300))) | (np.abs(step).max(1) < 1e-14) | (lam[a] > 1e12)
        converged[a[done]] = True
        active[a[done]] = False
    return phi, converged


def _take(pk: _Packed, rows) -> _Packed:
    return _Packed(pk.x[rows], pk.y[rows], pk.mask[rows], pk.lo[rows], pk.hi[rows])


def fit_languages(law: str, data: dict[str, tuple[np.ndarray, np.ndarray]], sigma: float, prior: Prior,
                  bounds: Bounds, starts: dict[str, np.ndarray] | None = None, tol: float = 1e-15
                  ) -> dict[str, LanguagePosterior]:
    """Every language's MAP under `prior` and noise σ, with its Laplace covariance (batched). `tol`: the
    relative cost decrease below which the search stops (loose for intermediate EM rounds)."""
    langs = list(data)
    pk = _Packed.build(law, [data[lang] for lang in langs], bounds)
    # The grid start is the costliest step (α × x0 cells × languages × runs, every EM round); languages
    # that come with the previous round's optimum do not need it. The log law's start is its exact fit.
    started = law != "log" and bool(starts) and all(lang in starts for lang in langs)
    phi = None if started else _batch_start(law, pk, sigma, prior, bounds.sign)
    converged = np.ones(len(langs), bool)
    if law != "log":
        if starts:  # the previous round's optimum (EM rounds move the prior a little each time)
            phi = np.array([starts[lang] if lang in starts else phi[i] for i, lang in enumerate(langs)])
        phi, converged = _levenberg_marquardt(law, phi, pk, sigma, prior, bounds.sign, tol)
    idx, mean, sd = _prior_rows(law, prior)
    e, J, f = _residuals(law, phi, pk, sigma, idx, mean, sd, bounds.sign)
    info = np.einsum("lmp,lmq->lpq", J, J)
    # Absurd data (a score falling below zero with more data, say) can overflow the Jacobian: such a
    # language keeps an uninformative covariance and counts as not converged, rather than crashing.
    broken = ~np.isfinite(info).all(axis=(1, 2))
    info[broken] = np.eye(info.shape[1]) * 1e-300
    converged = converged & ~broken
    cov = np.linalg.pinv(info, rcond=1e-12, hermitian=True)
    n_data = pk.x.shape[1]
    jd = J[:, :n_data]
    hat = np.nan_to_num(np.einsum("lmp,lpq,lmq->l", np.nan_to_num(jd), cov, np.nan_to_num(jd)), nan=0.0, posinf=0.0)
    rss = (pk.mask * (pk.y - f) ** 2).sum(1)
    n = pk.mask.sum(1).astype(int)
    if law == "log":  # two linear parameters, no prior: the hat trace is the rank
        hat = np.array([float(min(2, len(np.unique(data[lang][0])))) for lang in langs])
    return {lang: LanguagePosterior(phi[i], cov[i], float(rss[i]), float(hat[i]), int(n[i]), bool(converged[i]))
            for i, lang in enumerate(langs)}


def fit_language(law: str, x, y, sigma: float, prior: Prior, bounds: Bounds, start=None) -> LanguagePosterior:
    """One language's MAP (see `fit_languages`)."""
    starts = None if start is None else {"_": np.asarray(start, float)}
    return fit_languages(law, {"_": (np.asarray(x, float), np.asarray(y, float))}, sigma, prior, bounds, starts)["_"]


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
        first = fit_languages(law, data, scale, Prior.flat(law), bounds)
        prior.mean["lnalpha"] = float(np.median([p.phi[2] for p in first.values()]))
        prior.sd["lnalpha"] = 0.05
    sigma = sigma0 if sigma0 is not None else scale
    posts: dict[str, LanguagePosterior] = {}
    rounds = 0
    for rounds in range(1, _MAX_ROUNDS + 1):
        posts = fit_languages(law, data, sigma, prior, bounds, {lang: p.phi for lang, p in posts.items()}, tol=1e-9)
        new_sigma, dof = _noise(posts, floor)
        if not np.isfinite(new_sigma):  # no degrees of freedom left: keep the last σ
            new_sigma = sigma
        new_prior = _update_prior(law, posts, prior) if wanted else prior
        for p in POOLED[law]:
            if p not in wanted:
                new_prior.sd[p] = np.inf
        settled = _close_ratio(new_sigma, sigma) and all(
            abs(new_prior.mean[p] - prior.mean[p]) < 1e-4 and _close_ratio(new_prior.sd[p], prior.sd[p])
            for p in wanted)
        sigma, prior = new_sigma, new_prior
        if settled:
            break
    posts = fit_languages(law, data, sigma, prior, bounds, {lang: p.phi for lang, p in posts.items()})
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


def _close_ratio(a: float, b: float, tol: float = 1e-3) -> bool:
    """|log(a/b)| < tol, with equal values (zeros included: a noise-free fit) always close."""
    if a == b:
        return True
    if a <= 0 or b <= 0 or not (np.isfinite(a) and np.isfinite(b)):
        return False
    return abs(np.log(a / b)) < tol
