"""`fit_runs`: a runs table in, one validated curve per language out, with its uncertainty.

Two engines. `pooling="population"` (the default) fits one law to all languages with a population prior
and posterior draws (`fits.population`, `fits.bayes`). `pooling="none"` fits each language on its own
(robust variable projection, `fits.estimate`) with a bootstrap, by the rules below.

Rules for data that cannot support a full fit, applied per language and always reported:

- no usable run, or a single distinct size: not fitted (`FitSet.skipped` says why).
- two distinct sizes: a three-parameter curve is not identified, so the language borrows the exponent
  of the `shared` fit over the languages with ≥ 3 sizes and fits only its offset and scale (law
  "shared"); with `--law log` (or when no language has ≥ 3 sizes under `auto`) it gets the two-parameter
  log law instead (`--law power`/`shared` with nobody to borrow from: not fitted). Either way there is no
  backtest (one size would remain) and no interval (two parameters through two sizes fit exactly), and
  a warning says so.
- three or more sizes: every requested law is fitted and backtested; `auto` keeps the best backtest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from fits.bootstrap import Resampled, bootstrap_shared, bootstrap_single, interval, language_rng, resample
from fits.data import X_COLUMNS, Series, infer_direction, prepare_runs, runs_text
from fits.estimate import LAWS, PointFit, Spec, fit_log, fit_power, fit_shared
from fits.laws import Curve
from fits.results import FitSet, LanguageFit
from fits.population import METRIC_MAX, POPULATION_LAWS, fit_population
from fits.transfer import fit_transfer
from fits.validate import Backtest, choose_law, goodness, hold_out_largest, make_backtest
from fits.varpro import ALPHA_BOUNDS
from core.errors import UserError
from core.strict import MAX_DRAWS, check_seed_flag

LAW_CHOICES = ("auto",) + LAWS
POOLINGS = ("population", "none")
FULL_SIZES = 3  # distinct sizes for a language's own three-parameter fit (and below which no interval)


def fit_runs(
    runs: pd.DataFrame,
    metric: str,
    law: str = "auto",
    x: str = "pairs",
    ceiling: float | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
    higher_is_better: bool | None = None,
    level: float = 0.9,
    pooling: str = "population",
) -> FitSet:
    """Fit per-language scaling laws of `metric` against training pairs (or tokens) in a runs table."""
    _check_args(law, x, ceiling, bootstrap, level, pooling, seed)
    table = prepare_runs(runs, metric, x)
    notes = list(table.notes)
    if higher_is_better is None:
        inferred = infer_direction(metric)
        if inferred is None:
            notes.append(
                f"metric {metric!r} is not a name with a known direction: assuming higher is better "
                "(pass --direction lower for a loss or an error rate)"
            )
        higher_is_better = True if inferred is None else inferred
    notes += _above_maximum(table.series, metric)
    if pooling == "population":
        languages, skipped, population = fit_population(
            table.series, metric, bool(higher_is_better), law, int(bootstrap), int(seed), float(level))
        notes += population.pop("notes", [])
        return FitSet(metric=metric, higher_is_better=bool(higher_is_better), x=x, law_requested=law, ceiling=None,
                      bootstrap=int(bootstrap), seed=int(seed), languages=languages, skipped=skipped,
                      level=float(level), notes=notes, pooling=pooling, population=population,
                      transfer=fit_transfer(languages, table.mixtures, metric, bool(higher_is_better),
                                                            int(bootstrap), int(seed), float(level)))
    series = {lang: s.trained() for lang, s in table.series.items()}
    zero = sum(s.zero_shot for s in table.series.values())
    if zero:
        notes.append(f"{zero} zero-shot run(s) at 0 {x} are not used: per-language power and log laws diverge "
                     "at 0 (pooling: population fits the offset law to them)")
    spec = Spec(higher_is_better, None if ceiling is None else float(ceiling), _loss_floor(series, higher_is_better))
    fitter = _Fitter(series, spec, law, metric, x)
    languages, skipped = fitter.run(bootstrap, seed, level)
    transfer = fit_transfer(languages, table.mixtures, metric, bool(higher_is_better), int(bootstrap), int(seed),
                            float(level))
    return FitSet(
        metric=metric,
        higher_is_better=bool(higher_is_better),
        x=x,
        law_requested=law,
        ceiling=spec.ceiling,
        bootstrap=int(bootstrap),
        seed=int(seed),
        languages=languages,
        skipped=skipped,
        level=float(level),
        notes=notes,
        transfer=transfer,
    )


def _above_maximum(series: dict[str, Series], metric: str) -> list[str]:
    """A note when scores exceed the metric's own maximum (chrF above 100): another column, or another scale."""
    top = METRIC_MAX.get(metric.lower())
    above = sum(int(np.sum(s.y > top)) for s in series.values()) if top is not None else 0
    if not above:
        return []
    return [f"{runs_text(above)} score above {metric}'s maximum of {top:g}: check that column (another metric, or "
            f"another scale?); the population fit bounds every ceiling by {top:g}"]


def _check_args(law, x, ceiling, bootstrap, level, pooling, seed) -> None:
    if pooling not in POOLINGS:
        raise UserError(f"Unknown pooling {pooling!r}.", f"Use one of {', '.join(POOLINGS)}.")
    allowed = POPULATION_LAWS if pooling == "population" else LAW_CHOICES
    if law not in allowed:
        other = "none" if pooling == "population" else "population"
        also = f" ({law!r} needs pooling {other})" if law in POPULATION_LAWS + LAW_CHOICES else ""
        raise UserError(f"Unknown law {law!r} for pooling {pooling!r}{also}.", f"Use one of {', '.join(allowed)}.")
    if pooling == "population" and ceiling is not None:
        raise UserError(
            "A fixed ceiling applies to per-language fits only; with pooling 'population' the ceiling is "
            "learned (bounded by the metric's maximum).",
            "Drop the ceiling, or set pooling: none (--pooling none) to pin it.",
        )
    if x not in X_COLUMNS:
        raise UserError(f"Unknown x {x!r}.", f"Use one of {', '.join(X_COLUMNS)}.")
    if ceiling is not None and not np.isfinite(ceiling):
        raise UserError(f"The ceiling must be a finite number, not {ceiling!r}.")
    if int(bootstrap) != bootstrap or not 0 <= bootstrap <= MAX_DRAWS:
        raise UserError(f"--bootstrap must be a whole number from 0 to {MAX_DRAWS:,}, not {bootstrap!r}.",
                        "Use 0 to skip intervals; 1000 (the default) gives steady 90% intervals.")
    if not 0 < level < 1:
        raise UserError(f"The interval level must lie strictly between 0 and 1, not {level!r}.")
    check_seed_flag(seed)


def _loss_floor(series: dict[str, Series], higher_is_better: bool) -> float | None:
    """A lower-is-better metric whose observed values are all ≥ 0 (a loss, an error rate) cannot have a
    floor below 0, so its power law's offset E is bounded at 0; one with negative values is left free."""
    if higher_is_better:
        return None
    ys = [s.y for s in series.values() if len(s.y)]
    return 0.0 if ys and np.min(np.concatenate(ys)) >= 0 else None


@dataclass
class _Choice:
    fit: PointFit
    backtest: Backtest | None
    candidates: dict[str, float | None]
    warnings: list[str]


class _Fitter:
    """One `fit_runs` call: fits, backtests, selection, bootstrap, and the per-language report."""

    def __init__(self, series: dict[str, Series], spec: Spec, law: str, metric: str, x: str):
        self.series, self.spec, self.law, self.metric, self.x = series, spec, law, metric, x
        self._joint: dict[str, PointFit] | None = None

    def _joint_shared(self) -> dict[str, PointFit]:
        """The shared-exponent fit over every language with its own ≥ 3 sizes (computed once)."""
        if self._joint is None:
            data = {lang: (s.x, s.y) for lang, s in self.series.items() if len(s.sizes) >= FULL_SIZES}
            self._joint = self._fit("shared", data)
        return self._joint

    # ------------------------------------------------------------------------------------ fitting

    def _fit(self, law: str, data: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, PointFit]:
        """Fit one law to several languages (jointly for `shared`); returns {} when it cannot be fitted."""
        langs = [lang for lang, (x, _) in data.items() if len(np.unique(x)) >= self.spec.min_sizes(law)]
        if not langs:
            return {}
        pairs = [data[lang] for lang in langs]
        if law == "power":
            return dict(zip(langs, fit_power(pairs, self.spec)))
        if law == "log":
            return dict(zip(langs, fit_log(pairs, self.spec)))
        # shared: the exponent must be identified by at least one language with enough sizes of its own
        if not any(len(np.unique(x)) >= self.spec.min_sizes("power") for x, _ in pairs):
            return {}
        return dict(zip(langs, fit_shared(pairs, self.spec).fits))

    def _backtests(self, law: str, full: list[str]) -> dict[str, Backtest]:
        train, held = {}, {}
        for lang in full:
            s = self.series[lang]
            x_tr, y_tr, x_held, actual = hold_out_largest(s.x, s.y)
            train[lang], held[lang] = (x_tr, y_tr), (x_held, actual)
        fits = self._fit(law, train)
        out = {}
        for lang, fit in fits.items():
            x_held, actual = held[lang]
            predicted = float(fit.curve(self.spec.higher_is_better).predict(x_held))
            out[lang] = make_backtest(x_held, actual, predicted)
        return out

    def run(self, draws: int, seed: int, level: float):
        skipped: dict[str, str] = {}
        full, few = [], []
        for lang, s in self.series.items():
            k = len(s.sizes)
            if k == 0:
                why = "; ".join(s.warnings) or "no runs"
                skipped[lang] = f"no usable runs ({why})"
            elif k == 1:
                skipped[lang] = f"only one distinct size ({self.x} = {s.sizes[0]:g}): a curve needs at least 2"
            elif k < FULL_SIZES:
                few.append(lang)
            else:
                full.append(lang)

        laws = ["power", "log", "shared"] if self.law == "auto" else [self.law]
        if self.law == "auto" and len(full) < 2:
            laws.remove("shared")  # one language "sharing" an exponent is just the power law
        # The log trend of every fitted language, whatever law it gets, is what "gets worse" means.
        trends = self._fit("log", {lang: (self.series[lang].x, self.series[lang].y) for lang in full + few})
        fits = {
            "power": lambda: self._fit("power", {lang: (self.series[lang].x, self.series[lang].y) for lang in full}),
            "log": lambda: {lang: trends[lang] for lang in full},
            "shared": self._joint_shared,
        }
        fits = {law: fits[law]() for law in laws}
        backtests = {law: self._backtests(law, full) for law in laws}

        choices: dict[str, _Choice] = {}
        for lang in full:
            candidates = {law: (backtests[law][lang].abs_error if lang in backtests[law] else None) for law in laws}
            chosen = self._select(lang, candidates, fits)
            if chosen is None:
                skipped[lang] = f"the {self.law} law could not be fitted"
                continue
            choices[lang] = _Choice(fits[chosen][lang], backtests[chosen].get(lang), candidates, [])
        self._fit_few(few, choices, skipped)

        boots = self._bootstrap(choices, draws, seed) if draws > 0 else {}
        languages = {
            lang: self._report(lang, c, boots.get(lang), trends.get(lang), level)
            for lang, c in sorted(choices.items())
        }
        return languages, dict(sorted(skipped.items()))

    def _select(self, lang, candidates, fits) -> str | None:
        if self.law != "auto":
            return self.law if lang in fits[self.law] else None
        n_shared = len(fits.get("shared", {}))
        n_params = {law: self.spec.n_params(law, n_shared) for law in candidates}
        spread = float(np.ptp(self.series[lang].y))
        chosen = choose_law(candidates, n_params, spread)
        if chosen is None:  # nothing could be backtested (cannot happen with ≥ 3 sizes, but stay total)
            chosen = "log"
        return chosen if lang in fits[chosen] else None

    def _fit_few(self, few, choices, skipped) -> None:
        """Languages with two sizes (see module docstring)."""
        if not few:
            return
        data = {lang: (self.series[lang].x, self.series[lang].y) for lang in few}
        shared_alpha = None
        if self.law != "log":
            shared = self._joint_shared()
            shared_alpha = next(iter(shared.values())).params["alpha"] if shared else None
        if shared_alpha is not None:
            fits = dict(zip(few, fit_power(list(data.values()), self.spec, alpha=shared_alpha, law="shared")))
            how = f"fitted with the exponent shared by the languages with ≥{FULL_SIZES} sizes (alpha = {shared_alpha:.4g})"
        elif self.law in ("log", "auto"):
            fits = self._fit("log", data)
            how = "fitted with the two-parameter log law"
        else:
            for lang in few:
                skipped[lang] = (
                    f"only 2 distinct sizes and no language with ≥{FULL_SIZES} sizes to borrow a {self.law} exponent from"
                )
            return
        for lang in few:
            sizes = ", ".join(f"{v:g}" for v in self.series[lang].sizes)
            note = f"only 2 distinct sizes ({sizes}): {how}; no backtest and no interval"
            choices[lang] = _Choice(fits[lang], None, {}, [note])

    # ---------------------------------------------------------------------------------- bootstrap

    def _bootstrap(self, choices: dict[str, _Choice], draws: int, seed: int) -> dict[str, tuple[dict | None, Resampled]]:
        """{language: (parameter draws or None, how they were resampled)} for languages with ≥ 3 sizes."""
        out = {}
        shared_langs = []
        for lang, c in choices.items():
            if len(self.series[lang].sizes) < FULL_SIZES:
                continue  # two sizes: no interval (see module docstring)
            if c.fit.law == "shared":
                shared_langs.append(lang)
                continue
            res = resample(c.fit, self.spec.higher_is_better, draws, language_rng(seed, lang))
            out[lang] = (bootstrap_single(c.fit, res.y, self.spec) if res.y is not None else None, res)
        if shared_langs:
            out.update(self._bootstrap_shared(shared_langs, draws, seed))
        return out

    def _bootstrap_shared(self, wanted: list[str], draws: int, seed: int):
        # The exponent is a joint estimate, so every language of the joint fit is resampled in each draw,
        # whichever law it was finally given; a language that cannot be resampled keeps its own data.
        joint = self._joint_shared()
        langs = list(joint)
        samples = {
            lang: resample(joint[lang], self.spec.higher_is_better, draws, language_rng(seed, lang)) for lang in langs
        }
        Ys = [
            samples[lang].y if samples[lang].y is not None else np.broadcast_to(joint[lang].y, (draws, len(joint[lang].y)))
            for lang in langs
        ]
        params = dict(zip(langs, bootstrap_shared([joint[lang] for lang in langs], Ys, self.spec)))
        return {lang: (params[lang] if samples[lang].y is not None else None, samples[lang]) for lang in wanted}

    # ------------------------------------------------------------------------------------- report

    def _report(self, lang, c: _Choice, boot, trend: PointFit | None, level: float) -> LanguageFit:
        s, spec, fit = self.series[lang], self.spec, c.fit
        curve = fit.curve(spec.higher_is_better)
        residuals = s.y - np.asarray(curve.predict(s.x), dtype=float)
        r2, rmse = goodness(s.y, residuals)
        warnings = list(s.warnings) + list(c.warnings) + list(fit.notes)
        worsens = False
        if trend is not None and spec.sign * trend.params["b"] < 0:
            worsens = True
            per_doubling = abs(trend.params["b"]) * np.log(2.0)
            clamped = fit.family == "power" and fit.params["scale"] <= 0
            warnings.append(
                f"gets worse with more data: the {self.metric} trend {'falls' if spec.higher_is_better else 'rises'} "
                f"by {per_doubling:.3g} per doubling of {self.x}"
                + ("; the power curve is clamped flat (scale 0)" if clamped else "")
            )
        flat = fit.params["scale"] <= 0 if fit.family == "power" else spec.sign * fit.params["b"] == 0
        if flat and not worsens:
            warnings.append(f"flat: no improvement with data detected (the fitted {self.metric} does not change)")
        if fit.family == "power":
            warnings += self._power_flags(fit, s)
        boot_curve, intervals, res = None, {}, None
        if boot is not None:
            params, res = boot
            if params is None:
                warnings.append(res.reason)
            else:
                boot_curve = Curve(fit.family, params, spec.higher_is_better, law=fit.law)
                intervals = {
                    name: tuple(float(v) for v in interval(values, curve.params[name], level, res.df))
                    for name, values in params.items()
                }
        return LanguageFit(
            language=lang,
            law=fit.law,
            curve=curve,
            boot=boot_curve,
            intervals=intervals,
            r2=r2,
            rmse=rmse,
            residuals=[float(v) for v in residuals],
            backtest=c.backtest,
            n_points=int(len(s.y)),
            sizes=[float(v) for v in s.sizes],
            tokens_per_pair=s.tokens_per_pair,
            warnings=warnings,
            candidates=c.candidates,
            level=level,
            bootstrap_method=res.method if boot_curve is not None else None,
            interval_df=res.df if boot_curve is not None else None,
            worsens_with_data=worsens,
        )

    def _power_flags(self, fit: PointFit, s: Series) -> list[str]:
        out = []
        p = fit.params
        if p["scale"] > 0:
            if np.isclose(p["alpha"], ALPHA_BOUNDS[0], rtol=1e-6):
                out.append(
                    f"exponent at its lower bound (alpha = {ALPHA_BOUNDS[0]:g}): the curve is log-like over these sizes"
                )
            elif np.isclose(p["alpha"], ALPHA_BOUNDS[1], rtol=1e-6):
                out.append(
                    f"exponent at its upper bound (alpha = {ALPHA_BOUNDS[1]:g}): the curve saturates within the "
                    "measured sizes"
                )
        if self.spec.ceiling is not None:
            beyond = int(np.sum(self.spec.sign * (s.y - self.spec.ceiling) >= 0))
            if beyond:
                out.append(
                    f"{runs_text(beyond)} at or beyond the fixed asymptote {self.spec.ceiling:g}, "
                    "which the curve never reaches"
                )
        return out
