"""The compact per-language table `planner fit` prints (plain text, one line per language)."""

from __future__ import annotations

from fits.flags import fit_flags
from fits.results import FitSet, LanguageFit


def _g(v: float | None, digits: int = 4) -> str:
    return "-" if v is None else f"{v:.{digits}g}"


def _param_text(lf: LanguageFit, params: dict | None = None, intervals: bool = True) -> str:
    p = lf.curve.params if params is None else params
    if lf.family == "log":
        return f"a={_g(p['a'])} b={_g(p['b'])}"
    offset = "C" if lf.higher_is_better else "E"
    text = f"{offset}={_g(p['offset'])} A={_g(p['scale'])} α={_g(p['alpha'], 3)}"
    if intervals and "alpha" in lf.intervals:
        lo, hi = lf.intervals["alpha"]
        text += f" [{_g(lo, 3)}, {_g(hi, 3)}]"
    if "x0" in p:
        text += f" x0={_g(p['x0'], 3)}"
    return text


def _own_text(lf: LanguageFit) -> str:
    """The language's own estimate (its data alone) of the parameters pooling moves, or '-'."""
    if not lf.own_params:
        return "-"
    p = lf.own_params
    if lf.family == "log":
        return f"b={_g(p['b'])}"
    offset = "C" if lf.higher_is_better else "E"
    return f"{offset}={_g(p['offset'])} α={_g(p['alpha'], 3)}" + (f" x0={_g(p['x0'], 3)}" if "x0" in p else "")


def _moved_text(lf: LanguageFit) -> str:
    m = lf.moved
    if not m:
        return "-"
    keys = [k for k in ("offset", "alpha", "x0", "b") if k in m]
    names = {"offset": "C" if lf.higher_is_better else "E", "alpha": "α", "x0": "x0", "b": "b"}
    return " ".join(f"{names[k]}{m[k]:+.3g}" for k in keys)


def _population_header(fitset: FitSet) -> str:
    pop = fitset.population
    law = pop.get("law", "?")
    cand = pop.get("candidates") or {}
    chosen = f"{law} law for all {pop.get('languages', len(fitset.languages))} languages"
    if cand:
        chosen += " (backtest SSE " + ", ".join(f"{k} {v:.3g}" for k, v in cand.items()) + ")"
    elif law == "offset":
        chosen += " (zero-shot runs measured)"
    prior = pop.get("prior", {})
    parts = []
    for key, label in (("alpha", "α"), ("offset", "C" if fitset.higher_is_better else "E"), ("x0", "x0"), ("b", "b")):
        if key in prior:
            lo, mid, hi = prior[key]
            parts.append(f"{label} {_g(lo, 3)}–{_g(hi, 3)} (median {_g(mid, 3)})")
    return (f"pooling population: {chosen} · noise σ {_g(pop.get('sigma'), 3)} · population (90%): "
            + ", ".join(parts))


def _backtest_text(lf: LanguageFit) -> str:
    bt = lf.backtest
    if bt is None:
        return "-"
    rel = "" if bt.rel_error is None else f" ({bt.rel_error:.1%})"
    return f"{_g(bt.abs_error, 3)}{rel} @{bt.x_held:g}"


def format_fit_table(fitset: FitSet) -> str:
    """Header line(s), one row per fitted language, then skipped languages, warnings and notes. A pooled
    fit shows each language's own estimate beside the pooled one and how far pooling moved it."""
    level = f"{fitset.level:.0%}"
    pooled = fitset.pooling == "population"
    draws = "posterior" if pooled else "bootstrap"
    header = (
        f"{fitset.metric} ({fitset.direction} is better) against {fitset.x} · law {fitset.law_requested}"
        + (f" · ceiling {fitset.ceiling:g}" if fitset.ceiling is not None else "")
        + f" · {fitset.bootstrap} {draws} draws (seed {fitset.seed}), {level} intervals"
    )
    if pooled and fitset.population:
        header += "\n" + _population_header(fitset)
    columns = ["language", "law", f"{'pooled ' if pooled else ''}parameters [α {level}]"]
    columns += ["own (alone)", "pooled − own"] if pooled else []
    columns += ["backtest abs (rel) @held", "R²", "runs", "sizes", "warn", "flags"]
    flags = {lang: fit_flags(lf, fitset) for lang, lf in fitset.languages.items()}
    rows = [
        [lang, lf.law, _param_text(lf)]
        + ([_own_text(lf), _moved_text(lf)] if pooled else [])
        + [
            _backtest_text(lf),
            _g(lf.r2, 3),
            str(lf.n_points),
            str(len(lf.sizes)),
            str(len(lf.warnings)) if lf.warnings else "",
            ", ".join(f.label for f in flags[lang]),
        ]
        for lang, lf in sorted(fitset.languages.items())
    ]
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(columns)]
    lines = [header, "  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
    if not rows:
        lines.append("(no language could be fitted)")
    if fitset.skipped:
        lines.append("not fitted:")
        lines += [f"  {lang}: {why}" for lang, why in sorted(fitset.skipped.items())]
    flagged = [(lang, w) for lang, lf in sorted(fitset.languages.items()) for w in lf.warnings]
    if flagged:
        lines.append("warnings:")
        lines += [f"  {lang}: {w}" for lang, w in flagged]
    flagged = [(lang, f) for lang in sorted(flags) for f in flags[lang]]
    if flagged:  # a flagged number is not what it looks like (fits.flags): say why beside it
        lines.append("flags (not measured by the runs; see each why):")
        lines += [f"  {lang}: {f.label}: {f.why}" for lang, f in flagged]
    if fitset.notes:
        lines.append("notes:")
        lines += [f"  {n}" for n in fitset.notes]
    return "\n".join(lines)
