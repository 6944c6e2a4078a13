"""One CoIT proxy run: train a fresh model on the first `n_pairs` English→X pairs of one language and
evaluate it on that language's fixed test split. `n_pairs` 0 is the zero-shot point: the base model
evaluated without training (greedy decoding, so one seed of it is enough).

The sweep calls `train_one` once per (language, size, seed) grid point and records its `RunResult`.
The protocol is the config's: a fixed number of epochs over the run's examples (`train.epochs`, the demo
default), or a fixed number of optimizer steps (`train.max_steps`). Fixed epochs make the compute grow
with the data, as it does in the final run trained on an allocation, so each size is trained to a
comparable degree; fixed steps would over-train small sizes and under-train large ones.

A run directory holds `metrics.json` (the result and the training statistics), the resolved config and
`samples.jsonl` (the first few test sources with their references and the model's translations), and with
`save_model` the trained model as a checkpoint directory `model/` (what `planner align-report --run` reads).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from core.config import RESOLVED_CONFIG_NAME, proxy_generates, write_resolved
from core.errors import UserError
from core.files import atomic_write_text, check_output_dir, check_output_file

if TYPE_CHECKING:
    from core.config import PlannerConfig
    from trainers.data import LanguageData, Pair
    from trainers.prompts import Example

METRICS_FILE = "metrics.json"
SAMPLES_FILE = "samples.jsonl"
MODEL_DIR = "model"


@dataclass
class RunResult:
    language: str
    n_pairs: int
    seed: int
    metrics: dict[str, float]  # "loss", "bpb" (+ "_se"); "chrf", "bleu" ("comet") when the fit needs them
    n_tokens: int  # tokens (model tokenizer) of the run's translation pairs, one epoch: English + X text
    train_seconds: float
    eval_seconds: float
    run_dir: str
    steps: int
    samples: list[dict] = field(default_factory=list)
    train: dict = field(default_factory=dict)  # training statistics (losses, tokens, epochs, ...)
    signatures: dict[str, str] = field(default_factory=dict)  # sacreBLEU's, per generated metric
    base_model: dict = field(default_factory=dict)  # the base model's identity (a Hub id's resolved commit)

    def row(self) -> dict:
        """A flat record for a runs table (`runs.csv` columns)."""
        return {
            "language": self.language,
            "n_pairs": self.n_pairs,
            "seed": self.seed,
            **self.metrics,
            "n_tokens": self.n_tokens,
            "train_seconds": self.train_seconds,
            "eval_seconds": self.eval_seconds,
            "steps": self.steps,
            "run_dir": self.run_dir,
        }


def default_run_dir(cfg: "PlannerConfig", language: str, n_pairs: int, seed: int) -> Path:
    """`<output_dir>/runs/<lang>-<pairs>-s<seed>`: the same directory whether the sweep or train-one runs it."""
    return cfg.out / "runs" / f"{language}-{n_pairs}-s{seed}"


def pair_tokens(tokenizer, pairs) -> int:
    """Tokens of the pairs' text, both sides, without special tokens or prompt: the data a budget buys."""
    if not pairs:
        return 0
    texts = [p.source for p in pairs] + [p.target for p in pairs]
    return sum(len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"])


def language_examples(cfg: "PlannerConfig", lang: "LanguageData", pairs: Sequence["Pair"], seed: int) -> list["Example"]:
    """A language's training examples as the config asks: its translation pairs as CoIT examples, plus
    the optional reverse, cross-lingual and general-task examples (also used by the final mixed run)."""
    from trainers.prompts import coit_examples, load_general_tasks

    general = []
    if cfg.data.general_dir and cfg.data.general_ratio > 0:
        general = load_general_tasks(cfg.data.general_dir, lang.language)
    return coit_examples(
        pairs,
        lang.name,
        seed,
        reverse=cfg.train.reverse_direction,
        general=general,
        general_ratio=cfg.data.general_ratio,
        answer_in_language=cfg.train.cross_lingual_instructions,
    )


def eval_pairs(cfg: "PlannerConfig", lang: "LanguageData") -> list:
    """The test pairs every run of this language translates for its generated metrics (the first
    `train.eval_size`, or all): one definition, so the final run's achieved scores are measured on exactly
    the sweep's pairs. Held-out loss and bits per byte are scored on the whole test split (cheap: no
    decoding), so their sampling error is small."""
    return lang.test[: cfg.train.eval_size] if cfg.train.eval_size else lang.test


def train_one(
    cfg: "PlannerConfig",
    language: str,
    n_pairs: int,
    seed: int,
    run_dir: Path | None = None,
    progress: bool = True,
    save_model: bool = False,
) -> RunResult:
    """Train and evaluate one proxy run; writes its run directory and returns the result."""
    from trainers import data
    from trainers.align import alignment_loss
    from trainers.evaluate import run_evaluation
    from trainers.model import build_model, load_tokenizer, model_provenance, save_checkpoint, set_threads
    from trainers.train import is_main_process, train_model, zero_shot_stats
    from trainers.tracking import proxy_record, require_backend, track

    if n_pairs < 0:
        raise UserError(
            f"A proxy run needs a non-negative number of pairs (got {n_pairs}).",
            "Pass --pairs 0 for the zero-shot point (evaluation only) or a positive number.",
        )
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(cfg, language, n_pairs, seed)
    check_output_dir(run_dir, "The run directory")  # before training, not when the result is written
    for name in (METRICS_FILE, SAMPLES_FILE, RESOLVED_CONFIG_NAME):
        check_output_file(run_dir / name, "The run's output file")
    if save_model:  # a file there would make save_pretrained skip the model with only a log line
        check_output_dir(run_dir / MODEL_DIR, "The saved model's directory (--save-model)")
    require_backend(cfg)  # a missing tracking library fails now, not after training
    set_threads(cfg.model)
    lang = data.load_language(cfg.data, language)
    pairs = lang.prefix(n_pairs)
    tokenizer = load_tokenizer(cfg)
    model = build_model(cfg, tokenizer, seed)
    if n_pairs == 0:
        # The zero-shot point of a pretrained model's curve: the untouched base model (LoRA adapters start
        # as an exact zero update), evaluated exactly like a trained run. No optimizer is ever built.
        stats = zero_shot_stats()
    else:
        stats = train_model(
            cfg, model, tokenizer, language_examples(cfg, lang, pairs, seed), seed, progress=progress,
            extra_loss=alignment_loss(cfg, tokenizer),  # None unless train.objective is coit+align
            description=f"{language} {n_pairs} pairs seed {seed}",
        )

    evaluation = run_evaluation(cfg, model, tokenizer, lang, eval_pairs(cfg, lang), loss_pairs=lang.test,
                                generate=proxy_generates(cfg))

    train_stats = asdict(stats)
    train_stats["tokens_per_second"] = stats.tokens_per_second
    result = RunResult(
        language=language,
        n_pairs=n_pairs,
        seed=seed,
        metrics=evaluation.metrics,
        n_tokens=pair_tokens(tokenizer, pairs),
        train_seconds=stats.seconds,
        eval_seconds=evaluation.seconds,
        run_dir=str(run_dir),
        steps=stats.steps,
        samples=evaluation.samples(cfg.train.samples),
        train=train_stats,
        signatures=evaluation.signatures,
        base_model=model_provenance(cfg.model),
    )
    if is_main_process():  # under a multi-process launch every process evaluates; one writes
        write_run(cfg, result)
        track(cfg, proxy_record(cfg, result))  # after the files: a tracking failure only warns
        if save_model:
            save_checkpoint(model, tokenizer, run_dir / MODEL_DIR)
    return result


def write_run(cfg: "PlannerConfig", result: RunResult) -> Path:
    """metrics.json (everything but the samples), samples.jsonl and the resolved config."""
    directory = Path(result.run_dir)
    directory.mkdir(parents=True, exist_ok=True)
    write_resolved(cfg, directory)
    body = {k: v for k, v in asdict(result).items() if k != "samples"}
    atomic_write_text(directory / METRICS_FILE, json.dumps(body, indent=2, ensure_ascii=False) + "\n")
    lines = "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in result.samples)
    atomic_write_text(directory / SAMPLES_FILE, lines)
    return directory

