"""The summary section: the final runs' paired verdict first (when there are final runs), then the headline
numbers (predicted objective, gain, budget saved, achieved gain), the plan in one sentence and one table,
every warning, and which inputs were absent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reports import inputs as I
from reports.document import Callout, Headline, Metric, Paragraph, Section
from reports.final_sections import achieved_gain_metric, verdict_block
from reports.plan_sections import budget_saved_metric, plan_sentence, plan_table
from core.plan_files import Verdict
from reports.style import fmt_num, fmt_signed

if TYPE_CHECKING:
    from reports.build import ReportBuilder

_ABSENT_EFFECT = {
    I.RUNS: "no run points or run ledger",
    I.FITS: "no fitted curves, bands, backtests or marginal gains",
    I.ALLOCATION: "no plan or baseline comparison",
    I.ALLOCATION_SUMMARY: "no objective values, λ, budget saved or baselines",
    I.FINAL_METRICS: "no predicted-vs-achieved check (run `planner launch`)",
    I.FINAL_OBJECTIVES: "no per-mixture achieved objectives",
    I.FINAL_COMPARISON: "no paired comparison (it needs the plan and a baseline)",
    I.FINAL_CALIBRATION: "no calibration table (it needs predicted intervals)",
    I.ALIGNMENT: "no representation-alignment plot (run `planner align-report`)",
    I.RESOLVED_CONFIG: "configuration and producing version unknown",
}


def summary_section(b: ReportBuilder) -> Section:
    s = Section("summary", "Summary")
    verdict = verdict_block(b)
    if verdict is not None:
        s.blocks.append(verdict)  # the truth test's answer leads
    metrics = headline_metrics(b)
    if metrics:
        s.blocks.append(Headline(metrics))
    a = b.alloc
    if a is not None:
        s.blocks += [Paragraph(f"Predicted, before any final run: {line}.") for line in verdict_lines(b)]
        s.blocks.append(Paragraph(plan_sentence(b, a)))
        s.blocks.append(plan_table(b, a, compact=True))
    warnings = collect_warnings(b)
    if warnings:
        s.blocks.append(Callout("Warnings", warnings))
    absent = absent_inputs(b)
    if absent:
        s.blocks.append(Callout("Inputs absent (their sections are left out or derived)", absent, "info"))
    return s


def verdict_lines(b: ReportBuilder) -> list[str]:
    """The plan's predicted verdict against uniform and the best baseline (allocation_summary.json)."""
    a = b.alloc
    units = f"summed {b.metric_label}" if a.objective == "sum" else b.metric_label
    out = []
    for entry in a.verdicts.values():
        try:
            out.append(Verdict(**entry).sentence(units))
        except TypeError:  # a summary written by another version: its numbers are still in the tables
            continue
    return out


def headline_metrics(b: ReportBuilder) -> list[Metric]:
    metrics: list[Metric] = []
    a = b.alloc
    if a is not None:
        best = a.best()
        if a.plan_objective is not None:
            detail = f"best baseline {best.name}: {fmt_num(best.objective, 4)}" if best else "no baselines"
            metrics.append(Metric("Predicted objective (plan)", fmt_num(a.plan_objective, 4), detail))
        if a.gain_over_best is not None:
            gain = a.gain_over_best
            metrics.append(Metric("Gain over best baseline", fmt_signed(gain, 3), f"vs {best.name if best else ''}",
                                  "good" if gain > 0 else "bad" if gain < 0 else ""))
        saved = budget_saved_metric(a)
        if saved is not None:
            metrics.append(saved)
        if a.budget is not None:
            detail = f"objective {a.objective}" + (f" · λ {a.lam:.3g}" if a.lam is not None else "")
            if a.unused:
                detail += f" · unused {fmt_num(a.unused)}"
            metrics.append(Metric("Budget", a.budget_text(), detail))
    achieved = achieved_gain_metric(b)
    if achieved is not None:
        metrics.append(achieved)
    if b.inputs.fits is not None:
        flagged = sum(1 for lf in b.fits.values() if lf.warnings)
        pooled = " · pooled" if b.inputs.fits.pooling == "population" else ""
        metrics.append(Metric("Languages fitted", str(len(b.fits)),
                              f"{len(b.skipped)} skipped · {flagged} with warnings{pooled}"))
    elif b.inputs.runs is not None:
        metrics.append(Metric("Proxy runs", str(len(b.inputs.runs)), f"{b.inputs.runs['language'].nunique()} languages"))
    return metrics


def collect_warnings(b: ReportBuilder) -> list[str]:
    warnings = list(b.alloc.warnings) if b.alloc else []
    if b.inputs.fits is not None:
        warnings += [str(n) for n in b.inputs.fits.notes]
    for lang in sorted(b.skipped):
        warnings.append(f"{lang}: not fitted — {b.skipped[lang]}")
    for lang, lf in sorted(b.fits.items()):
        warnings += [f"{lang}: {w}" for w in lf.warnings]
    return warnings


def absent_inputs(b: ReportBuilder) -> list[str]:
    missing = b.inputs.missing
    # Tables derived from final/metrics.csv say nothing new when the metrics themselves are absent.
    shown = [n for n in missing if not (n in I.FINAL_DERIVED and I.FINAL_METRICS in missing)]
    derived = {I.FINAL_COMPARISON: "comparison", I.FINAL_CALIBRATION: "calibration"}
    out = []
    for name in shown:
        table = derived.get(name)
        if table and b.final is not None and table in b.final.derived and getattr(b.final, table) is not None:
            out.append(f"{name} — derived here from final/metrics.csv")
        else:
            out.append(f"{name} — {_ABSENT_EFFECT[name]}")
    return out
