"""Scaling-law families as small pure functions.

x is the amount of translation data for one language (pairs or tokens), y the metric. Every function
broadcasts with numpy, so the same code evaluates one fit or a whole bootstrap (parameters as arrays).

Families (the sign `d` is +1 when higher is better, -1 when lower is better):

- ``power``: y = offset - d·scale·(x + x0)^(-alpha), scale > 0, alpha > 0, x0 ≥ 0 (optional, default 0).
  For a score (d=+1) this is C - A·(x + x₀)^-α with ceiling C = offset; for a loss (d=-1) it is
  E + A·(x + x₀)^-α with floor E = offset. With x0 = 0 it is the plain power law, which diverges at
  x = 0; x0 > 0 is the *offset* law of a pretrained model, which already scores C - A·x₀^-α with no
  translation data: x₀ is the data the model effectively already has for the language.
- ``log``:   y = a + b·ln x (unbounded: extrapolation must be flagged by the caller).

The allocator works with the *utility* u = d·y (always "higher is better"), whose derivative for the power
family is scale·alpha·x^(-alpha-1) > 0 in both directions: increasing and strictly concave, which is what
makes the marginal-gain (KKT) solver exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

PARAM_NAMES: dict[str, tuple[str, ...]] = {
    "power": ("offset", "scale", "alpha"),
    "log": ("a", "b"),
}
# Parameters a family may carry beyond the required ones, with the value their absence means.
OPTIONAL_PARAMS: dict[str, dict[str, float]] = {"power": {"x0": 0.0}, "log": {}}


def param_names(family: str, params: Mapping) -> tuple[str, ...]:
    """The required parameters of `family` plus the optional ones present in `params`."""
    return PARAM_NAMES[family] + tuple(k for k in OPTIONAL_PARAMS[family] if k in params)


def _x0(params: Mapping):
    return np.asarray(params.get("x0", 0.0), dtype=float)


def direction_sign(higher_is_better: bool) -> float:
    return 1.0 if higher_is_better else -1.0


def predict(family: str, params: Mapping[str, np.ndarray | float], x, higher_is_better: bool = True):
    """The metric predicted at data amount x."""
    x = np.asarray(x, dtype=float)
    if family == "power":
        d = direction_sign(higher_is_better)
        return params["offset"] - d * params["scale"] * (x + _x0(params)) ** (-np.asarray(params["alpha"]))
    if family == "log":
        return params["a"] + params["b"] * np.log(x)
    raise ValueError(f"unknown law family {family!r}")


def marginal_utility(family: str, params: Mapping[str, np.ndarray | float], x, higher_is_better: bool = True):
    """d(utility)/dx where utility = d·y: the gain in "better" per extra unit of data."""
    x = np.asarray(x, dtype=float)
    if family == "power":
        alpha = np.asarray(params["alpha"])
        return params["scale"] * alpha * (x + _x0(params)) ** (-alpha - 1.0)
    if family == "log":
        return direction_sign(higher_is_better) * params["b"] / x
    raise ValueError(f"unknown law family {family!r}")


def x_at_marginal_utility(family: str, params: Mapping[str, np.ndarray | float], m, higher_is_better: bool = True):
    """Inverse of `marginal_utility` in x for m > 0 (closed form for both families).

    Returns +inf where the curve's marginal utility never drops to m (non-improving log curves are
    the caller's problem: they are flagged at fit time). For an offset curve the answer is negative when
    even x = 0 has a lower marginal utility than m; callers clip it to their bounds.
    """
    m = np.asarray(m, dtype=float)
    if family == "power":
        alpha = np.asarray(params["alpha"])
        return (params["scale"] * alpha / m) ** (1.0 / (alpha + 1.0)) - _x0(params)
    if family == "log":
        return direction_sign(higher_is_better) * params["b"] / m
    raise ValueError(f"unknown law family {family!r}")


def x_at_level(family: str, params: Mapping[str, np.ndarray | float], y, higher_is_better: bool = True):
    """Inverse of `predict` in x: the data needed to reach metric value y (inf if never reached)."""
    y = np.asarray(y, dtype=float)
    if family == "power":
        d = direction_sign(higher_is_better)
        gap = d * (params["offset"] - y)  # how far the target is from the asymptote, in the "better" direction
        with np.errstate(divide="ignore", invalid="ignore"):
            x = (gap / params["scale"]) ** (-1.0 / np.asarray(params["alpha"])) - _x0(params)
        return np.where(gap > 0, x, np.inf)
    if family == "log":
        return np.exp((y - params["a"]) / params["b"])
    raise ValueError(f"unknown law family {family!r}")


@dataclass(frozen=True)
class Curve:
    """One fitted curve: a family, its parameters, and which way is better.

    `params` values are floats for a point fit; bootstrap draws can be held as a `Curve` whose values are
    arrays of equal length (everything broadcasts).
    """

    family: str
    params: Mapping[str, float | np.ndarray]
    higher_is_better: bool = True
    law: str = field(default="", compare=False)  # the family requested at fit time (e.g. "shared")

    def __post_init__(self):
        if self.family not in PARAM_NAMES:
            raise ValueError(f"unknown law family {self.family!r}; known: {sorted(PARAM_NAMES)}")
        missing = set(PARAM_NAMES[self.family]) - set(self.params)
        if missing:
            raise ValueError(f"{self.family} curve is missing parameters {sorted(missing)}")
        unknown = set(self.params) - set(PARAM_NAMES[self.family]) - set(OPTIONAL_PARAMS[self.family])
        if unknown:
            raise ValueError(f"{self.family} curve has unknown parameters {sorted(unknown)}")

    @property
    def has_offset(self) -> bool:
        """An offset power curve (x0 > 0): finite at x = 0, where it predicts the zero-shot score."""
        return self.family == "power" and bool(np.any(_x0(self.params) > 0))

    def predict(self, x):
        return predict(self.family, self.params, x, self.higher_is_better)

    def utility(self, x):
        return direction_sign(self.higher_is_better) * self.predict(x)

    def marginal_utility(self, x):
        return marginal_utility(self.family, self.params, x, self.higher_is_better)

    def x_at_marginal_utility(self, m):
        return x_at_marginal_utility(self.family, self.params, m, self.higher_is_better)

    def x_at_level(self, y):
        return x_at_level(self.family, self.params, y, self.higher_is_better)
