"""Scaling-law families as small pure functions.

x is the amount of translation data for one language (pairs or tokens), y the metric. Every function
broadcasts with numpy, so the same code evaluates one fit or a whole bootstrap (parameters as arrays).

Families (the sign `d` is +1 when higher is better, -1 when lower is better):

- ``power``: y = offset - d·scale·x^(-alpha), scale > 0, alpha > 0. For a score (d=+1) this is
  C - A·x^-α with ceiling C = offset; for a loss (d=-1) it is E + A·x^-α with floor E = offset.
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


def direction_sign(higher_is_better: bool) -> float:
    return 1.0 if higher_is_better else -1.0


def predict(family: str, params: Mapping[str, np.ndarray | float], x, higher_is_better: bool = True):
    """The metric predicted at data amount x."""
    x = np.asarray(x, dtype=float)
    if family == "power":
        d = direction_sign(higher_is_better)
        return params["offset"] - d * params["scale"] * x ** (-np.asarray(params["alpha"]))
    if family == "log":
        return params["a"] + params["b"] * np.log(x)
    raise ValueError(f"unknown law family {family!r}")


def marginal_utility(family: str, params: Mapping[str, np.ndarray | float], x, higher_is_better: bool = True):
    """d(utility)/dx where utility = d·y: the gain in "better" per extra unit of data."""
    x = np.asarray(x, dtype=float)
    if family == "power":
        alpha = np.asarray(params["alpha"])
        return params["scale"] * alpha * x ** (-alpha - 1.0)
    if family == "log":
        return direction_sign(higher_is_better) * params["b"] / x
    raise ValueError(f"unknown law family {family!r}")


def x_at_marginal_utility(family: str, params: Mapping[str, np.ndarray | float], m, higher_is_better: bool = True):
    """Inverse of `marginal_utility` in x for m > 0 (closed form for both families).

    Returns +inf where the curve's marginal utility never drops to m (non-improving log curves are
    the caller's problem: they are flagged at fit time).
    """
    m = np.asarray(m, dtype=float)
    if family == "power":
        alpha = np.asarray(params["alpha"])
        return (params["scale"] * alpha / m) ** (1.0 / (alpha + 1.0))
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
            x = (gap / params["scale"]) ** (-1.0 / np.asarray(params["alpha"]))
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
