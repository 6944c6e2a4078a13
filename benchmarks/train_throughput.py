"""Training throughput of the CoIT proxy trainer against this machine's dense fp32 matmul peak.

Prints, for the demo model (the shipped demo config) on one language's first N pairs:

1. the matmul peak: torch.mm on large fp32 squares, per thread count, measured in this run;
2. training speed per configuration (threads, batch size, context, bf16, torch.compile, one or two
   concurrent processes): tokens/s and achieved model FLOP/s as a share of that peak;
3. one complete 1,000-pair demo run (`train_one`: tokenizer, training with a progress bar, evaluation),
   wall-clock seconds;
4. with `--sections curves`: chrF / test loss / seconds per sweep size for some languages (demo protocol).

Model FLOPs per training token (forward + backward = 3 × forward, PaLM-style accounting):
  6 · N_body                      every token goes through every layer's matmuls (N_body = q,k,v,o and MLP)
  + 6 · N_head · (response share) the vocabulary projection runs only where a response token is predicted
  + 12 · layers · hidden · T      attention scores and values over the T positions of the sequence
"Model" FLOPs count real (non-padding) tokens; "executed" FLOPs also count the padding the kernels
process. Embedding lookups are not matmuls and are not counted.

Usage: python benchmarks/train_throughput.py [--threads 1 2] [--steps 120] [--sections throughput demo curves]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

# --------------------------------------------------------------------------------------------- accounting


@dataclass(frozen=True)
class Shape:
    layers: int
    hidden: int
    n_body: int  # matmul parameters of the transformer layers
    n_head: int  # vocabulary projection parameters (tied with the embedding)


def model_shape(model) -> Shape:
    cfg = model.config
    n_head = model.get_output_embeddings().weight.numel()
    n_body = sum(
        p.numel() for name, p in model.named_parameters() if p.ndim == 2 and "embed" not in name and "lm_head" not in name
    )
    return Shape(cfg.num_hidden_layers, cfg.hidden_size, n_body, n_head)


def batch_flops(shape: Shape, widths: list[int], rows: list[int], real_tokens: int, response_tokens: int,
                executed: bool) -> float:
    """Training FLOPs of a set of batches (see the module docstring). widths[i]/rows[i]: padded length
    and row count of batch i. `executed` counts padded positions; otherwise only the real tokens, with
    attention over the mean real length."""
    head = 6.0 * shape.n_head * response_tokens
    if executed:
        tokens = sum(w * r for w, r in zip(widths, rows))
        attention = sum(12.0 * shape.layers * shape.hidden * w * w * r for w, r in zip(widths, rows))
    else:
        tokens = real_tokens
        mean_len = real_tokens / max(1, sum(rows))
        attention = 12.0 * shape.layers * shape.hidden * mean_len * real_tokens
    return 6.0 * shape.n_body * tokens + head + attention


# ------------------------------------------------------------------------------------------------- peak


def matmul_peak(threads: int, n: int = 2048, repeats: int = 5) -> float:
    """Best dense fp32 GFLOP/s of torch.mm on n×n squares with `threads` threads."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2.0 * n**3 / best / 1e9


# --------------------------------------------------------------------------------------------- training


def _config(overrides: dict):
    from core.config import config_from_dict, load_config

    body = load_config(None).model_dump(mode="json")
    for section, values in overrides.items():
        body.setdefault(section, {}).update(values)
    return config_from_dict(body, "(benchmark)")


def measure(overrides: dict, language: str, pairs: int, steps: int, compile_model: bool = False) -> dict:
    """Train the demo model for `steps` steps (after a short warm-up run) and account its FLOPs."""
    from trainers import data
    from trainers.coit import language_examples
    from trainers.model import build_model, load_tokenizer, set_threads
    from trainers.train import batch_plan, encode_examples, train_model

    cfg = _config({**overrides, "train": {**overrides.get("train", {}), "max_steps": steps}})
    set_threads(cfg.model)
    lang = data.load_language(cfg.data, language)
    examples = language_examples(cfg, lang, lang.prefix(pairs), seed=0)
    tokenizer = load_tokenizer(cfg)
    model = build_model(cfg, tokenizer, seed=0)
    shape = model_shape(model)
    if compile_model:
        model = torch.compile(model, dynamic=True)
    warm = cfg.model_copy(update={"train": cfg.train.model_copy(update={"max_steps": 10})})
    train_model(warm, model, tokenizer, examples, seed=1, progress=False)  # allocator, kernels, compile
    stats = train_model(cfg, model, tokenizer, examples, seed=0, progress=False)

    # The same plan train_model followed (it is a pure function of lengths, batch size and seed).
    encoded, _ = encode_examples(tokenizer, examples, cfg.model.context_length)
    kept = [e for e in encoded if e is not None]
    plan = batch_plan([len(e) for e in kept], cfg.train.batch_size, stats.steps, seed=0)
    widths = [max(len(kept[i]) for i in b) for b in plan]
    rows = [len(b) for b in plan]
    model_flops = batch_flops(shape, widths, rows, stats.tokens, stats.response_tokens, executed=False)
    executed = batch_flops(shape, widths, rows, stats.tokens, stats.response_tokens, executed=True)
    return {
        "tokens": stats.tokens,
        "seconds": stats.seconds,
        "tokens_per_s": stats.tokens / stats.seconds,
        "model_gflops": model_flops / stats.seconds / 1e9,
        "executed_gflops": executed / stats.seconds / 1e9,
        "padding": stats.padded_tokens / stats.tokens - 1,
        "params": shape.n_body + shape.n_head,
    }


def _measure_in_child(args) -> dict:
    overrides, language, pairs, steps = args
    torch.set_num_threads(1)
    return measure(overrides, language, pairs, steps)


def measure_two_processes(overrides: dict, language: str, pairs: int, steps: int) -> dict:
    """Two single-thread trainings at once (how sweep workers share the cores): summed throughput."""
    ctx = mp.get_context("spawn")
    one_thread = {**overrides, "model": {**overrides.get("model", {}), "threads": 1}}
    start = time.perf_counter()
    with ctx.Pool(2) as pool:
        results = pool.map(_measure_in_child, [(one_thread, language, pairs, steps)] * 2)
    wall = time.perf_counter() - start
    # Each child's own clock covers only its timed run; the sum of rates is the machine's throughput.
    return {
        "tokens_per_s": sum(r["tokens_per_s"] for r in results),
        "model_gflops": sum(r["model_gflops"] for r in results),
        "executed_gflops": sum(r["executed_gflops"] for r in results),
        "padding": results[0]["padding"],
        "wall_seconds": wall,
    }


def demo_run(language: str, pairs: int, threads: int) -> dict:
    """One complete proxy run with the shipped demo config, as `planner train-one` runs it."""
    from trainers.coit import train_one

    cfg = _config({"model": {"threads": threads}})
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = train_one(cfg, language, pairs, seed=0, run_dir=Path(tmp) / "run", progress=True)
        wall = time.perf_counter() - start
    return {"wall": wall, "train": result.train_seconds, "eval": result.eval_seconds, "steps": result.steps,
            "tokens_per_s": result.train["tokens_per_second"], **{k: result.metrics[k] for k in ("chrf", "bleu", "loss")}}


def curves(languages: list[str], sizes: list[int], threads: int) -> list[dict]:
    from trainers.coit import train_one

    cfg = _config({"model": {"threads": threads}})
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for language in languages:
            for n in sizes:
                r = train_one(cfg, language, n, seed=0, run_dir=Path(tmp) / f"{language}_{n}", progress=False)
                rows.append({"language": language, "pairs": n, "chrf": r.metrics["chrf"], "bleu": r.metrics["bleu"],
                             "loss": r.metrics["loss"], "train_s": r.train_seconds, "eval_s": r.eval_seconds,
                             "n_tokens": r.n_tokens})
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


# ------------------------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--language", default="de")
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=120, help="timed optimizer steps per configuration")
    parser.add_argument("--quick", action="store_true", help="only the default configuration per thread count")
    parser.add_argument("--sections", nargs="+", choices=["throughput", "demo", "curves"],
                        default=["throughput", "demo"], help="curves trains every sweep size (slow)")
    parser.add_argument("--curve-languages", nargs="+", default=["de", "es", "zh"])
    parser.add_argument("--curve-sizes", type=int, nargs="+", default=[250, 500, 1000, 2000])
    args = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    cpus = os.cpu_count()
    print(f"# CoIT trainer throughput — {cpus} CPUs, torch {torch.__version__}, demo model, "
          f"{args.language} {args.pairs} pairs, {args.steps} timed steps per row")
    print(f"(load average before: {os.getloadavg()[0]:.2f}; other processes on these cores slow every row)\n")
    if "throughput" in args.sections:
        throughput(args, cpus)
    if "demo" in args.sections:
        t = max(args.threads)
        r = demo_run(args.language, args.pairs, t)
        print(f"\nComplete {args.pairs}-pair demo run ({args.language}, {t} threads): {r['wall']:.1f} s wall "
              f"(train {r['train']:.1f} s, {r['steps']} steps, {r['tokens_per_s']:,.0f} tokens/s; eval {r['eval']:.1f} s); "
              f"chrF {r['chrf']:.1f}, BLEU {r['bleu']:.1f}, test loss {r['loss']:.3f}")
    if "curves" in args.sections:
        rows = curves(args.curve_languages, args.curve_sizes, max(args.threads))
        print("\n| language | pairs | chrF | BLEU | test loss | train s | eval s |\n|---|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r['language']} | {r['pairs']} | {r['chrf']:.1f} | {r['bleu']:.1f} | {r['loss']:.3f} | "
                  f"{r['train_s']:.1f} | {r['eval_s']:.1f} |")
    print(f"\n(load average after: {os.getloadavg()[0]:.2f})")


def throughput(args, cpus: int | None) -> None:
    peaks = {t: matmul_peak(t) for t in sorted(set(args.threads))}
    print("| threads | torch.mm fp32 peak (GFLOP/s) |\n|---:|---:|")
    for t, p in peaks.items():
        print(f"| {t} | {p:.1f} |")

    variants: list[tuple[str, int, dict, bool]] = []
    for t in args.threads:
        variants.append((f"threads={t} batch=16 fp32", t, {}, False))
    if not args.quick:
        t = max(args.threads)
        variants += [
            (f"threads={t} batch=32", t, {"train": {"batch_size": 32}}, False),
            (f"threads={t} batch=64", t, {"train": {"batch_size": 64}}, False),
            (f"threads={t} context=64", t, {"model": {"context_length": 64}}, False),
            (f"threads={t} bf16", t, {"model": {"precision": "bf16"}}, False),
            (f"threads={t} torch.compile", t, {}, True),
        ]
    print("\n| configuration | tokens/s | model GFLOP/s | % of peak | executed GFLOP/s | padding |")
    print("|---|---:|---:|---:|---:|---:|")
    params = None
    for name, t, overrides, comp in variants:
        overrides = {**overrides, "model": {**overrides.get("model", {}), "threads": t}}
        r = measure(overrides, args.language, args.pairs, args.steps, compile_model=comp)
        params = r["params"]
        print(f"| {name} | {r['tokens_per_s']:,.0f} | {r['model_gflops']:.1f} | "
              f"{100 * r['model_gflops'] / peaks[t]:.0f}% | {r['executed_gflops']:.1f} | {100 * r['padding']:.1f}% |",
              flush=True)
    if not args.quick and cpus and cpus >= 2:
        r = measure_two_processes({}, args.language, args.pairs, args.steps)
        peak = peaks.get(2) or matmul_peak(2)
        print(f"| 2 processes × 1 thread (summed) | {r['tokens_per_s']:,.0f} | {r['model_gflops']:.1f} | "
              f"{100 * r['model_gflops'] / peak:.0f}% of 2-thread peak | {r['executed_gflops']:.1f} | "
              f"{100 * r['padding']:.1f}% |", flush=True)
    print(f"\nDemo model: {params:,} matmul parameters (tied embedding/head counted once).")


if __name__ == "__main__":
    main()
