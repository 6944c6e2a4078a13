"""The "What pooling did" section: with `pooling: population` every language's curve is its posterior
under a prior learned from all languages; this shows the population (the law, the run noise, the prior)
and, per language, its own estimate beside the pooled one and how far pooling moved it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reports import figures as F
from reports.document import Cell, Paragraph, Section, Table
from reports.fit_sections import param_label
from reports.style import fmt_num, fmt_signed
from reports.views import as_float, language_label

if TYPE_CHECKING:
    from reports.build import ReportBuilder

# The parameters worth showing per family, in reading order (the scale A is a nuisance: what matters is
# the exponent, the ceiling and the effective data the model already has).
SHOWN = {"power": ("alpha", "offset", "x0"), "log": ("b", "a")}
LOG_SCALE = {"alpha", "x0"}
LAW_NAMES = {"offset": "offset power law", "power": "power law", "log": "log law"}


def pooling_section(b: ReportBuilder) -> Section | None:
    fitset = b.inputs.fits
    if fitset is None or fitset.pooling != "population" or not b.fits:
        return None
    s = Section("pooling", "What pooling did")
    s.blocks.append(Paragraph(population_text(b)))
    params = _shown_params(b)
    langs = sorted(b.fits)
    pooled_rows = [_row(b, lang) for lang in langs]
    caption = ("Per parameter: each language's own estimate from its runs alone (hollow), its pooled estimate "
               "(filled; the arrow shows the move), and on top the population prior (bar: 5–95%, tick and dashed "
               "line: median). Pooling pulls estimates that the runs pin down poorly towards the population; where "
               "only a filled dot shows, the two coincide or the runs alone do not identify the law.")
    by_lang = dict(zip(langs, pooled_rows))
    s.blocks += b.paged(langs, F.ROWS_PER_PAGE,
                        lambda page: F.pooling_figure([by_lang[lang] for lang in page], params),
                        "pooling", "Own vs pooled estimates", caption)
    s.blocks.append(pooling_table(b, params))
    return s


def population_text(b: ReportBuilder) -> str:
    fitset = b.inputs.fits
    pop = fitset.population or {}
    law = str(pop.get("law") or next(iter(b.fits.values())).law)
    n = int(as_float(pop.get("languages")) or len(b.fits))
    parts = [f"Pooling: population. One {LAW_NAMES.get(law, law)} for all {n} languages{_choice_text(b, law)}."]
    parts.append("Each language's curve is its posterior under a population prior learned from all languages: a "
                 "language whose runs pin its curve down keeps its own shape, one with few or noisy runs is "
                 "pulled towards the population.")
    sigma, dof = as_float(pop.get("sigma")), as_float(pop.get("dof"))
    if sigma is not None:
        parts.append(f"Run-to-run noise σ = {fmt_num(sigma, 3)} {b.metric_label}"
                     + (f" ({fmt_num(dof, 3)} degrees of freedom)." if dof is not None else "."))
    prior = _prior_text(b, pop.get("prior") or {})
    if prior:
        parts.append(f"Population prior (5% / median / 95%): {prior}.")
    return " ".join(parts)


def _choice_text(b: ReportBuilder, law: str) -> str:
    candidates = {k: as_float(v) for k, v in ((b.inputs.fits.population or {}).get("candidates") or {}).items()}
    scored = {k: v for k, v in candidates.items() if v is not None}
    if len(scored) > 1:
        listed = " · ".join(f"{k} {fmt_num(v, 3)}" for k, v in sorted(scored.items(), key=lambda kv: kv[1]))
        rule = "; the log law, which never levels off, needs under a quarter of the power law's" if "log" in scored else ""
        return f", chosen by a joint backtest (summed squared error of held-out sizes: {listed}{rule})"
    if b.inputs.fits.law_requested != "auto":
        return " (as requested)"
    if law == "offset":
        return " (the sweep measured zero-shot runs, and the offset law is the only one finite at 0)"
    return ""


def _prior_text(b: ReportBuilder, prior: dict) -> str:
    family = "log" if any(k in prior for k in ("a", "b")) else "power"
    parts = []
    for key in SHOWN[family]:
        q = prior.get(key)
        if not isinstance(q, (list, tuple)) or len(q) != 3:
            continue
        unit = f" {b.fit_x}" if key == "x0" else ""
        parts.append(f"{param_label(family, key, b.higher)} {' / '.join(fmt_num(v, 3) for v in q)}{unit}")
    return "; ".join(parts)


def _shown_params(b: ReportBuilder) -> list[F.PoolingParam]:
    first = next(iter(b.fits.values()))
    prior = (b.inputs.fits.population or {}).get("prior") or {}
    out = []
    for key in SHOWN.get(first.family, ()):
        if not any(key in lf.params for lf in b.fits.values()):
            continue
        q = prior.get(key)
        label = param_label(first.family, key, b.higher)
        title = {"alpha": "exponent α", "offset": f"{'ceiling' if b.higher else 'floor'} {label}",
                 "x0": f"x₀: data already known ({b.fit_x})", "b": "slope b", "a": "intercept a"}.get(key, label)
        out.append(F.PoolingParam(key, title, key in LOG_SCALE,
                                  tuple(float(v) for v in q) if isinstance(q, (list, tuple)) and len(q) == 3 else None))
    return out


def _row(b: ReportBuilder, lang: str) -> F.PoolingRow:
    lf = b.fits[lang]
    own = {k: float(v) for k, v in (lf.own_params or {}).items() if as_float(v) is not None}
    pooled = {k: float(v) for k, v in lf.params.items() if as_float(v) is not None}
    return F.PoolingRow(lang, b.colors.get(lang, "#555"), own, pooled)


def _moved_text(lf, key: str) -> str:
    pooled = as_float(lf.params.get(key))
    own = as_float((lf.own_params or {}).get(key))
    if pooled is None:
        return ""
    if own is None:
        return f"n/a → {fmt_num(pooled, 3)}"
    moved = as_float(lf.moved.get(key)) if lf.moved else None
    moved = pooled - own if moved is None else moved
    return f"{fmt_num(own, 3)} → {fmt_num(pooled, 3)} ({fmt_signed(moved, 2)})"


def pooling_table(b: ReportBuilder, params: list[F.PoolingParam]) -> Table:
    # One law for every language (the paragraph above names it), so no law column.
    columns = ["language"] + [f"{p.label}: own → pooled (moved)" for p in params] + ["effective draws"]
    rows = []
    for lang in sorted(b.fits):
        lf = b.fits[lang]
        note = () if lf.own_params else ("its runs alone do not identify the law: the curve is the population's "
                                         "guess, shaped by its few runs",)
        rows.append([Cell(language_label(lang, b.names), note)]
                    + [Cell(_moved_text(lf, p.key)) for p in params] + [Cell(fmt_num(lf.ess, 3))])
    caption = ("Own: the same law fitted to the language's runs alone; pooled: its posterior estimate (what the "
               "curves, intervals and plan use); moved: pooled − own. Effective draws: how many independent "
               "posterior draws the intervals rest on (under 20: rough).")
    return Table(columns, rows, caption, frozenset(range(1, len(columns))), id="pooling")
