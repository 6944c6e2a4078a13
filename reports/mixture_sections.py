"""The section on what mixtures measured: the transfer fit of mixture proxy runs (`fits.json` → `transfer`,
with the transfer-aware plan of `allocation_summary.json` beside the plan).

Functions of a `ReportBuilder` (the shared context); each returns None when its inputs are absent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from reports.document import Cell, Paragraph, Section, Table
from reports.style import fmt_num
from reports.views import language_label

if TYPE_CHECKING:
    from reports.build import ReportBuilder


def _tau_interval(draws) -> str:
    d = np.asarray(draws if draws is not None else [], dtype=float)
    d = d[np.isfinite(d)]
    return f"[{np.quantile(d, 0.05):.2f}, {np.quantile(d, 0.95):.2f}]" if d.size else ""


def transfer_section(b: ReportBuilder) -> Section | None:
    """τ per language from the mixture proxy runs, and the transfer-aware plan beside the plan."""
    fits = b.inputs.fits
    transfer = dict(fits.transfer) if fits is not None and getattr(fits, "transfer", None) else {}
    if not transfer:
        return None
    plan = (b.inputs.allocation_summary or {}).get("transfer") or {}
    own_plan = ({str(r.language): float(r.pairs) for r in b.alloc.table.itertuples()}
                if b.alloc is not None else {})
    mixtures = b.inputs.runs["mixture"].dropna().astype(str) if b.inputs.runs is not None and "mixture" in b.inputs.runs else None
    runs = int(mixtures[mixtures.str.strip() != ""].nunique()) if mixtures is not None else 0
    s = Section("transfer", "Transfer inside mixtures")
    s.blocks.append(Paragraph(
        f"{runs or 'The'} mixture proxy run{'s' if runs != 1 else ''} scored each language inside a mixture. "
        f"Read on the language's own curve at D + τ·D_other, one unit of the other languages' data is worth τ "
        "units of its own (0: no transfer; negative: interference). τ is fitted for every posterior draw of the "
        "curve, so its interval comes with the curve's. The transfer-aware plan maximises the objective with "
        "transfer and keeps each language at least the own data it had in its smallest mixture run (own_min), "
        "where τ was measured. A leave-one-out run scores the language it left out with none of its own data: "
        "that row checks the law (measured − predicted) and is not fitted. Where a language's mixture rows have "
        "two or more own-data sizes, its curve is also fitted on those rows alone (its scores inside mixtures "
        "against its own data there, the left-out row as the zero point); when every language has one, the "
        "plan itself is planned and predicted on these in-mixture curves (a final run trains one mixture), and "
        "there is no separate transfer-aware plan; docs/transfer.md."))
    curves = (b.inputs.allocation_summary or {}).get("curves")
    if curves:
        s.blocks.append(Paragraph(f"The plan was planned and predicted on: {curves}."))
    columns = ["language", "τ", "τ [90%]", "mixture rows", f"RMS error ({b.metric_label}): own data → with τ",
               "in-mixture curve: RMS error", "own_min", "without own data: measured − predicted", "plan: pairs"]
    if plan:  # a transfer-aware plan beside the plan (none when the plan itself is on in-mixture curves)
        columns += ["transfer-aware plan: pairs", f"predicted {b.metric_label} with transfer"]
    rows = []
    for lang in sorted(transfer, key=lambda code: list(b.fits).index(code) if code in b.fits else len(b.fits)):
        t = transfer[lang]
        pairs, predicted = plan.get("pairs", {}).get(lang), plan.get("predicted", {}).get(lang)
        rows.append([
            Cell(language_label(lang, b.names)), Cell(f"{t.tau:.3f}"), Cell(_tau_interval(t.draws)), Cell(str(t.rows)),
            Cell(f"{t.rms_before:.2f} → {t.rms_after:.2f}"),
            Cell("" if t.mixture_fit is None or t.mixture_fit.rmse is None else f"{t.mixture_fit.rmse:.2f}"),
            Cell(fmt_num(t.own_min)),
            Cell("" if t.alone_gap is None else f"{t.alone_gap:+.2f}"),
            Cell(fmt_num(own_plan[lang]) if lang in own_plan else ""),
        ] + ([Cell("" if pairs is None else fmt_num(pairs)), Cell("" if predicted is None else f"{predicted:.2f}")]
             if plan else []))
    s.blocks.append(Table(columns, rows, "fits.json → transfer; allocation_summary.json → transfer.",
                          frozenset(range(1, len(columns))), id="transfer"))
    return s
