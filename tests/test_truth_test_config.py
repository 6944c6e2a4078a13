"""`benchmarks/truth_test.py`'s experiment: the demo preset with the benchmark's overrides (another
language set, no mixture runs) and results files that never overwrite another language set's."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from core.config import load_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import truth_test  # noqa: E402


def test_the_default_truth_test_is_the_demo_with_mixture_runs_and_both_extra_plans(tmp_path):
    cfg = truth_test.make_config(tmp_path, [0, 1, 2], [50, 150], leave_one_out=False)
    assert cfg.languages == ["el", "hi", "tr", "vi"] and cfg.model.name == "smollm2-135m"
    assert cfg.sweep.mixtures == [50, 150] and cfg.final.seeds == [0, 1, 2]
    assert cfg.final.transfer_plan and cfg.final.reduced_budget


def test_another_language_set_without_mixture_runs_has_no_transfer_plan(tmp_path):
    cfg = truth_test.make_config(tmp_path, [0, 1], [], leave_one_out=True, languages=["es", "fr", "ja", "zh"],
                                 reduced=False)
    assert cfg.languages == ["es", "fr", "ja", "zh"]
    # no mixture runs: nothing to fit transfer on, and no leave-one-out runs of a mixture that is not run
    assert not cfg.sweep.mixtures and not cfg.sweep.leave_one_out
    assert not cfg.final.transfer_plan and not cfg.final.reduced_budget
    demo = load_config()  # the rest is the embedded default's, targets of its own languages left out
    assert cfg.sweep.sizes == demo.sweep.sizes and cfg.budget.total == demo.budget.total and cfg.budget.unit == "tokens"
    assert not cfg.budget.languages


def test_a_larger_mixture_size_can_keep_the_leave_one_out_runs_where_they_were(tmp_path, capsys):
    cfg = truth_test.make_config(tmp_path, [0], [50, 150, 400], leave_one_out=True, leave_one_out_size=150)
    assert cfg.sweep.mixtures == [50, 150, 400] and cfg.sweep.leave_one_out_pairs == 150
    assert truth_test.make_config(tmp_path, [0], [50, 150, 400], leave_one_out=True).sweep.leave_one_out_pairs == 400
    out = tmp_path / "tt"
    assert truth_test.cli(["--out", str(out), "--mixture-sizes", "50", "150", "--leave-one-out",
                           "--leave-one-out-size", "400", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "not one of sweep.mixtures" in err and "Traceback" not in err and not (out / "sweep.db").exists()


def test_a_language_the_corpus_lacks_is_refused_in_one_line_before_any_training(tmp_path, capsys):
    out = tmp_path / "tt"
    assert truth_test.cli(["--out", str(out), "--languages", "xx", "fr", "--mixture-sizes", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "Language 'xx' is not in" in err and "Traceback" not in err
    assert not (out / "sweep.db").exists() and not (out / "runs.csv").exists()


def test_the_tables_go_to_the_named_files_with_every_mixture(tmp_path, monkeypatch):
    """A mixture's name once shadowed the file stem: the tables of `--name truth_test_x` were written to
    `uniform.md` (the last mixture) and `uniform_comparison.csv`."""
    import json
    from types import SimpleNamespace

    import pandas as pd

    results, out = tmp_path / "results", tmp_path / "out"
    (out / "final").mkdir(parents=True)
    results.mkdir()
    monkeypatch.setattr(truth_test, "RESULTS", results)
    pd.DataFrame(dict(mixture=["plan", "uniform", "plan", "uniform"], seed=[0, 0, 1, 1],
                      predicted_objective=[47.0, 42.0, 47.0, 42.0],
                      achieved_objective=[48.0, 48.5, 46.0, 47.0])).to_csv(out / "final" / "objectives.csv", index=False)
    pd.DataFrame(dict(mixture=["plan"], baseline=["uniform"], scope=["(objective)"], n_seeds=[2],
                      mean_difference=[-0.75], low=[-4.0], high=[2.5], verdict=["tied"])).to_csv(
        out / "final" / "comparison.csv", index=False)
    (out / "allocation_summary.json").write_text(json.dumps({"budget_saved": 0.375, "reduced_budget": 18750.0,
                                                             "unit": "tokens"}))
    cfg = SimpleNamespace(out=out, languages=["el", "ja"], budget=SimpleNamespace(total=30000, unit="tokens"))
    text = truth_test.write_tables(cfg, "chrf", "truth_test_x")
    assert sorted(p.name for p in results.iterdir()) == ["truth_test_x.md", "truth_test_x_comparison.csv"]
    assert (results / "truth_test_x.md").read_text() == text
    assert "| plan | 2 | 47.00 | 47.00 | 48.00, 46.00 |" in text and "| uniform | 2 | 42.00 | 47.75 | 48.50, 47.00 |" in text
    assert "| plan | uniform | 2 | -0.75 | [-4.00, +2.50] | tied |" in text
    # no plan-reduced row was trained, and the budget-saved line must not say there is one
    assert "at 62% of the budget (18,750 tokens); that plan was not trained here." in text


def test_an_unknown_baseline_is_refused_before_the_sweep(tmp_path, capsys):
    out = tmp_path / "tt"
    assert truth_test.cli(["--out", str(out), "--baselines", "unifrom", "--mixture-sizes", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "unknown baselines ['unifrom']" in err and "uniform" in err and not out.exists()
    assert truth_test.cli(["--out", str(out), "--baselines", "uniform", "uniform", "--no-progress"]) == 2
    assert "more than once" in capsys.readouterr().err and not out.exists()


def test_only_names_a_mixture_of_the_experiment_or_is_refused_before_the_sweep(tmp_path, capsys):
    out = tmp_path / "tt"
    assert truth_test.cli(["--out", str(out), "--only", "plan-transfer", "unifrom", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--only unifrom: not a mixture of this experiment" in err and "Traceback" not in err and not out.exists()
    # once planned, a mixture this run does not train (no mixture runs: no transfer-aware plan) is refused too
    from core.errors import UserError

    with pytest.raises(UserError, match="--only plan-transfer: not a mixture .* trains plan, uniform"):
        truth_test.check_only(["plan-transfer"], ["plan", "uniform"])
    truth_test.check_only(["uniform", "plan"], ["plan", "uniform"])


def test_a_probe_is_given_as_pairs_per_language_and_checked_before_anything_trains(tmp_path, capsys):
    cfg = truth_test.make_config(tmp_path, [0], [50], leave_one_out=False, languages=["el", "ja", "tr", "vi"],
                                 probes=[truth_test.parse_probe(["el=44", "ja=549", "tr=202", "vi=4"])])
    assert cfg.sweep.probes == [{"el": 44, "ja": 549, "tr": 202, "vi": 4}] and cfg.final.transfer_plan
    # probes alone are mixture runs too: the transfer-aware plan is fitted on them
    assert truth_test.make_config(tmp_path, [0], [], leave_one_out=False,
                                  probes=[{"el": 1, "hi": 2, "tr": 3, "vi": 4}]).final.transfer_plan
    out = tmp_path / "tt"
    for words, message in ((["el=44", "ja=549", "tr=202"], "missing ['vi']"), (["el=44", "ja"], "CODE=PAIRS"),
                           (["el=4", "el=5"], "each language once"), (["el=-4"], "CODE=PAIRS")):
        assert truth_test.cli(["--out", str(out), "--languages", "el", "ja", "tr", "vi", "--probe", *words,
                               "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and not (out / "sweep.db").exists()


def test_the_shipped_ledger_names_no_path_of_the_machine_it_ran_on(tmp_path, monkeypatch):
    import re

    out = tmp_path / "outputs" / "tt"
    out.mkdir(parents=True)
    (out / "runs.csv").write_text("language,n_pairs,chrf,run_dir\nel,50,9.5," + str(out / "runs" / "el-50-s0") + "\n"
                                  "el,0,8.6,\n")
    (out / "allocation_summary.json").write_text('{"transfer": null}')
    results = tmp_path / "results"
    results.mkdir()
    monkeypatch.setattr(truth_test, "RESULTS", results)
    truth_test.ship_ledger(out, "tt")
    text = (results / "tt_runs.csv").read_text()
    assert "tt/runs/el-50-s0" in text and str(tmp_path) not in text
    assert (results / "tt_allocation_summary.json").read_text() == '{"transfer": null}'
    # and what the project ships: no absolute path of any machine in a results table
    shipped = Path(truth_test.__file__).resolve().parent / "results"
    for path in shipped.glob("*.csv"):
        assert not re.search(r'(^|[,"\s])/(work|home|root|tmp|Users|mnt)/', path.read_text()), path.name
