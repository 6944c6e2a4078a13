"""Scaling curves of the proxy-run recipe on SmolLM2-135M-Instruct: languages × sizes (0 = the zero-shot
point) × seeds, each run exactly as `planner train-one` runs it under the demo preset.

Writes one CSV row per run (`language,n_pairs,n_tokens,seed,chrf,bleu,loss,train_seconds,eval_seconds`,
the `runs.csv` contract, so `planner fit` reads it as it is) and prints a table per language and size:
the mean over seeds ± half the range between seeds, next to the gain over the grid. The zero-shot point
is run for the first seed only: it is greedy decoding of the untouched base model, the same for every
seed. The CSV is appended run by run and finished rows are skipped, so an interrupted measurement
resumes where it stopped.

Runs go to `--workers` processes (default 2, one torch thread each: how the sweep shares a 2-core CPU),
zero-shot points first, then whole curves seed by seed (largest size first).

Usage: python benchmarks/smollm2_curves.py [--languages el hi tr vi] [--sizes 0 50 150 400] [--seeds 0 1]
       [--set train.eval_size=50 ...] [--out benchmarks/results/smollm2_curves.csv] [--table-only]
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

COLUMNS = ["language", "n_pairs", "n_tokens", "seed", "chrf", "bleu", "loss", "train_seconds", "eval_seconds"]
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "smollm2_curves.csv"


def _config(source: tuple[str | None, str], settings: list[str]):
    """The config file or preset (`source`: (file, preset)) with `section.key=value` overrides (YAML values)."""
    import yaml

    from core.config import config_from_dict, load_config

    path, preset = source
    body = (load_config(path) if path else load_config(preset=preset)).model_dump(mode="json")
    for item in settings:
        key, _, value = item.partition("=")
        *path, leaf = key.split(".")
        node = body
        for part in path:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    return config_from_dict(body, "(smollm2_curves)")


def _run(job: tuple) -> dict:
    source, settings, threads, language, n_pairs, seed = job
    import torch

    from trainers.coit import train_one

    torch.set_num_threads(threads)
    cfg = _config(source, [*settings, f"model.threads={threads}"])
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        r = train_one(cfg, language, n_pairs, seed, run_dir=Path(tmp) / "run", progress=False)
        wall = time.perf_counter() - start
    row = {"language": language, "n_pairs": n_pairs, "n_tokens": r.n_tokens, "seed": seed,
           **{k: r.metrics[k] for k in ("chrf", "bleu", "loss")},
           "train_seconds": round(r.train_seconds, 2), "eval_seconds": round(r.eval_seconds, 2)}
    print(json.dumps({**row, "wall": round(wall, 1), "load": round(os.getloadavg()[0], 2),
                      "first_hypotheses": [s["hypothesis"] for s in r.samples[:2]]}, ensure_ascii=False),
          file=sys.stderr, flush=True)
    return row


def read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def table(rows: list[dict]) -> str:
    """Mean ± half-range over seeds per language and size; the zero-shot point has one seed."""
    from collections import defaultdict

    by = defaultdict(list)
    for r in rows:
        by[(r["language"], int(r["n_pairs"]))].append(r)
    languages = sorted({lang for lang, _ in by})
    sizes = sorted({n for _, n in by})
    lines = ["| language | " + " | ".join(f"{n:,} pairs" for n in sizes) + " | gain 0→max | max seed spread |",
             "|---|" + "---:|" * (len(sizes) + 2)]
    for lang in languages:
        cells, means, spreads = [], [], []
        for n in sizes:
            runs = by.get((lang, n), [])
            if not runs:
                cells.append("–")
                continue
            chrf = [float(r["chrf"]) for r in runs]
            mean, half = sum(chrf) / len(chrf), (max(chrf) - min(chrf)) / 2
            means.append(mean)
            if len(chrf) > 1:
                spreads.append(half)
            cells.append(f"{mean:.1f} ± {half:.1f}" if len(chrf) > 1 else f"{mean:.1f}")
        gain = means[-1] - means[0] if len(means) > 1 else float("nan")
        lines.append(f"| {lang} | " + " | ".join(cells) + f" | {gain:+.1f} | {max(spreads, default=0):.1f} |")
    seconds = [(float(r["train_seconds"]), float(r["eval_seconds"])) for r in rows if int(r["n_pairs"]) > 0]
    if seconds:
        train, evaluation = sum(s[0] for s in seconds), sum(s[1] for s in seconds)
        lines.append(f"\nTrained runs: {len(seconds)}, train {train:.0f} s, evaluation {evaluation:.0f} s "
                     f"({100 * evaluation / (train + evaluation):.0f}% of their time).")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="demo")
    parser.add_argument("--config", default=None, help="a config file instead of the preset")
    parser.add_argument("--languages", nargs="+", default=None, help="default: the preset's languages")
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="default: the preset's sweep sizes")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, e.g. train.eval_size=50 (repeatable)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--table-only", action="store_true", help="print the table of an existing CSV")
    args = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    if not args.table_only:
        source = (args.config, args.preset)
        cfg = _config(source, args.settings)
        languages, sizes = args.languages or cfg.languages, args.sizes or cfg.sweep.sizes
        done = {(r["language"], int(r["n_pairs"]), int(r["seed"])) for r in read_rows(args.out)}
        # Zero-shot points first (cheap), then one complete curve per language seed by seed, largest size
        # first: an interrupted measurement still has whole curves, and the workers finish together.
        jobs = [(lang, 0, args.seeds[0]) for lang in languages if 0 in sizes]
        jobs += [(lang, n, seed) for seed in args.seeds for lang in languages for n in sorted(sizes, reverse=True) if n]
        jobs = [job for job in jobs if job not in done]
        threads = max(1, (os.cpu_count() or 1) // args.workers)
        print(f"{len(jobs)} runs to do ({len(done)} already in {args.out}); {args.workers} workers × {threads} "
              f"thread(s); load average {os.getloadavg()[0]:.2f}", file=sys.stderr, flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        with mp.get_context("spawn").Pool(args.workers) as pool:
            for row in pool.imap_unordered(
                _run, [(source, args.settings, threads, lang, n, seed) for lang, n, seed in jobs]
            ):
                new = not args.out.is_file()
                with open(args.out, "a", newline="", encoding="utf-8") as f:
                    writer = csv.DictWriter(f, fieldnames=COLUMNS)
                    if new:
                        writer.writeheader()
                    writer.writerow(row)
        print(f"done in {time.perf_counter() - start:.0f} s; load average {os.getloadavg()[0]:.2f}", file=sys.stderr)
    print(table(read_rows(args.out)))


if __name__ == "__main__":
    main()
