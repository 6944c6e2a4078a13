"""runs.csv: a pure function of the storage (one row per grid point with a current result), rewritten
atomically under a file lock after every finished run, so the file is always whole and the last writer
has seen the newest state. Results trained on data that has changed since (STALE points) are left out."""

from __future__ import annotations

import fcntl
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.files import write_csv_atomic
from planner.sweep.identity import (
    A_DEVICES, A_EVAL_S, A_METRICS, A_RUN_DIR, A_STEPS, A_TOKENS, A_TRAIN_S, GridPoint, mixture_name,
)
from planner.sweep.ledger import Ledger
from planner.sweep.state import PointStatus, point_statuses

RUNS_CSV = "runs.csv"
# Metric columns that lead runs.csv when present (others follow alphabetically).
PREFERRED_METRICS = ("bpb", "loss", "chrf", "bleu", "comet", "bpb_se", "loss_se")


def runs_table(statuses: Sequence[PointStatus]) -> tuple[list[str], list[dict[str, Any]]]:
    """runs.csv's columns and rows: one row per grid point with a current result, ordered by language (as
    configured), size and seed; contract columns first (language, n_pairs, n_tokens, seed, metrics…).

    A mixture run adds one row per language it scored, after the per-language rows (uniform mixtures,
    leave-one-out runs, then probes): that language's own pairs and tokens in it (0 for a left-out
    language), its scores, the mixture's name (`mixture`) and the other languages' data in it
    (`other_pairs`, `other_tokens`); those three columns exist only when the study has mixture runs.
    `devices` (last, only when some run was given GPUs): its worker's CUDA_VISIBLE_DEVICES."""
    language_order = {lang: i for i, lang in enumerate(dict.fromkeys(s.point.language for s in statuses
                                                                     if not s.point.mixture))}
    single = sorted(((s.point, s.result) for s in statuses if s.result is not None and not s.point.mixture),
                    key=lambda pr: (language_order[pr[0].language], pr[0].n_pairs, pr[0].seed))
    mixed = sorted(((s.point, s.result) for s in statuses if s.result is not None and s.point.mixture),
                   key=lambda pr: (bool(pr[0].composition), bool(pr[0].without), pr[0].n_pairs,
                                   pr[0].without, pr[0].composition, pr[0].seed))
    names = {m for _, t in single for m in t.user_attrs.get(A_METRICS, {})}
    names |= {m for _, t in mixed for values in t.user_attrs.get(A_METRICS, {}).values() for m in values}
    metrics = [m for m in PREFERRED_METRICS if m in names] + sorted(names - set(PREFERRED_METRICS))
    columns = ["language", "n_pairs", "n_tokens", "seed", *metrics, "status", "train_seconds",
               "eval_seconds", "steps", "run_dir", "trial"]
    if mixed:
        columns += ["mixture", "other_pairs", "other_tokens"]
    # Only then: a CPU sweep's runs.csv keeps exactly the columns it always had.
    with_devices = any(A_DEVICES in t.user_attrs for _, t in (*single, *mixed))
    if with_devices:
        columns.append("devices")

    def row(language: str, n_pairs: int, tokens, values: dict, point: GridPoint, t) -> dict[str, Any]:
        attrs = t.user_attrs
        return {
            "language": language, "n_pairs": n_pairs, "n_tokens": tokens, "seed": point.seed,
            **{m: values.get(m) for m in metrics}, "status": "complete",
            "train_seconds": attrs.get(A_TRAIN_S), "eval_seconds": attrs.get(A_EVAL_S),
            "steps": attrs.get(A_STEPS), "run_dir": attrs.get(A_RUN_DIR), "trial": t.number,
            **({"devices": attrs.get(A_DEVICES)} if with_devices else {}),
        }

    rows = [row(p.language, p.n_pairs, t.user_attrs.get(A_TOKENS), t.user_attrs.get(A_METRICS, {}), p, t)
            for p, t in single]
    for point, t in mixed:
        tokens = t.user_attrs.get(A_TOKENS) or {}
        scores = t.user_attrs.get(A_METRICS) or {}
        pairs = point.pairs
        for lang in sorted(point.mixture, key=lambda lang: language_order.get(lang, len(language_order))):
            others = [o for o in point.mixture if o != lang]
            rows.append({**row(lang, pairs[lang], tokens.get(lang), scores.get(lang, {}), point, t),
                         "mixture": mixture_name(point), "other_pairs": sum(pairs[o] for o in others),
                         "other_tokens": sum(int(tokens.get(o) or 0) for o in others)})
    return columns, rows


def export_runs(ledger: Ledger, points: Sequence[GridPoint], path: Path) -> int:
    """Regenerate runs.csv from the storage; returns the number of rows. Reading the storage and writing
    happen under one file lock, so whichever worker writes last has also read last."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        columns, rows = runs_table(point_statuses(points, ledger.trials(), fingerprints=ledger.fingerprints))
        write_csv_atomic(path, columns, rows)
    return len(rows)
