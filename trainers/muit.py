"""The final multilingual instruction-tuning (MuIT) run: one model on the allocated mixture.

Same example builder, training loop and evaluation as the proxy runs (`trainers.coit`), so predicted
and achieved scores are measured with one instrument. The only difference is the data: every language's
allocated pairs together, trained for the same number of epochs over the mixture as a proxy run trains
over its pairs (`final.epochs`, default `train.epochs`), so each pair is seen as often as in the sweep.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from core.config import proxy_generates
from core.files import atomic_write_text
from trainers.mixture import take_pairs

if TYPE_CHECKING:
    from core.config import PlannerConfig
    from trainers.data import LanguageData


@dataclass
class MixtureResult:
    name: str
    counts: dict[str, int]  # translation pairs per language actually trained on (with repeats)
    metrics: dict[str, dict[str, float]]  # language -> loss/bpb (+ chrf/bleu when generated) on its test split
    train_seconds: float
    eval_seconds: float
    steps: int
    examples: int
    run_dir: str
    train: dict = field(default_factory=dict)
    identity: str = ""  # the launcher's fingerprint of what the result depends on (reuse only if equal)
    signatures: dict[str, dict[str, str]] = field(default_factory=dict)  # language -> sacreBLEU's, per metric
    base_model: dict = field(default_factory=dict)  # the base model's identity (a Hub id's resolved commit)


RESULT_FILE = "metrics.json"
CHECKPOINT_FILE = "checkpoint.pt"  # mid-training state of an unfinished run (trainers.resume)


def load_mixture_result(run_dir: str | Path) -> "MixtureResult | None":
    """The result a finished run wrote (its metrics.json is written last), or None."""
    path = Path(run_dir) / RESULT_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return MixtureResult(**data)
    except (ValueError, TypeError):
        return None  # unreadable or from another version: train again


def mixture_identity(cfg: "PlannerConfig", pairs: Mapping[str, int], seed: int, **extra) -> str:
    """What a mixture run's result depends on: the data/model/train/align settings (`core.config.run_settings`),
    the mixture, the seed and `extra` (e.g. the final run's epochs). A saved result is reused only under the
    same identity."""
    import hashlib

    from core.config import run_settings

    body = {"settings": run_settings(cfg), "pairs": dict(sorted(pairs.items())), "seed": seed, **extra}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:16]


def saved_or_trained(cfg: "PlannerConfig", datasets: Mapping[str, "LanguageData"], pairs: Mapping[str, int],
                     seed: int, run_dir: Path, name: str, identity: str, progress: bool = True, train: bool = True,
                     epochs: float | None = None, generate: bool = True) -> "MixtureResult | None":
    """The run's saved result when it finished under `identity`, else (with `train`) trained now, resuming
    from its checkpoint if it has one. None when not finished and not trained, and on non-main processes."""
    result = load_mixture_result(run_dir)
    if result is not None and result.identity == identity:
        return result
    if not train:
        return None
    return train_mixture(cfg, datasets, pairs, seed, run_dir, name=name, progress=progress, identity=identity,
                         epochs=epochs, generate=generate)


def mixture_pairs(datasets: Mapping[str, "LanguageData"], pairs: Mapping[str, int], max_epochs: float) -> dict[str, list]:
    """The exact training pairs of each language for an allocation (see `take_pairs`)."""
    return {lang: take_pairs(datasets[lang].train, int(n), max_epochs, lang) for lang, n in pairs.items()}


def train_mixture(
    cfg: "PlannerConfig",
    datasets: Mapping[str, "LanguageData"],
    pairs: Mapping[str, int],
    seed: int,
    run_dir: Path,
    name: str = "plan",
    progress: bool = True,
    identity: str = "",
    epochs: float | None = None,
    generate: bool = True,
) -> MixtureResult | None:
    """Train one model on the mixture and evaluate every language (held-out loss and bits per byte on its
    whole test split; with `generate`, also translations: always in a final run). Every process of a
    multi-process launch trains and evaluates; rank 0 writes the result, the others get None. `epochs`: default the final run's (`final.epochs`, else `train.epochs`)."""
    from trainers.align import alignment_loss
    from trainers.coit import eval_pairs, language_examples
    from trainers.evaluate import run_evaluation
    from trainers.model import build_model, load_tokenizer, model_provenance, set_threads
    from trainers.resume import remove as remove_checkpoint
    from trainers.train import is_main_process, train_model, wait_for_everyone
    from trainers.tracking import mixture_record, require_backend, track

    require_backend(cfg)  # a missing tracking library fails now, not after training
    set_threads(cfg.model)
    chosen = mixture_pairs(datasets, pairs, cfg.budget.max_epochs)
    examples = []
    for lang, lang_pairs in chosen.items():
        if lang_pairs:
            examples += language_examples(cfg, datasets[lang], lang_pairs, seed)
    tokenizer = load_tokenizer(cfg)
    model = build_model(cfg, tokenizer, seed)
    stats = train_model(
        cfg, model, tokenizer, examples, seed,
        epochs=epochs or cfg.final.epochs or cfg.train.epochs,
        progress=progress,
        extra_loss=alignment_loss(cfg, tokenizer),
        description=f"{name} ({sum(len(p) for p in chosen.values()):,} pairs)",
        checkpoint=Path(run_dir) / CHECKPOINT_FILE, checkpoint_key=identity or name,
        checkpoint_every=cfg.final.checkpoint_steps, sharding=cfg.final.sharding,
    )
    # Under a multi-process launch every process evaluates — a sharded model (final.sharding) needs them
    # all in each forward pass, and otherwise they would only wait — and rank 0 writes. The others then
    # wait for its files at a barrier (within final.barrier_timeout_minutes), so that no process starts
    # the next run, or reads this one's result, before rank 0 has finished this one.
    metrics, signatures, eval_seconds = {}, {}, 0.0
    for lang in chosen:
        evaluation = run_evaluation(cfg, model, tokenizer, datasets[lang], eval_pairs(cfg, datasets[lang]),
                                    loss_pairs=datasets[lang].test, generate=generate)
        metrics[lang] = evaluation.metrics
        signatures[lang] = evaluation.signatures
        eval_seconds += evaluation.seconds
    if not is_main_process():
        wait_for_everyone()
        return None
    result = MixtureResult(
        name=name,
        counts={lang: len(p) for lang, p in chosen.items()},
        metrics=metrics,
        train_seconds=stats.seconds,
        eval_seconds=eval_seconds,
        steps=stats.steps,
        examples=stats.examples,
        run_dir=str(run_dir),
        train={k: v for k, v in asdict(stats).items() if k not in {"losses", "extra_losses"}},
        identity=identity,
        signatures=signatures,
        base_model=model_provenance(cfg.model),
    )
    atomic_write_text(Path(run_dir) / RESULT_FILE, json.dumps(asdict(result), indent=2) + "\n")
    remove_checkpoint(Path(run_dir) / CHECKPOINT_FILE)  # only now: a kill during evaluation resumes at the end
    wait_for_everyone()  # the other processes may go on: the result is on disk
    track(cfg, mixture_record(cfg, result, stats, seed))  # after the files: a tracking failure only warns
    return result


@dataclass
class MixtureProxyResult:
    """A mixture proxy run as the sweep records it (`planner.sweep.worker`): per-language scores and tokens."""

    metrics: dict[str, dict[str, float]]  # language -> its scores inside the mixture
    n_tokens: dict[str, int]  # language -> tokens of its pairs, one epoch (as a proxy run counts them)
    train_seconds: float
    eval_seconds: float
    steps: int
    run_dir: str


def train_mixture_proxy(
    cfg: "PlannerConfig", pairs: Mapping[str, int], seed: int, run_dir: Path | None = None, progress: bool = True,
) -> MixtureProxyResult:
    """One mixture proxy run (`sweep.mixtures`): one model on `pairs` per language, trained exactly like a
    per-language proxy run (`train.epochs` over its pairs, the same prefix of each pool), every language
    scored on its test split. What the sweep compares with the languages' own curves to measure transfer.
    A killed run resumes from its checkpoint (same identity) when the sweep retries it."""
    from trainers.coit import pair_tokens
    from trainers.data import load_languages
    from trainers.model import load_tokenizer

    run_dir = Path(run_dir) if run_dir is not None else cfg.out / "mixture_runs" / f"mixture-s{seed}"
    datasets = load_languages(cfg.data, list(pairs))
    result = saved_or_trained(cfg, datasets, pairs, seed, run_dir, f"mixture proxy run seed {seed}",
                              mixture_identity(cfg, pairs, seed, proxy=True), progress, epochs=cfg.train.epochs,
                              generate=proxy_generates(cfg))
    tokenizer = load_tokenizer(cfg)
    chosen = mixture_pairs(datasets, pairs, cfg.budget.max_epochs)
    return MixtureProxyResult(  # a language trained with 0 pairs is scored all the same (leave-one-out)
        metrics=result.metrics, n_tokens={lang: pair_tokens(tokenizer, p) for lang, p in chosen.items()},
        train_seconds=result.train_seconds, eval_seconds=result.eval_seconds, steps=result.steps,
        run_dir=str(run_dir),
    )
