"""The budget section of the config as the allocation's inputs, and the data rules — in one place, for
`planner data stats`, the sweep's checks before its first run, the pipeline's data and allocate stages and
`planner allocate --config`.

Only the sweep needs data held: its pilot data, the largest proxy run plus the test split. The budget's caps
and floors (`budget.languages.<code>.max_pairs`, `min_pairs`) may exceed the pool: the plan's pairs beyond
it are bought.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from core.config import PlannerConfig
from core.errors import UserError


def budget_key(code: str, field: str) -> str:
    """The config key a per-language budget setting lives under, as error messages name it."""
    return f"budget.languages.{code}.{field}"


def largest_run(cfg: PlannerConfig) -> tuple[int, str]:
    """The most pairs one proxy run takes from a language, and the sweep key that asks for it."""
    sweep = cfg.sweep
    for key, sizes in (("sweep.sizes", sweep.sizes), ("sweep.mixtures", sweep.mixtures),
                       ("sweep.probes", [n for p in sweep.probes for n in p.values()])):
        if sizes and max(sizes) == sweep.largest_pairs:
            return sweep.largest_pairs, key
    return sweep.largest_pairs, "sweep.sizes"


def check_budget_languages(cfg: PlannerConfig) -> None:
    """The per-language budget settings against each other, before any data is read: a price for every
    language under a money budget, and no floor above its cap (UserError naming the key)."""
    b = cfg.budget
    if b.unit == "money":
        missing = [code for code in cfg.languages if (b.languages.get(code) is None
                                                      or b.languages[code].price_per_pair is None)]
        if missing:
            raise UserError(
                f"budget.unit is money, but {', '.join(budget_key(c, 'price_per_pair') for c in missing)} "
                f"{'is' if len(missing) == 1 else 'are'} not set.",
                f"Give every language its price per pair in {b.currency}, or plan in budget.unit pairs or tokens.",
            )
    for code, limits in b.languages.items():
        if limits.min_pairs and limits.max_pairs is not None and limits.min_pairs > limits.max_pairs * b.max_epochs:
            raise UserError(
                f"{budget_key(code, 'min_pairs')} is {limits.min_pairs:,}, above its cap: "
                f"{budget_key(code, 'max_pairs')} {limits.max_pairs:,} × budget.max_epochs {b.max_epochs:g}.",
                "Lower min_pairs, or raise max_pairs (it may exceed the data held: the rest is bought).",
            )


def check_pilot_data(cfg: PlannerConfig, datasets) -> None:
    """Every training pool holds the sweep's largest run (its test split is already set aside)."""
    largest, key = largest_run(cfg)
    short = [f"{code} ({data.name}) has {len(data.train):,} but needs {largest:,}"
             for code, data in datasets.items() if len(data.train) < largest]
    if short:
        raise UserError(
            f"Not enough pilot data for the sweep: the largest run of {key} takes {largest:,} training pairs "
            "(counted after setting aside each language's test split and dropping pairs that overlap it): "
            + "; ".join(short) + ".",
            f"Lower the largest size in {key}, lower data.test_size, add data for those languages, or remove "
            "them from `languages`. (budget.languages.<code>.max_pairs and min_pairs may exceed the data held.)",
        )


def allocation_limits(cfg: PlannerConfig, pool_sizes: Mapping[str, int] | None):
    """Per-language limits for the planner: the cap is budget.languages.<code>.max_pairs (default the
    training pool; it may exceed the pool), the pairs held are the pool, plus floors, weights and prices.
    Without the pools (a fits file planned outside `planner run`) only the languages the budget section
    names get limits, from their settings alone."""
    # Here, not at the top: the CLI verbs import this module, and `planner --help` must not pay for scipy.
    from planner.allocation import LanguageLimits

    check_budget_languages(cfg)
    limits = {}
    for lang in cfg.languages if pool_sizes is not None else cfg.budget.languages:
        own = cfg.budget.languages.get(lang)
        pool = None if pool_sizes is None else pool_sizes[lang]
        limits[lang] = LanguageLimits(
            min_pairs=own.min_pairs if own else None,
            max_pairs=(own.max_pairs if own and own.max_pairs is not None else pool),
            weight=own.weight if own else None,
            price_per_pair=own.price_per_pair if own else None,
            held_pairs=pool,
        )
    return limits


def allocation_settings(cfg: PlannerConfig, pool_sizes: Mapping[str, int] | None) -> dict:
    """`allocate`'s keyword arguments from the config's budget section (objective aside): what `planner run`
    plans with, and what `planner allocate --config` starts from before its flags."""
    b = cfg.budget
    return dict(budget=b.total, unit=b.unit, limits=allocation_limits(cfg, pool_sizes), max_epochs=b.max_epochs,
                targets=targets_from_config(cfg), risk=b.risk, solver=b.solver, seed=cfg.seed,
                smallest_run_floor=b.smallest_run_floor, target_confidence=b.target_confidence,
                currency=b.currency, price_key="budget.languages.<code>.price_per_pair")


def targets_from_config(cfg: PlannerConfig) -> dict[str, float] | None:
    targets = {lang: b.target for lang, b in cfg.budget.languages.items() if b.target is not None}
    return targets or None


def preflight_data(cfg: PlannerConfig) -> None:
    """Fail before the first run (exit 2) if a language has fewer training pairs than the largest size."""
    # The data loader brings pandas: imported here, as in every rule below, so the CLI verbs stay quick to start.
    from trainers.data import check_capacity, load_languages
    from trainers.prompts import check_general_tasks

    check_capacity(load_languages(cfg.data, cfg.languages), cfg.sweep.largest_pairs)
    check_general_tasks(cfg.data, cfg.languages)


@dataclass(frozen=True)
class DataFingerprints:
    """The current data of each language, as far as the planner's data loader can read it."""

    by_language: dict[str, str] = field(default_factory=dict)  # language → fingerprint
    untracked: dict[str, str] = field(default_factory=dict)  # language → why it has none

    @property
    def digest(self) -> str:
        """One hash of every language's fingerprint, in the configured order: the sweep stage's data stamp."""
        return hashlib.sha256("".join(self.by_language.values()).encode()).hexdigest()[:16]

    def note(self) -> str | None:
        """One line naming the languages whose results cannot be checked against their data, or None."""
        if not self.untracked:
            return None
        reasons = sorted(set(self.untracked.values()))
        why = reasons[0] if len(reasons) == 1 else "; ".join(f"{k}: {v}" for k, v in self.untracked.items())
        return (f"note: results of {', '.join(self.untracked)} are not checked for changed data, because "
                f"the configured data source cannot be read for them ({why})")


def data_fingerprints(cfg: PlannerConfig, strict: bool) -> DataFingerprints:
    """Fingerprint each configured language's training pool and test split (cached by the data loader).

    `strict` (the default trainer, which reads exactly this data): a language that cannot be loaded is
    the user's mistake and raises. Otherwise (a plug-in runner may bring its own data) such a language
    is left untracked: its results are never judged outdated, since the planner cannot see their data."""
    from trainers.data import data_fingerprint, load_language

    found, untracked = {}, {}
    for language in cfg.languages:
        try:
            found[language] = data_fingerprint(load_language(cfg.data, language))
        except UserError as err:
            if strict:
                raise
            untracked[language] = err.problem
    return DataFingerprints(found, untracked)


def sweep_data(cfg: PlannerConfig, own_trainer: bool) -> DataFingerprints:
    """The data checked before any proxy run (exit 2 now, not in every worker), and its fingerprints. The
    project's trainer reads exactly cfg.data, so unreadable or too little data is an error then; a plug-in
    runner may bring its own."""
    if own_trainer:
        preflight_data(cfg)
    return data_fingerprints(cfg, strict=own_trainer)
