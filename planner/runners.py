"""The runner plug-in seam: which function trains one proxy run (`--runner`, `--mixture-runner`).

A runner is named `module:function` or `path/to/file.py:function`; the sweep checks it before any run and
each worker process resolves it again. The default is the project's own trainer.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.errors import UserError
from core.files import not_a_file

DEFAULT_RUNNER = "trainers.coit:train_one"
DEFAULT_MIXTURE_RUNNER = "trainers.muit:train_mixture_proxy"

Runner = Callable[..., Any]


def resolve_runner(spec: str) -> Runner:
    """`module:function` or `path/to/file.py:function` → the callable.

    This is how another trainer plugs into the sweep: any function with `train_one`'s signature
    `(cfg, language, n_pairs, seed, run_dir=None, progress=True)` returning an object with `metrics` (a
    dict of floats), `n_tokens`, `train_seconds`, `eval_seconds`, `steps` and `run_dir`.

    A mixture runner (`--mixture-runner`, for `sweep.mixtures` and `sweep.probes`) has
    `train_mixture_proxy`'s signature `(cfg, pairs, seed, run_dir=None, progress=True)`, `pairs` mapping
    language → pairs (0: trained without it, scored all the same), and returns the same fields with
    `metrics` and `n_tokens` for every language of `pairs` (language → dict of floats, language → int)."""
    module_name, sep, attr = spec.rpartition(":")
    if not sep or not module_name or not attr.isidentifier():
        raise UserError(f"--runner '{spec}' is not of the form module:function or file.py:function.")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name)
            if not path.is_file():
                raise UserError(f"--runner file {path} {not_a_file(path)}.")
            unique = f"planner_runner_{abs(hash(str(path.resolve())))}"
            module_spec = importlib.util.spec_from_file_location(unique, path)
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[unique] = module
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        raise UserError(f"--runner '{spec}': module {err.name} cannot be imported.") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise UserError(f"--runner '{spec}': {module_name} has no function '{attr}'.")
    return fn


def check_runners(runner: str, mixture_runner: str | None) -> None:
    """Resolve the runners a sweep will use (`mixture_runner`: None without mixture runs) before any run, so
    a mistake is an error (exit 2) now, not in every worker."""
    for spec in (runner, mixture_runner) if mixture_runner else (runner,):
        resolve_runner(spec)


def _metrics(metrics: Any, what: str) -> dict[str, float]:
    if not isinstance(metrics, dict) or not metrics:
        raise TypeError(f"the runner returned {what} without a non-empty `metrics` dict")
    return {str(k): float(v) for k, v in metrics.items()}


def result_record(result: Any, mixture: tuple[str, ...] = ()) -> dict[str, Any]:
    """A runner's result as plain values under its field names (the sweep records them on the run's trial),
    checked against the contract above: a malformed result is the runner's bug, a TypeError that fails its
    run. For a mixture run (`mixture`: its languages) `metrics` and `n_tokens` are per language, for each."""
    metrics, tokens, what = getattr(result, "metrics", None), getattr(result, "n_tokens", None), type(result).__name__
    if mixture:
        if not isinstance(metrics, dict) or set(metrics) != set(mixture) or not isinstance(tokens, dict):
            raise TypeError(f"the mixture runner returned {what} without `metrics` and `n_tokens` for each of "
                            f"{', '.join(mixture)}")  # a left-out language (0 pairs) is scored too
        metrics = {lang: _metrics(metrics[lang], f"{what} for {lang}") for lang in mixture}
        tokens = {lang: int(tokens.get(lang, 0) or 0) for lang in mixture}
    else:
        metrics, tokens = _metrics(metrics, what), int(tokens or 0)
    number = lambda name, kind: kind(getattr(result, name, 0) or 0)  # noqa: E731
    return {"metrics": metrics, "n_tokens": tokens, "train_seconds": number("train_seconds", float),
            "eval_seconds": number("eval_seconds", float), "steps": number("steps", int),
            "run_dir": str(getattr(result, "run_dir", "") or "")}
