"""benchmarks/real_curves.py: its careful reference fit, its loaders and its split (the fits see only the
small sizes)."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from real_curves import careful_fit, evaluate, split_curve  # noqa: E402
from real_curves_sources import (SHIPPED, SOURCES, Curve, read_gadre, read_goldfish, read_gordon,  # noqa: E402
                                 read_revisiting_nmt)


def offset_law(x, c, a, alpha, x0, sign):
    return c - sign * a * (np.asarray(x, float) + x0) ** -alpha


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_the_careful_fit_recovers_a_known_offset_law(sign):
    x = 1000.0 * 2.0 ** np.arange(8)
    truth = dict(c=40.0 if sign > 0 else 1.5, a=3.0e3, alpha=0.7, x0=4000.0, sign=sign)
    fit = careful_fit(x, offset_law(x, **truth), higher_is_better=sign > 0)
    assert fit.sse < 1e-12
    assert fit.alpha == pytest.approx(0.7, rel=1e-4) and fit.x0 == pytest.approx(4000.0, rel=1e-3)
    far = 16 * x.max()  # predicts far beyond the fitted sizes
    assert fit.predict(far) == pytest.approx(offset_law(far, **truth), rel=1e-6)


def test_with_few_sizes_the_careful_fit_is_the_plain_power_law_and_respects_a_score_maximum():
    x = np.array([5.0, 10.0, 100.0])
    fit = careful_fit(x, offset_law(x, 30.0, 120.0, 0.2, 0.0, -1.0), higher_is_better=False)
    assert fit.x0 == 0.0 and fit.predict(1000.0) == pytest.approx(offset_law(1000.0, 30.0, 120.0, 0.2, 0.0, -1.0))
    # Scores rising linearly in log x would want an unbounded ceiling; BLEU's is at most 100.
    x = 1e6 * 2.0 ** np.arange(6)
    capped = careful_fit(x, 10.0 + 8.0 * np.log2(x / 1e6), higher_is_better=True, metric_max=100.0)
    assert capped.c <= 100.0


def test_the_shipped_nmt_table_parses():
    source = next(s for s in SOURCES if s.shipped)
    curves = {c.series: c for c in read_revisiting_nmt(source.path(None))}
    assert source.path(None) == SHIPPED / "revisiting_nmt.csv"
    assert sorted(curves) == ["28 Enc, 6 Dec", "6 Enc, 28 Dec", "6 Enc, 6 Dec", "Dec-only", "TEnc-LSTM"]
    assert len(curves["6 Enc, 6 Dec"].x) == 11 and len(curves["28 Enc, 6 Dec"].x) == 10
    six = curves["6 Enc, 6 Dec"]
    assert six.x[0] == 5e5 and six.x[-1] == 5.12e8 and six.y[0] == pytest.approx(0.9311752923076924)
    assert all(np.all(np.diff(c.x) > 0) and np.all((c.y > 0.29) & (c.y < 1.0)) for c in curves.values())


def test_the_shipped_language_model_runs_parse():
    """Gadre et al.'s runs: one series per training set × model, the C4 validation loss (not the other
    seven evaluations of the same run), x = the run's training tokens."""
    source = next(s for s in SOURCES if s.name == "gadre-lm")
    assert source.path(None) == SHIPPED / "gadre_scaling_runs.csv"
    curves = {c.series: c for c in read_gadre(source.path(None))}
    assert len(curves) == 18 and sum(len(c.x) > 2 for c in curves.values()) == 12
    small = curves["rpj d=96_l=8_h=4 (11M)"]
    assert len(small.x) == 8 and small.x[0] == 52846560 and small.x[-1] == 128 * small.x[0]
    assert small.y[0] == pytest.approx(6.123879526201114) and np.all(np.diff(small.y) < 0)
    assert len(curves["c4_original d=1024_l=24_h=8 (412M)"].x) == 7


def test_the_fetch_only_formats_parse(tmp_path):
    gordon = tmp_path / "summary"
    gordon.write_text("# Constant branch point: BPE=BPE.30000\n"
                      "DataPercent\tFeedForward\tLang\tLayers\tModelSize\tbleu_dev\tdata_bytes\tent_dev\n"
                      "100\t2048\tdeen\t6\t512\t39.2\t2000\t1.4\n0.1\t2048\tdeen\t6\t512\t4.7\t2\t6.3\n"
                      "50\t2048\tdeen\t6\t512\t--\t1000\t1.5\n")
    (bleu,) = read_gordon(gordon, "bleu_dev")
    assert bleu.series == "deen L6 d512 ff2048" and list(bleu.x) == [2.0, 2000.0] and list(bleu.y) == [4.7, 39.2]
    assert list(read_gordon(gordon, "ent_dev")[0].x) == [2.0, 1000.0, 2000.0]
    goldfish = tmp_path / "flores.tsv"
    goldfish.write_text("flores_lang\tgoldfish_used\tgoldfish_5mb\tgoldfish_10mb\tgoldfish_100mb\tgoldfish_full\t"
                        "goldfish_1000mb\n"
                        "afr_latn\tafr_latn\t127\t119\t93\t\t80\n"  # its own models, all four sizes
                        "ace_arab\turd_arab\t349\t341\t308\t\t287\n"  # another language's models
                        "ace_latn\tace_latn\t174\t165\t\t144\t\n")  # no 1000 MB model
    (curve,) = read_goldfish(goldfish)
    assert curve.series == "afr_latn" and list(curve.x) == [5, 10, 100, 1000] and list(curve.y) == [127, 119, 93, 80]


def test_the_split_fits_only_the_sizes_at_most_an_eighth_of_the_largest():
    x = 2.0 ** np.arange(11)  # 1 … 1024
    split = split_curve(Curve("s", x, np.ones_like(x)))
    assert list(x[split.fit]) == [1, 2, 4, 8, 16, 32, 64, 128]
    assert list(split.fold) == [2.0, 4.0, 8.0]
    assert split_curve(Curve("s", np.array([1.0, 2.0, 100.0]), np.ones(3))) is None  # two small sizes: no fit


def test_held_out_values_reach_neither_fit():
    """Corrupting every held-out value changes no prediction: the fits saw only the small sizes."""
    x = 1e4 * 2.0 ** np.arange(8)
    truths = [(45.0, 2e3, 0.5, 3e4), (38.0, 9e2, 0.45, 1e4), (52.0, 5e3, 0.6, 6e4)]
    curves = [Curve(f"l{i}", x, offset_law(x, c, a, al, x0, 1.0) + 0.2 * np.sin(np.arange(8) + i))
              for i, (c, a, al, x0) in enumerate(truths)]
    corrupt = [replace(c, y=np.where(c.x > c.x.max() / 8 * 1.02, 1e6, c.y)) for c in curves]
    source = replace(next(s for s in SOURCES if s.name == "gordon-bleu"), read=None)
    _, clean = evaluate(source, curves, draws=50)
    _, dirty = evaluate(source, corrupt, draws=50)
    assert len(clean) == 9 and [p.x for p in clean] == [p.x for p in dirty]
    assert [(p.default, p.lo, p.hi, p.careful) for p in clean] == [(p.default, p.lo, p.hi, p.careful) for p in dirty]
    assert all(p.actual == 1e6 for p in dirty)


def test_the_variants_score_intervals_properly_and_scale_languages_by_their_own_backtest():
    """benchmarks/real_curves_variants.py: the interval score charges 20x a miss at 90%, and the
    hierarchical rule gives a language whose backtest erred more a wider predictive scale."""
    from real_curves_variants import Case, hierarchical, interval_score

    lo, hi = np.array([0.0, 0.0]), np.array([1.0, 1.0])
    np.testing.assert_allclose(interval_score(lo, hi, np.array([0.5, 1.5])), [1.0, 1.0 + 20 * 0.5])
    rng = np.random.default_rng(0)
    cases = [Case(f"l{i}", float(e), 1.0, 0.0) for i, e in enumerate(rng.standard_normal(30))]
    cases.append(Case("wild", 6.0, 1.0, 0.0))
    scales = hierarchical(cases)
    assert set(scales) == {c.language for c in cases}
    calm = min(cases[:-1], key=lambda c: abs(c.error)).language
    assert scales["wild"].scale > 1.5 * scales[calm].scale
    assert all(e.languages == scales["wild"].languages for e in scales.values())  # one population's dof

