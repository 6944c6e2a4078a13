"""The toy runs of tests/test_scale_training.py, importable (one process) and runnable under
`torch.distributed.run` (several gloo processes):

- `python scale_worker.py OUT.pt '{"micro_batch_size": 2}' [none|fsdp]`: rank 0 saves the run's losses and
  its whole trained weights (gathered from the shards under FSDP);
- `python scale_worker.py RUN_DIR mixture [none|fsdp]`: one final run (`trainers.muit.train_mixture`) on the
  demo corpus, evaluated by every process; rank 0 writes RUN_DIR/metrics.json."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from core.config import PlannerConfig
from trainers.data import Pair
from trainers.model import build_model, train_tokenizer
from trainers.prompts import coit_examples
from trainers.scale import full_state_dict
from trainers.train import is_main_process, train_model

# 30 examples: the last batch of every epoch (6 rows) splits unevenly, so weighting by tokens is tested too.
PAIRS = [Pair(f"Open file number {i} {'now ' * (i % 4)}", f"Datei Nummer {i} öffnen {'jetzt ' * (i % 3)}")
         for i in range(30)]


def toy_tokenizer():
    texts = [t for p in PAIRS for t in (p.source, p.target)]
    return train_tokenizer(texts * 3, vocab_size=300)


def toy_config(train: dict | None = None, model: dict | None = None, final: dict | None = None) -> PlannerConfig:
    return PlannerConfig.model_validate({
        "model": {"hidden_size": 32, "layers": 2, "heads": 2, "context_length": 128, "threads": 1, **(model or {})},
        "train": {"epochs": 2, "batch_size": 8, "learning_rate": 0.01, "warmup_ratio": 0.0, **(train or {})},
        "final": final or {},
    })


def train_toy(cfg: PlannerConfig, tokenizer=None, sharding: str = "none"):
    """Train a fresh toy model (seed 0); returns (stats, model)."""
    tokenizer = tokenizer or toy_tokenizer()
    model = build_model(cfg, tokenizer, seed=0)
    stats = train_model(cfg, model, tokenizer, coit_examples(PAIRS, "German", seed=0), seed=0, progress=False,
                        sharding=sharding)
    return stats, model


def mixture_config(out: str, sharding: str) -> PlannerConfig:
    return PlannerConfig.model_validate({
        "output_dir": out, "languages": ["de", "es"], "data": {"source": "demo", "test_size": 12},
        "model": {"hidden_size": 32, "layers": 2, "heads": 2, "vocab_size": 400, "context_length": 64, "threads": 1},
        "train": {"epochs": 2, "batch_size": 8, "eval_size": 4, "max_new_tokens": 6, "samples": 0},
        "final": {"sharding": sharding, "barrier_timeout_minutes": 3, "checkpoint_steps": None},
    })


def train_final(run_dir: str, sharding: str):
    """One final run of 16 + 16 pairs, seed 0 (the result on rank 0, None on the others)."""
    from trainers.data import load_languages
    from trainers.muit import train_mixture

    cfg = mixture_config(run_dir, sharding)
    datasets = load_languages(cfg.data, cfg.languages)
    return train_mixture(cfg, datasets, {"de": 16, "es": 16}, seed=0, run_dir=Path(run_dir), progress=False)


def main(out: str, train: str, sharding: str) -> None:
    torch.set_num_threads(1)
    if train == "mixture":
        train_final(out, sharding)
        return
    stats, model = train_toy(toy_config(json.loads(train)), sharding=sharding)
    weights = full_state_dict(model)  # every process takes part; rank 0 gets the whole model
    if is_main_process():
        torch.save({"losses": stats.losses, "steps": stats.steps, "epochs": stats.epochs,
                    "weights": {k: v.detach().cpu() for k, v in weights.items()}}, out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "none")
