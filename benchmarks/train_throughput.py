"""Training throughput of the CoIT proxy trainer against this machine's matmul peak, and the evaluation
share of complete runs.

Prints, for the model of a preset (default: the demo preset, SmolLM2-135M-Instruct with its LoRA recipe)
on one language's first N pairs:

1. per configuration (precision, LoRA or full fine-tuning, attention kernel, batch size, threads,
   torch.compile, two concurrent single-thread processes): tokens/s and model FLOP/s as a share of the
   torch.mm peak *in the same precision and thread count*, measured right before and right after that
   row (their mean is the reference), so a row and its reference see the same load;
2. complete runs as `planner train-one` runs them (the zero-shot point and a trained size): wall, train
   and evaluation seconds, and evaluation's share of the run.

What is counted (forward + backward = 3 × forward, PaLM-style), on real (non-padding) tokens T:
  6 · N_layers · T            the transformer layers' matmul parameters (q, k, v, o, gate, up, down), every token
  + 6 · N_head · T_response   the output projection, computed only where a response token is predicted
  + 12 · layers · hidden · T · mean length   attention scores and values
Embedding lookups, norms and activations are not matmuls and are not counted. SmolLM2-135M:
N_layers = 106.2M, N_head = 28.3M (tied with the embedding). With LoRA the frozen weights get no weight
gradient, so the work actually done is smaller: 4 · N_layers · T + 4 · N_head · T_response + 6 · N_lora ·
T + attention — printed as "LoRA-actual". "Executed" counts padded positions too.

Usage: python benchmarks/train_throughput.py [--preset demo|quick] [--threads 1 2] [--steps 24]
                                            [--sections throughput runs] [--quick]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
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
    n_body: int  # matmul parameters of the transformer layers (frozen ones included)
    n_head: int  # output projection parameters
    n_lora: int  # trainable adapter parameters (0 for full fine-tuning)


def model_shape(model) -> Shape:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    cfg = base.config
    n_head = base.get_output_embeddings().weight.numel()
    n_body = n_lora = 0
    for name, p in model.named_parameters():
        if p.ndim != 2 or "embed" in name or "lm_head" in name:
            continue
        if "lora_" in name:
            n_lora += p.numel()
        else:
            n_body += p.numel()
    return Shape(cfg.num_hidden_layers, cfg.hidden_size, n_body, n_head, n_lora)


def training_flops(shape: Shape, tokens: int, response_tokens: int, rows: int, lora: bool, padded: int | None = None
                   ) -> dict[str, float]:
    """Model FLOPs (6·N·T, see the module docstring), the LoRA-actual count, and executed FLOPs when
    `padded` (the positions including padding) is given."""
    mean_len = tokens / max(1, rows)
    attention = 12.0 * shape.layers * shape.hidden * mean_len * tokens
    model = 6.0 * shape.n_body * tokens + 6.0 * shape.n_head * response_tokens + attention
    out = {"model": model}
    if lora:
        out["lora_actual"] = (4.0 * shape.n_body * tokens + 4.0 * shape.n_head * response_tokens
                              + 6.0 * shape.n_lora * tokens + attention)
    if padded is not None:
        out["executed"] = model * padded / max(1, tokens)
    return out


# ------------------------------------------------------------------------------------------------- peak


def matmul_peak(threads: int, precision: str, n: int = 2048, repeats: int = 5) -> float:
    """Best GFLOP/s of torch.mm on n×n squares with `threads` threads, in fp32 or bf16."""
    torch.set_num_threads(threads)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    torch.mm(a, b)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2.0 * n**3 / best / 1e9


# --------------------------------------------------------------------------------------------- training


def _config(preset: str, overrides: dict):
    """`preset` is a shipped preset's name or a config file's path (one ending in .yaml/.yml)."""
    from core.config import config_from_dict, load_config

    is_file = preset.endswith((".yaml", ".yml"))
    body = (load_config(preset) if is_file else load_config(preset=preset)).model_dump(mode="json")
    for section, values in overrides.items():
        if section == "model" and "lora" in values and values["lora"] is not None and body["model"].get("lora"):
            values = {**values, "lora": {**body["model"]["lora"], **values["lora"]}}
        body.setdefault(section, {}).update(values)
    return config_from_dict(body, "(benchmark)")


def measure(preset: str, overrides: dict, language: str, pairs: int, steps: int, compile_model: bool = False) -> dict:
    """Train for `steps` steps (after a short warm-up run) and account the FLOPs."""
    from trainers import data
    from trainers.coit import language_examples
    from trainers.model import build_model, load_tokenizer, set_threads
    from trainers.train import resolve_precision, train_model

    model_over = {**overrides.get("model", {}), "compile": compile_model}
    cfg = _config(preset, {**overrides, "model": model_over,
                           "train": {**overrides.get("train", {}), "max_steps": steps}})
    set_threads(cfg.model)
    lang = data.load_language(cfg.data, language)
    examples = language_examples(cfg, lang, lang.prefix(pairs), seed=0)
    tokenizer = load_tokenizer(cfg)
    model = build_model(cfg, tokenizer, seed=0)
    shape = model_shape(model)
    warm = cfg.model_copy(update={"train": cfg.train.model_copy(update={"max_steps": 3})})
    train_model(warm, model, tokenizer, examples, seed=1, progress=False)  # allocator, kernels, compilation
    stats = train_model(cfg, model, tokenizer, examples, seed=0, progress=False)
    rows = stats.steps * cfg.train.batch_size
    flops = training_flops(shape, stats.tokens, stats.response_tokens, rows, cfg.model.lora is not None,
                           stats.padded_tokens)
    return {
        "tokens_per_s": stats.tokens / stats.seconds,
        **{f"{k}_gflops": v / stats.seconds / 1e9 for k, v in flops.items()},
        "padding": stats.padded_tokens / stats.tokens - 1,
        "precision": resolve_precision(cfg.model.precision),
        "shape": shape,
    }


def _measure_in_child(args) -> dict:
    preset, overrides, language, pairs, steps = args
    torch.set_num_threads(1)
    return measure(preset, overrides, language, pairs, steps)


def measure_two_processes(preset: str, overrides: dict, language: str, pairs: int, steps: int) -> dict:
    """Two single-thread trainings at once (how two sweep workers share two cores): summed throughput."""
    one_thread = {**overrides, "model": {**overrides.get("model", {}), "threads": 1}}
    with mp.get_context("spawn").Pool(2) as pool:
        results = pool.map(_measure_in_child, [(preset, one_thread, language, pairs, steps)] * 2)
    summed = {k: sum(r[k] for r in results) for k in results[0] if k.endswith("_gflops") or k == "tokens_per_s"}
    return {**results[0], **summed}


def complete_run(preset: str, language: str, pairs: int, threads: int) -> dict:
    """One proxy run exactly as `planner train-one` runs it; the evaluation share of its time."""
    from trainers.coit import train_one

    cfg = _config(preset, {"model": {"threads": threads}})
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        r = train_one(cfg, language, pairs, seed=0, run_dir=Path(tmp) / "run", progress=False)
        wall = time.perf_counter() - start
    return {"wall": wall, "train": r.train_seconds, "eval": r.eval_seconds, "steps": r.steps,
            "tokens_per_s": r.train.get("tokens_per_second", 0.0), **r.metrics}


# ------------------------------------------------------------------------------------------------- main


def variants(preset: str, threads: list[int], quick: bool) -> list[tuple[str, int, dict, bool]]:
    """(label, threads, config overrides, compile) rows; the first per thread count is the preset's own."""
    cfg = _config(preset, {})
    rows = [(f"{Path(preset).stem} recipe, {t} thread(s)", t, {}, False) for t in threads]
    if quick:
        return rows
    t = min(threads)
    lora = cfg.model.lora is not None
    rows += [
        (f"batch {2 * cfg.train.batch_size}", t, {"train": {"batch_size": 2 * cfg.train.batch_size}}, False),
        ("fp32 weights and compute", t, {"model": {"precision": "fp32"}}, False),
        ("torch.compile", t, {}, True),
    ]
    if cfg.model.name != "tiny":
        rows.append(("sdpa attention", t, {"model": {"attention": "sdpa"}}, False))
    if lora:
        rows += [
            ("LoRA dropout 0.05", t, {"model": {"lora": {"dropout": 0.05}}}, False),
            ("LoRA on q,v only", t, {"model": {"lora": {"target_modules": ["q_proj", "v_proj"]}}}, False),
            ("full fine-tuning, bf16 autocast", t, {"model": {"lora": None, "precision": "bf16"}}, False),
            ("full fine-tuning, fp32", t, {"model": {"lora": None, "precision": "fp32"}}, False),
        ]
    return rows


def throughput(args) -> None:
    from trainers.train import resolve_precision

    print("| configuration | precision | tokens/s | model GFLOP/s (6·N·T) | LoRA-actual GFLOP/s | torch.mm peak "
          "GFLOP/s (same run) | model / peak | LoRA-actual / peak | padding |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    shape = None
    rows = variants(args.preset, args.threads, args.quick)
    if args.rows:
        rows = [row for row in rows if any(part in row[0] for part in args.rows)]
    for label, t, overrides, comp in rows:
        overrides = {**overrides, "model": {**overrides.get("model", {}), "threads": t}}
        precision = resolve_precision(_config(args.preset, overrides).model.precision)
        before = matmul_peak(t, precision)
        r = measure(args.preset, overrides, args.language, args.pairs, args.steps, compile_model=comp)
        peak = (before + matmul_peak(t, precision)) / 2
        shape = r["shape"]
        _row(label, r, peak)
    if not args.quick and (os.cpu_count() or 1) >= 2 and (not args.rows or "2 processes" in args.rows):
        precision = resolve_precision(_config(args.preset, {}).model.precision)
        before = matmul_peak(2, precision)
        r = measure_two_processes(args.preset, {}, args.language, args.pairs, args.steps)
        peak = (before + matmul_peak(2, precision)) / 2
        _row("2 processes × 1 thread (summed; vs the 2-thread peak)", r, peak)
    if shape is not None:
        print(f"\nN_layers = {shape.n_body:,} (layer matmuls), N_head = {shape.n_head:,} (output projection, response "
              f"positions only), N_lora = {shape.n_lora:,}; {shape.layers} layers, hidden {shape.hidden}.")


def _row(label: str, r: dict, peak: float) -> None:
    lora = r.get("lora_actual_gflops")
    print(f"| {label} | {r['precision']} | {r['tokens_per_s']:,.0f} | {r['model_gflops']:.1f} | "
          f"{f'{lora:.1f}' if lora else '–'} | {peak:.1f} | {100 * r['model_gflops'] / peak:.0f}% | "
          f"{f'{100 * lora / peak:.0f}%' if lora else '–'} | {100 * r['padding']:.1f}% |", flush=True)


def runs(args) -> None:
    t = min(args.threads)
    print(f"\n| complete run ({args.language}, {t} thread(s)) | wall s | train s | eval s | eval share | "
          "tokens/s | chrF | test loss |\n|---|---:|---:|---:|---:|---:|---:|---:|")
    for pairs in args.run_sizes:
        r = complete_run(args.preset, args.language, pairs, t)
        share = r["eval"] / (r["train"] + r["eval"])
        print(f"| {pairs} pairs | {r['wall']:.1f} | {r['train']:.1f} | {r['eval']:.1f} | {100 * share:.0f}% | "
              f"{r['tokens_per_s']:,.0f} | {r['chrf']:.1f} | {r['loss']:.3f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="demo",
                        help="shipped preset (or a config file) whose model and recipe to measure")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--language", default="el")
    parser.add_argument("--pairs", type=int, default=400, help="pairs the timed steps draw their batches from")
    parser.add_argument("--steps", type=int, default=24, help="timed optimizer steps per configuration")
    parser.add_argument("--quick", action="store_true", help="only the preset's own configuration per thread count")
    parser.add_argument("--rows", nargs="+", default=None, metavar="TEXT",
                        help="only the configurations whose label contains one of these (e.g. recipe sdpa)")
    parser.add_argument("--sections", nargs="+", choices=["throughput", "runs"], default=["throughput", "runs"])
    parser.add_argument("--run-sizes", type=int, nargs="+", default=[0, 400])
    args = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    print(f"# CoIT trainer throughput — {os.cpu_count()} CPUs, torch {torch.__version__}, preset {args.preset}, "
          f"{args.language} {args.pairs} pairs, {args.steps} timed steps per row")
    print(f"(load average before: {os.getloadavg()[0]:.2f}; other processes on these cores slow every row, and its "
          "peak with it)\n")
    if "throughput" in args.sections:
        throughput(args)
    if "runs" in args.sections:
        runs(args)
    print(f"\n(load average after: {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
