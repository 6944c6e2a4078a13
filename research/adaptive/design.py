"""The adaptive sweep's vocabulary, light enough for every worker and `planner status` to import: the
start design (a pure function of the config, so every machine sharing a study agrees on it), what a
decision records, and the configs an adaptive sweep refuses. The decisions themselves (fits, value of
information) are in `research.adaptive.adaptive`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from core.config import PlannerConfig
from core.errors import UserError
from planner.sweep.identity import GridPoint
from research.adaptive.settings import AdaptiveSettings

START_REASON = "start design"
MIN_DRAWS = 100  # fewer posterior draws cannot tell which curve is uncertain


@dataclass(frozen=True)
class Choice:
    point: GridPoint
    cost: float  # training tokens, as estimated when chosen
    value: float  # expected improvement of the plan's value, objective units (metric summed over languages)
    rank_cost: float  # training + evaluation tokens: what `value` was divided by
    why: str = "value of information"

    @property
    def value_per_million(self) -> float:
        return 1e6 * self.value / self.rank_cost if self.rank_cost > 0 else math.inf


@dataclass(frozen=True)
class Decision:
    choices: tuple[Choice, ...]
    stop: str | None  # why no (further) run is chosen; None when the batch is full
    spent: float  # training tokens of every chosen run before this batch
    budget: float | None
    value_interval: float | None  # the 90% upper bound of what the best plan could gain over this one
    expected_regret: float | None  # its posterior mean (the expected value of perfect information)
    results: int  # finished runs the decision was made on
    plan: dict[str, float] = field(default_factory=dict)  # pairs per language of the plan now
    notes: tuple[str, ...] = ()

    def record(self) -> dict:
        """JSON-ready (a trial user attr of the ledger)."""
        body = asdict(self)
        body["choices"] = [{**asdict(c), "point": c.point.key, "language": c.point.language,
                            "n_pairs": c.point.n_pairs, "seed": c.point.seed} for c in self.choices]
        body["notes"] = list(self.notes)
        return body

    @classmethod
    def from_record(cls, body: dict) -> "Decision":
        choices = tuple(Choice(GridPoint(c["language"], int(c["n_pairs"]), int(c["seed"])), c["cost"], c["value"],
                               c["rank_cost"], c.get("why", "value of information")) for c in body.get("choices", []))
        return cls(choices, body.get("stop"), body.get("spent", 0.0), body.get("budget"), body.get("value_interval"),
                   body.get("expected_regret"), int(body.get("results", 0)), dict(body.get("plan") or {}),
                   tuple(body.get("notes") or ()))


def zero_shot_enabled(cfg: PlannerConfig, a: AdaptiveSettings) -> bool:
    """A model trained from scratch scores nothing at 0 pairs, which says nothing about its curve (and would
    switch the fit to the offset law); a pretrained model's zero-shot score anchors it. A grid that lists
    0 among its sizes asks for it outright."""
    if a.zero_shot is not None:
        return a.zero_shot
    return 0 in cfg.sweep.sizes or cfg.model.name != "tiny"


def trained_sizes(cfg: PlannerConfig) -> list[int]:
    return [n for n in cfg.sweep.sizes if n > 0]


def start_design(languages: Sequence[str], sizes: Sequence[int], seeds: Sequence[int],
                 zero_shot: bool) -> list[GridPoint]:
    """Every language at `sizes` (and 0 pairs when `zero_shot`) with the first seed, plus the smallest size
    again with a second seed for every third language (the first, fourth, …). Two sizes and one seed leave
    the curve fit no degrees of freedom to measure run-to-run noise (it then takes the noise to be as large
    as the data's whole range, and every run looks worthless); a few replicates measure it for all
    languages at once, for a few per cent of the grid's compute. Largest first, like the grid."""
    first, second = seeds[0], (seeds[1] if len(seeds) > 1 else seeds[0] + 1)
    points = [GridPoint(lang, n, first) for lang in languages for n in sizes]
    points += [GridPoint(lang, min(sizes), second) for lang in languages[::3]]
    if zero_shot:
        points += [GridPoint(lang, 0, first) for lang in languages]
    order = {lang: i for i, lang in enumerate(languages)}
    return sorted(points, key=lambda p: (-p.n_pairs, order[p.language], p.seed))


def start_points(cfg: PlannerConfig, a: AdaptiveSettings) -> list[GridPoint]:
    """The start design of a config: a pure function of it, so every machine sharing the study agrees."""
    return start_design(cfg.languages, a.start_sizes or trained_sizes(cfg)[:2], cfg.sweep.seeds,
                        zero_shot_enabled(cfg, a))


def default_ladder(sizes: Sequence[int]) -> list[int]:
    """The configured sizes and 2× and 4× the largest: a plan often asks for more data per language than
    a proxy grid trains, and a run there replaces an extrapolation by a measurement."""
    top = max(sizes)
    return sorted(set(sizes) | {2 * top, 4 * top})


def check_adaptive(cfg: PlannerConfig, a: AdaptiveSettings) -> None:
    """What an adaptive sweep cannot work with, as user errors before any run."""
    fix = "Run the grid (`planner sweep`), or"
    if cfg.fit.pooling != "population":
        raise UserError("the adaptive sweep needs fit.pooling 'population': it starts from two sizes per "
                        "language, where only the population fit has posterior draws to say how uncertain a "
                        "curve is.", f"{fix} set fit.pooling: population.")
    if cfg.fit.bootstrap < MIN_DRAWS:
        raise UserError(f"the adaptive sweep values runs with the fit's posterior draws, and fit.bootstrap is "
                        f"{cfg.fit.bootstrap}.", f"{fix} set fit.bootstrap to {MIN_DRAWS} or more (default 1000).")
    if cfg.budget.objective != "sum":
        raise UserError(f"the adaptive sweep chooses runs by how much they improve the sum objective's plan; "
                        f"budget.objective is '{cfg.budget.objective}'.", f"{fix} budget.objective: sum.")
    start = a.start_sizes or trained_sizes(cfg)[:2]
    if len(start) < 2 and not zero_shot_enabled(cfg, a):
        raise UserError(f"start_sizes {start} gives each language one size, and a curve needs two.",
                        "List at least two start sizes, or enable sweep.zero_shot for a pretrained model.")
