"""The compact per-language table `planner fit` prints (plain text, one line per language)."""

from __future__ import annotations

from fits.results import FitSet, LanguageFit


def _g(v: float | None, digits: int = 4) -> str:
    return "-" if v is None else f"{v:.{digits}g}"


def _param_text(lf: LanguageFit) -> str:
    p = lf.curve.params
    if lf.family == "log":
        return f"a={_g(p['a'])} b={_g(p['b'])}"
    offset = "C" if lf.higher_is_better else "E"
    text = f"{offset}={_g(p['offset'])} A={_g(p['scale'])} α={_g(p['alpha'], 3)}"
    if "alpha" in lf.intervals:
        lo, hi = lf.intervals["alpha"]
        text += f" [{_g(lo, 3)}, {_g(hi, 3)}]"
    return text


def _backtest_text(lf: LanguageFit) -> str:
    bt = lf.backtest
    if bt is None:
        return "-"
    rel = "" if bt.rel_error is None else f" ({bt.rel_error:.1%})"
    return f"{_g(bt.abs_error, 3)}{rel} @{bt.x_held:g}"


def format_fit_table(fitset: FitSet) -> str:
    """Header line, one row per fitted language, then skipped languages, warnings and notes."""
    level = f"{fitset.level:.0%}"
    header = (
        f"{fitset.metric} ({fitset.direction} is better) against {fitset.x} · law {fitset.law_requested}"
        + (f" · ceiling {fitset.ceiling:g}" if fitset.ceiling is not None else "")
        + f" · {fitset.bootstrap} bootstrap draws (seed {fitset.seed}), {level} intervals"
    )
    columns = ["language", "law", f"parameters [α {level}]", "backtest abs (rel) @held", "R²", "runs", "sizes", "warn"]
    rows = [
        [
            lang,
            lf.law,
            _param_text(lf),
            _backtest_text(lf),
            _g(lf.r2, 3),
            str(lf.n_points),
            str(len(lf.sizes)),
            str(len(lf.warnings)) if lf.warnings else "",
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
    if fitset.notes:
        lines.append("notes:")
        lines += [f"  {n}" for n in fitset.notes]
    return "\n".join(lines)
