"""How far a final run's numbers move when only the execution changes, on one machine.

Trains the same final mixture (uniform over a preset's languages, same data, same seed) several times:
twice with 1 torch thread (must be identical), and with 2 threads (what another machine's core count
does: float reductions are summed in another order). Prints each language's metrics per execution and
the largest difference from the first 1-thread run. A different CPU (other SIMD kernels) moves numbers
the same way; this measures the size of that effect without a second machine.

Usage: python benchmarks/reproducibility.py [--preset quick] [--pairs 300] [--seeds 0 1]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def train(preset: str, pairs: int, seed: int, threads: int) -> dict[str, dict[str, float]]:
    import torch

    from core.config import config_from_dict, load_config
    from trainers.data import load_languages
    from trainers.muit import train_mixture

    body = load_config(preset=preset).model_dump(mode="json")
    body["model"]["threads"] = threads
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        body["output_dir"] = tmp
        cfg = config_from_dict(body, "(reproducibility)")
        datasets = load_languages(cfg.data, cfg.languages)
        result = train_mixture(cfg, datasets, {lang: pairs for lang in cfg.languages}, seed=seed,
                               run_dir=Path(tmp) / "run", name="uniform", progress=False)
    return result.metrics


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--pairs", type=int, default=300, help="pairs per language in the mixture")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = ap.parse_args(argv)
    print(f"{os.cpu_count()} cores; preset {args.preset}; uniform mixture of {args.pairs} pairs per language")
    print("| seed | execution | language | chrF | loss | chrF − first 1-thread run |")
    print("|---:|---|---|---:|---:|---:|")
    worst = {"1 thread, again": 0.0, "2 threads": 0.0}
    for seed in args.seeds:
        start = time.perf_counter()
        runs = {"1 thread": train(args.preset, args.pairs, seed, 1),
                "1 thread, again": train(args.preset, args.pairs, seed, 1),
                "2 threads": train(args.preset, args.pairs, seed, 2)}
        ref = runs["1 thread"]
        for name, metrics in runs.items():
            for lang, m in metrics.items():
                diff = m["chrf"] - ref[lang]["chrf"]
                if name in worst:
                    worst[name] = max(worst[name], abs(diff))
                print(f"| {seed} | {name} | {lang} | {m['chrf']:.3f} | {m['loss']:.4f} | {diff:+.3f} |")
        print(f"(seed {seed}: {time.perf_counter() - start:.0f} s)", flush=True)
    print(f"\nlargest |chrF difference| from the first 1-thread run: "
          + ", ".join(f"{k}: {v:.3f}" for k, v in worst.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
