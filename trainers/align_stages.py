"""The models an alignment analysis compares, and the analysis of each (`planner align-report`).

A `Stage` is one model to analyse, loaded only when its turn comes: a run directory's initial and trained
models (`read_run`, `run_stages`), saved checkpoints (`checkpoint_stage`), or the same proxy run trained
with and without the contrastive term (`compare_objectives`). The measurements themselves are
`trainers.align`'s.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import torch

from core.errors import UserError
from trainers.align import (
    AFTER,
    ALIGN_OBJECTIVE,
    BEFORE,
    AlignmentRow,
    Pooling,
    alignment_rows,
    distinct_pairs,
    resolve_layer,
)

if TYPE_CHECKING:
    from core.config import PlannerConfig


ModelLoader = Callable[[], tuple[torch.nn.Module, Any]]


@dataclass(frozen=True)
class Stage:
    """One model to analyse: `name` is the `stage` column, `source` says where the model comes from
    (recorded in alignment.json), `load` returns (model, tokenizer) when the stage's turn comes, so only
    one model is in memory at a time."""

    name: str
    source: str
    load: ModelLoader


def _checkpoint_config(cfg: "PlannerConfig", path: Path) -> "PlannerConfig":
    # A saved checkpoint is a whole model (LoRA merged in by save_checkpoint), loaded without adapters.
    model = cfg.model.model_copy(update={"name": str(path), "lora": None})
    return cfg.model_copy(update={"model": model})


def require_checkpoint(path: str | Path, what: str) -> Path:
    p = Path(path).expanduser()
    if not (p / "config.json").is_file():
        raise UserError(
            f"{what} {p} is not a Hugging Face checkpoint directory (no config.json there).",
            "Point it at a directory written by save_pretrained, e.g. RUN_DIR/model from "
            "`planner train-one --save-model`.",
        )
    return p


def checkpoint_stage(cfg: "PlannerConfig", name: str, path: str | Path) -> Stage:
    """A saved model and its own tokenizer."""
    ck = _checkpoint_config(cfg, Path(path))

    def load():
        from trainers.model import build_model, load_tokenizer

        tokenizer = load_tokenizer(ck)
        return build_model(ck, tokenizer, seed=0), tokenizer

    return Stage(name, str(path), load)


def initial_stage(cfg: "PlannerConfig", seed: int, tokenizer_dir: str | Path, name: str = BEFORE) -> Stage:
    """The model a run starts from, `build_model(cfg, tokenizer, seed)` with the run's seed (the freshly
    initialised `tiny` model, or the base checkpoint with fresh adapters), and the run's tokenizer as
    saved beside its trained model (so a `tiny` tokenizer is never retrained for the analysis)."""
    ck = _checkpoint_config(cfg, Path(tokenizer_dir))

    def load():
        from trainers.model import build_model, load_tokenizer

        tokenizer = load_tokenizer(ck)
        return build_model(cfg, tokenizer, seed), tokenizer

    source = f"initial model ({cfg.model.name}, seed {seed})"
    return Stage(name, source, load)


def analysis_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def analyse_stages(
    cfg: "PlannerConfig", language: str, stages: Sequence[Stage], test_pairs: int | None = None,
    pooling: Pooling | None = None,
) -> tuple[list[AlignmentRow], int]:
    """Alignment rows of every stage's model on `language`'s held-out test split (its first
    `test_pairs` pairs when given), pooled as `pooling` (default `align.pooling`), and the number of
    distinct test pairs they were measured on."""
    from trainers import data

    pairs = data.load_language(cfg.data, language).test
    pairs = distinct_pairs(pairs[:test_pairs] if test_pairs else pairs)
    device = analysis_device()
    rows: list[AlignmentRow] = []
    for stage in stages:
        model, tokenizer = stage.load()
        model.to(device)
        rows += alignment_rows(
            model, tokenizer, pairs, language, stage.name, pooling or cfg.align.pooling,
            cfg.model.context_length, cfg.train.eval_batch_size, cfg.model.precision,
        )
        del model
    return rows, len(pairs)


def summary(rows: Sequence[AlignmentRow], layer: int) -> str:
    """A plain-text table of each stage and language at the aligned layer (`align.layer`)."""
    groups: dict[tuple[str, str], list[AlignmentRow]] = {}
    for r in rows:
        groups.setdefault((r.stage, r.language), []).append(r)
    header = f"{'stage':<18} {'language':<8} {'layer':>5} {'cos true':>9} {'cos random':>10} {'en→x':>6} {'x→en':>6}"
    lines = [header]
    for (stage, language), group in groups.items():
        index = resolve_layer(layer, max(r.layer for r in group))
        r = next(r for r in group if r.layer == index)
        lines.append(f"{stage:<18} {language:<8} {r.layer:>5} {r.cos_true:>9.3f} {r.cos_random:>10.3f} "
                     f"{r.retrieval_en_x:>6.2f} {r.retrieval_x_en:>6.2f}")
    return "\n".join(lines)


@dataclass(frozen=True)
class RunInfo:
    """What `planner align-report --run` needs from a run directory written by `train_one`."""

    cfg: "PlannerConfig"
    language: str
    seed: int
    model_dir: Path


def read_run(run_dir: str | Path) -> RunInfo:
    from core.config import read_resolved
    from trainers.coit import METRICS_FILE, MODEL_DIR

    d = Path(run_dir).expanduser()
    if not d.is_dir():
        raise UserError(f"--run {d} is not a directory.", "Pass a run directory written by `planner train-one`.")
    cfg = read_resolved(d)
    metrics_path = d / METRICS_FILE
    try:
        metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
        language, seed = str(metrics["language"]), int(metrics["seed"])
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(
            f"{metrics_path} is missing or does not name the run's language and seed.",
            "Point --run at a finished run directory written by `planner train-one`.",
        ) from None
    model_dir = d / MODEL_DIR
    if not (model_dir / "config.json").is_file():
        raise UserError(
            f"Run directory {d} holds no trained model ({MODEL_DIR}/ is missing), so there is nothing to analyse.",
            f"Train it again with `planner train-one --language {language} --pairs N --seed {seed} --out {d} "
            "--save-model`, or pass a checkpoint with --model.",
        )
    return RunInfo(cfg, language, seed, model_dir)


def run_stages(run: RunInfo) -> list[Stage]:
    """`before`: the run's initial model; `after`: its trained model."""
    return [initial_stage(run.cfg, run.seed, run.model_dir), checkpoint_stage(run.cfg, AFTER, run.model_dir)]


def with_objective(cfg: "PlannerConfig", objective: str) -> "PlannerConfig":
    return cfg.model_copy(update={"train": cfg.train.model_copy(update={"objective": objective})})


def compare_objectives(
    cfg: "PlannerConfig", language: str, n_pairs: int, seed: int, out: str | Path, progress: bool = True
) -> list[Stage]:
    """Train the same proxy run (language, pairs, seed) with `train.objective` coit and coit+align into
    OUT/align-compare/ (models saved) and return the stages to analyse: `before` (the shared initial
    model), `after:coit` and `after:coit+align`."""
    from trainers.coit import MODEL_DIR, train_one

    if cfg.align.weight == 0:
        raise UserError(
            "align.weight is 0, so training with objective coit+align would be the same as coit.",
            "Set align.weight to a positive value to compare the objectives.",
        )
    model_dirs = {}
    for objective in ("coit", ALIGN_OBJECTIVE):
        run_dir = Path(out) / "align-compare" / f"{language}_{n_pairs}_seed{seed}_{objective}"
        train_one(with_objective(cfg, objective), language, n_pairs, seed, run_dir=run_dir, progress=progress,
                  save_model=True)
        model_dirs[objective] = run_dir / MODEL_DIR
    return [initial_stage(cfg, seed, model_dirs["coit"])] + [
        checkpoint_stage(cfg, f"{AFTER}:{objective}", path) for objective, path in model_dirs.items()
    ]
