"""What the contrastive alignment term costs per training step.

Trains the demo model (the shipped demo config) on one language's first N pairs for the same number of
steps with `train.objective` coit and coit+align (same seed, same batches), and prints seconds per step
and the ratio. The term adds one forward and backward pass over the batch's bare sentences (2 per
distinct pair, no prompt), so the ratio is about 1 + (sentence tokens / example tokens).

Usage: python benchmarks/align_overhead.py [--language de] [--pairs 1000] [--steps 60] [--threads 1]
"""

from __future__ import annotations

import argparse

import torch


def step_seconds(objective: str, language: str, pairs: int, steps: int, threads: int) -> tuple[float, int]:
    from core.config import config_from_dict, load_config
    from trainers import data
    from trainers.align import alignment_loss
    from trainers.coit import language_examples
    from trainers.model import build_model, load_tokenizer, set_threads
    from trainers.train import train_model

    body = load_config(None).model_dump(mode="json")
    body["model"]["threads"] = threads
    body["train"].update(objective=objective, max_steps=steps)
    cfg = config_from_dict(body, "(benchmark)")
    set_threads(cfg.model)
    lang = data.load_language(cfg.data, language)
    examples = language_examples(cfg, lang, lang.prefix(pairs), seed=0)
    tokenizer = load_tokenizer(cfg)
    model = build_model(cfg, tokenizer, seed=0)
    warm = cfg.model_copy(update={"train": cfg.train.model_copy(update={"max_steps": 5})})
    train_model(warm, model, tokenizer, examples, seed=1, progress=False, extra_loss=alignment_loss(warm, tokenizer))
    stats = train_model(cfg, model, tokenizer, examples, seed=0, progress=False,
                        extra_loss=alignment_loss(cfg, tokenizer))
    return stats.seconds / stats.steps, stats.tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--language", default="de")
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.manual_seed(0)
    results = {
        obj: step_seconds(obj, args.language, args.pairs, args.steps, args.threads) for obj in ("coit", "coit+align")
    }
    print(f"demo model, {args.language}, {args.pairs} pairs, {args.steps} timed steps, {args.threads} thread(s)")
    for obj, (seconds, tokens) in results.items():
        print(f"  {obj:<11} {seconds * 1000:8.1f} ms/step   ({tokens:,} instruction tokens)")
    print(f"  overhead of the alignment term: {results['coit+align'][0] / results['coit'][0]:.2f}× the step time")


if __name__ == "__main__":
    main()
