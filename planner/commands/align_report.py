"""`planner align-report`: layer-wise cross-lingual representation alignment, before and after training.

Three ways to name the models (exactly one):

- `--run RUN_DIR`: a run directory written by `planner train-one --save-model`. `before` is the run's
  initial model (`build_model` with the run's seed: the freshly initialised `tiny` model, or the base
  checkpoint), `after` its trained model; the run's resolved config supplies the data, split and pooling.
  Output: RUN_DIR/alignment/ unless --out.
- `--model PATH`: a local Hugging Face checkpoint, analysed as `after`. There is no `before` unless
  `--before PATH` names the checkpoint it was trained from. --config supplies the data and pooling.
  Output: OUTPUT_DIR/alignment/ unless --out.
- `--pairs N`: trains the proxy run (--language, N pairs, --seed) twice, with `train.objective` coit and
  coit+align, into OUT/align-compare/, and reports stages `before`, `after:coit`, `after:coit+align`.

The table `alignment/alignment.csv` (and `alignment.json` with the same rows and how they were measured)
has the columns stage, language, layer, cos_true, cos_random, retrieval_en_x, retrieval_x_en; layer 0 is
the embedding output and L the last hidden state.
"""

from __future__ import annotations

from pathlib import Path

from planner.commands import add_config_option, config_from_args
from core.config import check_flags
from core.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser(
        "align-report",
        help="layer-wise cross-lingual representation alignment",
        description="For each language's held-out test pairs and at every layer: the mean cosine of true "
        "translation pairs against random pairs, and top-1 translation retrieval accuracy English→X and "
        "X→English, before and after training. Writes alignment/alignment.csv and alignment.json.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", metavar="RUN_DIR", default=None,
                     help="a run directory from `planner train-one --save-model` (before = its initial model)")
    src.add_argument("--model", metavar="PATH", default=None,
                     help="a local Hugging Face checkpoint, analysed as stage 'after'")
    src.add_argument("--pairs", type=int, metavar="N", default=None,
                     help="train N pairs with objective coit and with coit+align, and compare them")
    p.add_argument("--before", metavar="PATH", default=None,
                   help="with --model: the checkpoint it was trained from, analysed as stage 'before'")
    p.add_argument("--language", action="append", default=None, metavar="CODE",
                   help="language to analyse (repeatable); default: the run's language, or every configured one")
    add_config_option(p)
    p.add_argument("--seed", type=int, default=None, help="with --pairs: the run seed (default: the config's seed)")
    p.add_argument("--pooling", choices=["mean", "last"], default=None, help="default: align.pooling")
    p.add_argument("--test-pairs", type=int, default=None, metavar="N",
                   help="analyse the first N test pairs of each language (default: all)")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="write DIR/alignment/ (default: RUN_DIR with --run, else the config's output_dir)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar while training (--pairs)")
    p.set_defaults(func=run)


def _check_args(args) -> None:
    if args.before and not args.model:
        raise UserError("--before names the starting checkpoint of --model and is only used with it.",
                        "Add --model PATH, or drop --before (with --run the initial model is rebuilt).")
    if args.run and args.config:
        raise UserError("--config is not used with --run: the run directory's resolved_config.yaml is.",
                        "Drop --config.")
    if args.seed is not None and args.pairs is None:
        raise UserError("--seed is only used with --pairs (a run directory knows its own seed).", "Drop --seed.")
    for flag, value in (("--pairs", args.pairs), ("--test-pairs", args.test_pairs)):
        if value is not None and value < 2:
            raise UserError(f"{flag} is {value}; it must be at least 2.", f"Pass a larger {flag}.")
    check_flags(seed=args.seed, languages=args.language or [])


def _sources(args):
    """(config, languages, output directory, language -> stages to analyse) for the chosen source."""
    from trainers import align, align_stages

    if args.run:
        info = align_stages.read_run(args.run)
        out = Path(args.out) if args.out else Path(args.run)

        def stages_for(language):  # the run's two models, whichever language they are analysed on
            return align_stages.run_stages(info)

        return info.cfg, args.language or [info.language], out, stages_for

    cfg = config_from_args(args)
    out = Path(args.out) if args.out else cfg.out
    languages = args.language or list(cfg.languages)
    if args.model:
        after = align_stages.require_checkpoint(args.model, "--model")
        stages = [align_stages.checkpoint_stage(cfg, align.AFTER, after)]
        if args.before:
            before = align_stages.require_checkpoint(args.before, "--before")
            stages.insert(0, align_stages.checkpoint_stage(cfg, align.BEFORE, before))
        return cfg, languages, out, lambda language: stages

    seed = cfg.seed if args.seed is None else args.seed

    def train_both(language):
        return align_stages.compare_objectives(cfg, language, args.pairs, seed, out, progress=not args.no_progress)

    return cfg, languages, out, train_both


def run(args) -> int:
    from core import __version__
    from core.config import RESOLVED_CONFIG_NAME, write_resolved
    from core.files import check_output_dir, check_output_file
    from trainers import align, align_stages, data
    from trainers.model import set_threads

    _check_args(args)
    cfg, languages, out, stages_for = _sources(args)
    check_output_dir(out / align.ALIGNMENT_DIR, "The alignment output directory")
    for name in (align.ALIGNMENT_CSV, align.ALIGNMENT_JSON, RESOLVED_CONFIG_NAME):
        check_output_file(out / align.ALIGNMENT_DIR / name, "The alignment output file")
    # Every language's data, before the first model is trained (--pairs) or analysed.
    datasets = data.load_languages(cfg.data, languages)
    if args.pairs is not None:
        data.check_capacity(datasets, args.pairs)
    set_threads(cfg.model)
    rows, models, counts = [], {}, {}
    for language in languages:
        stages = stages_for(language)
        found, counts[language] = align_stages.analyse_stages(cfg, language, stages, args.test_pairs, args.pooling)
        rows += found
        models.update({f"{s.name} ({language})": s.source for s in stages})
    meta = {
        "planner_version": __version__,
        "pooling": args.pooling or cfg.align.pooling,
        "align_layer": cfg.align.layer,
        "test_pairs": counts,
        "models": models,
    }
    directory = out / align.ALIGNMENT_DIR
    csv_path, json_path = align.write_alignment(rows, directory, meta)
    write_resolved(cfg, directory)
    print(align_stages.summary(rows, cfg.align.layer))
    print(f"wrote {csv_path} and {json_path}")
    return 0
