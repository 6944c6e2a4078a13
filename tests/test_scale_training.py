"""Training at 7B scale with the proxy recipe intact (trainers.scale): a global batch split into processes ×
micro-batches takes the one-process full-batch step; gradient checkpointing changes no loss; FSDP2 sharding
over gloo processes trains the same model; the number of steps does not depend on the number of processes.
The toy runs are real (a 2-layer Llama, a BPE tokenizer, AdamW); the multi-process ones are slow."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from core.config import PlannerConfig
from core.errors import UserError
from scale_worker import toy_config, toy_tokenizer, train_toy
from trainers.model import base_dtype, build_model, quantization_kwargs
from trainers.scale import Layout, batch_layout, micro_batches, shard
from trainers.train import steps_for

torch.set_num_threads(1)
HERE = Path(__file__).resolve().parent
LORA = {"lora": {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}}


@pytest.fixture(scope="module")
def tokenizer():
    return toy_tokenizer()


@pytest.fixture(scope="module")
def full_batch(tokenizer):
    """The reference: one process, the whole batch of 8 in one pass."""
    return train_toy(toy_config(), tokenizer)


def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_a_global_batch_splits_over_processes_and_micro_batches():
    assert batch_layout(16, 1, None) == Layout(1, 1, 16)  # the default: no accumulation
    assert batch_layout(16, 2, 4) == Layout(2, 2, 4) and batch_layout(16, 4, None) == Layout(4, 1, 4)
    rows = list(range(100, 116))
    layout = batch_layout(16, 2, 4)
    ranks = [micro_batches(rows, layout, r) for r in range(2)]
    assert ranks[0] == [rows[0:4], rows[8:12]] and ranks[1] == [rows[4:8], rows[12:16]]
    # a short last batch of an epoch: near-equal parts, every row exactly once, a process may get none
    for n in (5, 3, 1):
        parts = [micro_batches(rows[:n], layout, r) for r in range(2)]
        assert all(len(p) == layout.accumulation for p in parts)
        flat = sorted(x for p in parts for mb in p for x in mb)
        assert flat == rows[:n] and max(len(mb) for p in parts for mb in p) <= -(-n // 4)
    assert micro_batches(rows[:3], layout, 1)[1] == []


@pytest.mark.parametrize("batch, world, micro, says", [(8, 3, None, "3 processes"), (8, 1, 3, "micro_batch_size"),
                                                       (2, 4, None, "multiple of 4"), (16, 2, 3, "divisor of 8")])
def test_a_batch_that_does_not_split_is_refused(batch, world, micro, says):
    with pytest.raises(UserError, match=says):
        batch_layout(batch, world, micro)


def test_the_step_count_depends_on_the_global_batch_only(tokenizer, full_batch):
    assert steps_for(100, 16, 2.5, None) == 18 and steps_for(100, 16, 10, 7) == 7
    assert "processes" not in steps_for.__code__.co_varnames
    with pytest.raises(UserError, match="micro_batch_size"):  # refused before any training
        train_toy(toy_config({"micro_batch_size": 3}), tokenizer)
    stats, _ = full_batch
    assert stats.steps == 2 * 4 and stats.epochs == pytest.approx(2.0)  # 30 examples, batches of 8, 2 epochs


def test_accumulated_micro_batches_take_the_full_batch_step(tokenizer, full_batch):
    """Batch 8 in one pass vs 4 micro-batches of 2 accumulated. Each epoch's last batch has 6 rows (parts
    of 2, 2, 1, 1 rows): averaging each micro-batch's loss instead of weighting it by response tokens
    would give another gradient there."""
    stats, model = full_batch
    again, model_again = train_toy(toy_config(), tokenizer)
    assert again.losses == stats.losses  # the default path is deterministic, bit for bit
    assert all(torch.equal(a, b) for a, b in zip(_weights(model).values(), _weights(model_again).values()))
    micro, micro_model = train_toy(toy_config({"micro_batch_size": 2}), tokenizer)
    assert micro.steps == stats.steps and micro.response_tokens == stats.response_tokens
    np.testing.assert_allclose(micro.losses, stats.losses, rtol=0, atol=1e-5)
    assert stats.losses[-1] < stats.losses[0] - 1.0  # it trained: the comparison is not between two idle models
    ref = _weights(model)
    for name, value in _weights(micro_model).items():
        torch.testing.assert_close(value, ref[name], rtol=0, atol=2e-5)


def _saved_activations(model, tokenizer) -> int:
    """Tensors autograd keeps for the backward pass of one training forward (what checkpointing saves)."""
    count = [0]

    def pack(t):
        count[0] += 1
        return t

    ids = torch.tensor([tokenizer("Datei Nummer 3 öffnen")["input_ids"]])
    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(input_ids=ids, use_cache=False).logits.sum().backward()
    return count[0]


@pytest.mark.parametrize("extra", [{}, LORA], ids=["full", "lora"])
def test_gradient_checkpointing_keeps_fewer_activations_and_changes_no_loss(tokenizer, extra):
    plain, plain_model = train_toy(toy_config(model=extra), tokenizer)
    checked, checked_model = train_toy(toy_config({"gradient_checkpointing": True}, model=extra), tokenizer)
    np.testing.assert_allclose(checked.losses, plain.losses, rtol=0, atol=1e-6)
    kept, recomputed = _saved_activations(plain_model, tokenizer), _saved_activations(checked_model, tokenizer)
    assert recomputed < kept / 2, (recomputed, kept)  # the layers' activations are recomputed, not kept


def test_qlora_and_sharding_refuse_what_cannot_run(tokenizer):
    with pytest.raises(ValueError, match="set model.lora"):
        toy_config(model={"quantization": "4bit"})
    cfg = toy_config(model={"quantization": "4bit", **LORA})
    with pytest.raises(UserError, match="tiny"):
        build_model(cfg, tokenizer, seed=0)
    with pytest.raises(UserError, match="CUDA GPU"):
        quantization_kwargs(cfg.model, torch.device("cpu"))
    assert quantization_kwargs(toy_config().model, torch.device("cpu")) == {}
    with pytest.raises(UserError, match="model.lora is set"):  # FSDP shards full fine-tuning only
        shard(build_model(toy_config(model=LORA), tokenizer, seed=0), torch.device("cpu"))
    with pytest.raises(ValueError):
        PlannerConfig.model_validate({"final": {"sharding": "zero3"}})


def test_a_lora_base_is_loaded_in_bf16_only_where_it_pays():
    cpu = torch.device("cpu")
    assert base_dtype(toy_config(model=LORA).model, cpu) == torch.float32  # CPU, fp32: never emulated bf16
    assert base_dtype(toy_config(model={**LORA, "precision": "bf16"}).model, cpu) == torch.bfloat16
    assert base_dtype(toy_config(model={"precision": "bf16"}).model, cpu) == torch.float32  # fp32 master weights


def _launch(tmp_path: Path, name: str, train: str, sharding: str) -> dict:
    out = tmp_path / f"{name}.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent)])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", str(HERE / "scale_worker.py"),
           str(out), train, sharding]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    return torch.load(out, weights_only=True)


@pytest.mark.slow
@pytest.mark.parametrize("sharding", ["none", "fsdp"])
def test_two_gloo_processes_train_the_one_process_model(tmp_path, full_batch, sharding):
    """2 processes × micro-batches of 2 × 2 accumulation steps (DDP), and the same sharded with FSDP2:
    the same steps, loss curve and weights as one process taking the batch of 8 in one pass."""
    stats, model = full_batch
    run = _launch(tmp_path, sharding, '{"micro_batch_size": 2}', sharding)
    assert run["steps"] == stats.steps and run["epochs"] == pytest.approx(stats.epochs)
    np.testing.assert_allclose(run["losses"], stats.losses, rtol=0, atol=1e-5)
    ref = _weights(model)
    assert set(run["weights"]) == set(ref)  # FSDP: the full state dict gathered on rank 0
    for name, value in run["weights"].items():
        torch.testing.assert_close(value, ref[name], rtol=0, atol=2e-5)


@pytest.mark.slow
def test_a_sharded_final_run_is_evaluated_by_every_process(tmp_path, monkeypatch):
    """A final run under 2 gloo processes with FSDP: every process evaluates (the sharded model needs all of
    them in each forward pass, generation included), rank 0 writes, the other waits at the barrier (3-minute
    timeout: a process left alone fails the test instead of hanging it). Same scores as one process."""
    from scale_worker import train_final
    from trainers.muit import load_mixture_result

    monkeypatch.setenv("PLANNER_CACHE_DIR", str(tmp_path / "cache"))
    single = train_final(str(tmp_path / "single"), "none")  # also trains the shared tokenizer once
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent)])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", str(HERE / "scale_worker.py"),
           str(tmp_path / "fsdp"), "mixture", "fsdp"]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=500)
    assert result.returncode == 0, result.stderr[-3000:]
    sharded = load_mixture_result(tmp_path / "fsdp")
    assert sharded is not None and sharded.steps == single.steps
    for lang in ("de", "es"):
        assert sharded.metrics[lang]["loss"] == pytest.approx(single.metrics[lang]["loss"], abs=1e-3)
        assert np.isfinite(sharded.metrics[lang]["chrf"])


def test_a_launch_whose_processes_cannot_split_the_batch_is_refused_before_it_starts(tmp_path, monkeypatch):
    import planner.launch as launch

    started = []
    monkeypatch.setattr(launch, "which", lambda program: started.append(program) or program)
    cfg = PlannerConfig.model_validate({"output_dir": str(tmp_path), "train": {"batch_size": 8},
                                        "final": {"launcher": "torchrun", "num_processes": 3}})
    with pytest.raises(UserError, match="3 processes"):
        launch.run_under_launcher(cfg, tmp_path / "allocation.csv")
    assert not started and not (tmp_path / "final").exists()
