"""The real-ledger families of benchmarks/plan_regret.py simulate the ledger's own per-language design."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from benchmarks_real import own_design  # noqa: E402


def test_mixture_rows_are_not_part_of_a_ledgers_own_design():
    """Before, every mixture run counted as another seed at its size and a probe added its sizes: a ledger
    with one run per language and size was simulated with five."""
    own = [{"language": lang, "n_pairs": n, "seed": 0, "mixture": None} for lang in ("el", "hi") for n in (0, 50, 150)]
    mixed = [{"language": lang, "n_pairs": n, "seed": 0, "mixture": name}
             for name, n in (("uniform-50", 50), ("uniform-150", 150), ("uniform-150-without-el", 150),
                             ("probe-el44+hi549", 549)) for lang in ("el", "hi")]
    runs = pd.DataFrame(own + mixed)
    assert own_design(runs) == ([50.0, 150.0], 1, True)
    assert own_design(runs.drop(columns="mixture")) == ([50.0, 150.0, 549.0], 3, True)  # as it was read
    two_seeds = pd.DataFrame(own + [{**r, "seed": 1} for r in own if r["n_pairs"] > 0])
    assert own_design(two_seeds) == ([50.0, 150.0], 2, True)
