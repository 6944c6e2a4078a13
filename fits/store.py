"""fits.json: the file `planner fit` writes and `planner allocate` / `planner report` read.

Strict JSON (no NaN or Infinity: a missing number is null), written atomically (a temporary file renamed
over the target, so a reader never sees half a file), stamped with the planner version. Floats are written
with Python's shortest round-tripping repr, so `load_fits(save_fits(f))` gives back exactly the same
numbers, bootstrap draws included.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from fits.data import MAX_DATA, MAX_MAGNITUDE
from fits.extrapolation import Extrapolation
from fits.flags import fit_flags
from fits.laws import PARAM_NAMES, Curve, param_names
from fits.results import FitSet, LanguageFit
from fits.validate import Backtest
from core import __version__
from core.errors import UserError
from core.files import atomic_write_text, not_a_file

FORMAT = "coit-planner/fits@1"


def _num(v):
    """A JSON-safe number: None for NaN/inf, a Python float otherwise."""
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _language_to_json(lf: LanguageFit, fitset: FitSet | None = None) -> dict:
    bt = lf.backtest
    return {
        "law": lf.law,
        "family": lf.curve.family,
        "params": {k: _num(v) for k, v in lf.curve.params.items()},
        "intervals": {k: [_num(lo), _num(hi)] for k, (lo, hi) in lf.intervals.items()},
        "bootstrap_params": (
            None
            if lf.boot is None
            else {k: [_num(v) for v in np.asarray(vals, float)] for k, vals in lf.boot.params.items()}
        ),
        "bootstrap_method": lf.bootstrap_method,
        "interval_df": _num(lf.interval_df),
        "r2": _num(lf.r2),
        "rmse": _num(lf.rmse),
        "residuals": [_num(v) for v in lf.residuals],
        "backtest": None if bt is None else {
            "x_held": _num(bt.x_held),
            "actual": _num(bt.actual),
            "predicted": _num(bt.predicted),
            "abs_error": _num(bt.abs_error),
            "rel_error": _num(bt.rel_error),
        },
        "n_points": int(lf.n_points),
        "sizes": [_num(v) for v in lf.sizes],
        "tokens_per_pair": _num(lf.tokens_per_pair),
        "warnings": list(lf.warnings),
        "candidates": {k: _num(v) for k, v in lf.candidates.items()},
        "worsens_with_data": bool(lf.worsens_with_data),
        "own_params": None if lf.own_params is None else {k: _num(v) for k, v in lf.own_params.items()},
        "moved": {k: _num(v) for k, v in lf.moved.items()},
        "ess": _num(lf.ess),
        "extrapolation": None if lf.extrapolation is None else {
            "scale": _num(lf.extrapolation.scale), "languages": int(lf.extrapolation.languages)},
        # What a reader should not take at face value (fits.flags); recomputed from the fit when read.
        "flags": [f.as_dict() for f in fit_flags(lf, fitset)],
    }


def fits_to_json(fitset: FitSet) -> dict:
    return {
        "format": FORMAT,
        "planner_version": __version__,
        "metric": fitset.metric,
        "direction": fitset.direction,
        "x": fitset.x,
        "law_requested": fitset.law_requested,
        "ceiling": _num(fitset.ceiling),
        "bootstrap": int(fitset.bootstrap),
        "seed": int(fitset.seed),
        "level": float(fitset.level),
        "notes": list(fitset.notes),
        "pooling": fitset.pooling,
        "population": _clean(fitset.population),
        "transfer": {
            lang: {"tau": _num(t.tau), "draws": None if t.draws is None else [_num(v) for v in t.draws],
                   "rows": int(t.rows), "rms_before": _num(t.rms_before), "rms_after": _num(t.rms_after),
                   "own_min": _num(t.own_min), "alone_rows": int(t.alone_rows), "alone_gap": _num(t.alone_gap),
                   "mixture_fit": None if t.mixture_fit is None else _language_to_json(t.mixture_fit),
                   "measured": [[_num(a), _num(b)] for a, b in t.measured]}
            for lang, t in fitset.transfer.items()
        },
        "languages": {lang: _language_to_json(lf, fitset) for lang, lf in fitset.languages.items()},
        "skipped": dict(fitset.skipped),
    }


def _clean(obj):
    """Nested dicts/lists of numbers and strings with non-finite numbers as null (strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (bool, str)) or obj is None:
        return obj
    return _num(obj)


def _dumps(obj, indent: int = 0) -> str:
    """Indented JSON whose lists of plain values stay on one line (1,000 bootstrap draws are one line,
    not 1,000). Strict: NaN/inf raise (they were turned into null before)."""
    pad, inner = " " * indent, " " * (indent + 1)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{inner}{json.dumps(str(k), ensure_ascii=False)}: {_dumps(v, indent + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list) and any(isinstance(v, (dict, list)) for v in obj):
        return "[\n" + ",\n".join(inner + _dumps(v, indent + 1) for v in obj) + "\n" + pad + "]"
    return json.dumps(obj, allow_nan=False, ensure_ascii=False)


def save_fits(fitset: FitSet, path: str | Path) -> Path:
    """Write fits.json atomically."""
    return atomic_write_text(path, _dumps(fits_to_json(fitset)) + "\n")


# ------------------------------------------------------------------------------------------ loading


class _Reader:
    """Typed access to the parsed JSON that turns every shape problem into a UserError naming the key."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, where: str, what: str):
        raise UserError(
            f"{self.path} is not a valid fits.json: {where} {what}.",
            "Regenerate it with `planner fit RUNS_CSV --metric NAME --out FITS_JSON`.",
        )

    def get(self, obj: dict, key: str, kinds, where: str, optional: bool = False):
        if key not in obj:
            if optional:
                return None
            self.fail(f"{where}.{key}", "is missing")
        value = obj[key]
        if value is None and optional:
            return None
        if not isinstance(value, kinds) or isinstance(value, bool) and bool not in _as_tuple(kinds):
            self.fail(f"{where}.{key}", f"should be {_kind_name(kinds)}, not {type(value).__name__}")
        return value

    def num(self, obj, key, where, optional=False) -> float | None:
        v = self.get(obj, key, (int, float), where, optional)
        return None if v is None else self.finite(v, f"{where}.{key}")

    def nums(self, values, where) -> list[float]:
        if not isinstance(values, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            self.fail(where, "should be a list of numbers")
        return [self.finite(v, where) for v in values]

    def finite(self, value, where: str) -> float:
        """JSON has no infinity, but a literal like 1e400 parses as one (and a 400-digit integer overflows)."""
        try:
            v = float(value)
        except OverflowError:
            v = math.inf
        if not math.isfinite(v):
            self.fail(where, f"holds {value!r:.40}, which is not a finite number")
        return v

    def count(self, obj, key, where, optional=False) -> int | None:
        v = self.num(obj, key, where, optional)
        if v is not None and (v < 0 or v != int(v)):
            self.fail(f"{where}.{key}", f"is {v:g}, not a whole number ≥ 0")
        return None if v is None else int(v)


def _as_tuple(kinds):
    return kinds if isinstance(kinds, tuple) else (kinds,)


def _kind_name(kinds) -> str:
    names = {dict: "an object", list: "a list", str: "a string", int: "a number", float: "a number", bool: "true/false"}
    return " or ".join(sorted({names.get(k, k.__name__) for k in _as_tuple(kinds)}))


def _language_from_json(rd: _Reader, lang: str, d, higher: bool, level: float, where: str = "") -> LanguageFit:
    where = where or f"languages.{lang}"
    if not isinstance(d, dict):
        rd.fail(where, "should be an object")
    family = rd.get(d, "family", str, where)
    if family not in PARAM_NAMES:
        rd.fail(f"{where}.family", f"is {family!r}, not one of {sorted(PARAM_NAMES)}")
    law = rd.get(d, "law", str, where)
    raw_params = rd.get(d, "params", dict, where)
    params = {}
    for name in param_names(family, raw_params):
        params[name] = rd.num(raw_params, name, f"{where}.params")
    _check_domain(rd, family, params, f"{where}.params")
    boot = None
    raw_boot = rd.get(d, "bootstrap_params", dict, where, optional=True)
    if raw_boot is not None:
        bw = f"{where}.bootstrap_params"
        draws = {name: np.asarray(rd.nums(rd.get(raw_boot, name, list, bw), f"{bw}.{name}"))
                 for name in param_names(family, raw_boot)}
        lengths = {len(v) for v in draws.values()}
        if len(lengths) != 1 or 0 in lengths:
            rd.fail(f"{where}.bootstrap_params", "has empty lists, or lists of different lengths")
        _check_domain(rd, family, draws, bw)
        boot = Curve(family, draws, higher, law=law)
    intervals = {}
    for name, pair in rd.get(d, "intervals", dict, where).items():
        values = rd.nums(pair, f"{where}.intervals.{name}")
        if len(values) != 2:
            rd.fail(f"{where}.intervals.{name}", "should be [low, high]")
        intervals[name] = (values[0], values[1])
    bt = rd.get(d, "backtest", dict, where, optional=True)
    backtest = None
    if bt is not None:
        bw = f"{where}.backtest"
        backtest = Backtest(
            rd.num(bt, "x_held", bw), rd.num(bt, "actual", bw), rd.num(bt, "predicted", bw),
            rd.num(bt, "abs_error", bw), rd.num(bt, "rel_error", bw, optional=True),
        )
    candidates = {}
    for name, value in rd.get(d, "candidates", dict, where).items():
        if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)):
            rd.fail(f"{where}.candidates.{name}", "should be a number or null")
        candidates[name] = None if value is None else float(value)
    warnings = rd.get(d, "warnings", list, where)
    if not all(isinstance(w, str) for w in warnings):
        rd.fail(f"{where}.warnings", "should be a list of strings")
    return LanguageFit(
        language=lang,
        law=law,
        curve=Curve(family, params, higher, law=law),
        boot=boot,
        intervals=intervals,
        r2=rd.num(d, "r2", where, optional=True),
        rmse=rd.num(d, "rmse", where, optional=True),
        residuals=rd.nums(rd.get(d, "residuals", list, where), f"{where}.residuals"),
        backtest=backtest,
        n_points=rd.count(d, "n_points", where),
        sizes=rd.nums(rd.get(d, "sizes", list, where), f"{where}.sizes"),
        tokens_per_pair=rd.num(d, "tokens_per_pair", where, optional=True),
        warnings=list(warnings),
        candidates=candidates,
        level=level,
        bootstrap_method=rd.get(d, "bootstrap_method", str, where, optional=True),
        interval_df=rd.num(d, "interval_df", where, optional=True),
        worsens_with_data=bool(rd.get(d, "worsens_with_data", bool, where, optional=True) or False),
        own_params=_optional_numbers(rd, d, "own_params", where),
        moved=_optional_numbers(rd, d, "moved", where) or {},
        ess=rd.num(d, "ess", where, optional=True),
        extrapolation=_extrapolation(rd, d, where),
    )


def _extrapolation(rd: "_Reader", d: dict, where: str) -> Extrapolation | None:
    """The pooled extrapolation error, or None: files written before it existed have none, and their
    intervals are the draws' alone, as they were."""
    raw = rd.get(d, "extrapolation", dict, where, optional=True)
    if raw is None:
        return None
    scale = rd.num(raw, "scale", f"{where}.extrapolation")
    if scale < 0:
        rd.fail(f"{where}.extrapolation.scale", f"is {scale:g}, not a scale ≥ 0")
    languages = rd.count(raw, "languages", f"{where}.extrapolation")
    if languages < 1:
        rd.fail(f"{where}.extrapolation.languages", "is 0, not a count of backtests ≥ 1")
    return Extrapolation(scale, languages)


# Where a law's parameters make sense (`fits.laws`): beyond these a curve over- or underflows float64 and
# the allocator's plan is NaN. Wider than anything the fits produce (exponents 0.01–4), so a fits.json
# written by another tool is not refused for a choice of its own.
# A scale is bounded like a metric value, an x0 (data the model already has) like a pair count.
DOMAIN = {("power", "alpha"): (0.0, 50.0, "above 0 and at most 50"),
          ("power", "scale"): (0.0, MAX_MAGNITUDE, f"from 0 to {MAX_MAGNITUDE:g}"),
          ("power", "x0"): (0.0, MAX_DATA, f"from 0 to {MAX_DATA:g}")}


def _check_domain(rd: "_Reader", family: str, params: dict, where: str) -> None:
    """Refuse a parameter (or any draw of it) outside its law's domain, naming it (hand-edited files)."""
    for name, value in params.items():
        values = np.atleast_1d(np.asarray(value, dtype=float))
        low, high, text = DOMAIN.get((family, name), (-MAX_MAGNITUDE, MAX_MAGNITUDE, f"at most {MAX_MAGNITUDE:g} in size"))
        strict_low = (family, name) == ("power", "alpha")
        bad = (values <= low if strict_low else values < low) | (values > high)
        if bad.any():
            rd.fail(f"{where}.{name}", f"holds {values[bad][0]:g}; a {family} law's {name} must be {text}")


def _transfer_from_json(rd: "_Reader", raw: dict, higher: bool, level: float) -> dict:
    from fits.transfer import Transfer

    out = {}
    for lang, t in raw.items():
        where = f"transfer.{lang}"
        if not isinstance(t, dict):
            rd.fail(where, "should be an object")
        draws = rd.get(t, "draws", list, where, optional=True)
        inside = rd.get(t, "mixture_fit", dict, where, optional=True)
        measured = rd.get(t, "measured", list, where, optional=True) or []
        if any(not isinstance(m, list) or len(m) != 2 for m in measured):
            rd.fail(f"{where}.measured", "should be a list of [own, others] pairs")
        out[str(lang)] = Transfer(
            tau=rd.num(t, "tau", where), draws=None if draws is None else np.asarray(rd.nums(draws, f"{where}.draws")),
            rows=rd.count(t, "rows", where), rms_before=rd.num(t, "rms_before", where, optional=True) or float("nan"),
            rms_after=rd.num(t, "rms_after", where, optional=True) or float("nan"),
            own_min=rd.num(t, "own_min", where, optional=True) or 0.0,
            alone_rows=rd.count(t, "alone_rows", where, optional=True) or 0,
            alone_gap=rd.num(t, "alone_gap", where, optional=True),
            mixture_fit=None if inside is None else _language_from_json(rd, str(lang), inside, higher, level,
                                                                       f"{where}.mixture_fit"),
            measured=tuple(tuple(rd.nums(m, f"{where}.measured")) for m in measured),
        )
    return out


def _optional_numbers(rd: "_Reader", d: dict, key: str, where: str) -> dict[str, float] | None:
    raw = rd.get(d, key, dict, where, optional=True)
    if raw is None:
        return None
    out = {}
    for name, value in raw.items():
        if value is None:
            continue
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            rd.fail(f"{where}.{key}.{name}", "should be a number or null")
        out[str(name)] = float(value)
    return out


def load_fits(path: str | Path) -> FitSet:
    """Read fits.json back into a `FitSet` (exact round trip of `save_fits`)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"Fits file {path} {not_a_file(path)}.",
            "Run `planner fit RUNS_CSV --metric NAME --out FITS_JSON` first, and pass the file it wrote.",
        )
    def strict(constant: str):  # the format is strict JSON: a missing number is null, never NaN/Infinity
        raise ValueError(f"non-standard JSON constant {constant}")

    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_constant=strict)
    except (ValueError, UnicodeDecodeError) as err:  # JSONDecodeError is a ValueError
        raise UserError(f"{path} is not valid JSON ({err}).", "Regenerate it with `planner fit`.") from None
    rd = _Reader(path)
    if not isinstance(data, dict):
        rd.fail("the top level", "should be an object")
    direction = rd.get(data, "direction", str, "(top)")
    if direction not in ("higher", "lower"):
        rd.fail("(top).direction", f"is {direction!r}, not 'higher' or 'lower'")
    higher = direction == "higher"
    if data.get("format", FORMAT) != FORMAT:  # files before the stamp have none; a different stamp is another format
        rd.fail("(top).format", f"is {data['format']!r}, not {FORMAT!r} (a file this planner version cannot read)")
    level = rd.num(data, "level", "(top)")
    if not 0 < level < 1:
        rd.fail("(top).level", f"is {level:g}, not an interval level between 0 and 1")
    x = rd.get(data, "x", str, "(top)")
    if x not in ("pairs", "tokens"):
        rd.fail("(top).x", f"is {x!r}, not 'pairs' or 'tokens'")
    population = rd.get(data, "population", dict, "(top)", optional=True) or {}
    if population.get("sigma") is not None:
        rd.num(population, "sigma", "(top).population")
    langs = rd.get(data, "languages", dict, "(top)")
    if any(not str(lang).strip() for lang in langs):
        rd.fail("(top).languages", "has a language with an empty name")
    skipped = rd.get(data, "skipped", dict, "(top)")
    notes = rd.get(data, "notes", list, "(top)", optional=True) or []
    return FitSet(
        metric=rd.get(data, "metric", str, "(top)"),
        higher_is_better=higher,
        x=x,
        law_requested=rd.get(data, "law_requested", str, "(top)"),
        ceiling=rd.num(data, "ceiling", "(top)", optional=True),
        bootstrap=rd.count(data, "bootstrap", "(top)"),
        seed=rd.count(data, "seed", "(top)"),
        languages={lang: _language_from_json(rd, lang, d, higher, level) for lang, d in langs.items()},
        skipped={str(k): str(v) for k, v in skipped.items()},
        level=level,
        notes=[str(n) for n in notes],
        pooling=rd.get(data, "pooling", str, "(top)", optional=True) or "none",
        transfer=_transfer_from_json(rd, rd.get(data, "transfer", dict, "(top)", optional=True) or {}, higher, level),
        population=population,
    )
