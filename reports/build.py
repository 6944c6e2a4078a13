"""Turn `ReportInputs` into a `Document`: which sections the inputs support, their figures and tables.

`ReportBuilder` is the context every section shares: the inputs and their views (`reports.views`), one
colour per language, the interval level, and figure saving/paging. The sections themselves live by topic:

- `summary`: the paired verdict first, headline numbers, the plan in brief, warnings, absent inputs;
- `fit_sections`: scaling curves (zero-shot points, offset curves from 0), the fit table, all languages;
- `pooling_section`: what the population prior did to each language's estimate;
- `plan_sections`: the allocation beside its baselines, why each language gets what it gets, marginal gain;
- `mixture_sections`: transfer measured by mixture proxy runs;
- `final_sections`: the final runs over seeds, paired differences and calibration;
- `appendix`: alignment, the run ledger, configuration and versions.

Figures are computed from plain arrays by `figures`, `plan_figures` and `final_figures`; renderers turn
the `Document` into HTML or Markdown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from reports import appendix, final_sections, fit_sections, mixture_sections, plan_sections, pooling_section, summary
from reports import figures as F
from reports import inputs as I
from reports.document import Document, SavedFigure, Section
from reports.plotting import save_figure
from reports.style import language_colors
from reports.views import allocation_view, as_float, final_view, language_namer, metric_label

DEFAULT_LEVEL = 0.9


@dataclass
class ReportBuilder:
    inputs: I.ReportInputs
    figures_dir: Path
    level: float | None = None  # None: the allocation's interval level, else DEFAULT_LEVEL
    saved: list[SavedFigure] = field(default_factory=list)

    def __post_init__(self):
        inp = self.inputs
        self.colors = language_colors(inp.languages())
        self.fits = dict(inp.fits.languages) if inp.fits is not None else {}
        self.skipped = dict(inp.fits.skipped) if inp.fits is not None else {}
        self.higher = True if inp.fits is None else bool(inp.fits.higher_is_better)
        self.metric = inp.metric or self._guess_metric()
        self.metric_label = metric_label(self.metric)
        self.fit_x = inp.fits.x if inp.fits is not None else "pairs"
        self.alloc = allocation_view(inp.allocation, inp.allocation_summary, self.higher) if inp.allocation is not None else None
        self.names = language_namer(inp.config)
        self._panels: dict[str, F.CurvePanel] = {}
        if self.level is None:
            # Match the allocation's intervals so the band, the plan's interval and the tables agree.
            self.level = self.launch_level
        # The launch computed its intervals and paired comparisons at the allocation's level, whatever
        # level this report is drawn at.
        self.final = final_view(inp.final_metrics, inp.final_objectives, inp.final_comparison, inp.final_calibration,
                                self.higher, self.launch_level)
        self.zero_axis = fit_sections.needs_zero_slot(self)

    def _guess_metric(self) -> str | None:
        runs = self.inputs.runs
        if runs is None:
            return None
        return next((name for name in ("chrf", "bleu", "loss") if name in runs), None)

    @property
    def launch_level(self) -> float:
        """The interval level the producers used: the allocation's, else the fits', else 90%."""
        return ((self.alloc.interval_level if self.alloc else None)
                or (as_float(self.inputs.fits.level) if self.inputs.fits is not None else None)
                or DEFAULT_LEVEL)

    @property
    def interval_kind(self) -> str:
        """What the curve bands are: posterior intervals of a pooled fit, else bootstrap intervals."""
        return "posterior" if any(lf.bootstrap_method == "posterior" for lf in self.fits.values()) else "bootstrap"

    def warnings_for(self, lang: str) -> tuple[str, ...]:
        if lang in self.skipped:
            return (f"not fitted: {self.skipped[lang]}",)
        lf = self.fits.get(lang)
        return tuple(str(w) for w in lf.warnings) if lf is not None else ()

    # ---------------------------------------------------------------------------- figure plumbing

    def save(self, fig, stem: str, title: str, caption: str) -> SavedFigure:
        png, svg = save_figure(fig, self.figures_dir, stem)
        saved = SavedFigure(id=stem, title=title, caption=caption, png=png, svg=svg)
        self.saved.append(saved)
        return saved

    def paged(self, items: list, per_page: int, draw: Callable, stem: str, title: str, caption: str) -> list:
        """One figure per page of languages; page titles name the languages they hold."""
        pages = F.chunks(items, per_page)
        digits = len(str(len(pages)))  # zero-padded, so file listings sort in page order
        out = []
        for i, page in enumerate(pages, 1):
            if len(pages) > 1:
                held = page[0] if len(page) == 1 else f"{page[0]}–{page[-1]}"
                out.append(self.save(draw(page), f"{stem}_{i:0{digits}d}", f"{title} ({i}/{len(pages)}: {held})",
                                     caption))
            else:
                out.append(self.save(draw(page), stem, title, caption))
        return out

    # ------------------------------------------------------------------------------ shared data

    def curve_panel(self, language: str) -> F.CurvePanel:
        """The panel data for one language (computed once: the per-language and comparison figures share it)."""
        if language not in self._panels:
            self._panels[language] = fit_sections.make_curve_panel(self, language)
        return self._panels[language]

    def marginal_line(self, language: str, lf):
        return plan_sections.marginal_line(self, language, lf)

    # -------------------------------------------------------------------------------- sections

    def build(self, title: str) -> Document:
        sections = [summary.summary_section(self)]
        makers = (fit_sections.curves_section, pooling_section.pooling_section, fit_sections.comparison_section,
                  plan_sections.allocation_section, plan_sections.marginal_section, mixture_sections.transfer_section,
                  final_sections.final_section, appendix.alignment_section,
                  appendix.runs_section)
        sections += [s for s in (make(self) for make in makers) if s is not None]
        sections.append(appendix.environment_section(self))
        metric = f"metric {self.metric_label}" if self.metric else "no metric"
        subtitle = f"{self.inputs.output_dir.name} · {metric} · x = training {self.fit_x}"
        return Document(title=title, subtitle=subtitle, sections=sections)
