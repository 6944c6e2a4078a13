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


def launch_seconds(cfg: PlannerConfig, rates: Rates, tokens_per_pair: float | None, threads: int) -> float:
    """Wall seconds of the launch stage: every final run (mixtures × seeds) and the target checks."""
    speed = 1.0 + THREAD_GAIN * max(threads - 1, 0)
    languages, test = len(cfg.languages), cfg.data.test_size
    pairs = final_pairs(cfg, tokens_per_pair)
    epochs = (cfg.final.epochs or cfg.train.epochs) / cfg.train.epochs
    generated = min(cfg.train.eval_size or test, test)
    one_final = (rates.overhead + pairs * epochs * rates.per_pair
                 + languages * rates.per_sentence * (test + GENERATION_COST * generated))
    mixtures = 1 + len(cfg.final.baselines) + int(cfg.final.reduced_budget)
    seconds = mixtures * len(cfg.final.seeds) * one_final
    if cfg.final.target_check and any(b.target is not None for b in cfg.budget.languages.values()):
        # one run per language at its need: about the budget's pairs in all (a guide, not the plan)
        seconds += languages * (rates.overhead + test * rates.per_sentence) + pairs * rates.per_pair
    return seconds / speed


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
