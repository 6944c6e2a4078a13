"""`planner train-one`: train and evaluate one CoIT proxy run"""

from __future__ import annotations

import json
from pathlib import Path

from planner.commands import add_config_option, config_from_args


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train-one",
        help="train and evaluate one CoIT proxy run",
        description="Train a fresh model on the first N English→X pairs of one language and evaluate it on "
        "that language's fixed test split. Prints the result as one JSON object and writes the run directory "
        "(metrics.json, resolved config, samples.jsonl).",
    )
    add_config_option(p)
    p.add_argument("--language", required=True, help="target language code, e.g. de")
    p.add_argument("--pairs", type=int, required=True,
                   help="translation pairs to train on; 0 evaluates the untrained base model (the zero-shot point)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", metavar="DIR", default=None, help="run directory (default: OUTPUT_DIR/runs/LANG_N_seedS)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--save-model", action="store_true",
                   help="also save the trained model in RUN_DIR/model (for `planner align-report --run`)")
    p.set_defaults(func=run)


def run(args) -> int:
    from core.config import check_flags
    from trainers.coit import train_one
    from trainers.train import is_main_process

    check_flags(seed=args.seed, languages=[args.language])
    cfg = config_from_args(args)
    result = train_one(
        cfg,
        args.language,
        args.pairs,
        args.seed,
        run_dir=Path(args.out) if args.out else None,
        progress=not args.no_progress,
        save_model=args.save_model,
    )
    if is_main_process():
        print(json.dumps(result.row(), ensure_ascii=False))
    return 0
