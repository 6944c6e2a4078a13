"""`planner run --dry-run`: the stages, the runs and the compute, timed only by runs that timed this
machine; nothing written."""

from __future__ import annotations

import pandas as pd
import pytest

from core.config import load_config
from planner.cli import main
from planner.dry_run import format_dry_run, plan_run
from planner.estimate import RunCost, measured_rates


def test_a_fresh_directory_lists_every_run_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "exp"
    assert main(["run", "--dry-run", "--output-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    assert not out.exists()
    assert printed.count("would run") == 6 and "proxy runs: 14 (0 done, 14 to train)" in printed
    assert "el: 3 runs at 20, 60, 180 pairs" in printed and "mixture: 2 runs at 80, 240 pairs" in printed
    # 4 × (20+60+180) per-language pairs, and the two uniform mixtures of 4 × 20 and 4 × 60
    assert "training: 1,360 examples in all (1 epoch of each run's pairs)" in printed
    assert "nothing has timed this machine" in printed and "time on this machine" not in printed


def _two_runs_finished(tmp_path):
    """The demo config writing into `tmp_path`, where Greek's 20- and 60-pair runs have finished (0.5 s a
    pair to train, 10 s to score, 50 tokens a pair)."""
    cfg = load_config(None).model_copy(update={"output_dir": str(tmp_path)})
    rows = [{"language": "el", "n_pairs": n, "seed": 0, "n_tokens": 50 * n, "bpb": 1.5, "status": "complete",
             "train_seconds": 0.5 * n, "eval_seconds": 10.0} for n in (20, 60)]
    pd.DataFrame(rows).to_csv(tmp_path / "runs.csv", index=False)
    return cfg


def test_finished_runs_are_counted_and_time_the_rest(tmp_path):
    cfg = _two_runs_finished(tmp_path)
    dry = plan_run(cfg, threads=2, workers=1)
    assert len(dry.missing) == 12 and {p.key for p in dry.points} - {p.key for p in dry.missing} == {"el-20-s0", "el-60-s0"}
    rates = measured_rates([RunCost(n, 0.5 * n + 10, 0.5 * n, 10.0) for n in (20, 60)], cfg.data.test_size)
    # a mixture run scores every language's test set
    expected = sum(rates.overhead + p.total_pairs * rates.per_pair + len(p.languages) * cfg.data.test_size * rates.per_sentence
                   for p in dry.missing)
    assert sum(len(p.languages) for p in dry.missing) == 10 + 2 * 4
    assert dry.rates_from == 2 and dry.sweep_seconds == pytest.approx(expected)
    assert dry.final_pairs == pytest.approx(cfg.budget.total / 50)  # a token budget at the runs' 50 tokens per pair
    assert dry.launch_seconds > 0


def test_a_stage_that_is_up_to_date_is_not_priced(tmp_path):
    cfg = _two_runs_finished(tmp_path)
    dry = plan_run(cfg, threads=2, workers=1)
    stages = [("sweep", True), ("launch", False)]
    assert "sweep ~" not in format_dry_run(cfg, dry, stages) and "launch ~" in format_dry_run(cfg, dry, stages)
    assert "nothing to train" in format_dry_run(cfg, dry, [("sweep", True), ("launch", True)])
