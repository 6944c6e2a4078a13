"""Per-language utility curves stacked into arrays, so the solvers treat all languages (and all bootstrap
draws) at once.

The solvers work in *pairs* and *utility*: utility u = d·y is the metric turned "higher is better"
(d = -1 for a loss), and a curve fitted on tokens is read through x = k·pairs with k = tokens per pair.
So for one language with fitted curve f(x):

    u(p)            = f(k·p)
    u'(p)           = k·f'(k·p)
    (u')^{-1}(m)    = (f')^{-1}(m / k) / k
    u^{-1}(t)       = f^{-1}(t) / k

Parameters are arrays whose last axis is the language; an optional leading axis holds bootstrap draws,
and everything broadcasts against it (a (R, L) bank solves R allocation problems in one pass).

The power family carries an offset x₀ ≥ 0 (0 for the plain power law): u(p) = C − d·A·(k·p + x₀)^−α,
whose marginal inverse is still closed form, (u')⁻¹(m) = ((A·α·k/m)^(1/(α+1)) − x₀)/k, so the exact
solvers stay exact for a pretrained model's offset law (a negative value means even the first pair is
worth less than m: the solver clips it to the language's floor).

A curve is *usable* by the exact solver when its utility is increasing and concave: the power family with
scale > 0 and alpha > 0, or a log curve whose slope points the "better" way. Anything else is flagged by
`concave_increasing` and the solvers pin it to its floor (it has no positive marginal gain to equalise).

`ExpectedCurves` is the risk-aware variant: the utility of a language is the mean over its bootstrap
draws. Its derivative is the mean derivative, still decreasing, so its inverses are found by a monotone
bisection in log x instead of a closed form.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Protocol, Sequence

import numpy as np

from fits.laws import Curve, direction_sign

# Plain power and log curves are never evaluated below this many pairs: they diverge at x = 0, while a
# model trained on no translation data still has a finite score (which an offset curve, x0 > 0, predicts
# itself). One pair is far below any fitted size, so this only keeps predictions finite for languages
# allocated nothing.
MIN_EVAL_PAIRS = 1.0

# The most pairs one language can be planned (no plan needs more: a budget that would buy more of an
# uncapped language is refused by `problem.build_problem`).
MAX_PAIRS = 1e15
# Search range (in pairs, natural log) for the monotone 1-D solves of `ExpectedCurves`.
_LOG_X_RANGE = (np.log(1e-6), np.log(MAX_PAIRS))
_TABLE_POINTS = 241  # ~0.2 e-folds apart
_INNER_ITERATIONS = 40  # regula falsi steps within one table cell (a handful suffice; the cap is a guard)


class UtilityCurves(Protocol):
    """What the solvers need, vectorised over languages (last axis) and any leading batch axes."""

    shape: tuple[int, ...]

    def utility(self, pairs: np.ndarray) -> np.ndarray: ...

    def marginal(self, pairs: np.ndarray) -> np.ndarray: ...

    def pairs_at_marginal(self, m: np.ndarray) -> np.ndarray: ...

    def pairs_at_utility(self, t: np.ndarray) -> np.ndarray: ...

    def concave_increasing(self) -> np.ndarray: ...


def _column(values: Sequence, dtype=float) -> np.ndarray:
    """Stack per-language parameters (floats or 1-D draw arrays) into an array with languages last."""
    arrays = [np.asarray(v, dtype=dtype) for v in values]
    if all(a.ndim == 0 for a in arrays):
        return np.array(arrays, dtype=dtype)
    n = {a.shape[0] for a in arrays if a.ndim}
    if len(n) != 1:
        raise ValueError(f"bootstrap draws differ in length across languages: {sorted(n)}")
    (r,) = n
    return np.stack([np.broadcast_to(a, (r,)) for a in arrays], axis=-1)


@dataclass(frozen=True)
class CurveBank:
    """Closed-form power/log curves for L languages (optionally × R draws), in pairs and utility units.

    Both families are stored for every language with harmless filler values where a language uses the
    other family, and `is_power` selects per language; that keeps every operation a few numpy calls.
    """

    is_power: np.ndarray  # (L,) bool
    offset: np.ndarray  # power: y = offset - d·scale·(x + x0)^-alpha
    scale: np.ndarray
    alpha: np.ndarray
    x0: np.ndarray  # fitted x units; 0 for a plain power law
    a: np.ndarray  # log: y = a + b·ln x
    b: np.ndarray
    x_per_pair: np.ndarray  # (L,) k: fitted x units per pair (1 when fitted on pairs)
    sign: float  # d: +1 when higher is better

    @classmethod
    def from_curves(cls, curves: Sequence[Curve], x_per_pair: Sequence[float]) -> "CurveBank":
        if not curves:
            raise ValueError("no curves")
        signs = {c.higher_is_better for c in curves}
        if len(signs) != 1:
            raise ValueError("all curves must share one metric direction")
        is_power = np.array([c.family == "power" for c in curves])

        def take(family: str, name: str, filler: float) -> np.ndarray:
            return _column([c.params.get(name, filler) if c.family == family else filler for c in curves])

        cols = dict(
            offset=take("power", "offset", 0.0),
            scale=take("power", "scale", 1.0),
            alpha=take("power", "alpha", 1.0),
            x0=take("power", "x0", 0.0),
            a=take("log", "a", 0.0),
            b=take("log", "b", 1.0),
        )
        shape = np.broadcast_shapes(*(v.shape for v in cols.values()))
        cols = {k: np.broadcast_to(v, shape).astype(float) for k, v in cols.items()}
        return cls(
            is_power=is_power,
            x_per_pair=np.asarray(x_per_pair, dtype=float),
            sign=direction_sign(signs.pop()),
            **cols,
        )

    @property
    def shape(self) -> tuple[int, ...]:
        return self.offset.shape

    def take(self, index) -> "CurveBank":
        """A sub-bank of the languages selected by `index` (last axis)."""
        return CurveBank(
            is_power=self.is_power[index],
            offset=self.offset[..., index],
            scale=self.scale[..., index],
            alpha=self.alpha[..., index],
            x0=self.x0[..., index],
            a=self.a[..., index],
            b=self.b[..., index],
            x_per_pair=self.x_per_pair[index],
            sign=self.sign,
        )

    def concave_increasing(self) -> np.ndarray:
        power_ok = (self.scale > 0) & (self.alpha > 0) & (self.x0 >= 0)
        log_ok = self.sign * self.b > 0
        ok = np.where(self.is_power, power_ok, log_ok)
        finite = np.isfinite(self.offset) & np.isfinite(self.scale) & np.isfinite(self.alpha) & np.isfinite(self.x0)
        finite &= np.isfinite(self.a) & np.isfinite(self.b)
        return ok & finite

    def _z(self, pairs) -> tuple[np.ndarray, np.ndarray]:
        """(x, x + x0) in fitted units; x is clamped at MIN_EVAL_PAIRS only where the curve diverges at 0."""
        pairs = np.asarray(pairs, dtype=float)
        floor = np.where(self.is_power & (self.x0 > 0), 0.0, MIN_EVAL_PAIRS)
        x = np.maximum(pairs, floor) * self.x_per_pair
        return x, x + self.x0

    def predict(self, pairs) -> np.ndarray:
        """The metric (not utility) at `pairs` (see `_z` for what happens below one pair)."""
        x, z = self._z(pairs)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            power = self.offset - self.sign * self.scale * z ** (-self.alpha)
            log = self.a + self.b * np.log(x)
        return np.where(self.is_power, power, log)

    def utility(self, pairs) -> np.ndarray:
        return self.sign * self.predict(pairs)

    def marginal(self, pairs) -> np.ndarray:
        """d utility / d pair."""
        k = self.x_per_pair
        x, z = self._z(pairs)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            power = self.scale * self.alpha * z ** (-self.alpha - 1.0)
            log = self.sign * self.b / x
        return k * np.where(self.is_power, power, log)

    def pairs_at_marginal(self, m) -> np.ndarray:
        """Pairs where the marginal utility per pair equals m > 0 (closed form for both families; negative
        for an offset curve whose marginal utility at 0 pairs is already below m)."""
        k = self.x_per_pair
        mx = np.asarray(m, dtype=float) / k
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            power = (self.scale * self.alpha / mx) ** (1.0 / (self.alpha + 1.0)) - self.x0
            log = self.sign * self.b / mx
        return np.where(self.is_power, power, log) / k

    def pairs_at_utility(self, t) -> np.ndarray:
        """Pairs needed to reach utility t (+inf when the curve never gets there; 0 when t is at or below
        the utility at 0 pairs, consistently with `predict`)."""
        k = self.x_per_pair
        t = np.asarray(t, dtype=float)
        y = self.sign * t
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            gap = self.sign * (self.offset - y)  # distance to the asymptote in the "better" direction
            power = np.where(gap > 0, (gap / self.scale) ** (-1.0 / self.alpha) - self.x0, np.inf)
            log = np.exp((y - self.a) / self.b)
        need = np.where(self.is_power, power, log) / k
        return np.where(t <= self.utility(0.0), 0.0, need)


@dataclass(frozen=True)
class ExpectedCurves:
    """The mean over R bootstrap draws of each language's utility: the risk-aware (`--risk expected`) curve.

    `draws` is a (R, L) `CurveBank`. Draws that are not increasing-concave are dropped per language by the
    caller (see `problem.build_problem`); a language with no usable draw is flagged not concave-increasing.
    `weights` (R, L) are 1/n_usable for usable draws and 0 otherwise, so the mean ignores dropped draws.
    """

    draws: CurveBank
    weights: np.ndarray

    @classmethod
    def from_bank(cls, draws: CurveBank) -> "ExpectedCurves":
        ok = draws.concave_increasing()
        n = ok.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            weights = np.where(ok, 1.0 / np.maximum(n, 1), 0.0)
        return cls(draws=draws, weights=weights)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.draws.shape[1:]

    @property
    def usable_draws(self) -> np.ndarray:
        return (self.weights > 0).sum(axis=0)

    def concave_increasing(self) -> np.ndarray:
        return self.usable_draws > 0

    def _mean(self, values: np.ndarray) -> np.ndarray:
        return np.sum(np.where(self.weights > 0, values, 0.0) * self.weights, axis=-2)

    def predict(self, pairs) -> np.ndarray:
        return self.draws.sign * self.utility(pairs)

    def _per_draw(self, pairs) -> np.ndarray:
        """(..., L) pairs → (..., 1, L), to broadcast against the (R, L) draws."""
        pairs = np.asarray(pairs, dtype=float)
        return np.expand_dims(np.broadcast_to(pairs, np.broadcast_shapes(pairs.shape, self.shape)), -2)

    def utility(self, pairs) -> np.ndarray:
        return self._mean(self.draws.utility(self._per_draw(pairs)))

    def marginal(self, pairs) -> np.ndarray:
        return self._mean(self.draws.marginal(self._per_draw(pairs)))

    @cached_property
    def _table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """ln(pairs) on a grid over the search range, and every language's mean marginal and mean utility
        there ((G, L) each): computed once, it brackets every later inversion in one grid cell."""
        t = np.linspace(*_LOG_X_RANGE, _TABLE_POINTS)
        chunks = [np.exp(t[i:i + 16])[:, None] * np.ones(self.shape) for i in range(0, len(t), 16)]
        return t, np.concatenate([self.marginal(c) for c in chunks]), np.concatenate([self.utility(c) for c in chunks])

    def _invert(self, fn, table: np.ndarray, target: np.ndarray, increasing: bool, log_values: bool,
                under: float | None = None) -> np.ndarray:
        """Solve fn(p) = target for p, all languages (and any leading batch axes) at once.

        The table's grid cell that brackets the root is found first; regula falsi with the Illinois
        modification then closes it on exact values of fn, in ln p (and ln fn for the marginal, whose log
        is nearly linear in ln p, so a handful of steps reach float precision). Outside the table's range
        the range's end is returned, or `under` (when given) for a root below it."""
        t_grid, _, _ = self._table
        target = np.asarray(target, dtype=float)
        shape = np.broadcast_shapes(target.shape, self.shape)
        target = np.broadcast_to(target, shape)
        sign = 1.0 if increasing else -1.0
        tf = (lambda v: np.log(np.maximum(v, 1e-300))) if log_values else (lambda v: v)
        goal = tf(target)
        # Grid points still on the near side of the target: sign·(table − target) < 0.
        below = sign * (tf(table) - goal[..., None, :]) < 0
        k = below.sum(axis=-2)  # the root lies in cell [k−1, k]
        lo_i, hi_i = np.clip(k - 1, 0, len(t_grid) - 1), np.clip(k, 0, len(t_grid) - 1)
        a, b = t_grid[lo_i], t_grid[hi_i]
        f = lambda t: sign * (tf(fn(np.exp(t))) - goal)  # noqa: E731  increasing in t
        fa, fb = f(a), f(b)
        side = np.zeros(shape)
        c = 0.5 * (a + b)
        for _ in range(_INNER_ITERATIONS):
            with np.errstate(divide="ignore", invalid="ignore"):
                c = np.where(fb != fa, (a * fb - b * fa) / (fb - fa), 0.5 * (a + b))
            c = np.clip(np.where(np.isfinite(c), c, 0.5 * (a + b)), np.minimum(a, b), np.maximum(a, b))
            fc = f(c)
            left = fc < 0
            # Illinois: when the same end moves twice, halve the other end's value.
            fb = np.where(left & (side < 0), 0.5 * fb, fb)
            fa = np.where(~left & (side > 0), 0.5 * fa, fa)
            a, fa = np.where(left, c, a), np.where(left, fc, fa)
            b, fb = np.where(left, b, c), np.where(left, fb, fc)
            side = np.where(left, -1.0, 1.0)
            if np.all((np.abs(b - a) <= 1e-15 * np.maximum(1.0, np.abs(c))) | (fc == 0)):
                break
        p = np.exp(np.where(k == 0, t_grid[0], np.where(k >= len(t_grid), t_grid[-1], c)))
        return p if under is None else np.where(k == 0, under, p)

    def pairs_at_marginal(self, m) -> np.ndarray:
        # A language whose marginal is below m even at the range's first pairs (1e-6) gets none: so a price
        # high enough to afford almost none of it (tokens per pair far above the budget) still lets the
        # solvers' spend fall to any budget.
        return self._invert(self.marginal, self._table[1], np.asarray(m, dtype=float), increasing=False,
                            log_values=True, under=0.0)

    def pairs_at_utility(self, t) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        p = self._invert(self.utility, self._table[2], t, increasing=True, log_values=False)
        return np.where(self.utility(np.exp(_LOG_X_RANGE[1])) >= t, p, np.inf)

    def draw_needs(self, t) -> np.ndarray:
        """(R, L): the pairs each draw needs to reach utility t (+inf if it never does; NaN for a draw
        left out of the mean, see `from_bank`)."""
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            need = self.draws.pairs_at_utility(np.broadcast_to(np.asarray(t, dtype=float), self.draws.shape))
        return np.where(self.weights > 0, need, np.nan)

    def pairs_reaching(self, t, confidence: float) -> np.ndarray:
        """(L,): the fewest pairs at which at least a share `confidence` of the usable draws reach utility
        t — the `confidence` quantile of the draws' needs, +inf when too many draws never get there.

        Each draw is increasing, so a draw reaches t at p exactly when its need is ≤ p: the share of
        draws at t is a step function of p, and its first step at or above `confidence` is this quantile
        (the k-th smallest need, k = ⌈confidence·n⌉). Unlike inverting the mean curve, this is not
        pulled out by a few draws whose ceiling sits just above t."""
        need = self.draw_needs(t)
        n = np.sum(~np.isnan(need), axis=0)  # usable draws per language
        k = np.clip(np.ceil(confidence * n - 1e-9).astype(int) - 1, 0, None)
        ordered = np.sort(need, axis=0)  # NaN (left out) sort last, after +inf
        picked = np.take_along_axis(ordered, np.minimum(k, need.shape[0] - 1)[None, :], axis=0)[0]
        return np.where(n > 0, picked, np.inf)

    def reach_share(self, pairs, t) -> np.ndarray:
        """(L,): the share of each language's usable draws that reach utility t with `pairs`."""
        need = self.draw_needs(t)
        pairs = np.asarray(pairs, dtype=float)
        # A draw that never reaches t (+inf) does not reach it at a cap of +inf either; NaN (left out) is False.
        reached = np.isfinite(need) & (need <= pairs * (1 + 1e-12) + 1e-12)
        with np.errstate(invalid="ignore", divide="ignore"):
            return reached.sum(axis=0) / (self.weights > 0).sum(axis=0)
