"""How long the work left will take, priced by the proxy runs already finished on this machine: a proxy
run's wall time (the sweep's ETA, `predict_seconds`) and the rest of `planner run` once the sweep is under
way (the final runs and the target checks, `launch_seconds`); and how a duration is shown.

A proxy run measures this machine's two rates: training seconds per pair (one thread, the proxy epochs)
and held-out scoring seconds per test sentence. A final run trains the budget's pairs once per mixture
and seed, scores every language's test split, and also translates `train.eval_size` sentences per
language, which a proxy run fitting bits per byte never does: greedy decoding costs about
`GENERATION_COST` teacher-forced sentences per translated sentence (measured on the embedded default,
2 CPU cores, generating up to 1.5× the longest reference as `train.max_new_tokens: null` does: the launch
took 694 s where 11 puts it; with the earlier fixed 64 new tokens it was 6; a later run of the same
stages took 549 s, so expect the estimate to be a fifth high or low between runs). The launch runs one process
with every core; `THREAD_GAIN` is what each extra thread adds to one thread's speed (a small CPU gets
about 1.6× from two threads; a GPU makes all of this moot: the estimate is then only a guide).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import median
from typing import Sequence

from core.config import PlannerConfig

GENERATION_COST = 11.0
THREAD_GAIN = 0.6


@dataclass(frozen=True)
class RunCost:
    """One finished proxy run: its pairs and where its wall time went."""

    pairs: int
    wall: float
    train: float
    evaluate: float


@dataclass(frozen=True)
class Rates:
    per_pair: float  # training seconds per pair, one thread, proxy epochs
    per_sentence: float  # held-out scoring seconds per test sentence, one thread
    overhead: float  # seconds a run spends outside training and scoring (loading the model)


def run_costs(runs) -> list[RunCost]:
    """The timed runs of a runs table (runs.csv as a DataFrame: n_pairs, train_seconds, eval_seconds). A
    mixture run has a row per language, each with the whole run's seconds: it counts once, at all its pairs."""
    if not {"train_seconds", "eval_seconds"} <= set(runs.columns):
        return []
    timed = runs.dropna(subset=["train_seconds", "eval_seconds"])
    pairs = timed["n_pairs"].astype(float)
    if "mixture" in timed.columns:
        mixed = timed["mixture"].notna() & (timed["mixture"].astype(str).str.strip() != "")
        pairs = pairs + timed["other_pairs"].fillna(0).astype(float).where(mixed, 0.0)
        keep = ~mixed | ~timed["mixture"].duplicated()
        timed, pairs = timed[keep], pairs[keep]
    return [RunCost(int(n), float(r.train_seconds + r.eval_seconds), float(r.train_seconds), float(r.eval_seconds))
            for n, r in zip(pairs, timed.itertuples())]


def measured_rates(costs: Sequence[RunCost], test_size: int) -> Rates | None:
    """This machine's rates from finished proxy runs; None before a trained run has finished."""
    trained = [c for c in costs if c.pairs > 0 and c.train > 0]
    if not trained:
        return None
    return Rates(
        per_pair=sum(c.train for c in trained) / sum(c.pairs for c in trained),
        per_sentence=median(c.evaluate for c in costs) / max(test_size, 1),
        overhead=median(max(0.0, c.wall - c.train - c.evaluate) for c in costs),
    )


def final_pairs(cfg: PlannerConfig, tokens_per_pair: float | None) -> float:
    """The pairs a final mixture trains: the budget in pairs (token budgets at the data's mean tokens per
    pair, money budgets at the languages' mean price: a guide, the plan's own mix differs)."""
    b = cfg.budget
    if b.unit == "pairs":
        return b.total
    if b.unit == "money":
        prices = [own.price_per_pair for own in b.languages.values() if own.price_per_pair]
        return b.total / (sum(prices) / len(prices)) if prices else 0.0
    return b.total / tokens_per_pair if tokens_per_pair else 0.0


@dataclass(frozen=True)
class LaunchParts:
    """The launch stage's estimated wall seconds: `runs` final runs of `final_run` each, then `checks`
    target checks of `check` each."""

    final_run: float
    runs: int
    check: float
    checks: int

    @property
    def total(self) -> float:
        return self.runs * self.final_run + self.checks * self.check

    def left(self, measured: Sequence[float], runs_done: int, checks_done: int = 0) -> float:
        """Seconds left once `runs_done` final runs and `checks_done` target checks are done: the estimate of
        the rest, scaled by measured ÷ estimated over the final runs trained in this launch (`measured`, their
        wall seconds). The estimate prices a final run from the proxy runs and a generation cost measured on
        another run, so it is a fifth high or low between runs; one finished final run measures this one."""
        trained = [m for m in measured if m >= REUSED_SHARE * self.final_run]
        scale = sum(trained) / (len(trained) * self.final_run) if trained and self.final_run > 0 else 1.0
        return scale * (max(self.runs - runs_done, 0) * self.final_run + max(self.checks - checks_done, 0) * self.check)


# A final run taking less than this share of its estimate was not trained but read back (a launch resumed
# after an interruption reuses every finished run in well under a second): it measures nothing.
REUSED_SHARE = 0.05


def launch_parts(cfg: PlannerConfig, rates: Rates, tokens_per_pair: float | None, threads: int) -> LaunchParts:
    """The launch stage's work, priced: every final run (mixtures × seeds) and the target checks."""
    speed = 1.0 + THREAD_GAIN * max(threads - 1, 0)
    languages, test = len(cfg.languages), cfg.data.test_size
    pairs = final_pairs(cfg, tokens_per_pair)
    epochs = (cfg.final.epochs or cfg.train.epochs) / cfg.train.epochs
    generated = min(cfg.train.eval_size or test, test)
    one_final = (rates.overhead + pairs * epochs * rates.per_pair
                 + languages * rates.per_sentence * (test + GENERATION_COST * generated))
    mixtures = 1 + len(cfg.final.baselines) + int(cfg.final.reduced_budget)
    checks, check = 0, 0.0
    if cfg.final.target_check and (targeted := sum(b.target is not None for b in cfg.budget.languages.values())):
        # one run per language at its need: about the budget's pairs in all (a guide, not the plan)
        checks = targeted
        check = (languages * (rates.overhead + test * rates.per_sentence) + pairs * rates.per_pair) / languages
    return LaunchParts(one_final / speed, mixtures * len(cfg.final.seeds), check / speed, checks)


def launch_seconds(cfg: PlannerConfig, rates: Rates, tokens_per_pair: float | None, threads: int) -> float:
    """Wall seconds of the launch stage: every final run (mixtures × seeds) and the target checks."""
    return launch_parts(cfg, rates, tokens_per_pair, threads).total


def predict_seconds(done: Sequence[tuple[int, float]], n_pairs: int) -> float | None:
    """Predict a run's wall time from finished runs' (n_pairs, seconds): least squares of
    seconds = a + b·pairs (a = evaluation and start-up, b = training per pair at fixed epochs) when the
    finished runs span two sizes, else their mean scaled by size; None before any run finished."""
    if not done:
        return None
    xs, ys = [float(x) for x, _ in done], [float(y) for _, y in done]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx > 0:
        b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
        a = my - b * mx
        if b >= 0:
            return max(0.0, a + b * n_pairs)
    return my * n_pairs / mx


def format_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "?"
    if seconds < 10:
        return f"{seconds:.1f}s"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s" if m else f"{s}s"
