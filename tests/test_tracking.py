"""Experiment tracking (trainers/tracking.py) on real tiny runs: what MLflow's local store, TensorBoard's
event files and an offline W&B run hold, read back with each tool's own reader, equals the run's files;
a failing backend only warns; tracking never enters a run's identity."""

from __future__ import annotations

import json
import math

import pytest
import torch

from core.config import config_from_dict, load_config
from core.errors import UserError
from trainers.coit import METRICS_FILE, train_one

torch.set_num_threads(1)
LANG = "el"


@pytest.fixture(autouse=True)
def tokenizer_cache(tmp_path_factory, monkeypatch):
    """The session-wide temporary tokenizer cache the trainer tests share (trained once)."""
    monkeypatch.setenv("PLANNER_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "planner-cache"))


def tiny_cfg(tmp_path, **tracking):
    """The quick preset shrunk to seconds: a 1-layer model, one epoch, bpb (no decoding in proxy runs)."""
    body = load_config(preset="quick").model_dump(mode="json")
    body.update(output_dir=str(tmp_path / "out"), languages=[LANG], tracking=tracking)
    body["data"]["test_size"] = 40
    body["model"].update(threads=1, hidden_size=32, layers=1, heads=2, context_length=64)
    body["train"].update(epochs=1, batch_size=4, eval_size=4, max_new_tokens=4, samples=0)
    body["fit"]["metric"] = "bpb"
    return config_from_dict(body)


def metrics_json(run_dir) -> dict:
    return json.loads((run_dir / METRICS_FILE).read_text(encoding="utf-8"))


def test_mlflow_local_store_holds_params_loss_history_and_the_scores_of_metrics_json(tmp_path):
    from mlflow.tracking import MlflowClient

    from trainers.tracking import mlflow_uri

    cfg = tiny_cfg(tmp_path, backend="mlflow")
    result = train_one(cfg, LANG, 24, seed=3, progress=False)
    written = metrics_json(cfg.out / "runs" / f"{LANG}-24-s3")

    assert (cfg.out / "mlflow.db").is_file()  # the default store: SQLite in the output directory
    client = MlflowClient(tracking_uri=mlflow_uri(cfg))
    experiment = client.get_experiment_by_name("quick")  # default: the config's experiment
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == f"runs/{LANG}-24-s3" and run.info.status == "FINISHED"
    params = run.data.params
    assert (params["kind"], params["language"], params["n_pairs"], params["seed"]) == ("proxy", LANG, "24", "3")
    assert params["train.batch_size"] == "4" and params["model.hidden_size"] == "32"
    assert float(params["train.learning_rate"]) == cfg.train.learning_rate

    history = client.get_metric_history(run.info.run_id, "train/loss")
    losses = written["train"]["losses"]
    assert len(losses) == written["steps"] == 6  # 24 pairs in batches of 4, one epoch
    assert [m.step for m in sorted(history, key=lambda m: m.step)] == list(range(6))
    assert [m.value for m in sorted(history, key=lambda m: m.step)] == losses
    final = {k: v for k, v in run.data.metrics.items() if k != "train/loss" and not k.startswith("time/")}
    assert final == written["metrics"] == result.metrics and set(final) == {"loss", "loss_se", "bpb", "bpb_se"}
    assert run.data.metrics["time/train_seconds"] == written["train_seconds"]
    assert run.data.metrics["time/steps"] == 6


def test_tensorboard_event_files_hold_a_final_runs_losses_and_every_languages_scores(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from trainers.data import load_language
    from trainers.muit import RESULT_FILE, train_mixture

    cfg = tiny_cfg(tmp_path, backend="tensorboard")
    run_dir = cfg.out / "final" / "plan" / "s0"
    train_mixture(cfg, {LANG: load_language(cfg.data, LANG)}, {LANG: 12}, 0, run_dir, progress=False)
    written = json.loads((run_dir / RESULT_FILE).read_text(encoding="utf-8"))

    events = EventAccumulator(str(cfg.out / "tensorboard" / "final" / "plan" / "s0")).Reload()
    steps = events.Scalars("train/loss")
    assert [e.step for e in steps] == list(range(written["steps"])) and written["steps"] == 3
    assert all(math.isfinite(e.value) and e.value > 0 for e in steps)
    for metric, value in written["metrics"][LANG].items():  # generated scores too: a final run translates
        (event,) = events.Scalars(f"{LANG}/{metric}")
        assert event.value == pytest.approx(value, rel=1e-6)  # event files keep float32
    assert {"chrf", "bleu", "bpb"} <= set(written["metrics"][LANG])
    (text,) = events.Tensors("params/text_summary")  # the parameters, as text and for the HParams dashboard
    assert b"pairs.el: 12" in text.tensor_proto.string_val[0] and "_hparams_/experiment" in events.summary_metadata


def test_a_failing_backend_warns_and_the_run_is_still_written(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n", encoding="utf-8")
    cfg = tiny_cfg(tmp_path, backend="mlflow", uri=f"sqlite:///{(blocker / 'mlflow.db').as_posix()}")
    with pytest.warns(RuntimeWarning, match=rf"runs/{LANG}-8-s0 was not reported to mlflow"):
        result = train_one(cfg, LANG, 8, seed=0, progress=False)
    assert metrics_json(cfg.out / "runs" / f"{LANG}-8-s0")["metrics"] == result.metrics


def test_a_missing_library_is_a_user_error_before_training(tmp_path, monkeypatch):
    import trainers.tracking as tracking

    monkeypatch.setitem(tracking._LIBRARIES, "mlflow", ("no_such_tracking_library", "pip install mlflow-skinny"))
    cfg = tiny_cfg(tmp_path, backend="mlflow")
    with pytest.raises(UserError, match="no_such_tracking_library library is not installed") as err:
        train_one(cfg, LANG, 8, seed=0, progress=False)
    assert "pip install mlflow-skinny" in err.value.fix
    assert not (cfg.out / "runs").exists()  # nothing trained, nothing written


def test_tracking_never_changes_a_runs_identity_or_a_stage_fingerprint(tmp_path):
    from planner.pipeline import build_stages
    from planner.sweep.identity import run_config_hash
    from trainers.muit import mixture_identity

    plain = tiny_cfg(tmp_path)
    tracked = [tiny_cfg(tmp_path, backend="mlflow", uri="sqlite:///x.db", project="p"),
               tiny_cfg(tmp_path, backend="wandb", dir="w", mode="online")]
    for cfg in tracked:
        assert run_config_hash(cfg) == run_config_hash(plain)
        assert mixture_identity(cfg, {LANG: 5}, 0) == mixture_identity(plain, {LANG: 5}, 0)
        stages = build_stages(cfg, progress=False)
        assert [s.fingerprint() for s in stages] == [s.fingerprint() for s in build_stages(plain, progress=False)]


@pytest.mark.parametrize("tracking, message", [
    ({"backend": "tensorboard", "uri": "sqlite:///m.db"}, "tracking.uri is MLflow's tracking URI"),
    ({"backend": "mlflow", "dir": "logs"}, "MLflow takes tracking.uri"),
    ({"backend": "mlflow", "mode": "online"}, "tracking.mode is W&B's"),
    ({"backend": "comet"}, "tracking.backend"),
])
def test_settings_another_backend_ignores_are_refused(tmp_path, tracking, message):
    with pytest.raises(UserError, match=message):
        tiny_cfg(tmp_path, **tracking)


def test_a_resolved_config_with_tracking_loads_back_unchanged(tmp_path):
    from core.config import read_resolved, write_resolved

    for tracking in ({}, {"backend": "wandb", "mode": "online", "dir": "w"}, {"backend": "mlflow", "uri": "sqlite:///m.db"}):
        cfg = tiny_cfg(tmp_path, **tracking)
        write_resolved(cfg, tmp_path)
        assert read_resolved(tmp_path) == cfg


def wandb_records(path) -> list:
    """The protobuf records of an offline W&B run file: a 7-byte ':W&B' header, then LevelDB's log format
    (32 KiB blocks; each chunk: checksum, little-endian length, type 1 full / 2 first / 3 middle / 4 last)."""
    from wandb.proto import wandb_internal_pb2

    data, block = path.read_bytes(), 32768
    assert data[:4] == b":W&B"
    pos, pending, records = 7, b"", []
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        pending += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def test_an_offline_wandb_run_holds_the_config_losses_and_scores(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)  # offline needs no account
    monkeypatch.delenv("WANDB_MODE", raising=False)
    cfg = tiny_cfg(tmp_path, backend="wandb")
    result = train_one(cfg, LANG, 12, seed=1, progress=False)
    (run_file,) = (cfg.out / "wandb").glob("wandb/offline-run-*/run-*.wandb")
    records = wandb_records(run_file)

    (run,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert run.display_name == f"runs/{LANG}-12-s1" and run.project == "quick"
    config = {item.key: json.loads(item.value_json) for item in run.config.update}
    assert (config["language"], config["n_pairs"], config["seed"]) == (LANG, 12, 1)
    history = [{(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in r.history.item}
               for r in records if r.WhichOneof("record_type") == "history"]
    losses = [h["train/loss"] for h in history if "train/loss" in h]
    assert losses == pytest.approx(result.train["losses"]) and len(losses) == result.steps == 3
    summary = {}
    for r in records:
        if r.WhichOneof("record_type") == "summary":
            summary.update({(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in r.summary.update})
    assert {k: summary[k] for k in result.metrics} == pytest.approx(result.metrics)


CREATE_STORE = """
import sys
from trainers.tracking import _mlflow_client
client = _mlflow_client(sys.argv[1])
print(len(client.search_experiments()))
"""


@pytest.mark.slow
def test_processes_opening_a_new_sqlite_store_together_all_succeed(tmp_path):
    """Sweep workers reporting their first runs at once: without the lock one of them fails creating the
    store's tables (a duplicate column) and its run goes unreported."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    uri = f"sqlite:///{(tmp_path / 'mlflow.db').as_posix()}"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    procs = [subprocess.Popen([sys.executable, "-c", CREATE_STORE, uri], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outcomes = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err[-2000:] for _, err in outcomes]
    assert [out.strip() for out, _ in outcomes] == ["1", "1", "1"]  # the Default experiment, once
