"""The final run (mixture building, predicted vs achieved) and `planner run` end to end on tiny sizes."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from planner.cli import main
from core.errors import UserError
from planner.launch import METRICS_COLUMNS, OBJECTIVE_COLUMNS, launch_command, mixtures_from_allocation, objective
from trainers.mixture import take_pairs


def test_take_pairs_prefix_then_whole_epochs():
    pool = list(range(10))
    assert take_pairs(pool, 4, 1.0, "xx") == [0, 1, 2, 3]
    assert take_pairs(pool, 4, 1.0, "xx") == take_pairs(pool, 7, 1.0, "xx")[:4]  # nested like the sweep
    assert take_pairs(pool, 23, 3.0, "xx") == pool + pool + [0, 1, 2]
    assert take_pairs(pool, 0, 1.0, "xx") == []
    with pytest.raises(UserError, match="max_epochs") as refused:
        take_pairs(pool, 11, 1.0, "xx")
    assert "add the bought pairs to the data source" in str(refused.value)  # a purchase plan's next step


def test_launch_command_is_an_argv_list_for_each_launcher():
    args = ["launch", "--allocation", "a b.csv", "--launcher", "local"]
    acc = launch_command("accelerate", 4, args)
    assert acc[:4] == ["accelerate", "launch", "--num_processes", "4"]
    assert acc[4:7] == ["-m", "planner", "launch"] and "a b.csv" in acc  # no shell quoting needed
    tr = launch_command("torchrun", 2, args)
    assert tr[:3] == ["torchrun", "--nproc-per-node", "2"] and tr[3:5] == ["-m", "planner"]


def test_objective_matches_the_plan_kind():
    vals, w = {"a": 10.0, "b": 30.0}, {"a": 1.0, "b": 2.0}
    assert objective(vals, w, "sum", True) == 70.0
    assert objective(vals, w, "maxmin", True) == 10.0
    assert objective(vals, w, "maxmin", False) == 30.0  # a loss: the worst language is the highest


def test_unknown_baseline_is_a_user_error():
    alloc = pd.DataFrame({"language": ["a"], "pairs": [5], "predicted": [1.0], "predicted_low": [0.5], "predicted_high": [1.5]})
    summary = {"baselines": {"uniform": {"languages": {"a": {"pairs": 5.0, "predicted": 1.0}}}}}
    names = [m.name for m in mixtures_from_allocation(alloc, summary, ["uniform"])]
    assert names == ["plan", "uniform"]
    with pytest.raises(UserError, match="unimax"):
        mixtures_from_allocation(alloc, summary, ["unimax"])


def _tiny_config(tmp_path) -> dict:
    return {
        "experiment": "tiny-e2e",
        "output_dir": str(tmp_path / "out"),
        "languages": ["de", "es"],
        "data": {"source": "demo", "test_size": 40},
        "model": {"hidden_size": 32, "layers": 1, "heads": 2, "vocab_size": 400, "context_length": 64, "threads": 1},
        "train": {"epochs": 1, "batch_size": 8, "eval_size": 6, "max_new_tokens": 8, "samples": 2},
        "sweep": {"sizes": [16, 32, 64], "seeds": [0], "workers": 1},
        "fit": {"metric": "loss", "law": "power", "bootstrap": 50},
        "budget": {"total": 100, "unit": "pairs", "max_epochs": 1},
        "final": {"baselines": ["uniform"], "seeds": [0, 1]},
    }


def test_planner_run_end_to_end_then_resumes_without_training(tmp_path, capsys, monkeypatch):
    cfg_path = tmp_path / "planner.yaml"
    cfg_path.write_text(yaml.safe_dump(_tiny_config(tmp_path)), encoding="utf-8")
    assert main(["run", "--config", str(cfg_path)]) == 0
    out = tmp_path / "out"

    # the mixture trained on is exactly the allocation (counts recorded by the final run)
    allocation = pd.read_csv(out / "allocation.csv")
    plan = json.loads((out / "final" / "plan" / "s0" / "metrics.json").read_text())
    assert plan["counts"] == {r.language: int(r.pairs) for r in allocation.itertuples()}
    assert sum(plan["counts"].values()) <= 100
    # final runs always translate: every language's chrF and BLEU carry sacreBLEU's signature
    assert set(plan["signatures"]) == set(plan["counts"]) and all(
        s["chrf"].startswith("nrefs:1|") and "bleu" in s for s in plan["signatures"].values())
    assert plan["base_model"] == {"model": "tiny"}

    metrics = pd.read_csv(out / "final" / "metrics.csv")
    assert list(metrics.columns) == METRICS_COLUMNS
    assert set(metrics["mixture"]) == {"plan", "uniform"}
    assert set(metrics["language"]) == {"de", "es"}
    assert metrics["achieved"].notna().all()
    assert sorted(set(metrics["seed"])) == [0, 1] and len(metrics) == 2 * 2 * 2  # mixtures × seeds × languages
    comparison = pd.read_csv(out / "final" / "comparison.csv")
    overall = comparison[(comparison["mixture"] == "plan") & (comparison["baseline"] == "uniform")]
    assert len(overall) == 3 and overall["n_seeds"].eq(2).all()  # the objective + one row per language
    assert not overall.empty
    assert (metrics["error"] - (metrics["achieved"] - metrics["predicted"])).abs().max() < 1e-9
    assert list(pd.read_csv(out / "final" / "objectives.csv").columns) == OBJECTIVE_COLUMNS
    assert (out / "report.html").is_file() and (out / "resolved_config.yaml").is_file()
    stats = pd.read_csv(out / "data_stats.csv")
    assert set(stats["language"]) == {"de", "es"} and (stats["train"] > 64).all()

    # second run: every stage is up to date, nothing is trained again
    stamp_files = sorted(out.rglob("metrics.json"))
    mtimes = {p: p.stat().st_mtime_ns for p in stamp_files}
    capsys.readouterr()
    assert main(["run", "--config", str(cfg_path)]) == 0
    err = capsys.readouterr().err
    assert err.count("up to date, skipped") == 6
    assert {p: p.stat().st_mtime_ns for p in stamp_files} == mtimes

    # same config, same seed, same machine → identical final numbers: retrain one finished run from nothing
    before = pd.read_csv(out / "final" / "metrics.csv")
    import shutil

    shutil.rmtree(out / "final" / "uniform" / "s1")
    # tabulating only the finished runs trains nothing and pairs the seeds both mixtures have
    from core.config import load_config
    from planner.launch import run_final

    run_final(load_config(cfg_path), out / "allocation.csv", ["uniform"], out / "fits.json", progress=False,
              only_finished=True)
    assert not (out / "final" / "uniform" / "s1").exists()
    partial = pd.read_csv(out / "final" / "comparison.csv")
    assert partial.loc[partial["mixture"] == "plan", "n_seeds"].eq(1).all()
    assert len(pd.read_csv(out / "final" / "objectives.csv")) == 3
    assert main(["launch", "--config", str(cfg_path), "--allocation", str(out / "allocation.csv"),
                 "--fits", str(out / "fits.json")]) == 0
    after = pd.read_csv(out / "final" / "metrics.csv")
    key = ["mixture", "seed", "language"]
    pd.testing.assert_frame_equal(before.sort_values(key).reset_index(drop=True),
                                  after.sort_values(key).reset_index(drop=True))
    capsys.readouterr()

    # a budget change re-plans and re-launches but never re-runs the sweep
    data = _tiny_config(tmp_path)
    data["budget"]["total"] = 90
    cfg_path.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert main(["run", "--config", str(cfg_path)]) == 0
    err = capsys.readouterr().err
    assert "[2/6] sweep: up to date" in err and "[3/6] fit: up to date" in err
    assert "[4/6] allocate: up to date" not in err
    # the launch tells the time left after every final run, the last one nothing
    assert "launch: plan seed 0 done; about " in err and "launch: uniform seed 1 done; about 0.0s left of the launch" in err

    # another version of the planner's code: every stage is done again, and nothing finished is retrained
    import planner.pipeline

    assert planner.pipeline.code_digest() == planner.pipeline.code_digest.__wrapped__()  # the real source
    mtimes = {p: p.stat().st_mtime_ns for p in sorted(out.rglob("metrics.json"))}
    fitted = (out / "fits.json").stat().st_mtime_ns
    monkeypatch.setattr(planner.pipeline, "code_digest", lambda: "another-version")
    assert main(["run", "--config", str(cfg_path)]) == 0
    err = capsys.readouterr().err
    assert "up to date" not in err
    assert (out / "fits.json").stat().st_mtime_ns > fitted
    assert {p: p.stat().st_mtime_ns for p in sorted(out.rglob("metrics.json"))} == mtimes


def test_launch_dry_run_prints_the_launcher_command(tmp_path, capsys):
    cfg_path = tmp_path / "planner.yaml"
    cfg_path.write_text(yaml.safe_dump(_tiny_config(tmp_path)), encoding="utf-8")
    argv = ["launch", "--config", str(cfg_path), "--allocation", "my alloc.csv", "--launcher", "torchrun",
            "--num-processes", "4", "--baselines", "uniform,unimax", "--dry-run"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("torchrun --nproc-per-node 4 -m planner launch --config ")
    assert "'my alloc.csv'" in out and "--launcher local" in out and "--baselines uniform,unimax" in out


def test_run_identity_ignores_threads_but_not_what_changes_the_result(tmp_path):
    from core.config import config_from_dict
    from planner.launch import run_identity

    base = _tiny_config(tmp_path)
    other = {**base, "model": {**base["model"], "threads": 2}}
    lr = {**base, "train": {**base["train"], "learning_rate": 0.01}}
    ident = lambda body, seed=0: run_identity(config_from_dict(body), {"de": 10, "es": 5}, seed)  # noqa: E731
    assert ident(base) == ident(other)
    assert len({ident(base), ident(lr), ident(base, seed=1)}) == 3
    assert ident(base) != run_identity(config_from_dict(base), {"de": 11, "es": 5}, 0)

