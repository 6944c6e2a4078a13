"""The target objective under uncertain curves (planner/allocation/targets.py): each language gets the
fewest pairs at which a share q of the fits' draws reach its target; judged against closed forms, a
hand-built posterior whose mean curve misleads, and true curves (research/truths_target.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.errors import UserError
from fits import fit_runs
from fits.laws import Curve
from planner.allocation import LanguageLimits, allocate, write_allocation
from planner.allocation.curves import CurveBank, ExpectedCurves
from planner.allocation.targets import check_confidence, target_needs
from planner.allocation.solver import solve_target
from planner.cli import main
from research.truths import FAMILIES, simulate_runs
from research.truths_heldout import HELD_OUT
from research.truths_maxmin import scorer
from research.truths_target import draw_targets, true_needs
from tests.test_allocation_plan import fitset, power as fitted_power

ALPHA, SCALE = 0.5, 400.0


def _bank(offsets: np.ndarray) -> CurveBank:
    """(R, 1) draws C_r − A·x^−α with a common A and α: draw r needs ((C_r − t)/A)^(−1/α) pairs for t < C_r."""
    r = len(offsets)
    return CurveBank.from_curves([Curve("power", {"offset": offsets, "scale": np.full(r, SCALE),
                                                  "alpha": np.full(r, ALPHA)})], [1.0])


def _closed_form_need(offsets: np.ndarray, t: float) -> np.ndarray:
    gap = offsets - t
    with np.errstate(over="ignore"):
        return np.where(gap > 0, (np.maximum(gap, 1e-300) / SCALE) ** (-1 / ALPHA), np.inf)


@pytest.mark.parametrize("q", [0.1, 0.5, 0.77, 0.9])
def test_the_confidence_need_is_the_kth_smallest_need_of_the_draws(q):
    offsets = np.random.default_rng(3).uniform(44.0, 60.0, 200)  # 1 in 16 draws levels off below the target
    curves = ExpectedCurves.from_bank(_bank(offsets))
    t = 45.0
    needs = np.sort(_closed_form_need(offsets, t))
    k = int(np.ceil(q * len(offsets)))  # the first k draws reach t there: a share k/R ≥ q
    got = curves.pairs_reaching(np.array([t]), q)[0]
    assert got == pytest.approx(needs[k - 1], rel=1e-9)
    assert curves.reach_share(np.array([got]), np.array([t]))[0] == pytest.approx(k / len(offsets))
    assert curves.reach_share(np.array([got * 0.999]), np.array([t]))[0] < q


def test_too_many_draws_below_the_target_make_it_unreachable_at_that_confidence():
    offsets = np.r_[np.full(55, 44.0), np.full(45, 60.0)]  # 55% of the draws level off below 45
    curves = ExpectedCurves.from_bank(_bank(offsets))
    assert np.isinf(curves.pairs_reaching(np.array([45.0]), 0.5)[0])
    assert curves.pairs_reaching(np.array([45.0]), 0.4)[0] == pytest.approx(_closed_form_need(np.array([60.0]), 45.0)[0])


def test_draws_that_do_not_improve_are_left_out_of_the_share():
    offsets = np.full(10, 60.0)
    scale = np.r_[np.full(4, -SCALE), np.full(6, SCALE)]  # 4 draws fall with data: not usable
    bank = CurveBank.from_curves([Curve("power", {"offset": offsets, "scale": scale, "alpha": np.full(10, ALPHA)})], [1.0])
    curves = ExpectedCurves.from_bank(bank)
    need = _closed_form_need(np.array([60.0]), 50.0)[0]
    assert curves.pairs_reaching(np.array([50.0]), 0.9)[0] == pytest.approx(need)
    assert curves.reach_share(np.array([need]), np.array([50.0]))[0] == pytest.approx(1.0)


def test_the_mean_curve_can_cross_a_target_most_draws_never_reach():
    """The rule before the confidence existed inverted the mean of the draws: with 55% of the draws
    levelling off below the target and 45% above, the mean curve still crosses it, 30× beyond the need of
    the draws that do reach it, where 45% of the draws reach it. At q = 0.5 the target is unreachable."""
    offsets = np.r_[np.full(55, 44.0), np.full(45, 47.0)]
    curves = ExpectedCurves.from_bank(_bank(offsets))
    t = np.array([45.0])
    lo, hi, cost = np.zeros(1), np.full(1, np.inf), np.ones(1)
    mean_rule = solve_target(curves, cost, lo, hi, t)
    assert mean_rule.reachable[0] and mean_rule.pairs[0] > 20 * _closed_form_need(np.array([47.0]), 45.0)[0]
    assert curves.reach_share(mean_rule.pairs, t)[0] == pytest.approx(0.45)
    median = solve_target(curves, cost, lo, hi, t, target_needs(curves, t, 0.5))
    assert not median.reachable[0] and median.pairs[0] == 0.0


def _posterior_fits():
    rng = np.random.default_rng(0)
    truth = {"de": (60.0, 400.0, 0.5), "hi": (45.0, 300.0, 0.4)}
    boots = {k: Curve("power", {"offset": c + rng.normal(0, 1.5, 400), "scale": a * np.exp(rng.normal(0, 0.1, 400)),
                                "alpha": al * np.exp(rng.normal(0, 0.1, 400))}) for k, (c, a, al) in truth.items()}
    return fitset({k: fitted_power(*v) for k, v in truth.items()}, boots, {"de": 20.0, "hi": 40.0})


def test_a_higher_confidence_buys_more_and_reports_its_share(tmp_path):
    fits = _posterior_fits()
    targets = {"de": 50.0, "hi": 38.0}
    plans = {q: allocate(fits, budget=1e9, objective="target", targets=targets, target_confidence=q) for q in (0.5, 0.9)}
    for q, plan in plans.items():
        for p in plan.languages:
            assert p.p_reach >= q  # rounded up to whole pairs: at least the share asked for
    low, high = ({p.language: p.pairs for p in plans[q].languages} for q in (0.5, 0.9))
    assert all(high[k] > 1.2 * low[k] for k in targets)
    assert plans[0.9].objective_value > plans[0.5].objective_value  # the budget the targets need
    write_allocation(plans[0.9], tmp_path / "a.csv")
    table = pd.read_csv(tmp_path / "a.csv")
    assert (table.p_reach >= 0.9).all()


def test_an_unreachable_target_names_its_confidence_and_share():
    fits = _posterior_fits()
    plan = allocate(fits, budget=1e9, objective="target", targets={"de": 61.5, "hi": 38.0}, target_confidence=0.5)
    note = [w for w in plan.warnings if w.startswith("de: target 61.5 is unreachable within any amount of data")]
    assert note and "at 50% confidence" in note[0] and "reach it within 1e+15 pairs" in note[0]
    share = float(note[0].split("only ")[1].split("%")[0]) / 100  # ~16% of draws have a ceiling above 61.5
    assert 0.05 < share < 0.5
    assert {p.language: p.pairs for p in plan.languages}["de"] == 0


@pytest.mark.parametrize("value", [0.0, 1.0, 1.5, -0.1, "high", None, float("nan")])
def test_a_confidence_outside_zero_one_is_refused(value):
    with pytest.raises(UserError, match="strictly between 0 and 1"):
        check_confidence(value, "expected")


def test_the_point_fit_has_no_confidence_but_the_median():
    assert check_confidence(0.5, "mean") == 0.5
    with pytest.raises(UserError, match="needs the fits' draws"):
        allocate(_posterior_fits(), budget=1e9, objective="target", targets={"de": 50.0}, risk="mean", target_confidence=0.9)


def test_the_cli_refuses_a_bad_confidence_and_writes_nothing(tmp_path, capsys):
    from fits import save_fits

    save_fits(_posterior_fits(), tmp_path / "fits.json")
    (tmp_path / "t.csv").write_text("language,target\nde,50\n")
    out = tmp_path / "allocation.csv"
    code = main(["allocate", str(tmp_path / "fits.json"), "--budget", "1e9", "--objective", "target", "--targets",
                 str(tmp_path / "t.csv"), "--target-confidence", "1.5", "--out", str(out)])
    assert code == 2 and not out.exists()
    assert "strictly between 0 and 1" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ on true curves


@pytest.mark.parametrize("family", ["caps-and-floors", "steep-low-ceilings", "pretrained-offset", "log-like"])
def test_true_needs_match_the_closed_form_inverse_inside_the_laws(family):
    rng = np.random.default_rng(5)
    world = FAMILIES[family].draw(rng)
    targets = draw_targets(world, rng)
    lo, hi = world.bounds()
    closed = np.maximum(world.bank().pairs_at_utility(targets), lo)
    need = true_needs(world, targets)
    np.testing.assert_allclose(need, closed, rtol=1e-9)
    assert np.all(need <= hi * (1 + 1e-12))  # every drawn target is reachable within the cap


def test_true_needs_find_where_a_dipping_curve_climbs_back():
    world = HELD_OUT["dip-then-rise"].draw(np.random.default_rng(2))
    score = scorer(world)
    x = np.linspace(0.0, 20_000.0, 200_001)[:, None] * np.ones(world.n)
    table = score(x)
    targets = table[0] + 0.5  # half a point above the zero-shot score: inside or after the dip
    need = true_needs(world, targets)
    first = x[np.argmax(table >= targets, axis=0), np.arange(world.n)]
    assert np.all(need <= first + 1e-9) and np.all(need >= first - 0.1 - 1e-9)  # within the brute-force grid step


def test_on_true_curves_a_higher_confidence_reaches_more_targets():
    """Four worlds of one family: the share of planned targets the true curves reach rises from about one
    half at q = 0.5 to near 0.9 at q = 0.9 (benchmarks/target_calibration.py measures every family)."""
    reached = {0.5: [], 0.9: []}
    rng = np.random.default_rng(11)
    for _ in range(4):
        world = FAMILIES["moderate-high-ceilings"].draw(rng)
        runs = simulate_runs(world, rng)
        targets = draw_targets(world, rng)
        fits = fit_runs(runs.astype(str), "chrf", seed=0)
        lo, hi = world.bounds()
        limits = {k: LanguageLimits(min_pairs=float(a) or None, max_pairs=None if not np.isfinite(b) else float(b))
                  for k, a, b in zip(world.languages, lo, hi)}
        for q in reached:
            plan = allocate(fits, budget=1e14, objective="target", targets=dict(zip(world.languages, targets)),
                            limits=limits, target_confidence=q)
            flagged = {w.split(":")[0] for w in plan.warnings if "is unreachable within" in w}
            got = scorer(world)(np.array([p.pairs for p in plan.languages]))
            keep = np.array([p.language not in flagged for p in plan.languages])
            reached[q] += list(got[keep] >= targets[keep])
    low, high = np.mean(reached[0.5]), np.mean(reached[0.9])
    # About 35 targets: seed 11 gives 0.89 at q = 0.9, neighbouring seeds 0.76–0.83 (the draws are somewhat
    # overconfident beyond the measured sizes, docs/results/synthetic-truths.md), so the bounds leave room for that.
    assert 0.3 <= low <= 0.7 and high >= 0.7 and high >= low + 0.2


def test_a_need_beyond_the_most_any_plan_gives_is_unreachable():
    """A target a hair below a point fit's ceiling needs ~1e20 pairs by the closed form; the planner plans
    at most MAX_PAIRS of a language, so it is declared unreachable instead of planned (a benchmark world
    once produced a plan of 4e15 pairs this way)."""
    from planner.allocation.curves import MAX_PAIRS

    bank = CurveBank.from_curves([Curve("power", {"offset": 60.0, "scale": SCALE, "alpha": ALPHA})], [1.0])
    t = np.array([60.0 - SCALE * 1e-10])  # ((C − t)/A)^(−1/α) = 1e20 pairs
    assert bank.pairs_at_utility(t)[0] > MAX_PAIRS
    sol = solve_target(bank, np.ones(1), np.zeros(1), np.full(1, np.inf), t)
    assert not sol.reachable[0] and sol.pairs[0] == 0.0


def test_a_loss_target_is_reached_from_above():
    """For a loss (lower is better) the target is a loss to get below: the same rule, in utility terms."""
    rng = np.random.default_rng(4)
    boot = Curve("power", {"offset": 2.0 + rng.normal(0, 0.05, 400), "scale": 30.0 * np.exp(rng.normal(0, 0.1, 400)),
                           "alpha": 0.4 * np.exp(rng.normal(0, 0.1, 400))}, False)
    fits = fitset({"de": Curve("power", {"offset": 2.0, "scale": 30.0, "alpha": 0.4}, False)}, {"de": boot},
                  {"de": 20.0}, higher=False)
    plans = {q: allocate(fits, budget=1e9, objective="target", targets={"de": 2.6}, target_confidence=q)
             for q in (0.5, 0.9)}
    low, high = (plans[q].languages[0] for q in (0.5, 0.9))
    assert high.pairs > low.pairs > 0 and low.p_reach >= 0.5 and high.p_reach >= 0.9
    losses = boot.predict(high.pairs)  # each draw's loss at the planned pairs
    assert np.mean(losses <= 2.6) == pytest.approx(high.p_reach)


def test_the_benchmark_judges_every_method_on_the_true_curves(tmp_path, capsys):
    """`benchmarks/target_calibration.py`: one row per target and method; a target counts as reached
    exactly when its planned pairs reach the true need (these curves rise), and a higher confidence
    never plans less for a target."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from target_calibration import METHODS, main  # noqa: PLC0415

    out = tmp_path / "t.csv.gz"
    assert main(["--instances", "2", "--families", "four-languages", "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert set(table.method) == set(METHODS) and len(table) == 2 * 4 * len(METHODS)
    planned = table[np.isfinite(table.pairs)]
    assert (planned.reached == (planned.pairs >= planned.need * (1 - 1e-6))).all()
    wide = table.pivot_table(index=["instance", "language"], columns="method", values="pairs")
    assert (wide["q 0.9"].fillna(np.inf) >= wide["q 0.5 (default)"] - 1e-6).all()
    printed = capsys.readouterr().out
    assert (tmp_path / "t.md").is_file() and "| four-languages | q 0.9 |" in printed
    assert (table.largest_run == 3200).all() and "| true need / largest size" in printed


def _fits_with_share_never_reaching(share_below: float, n: int = 1000):
    """One language whose draws all share A and α; a share of them level off below 45 (they never reach a
    target of 45), the rest above."""
    below = int(round(share_below * n))
    offsets = np.r_[np.full(below, 44.0), np.random.default_rng(1).uniform(47.0, 60.0, n - below)]
    boot = Curve("power", {"offset": offsets, "scale": np.full(n, SCALE), "alpha": np.full(n, ALPHA)})
    return fitset({"de": fitted_power(52.0, SCALE, ALPHA)}, {"de": boot}, {"de": 10.0})


@pytest.mark.parametrize("q", [0.5, 0.9])
def test_the_plan_lies_inside_its_allocation_interval(q):
    """The allocation interval of a target plan is the spread of the draws' own needs (a draw that never
    reaches the target needs +inf, not the floor), so the plan — their q-quantile — lies inside it. (Before,
    each draw was re-solved and one that never reached was put at the floor: at q = 0.9 with 8% of the draws
    below the target the plan was 105,520 pairs against an interval of [0, 40,710].)"""
    plan = allocate(_fits_with_share_never_reaching(0.08), budget=1e9, objective="target", targets={"de": 45.0},
                    target_confidence=q)
    de = plan.languages[0]
    assert de.pairs_low <= de.pairs <= de.pairs_high and np.isinf(de.pairs_high)  # 8% > the 5% upper tail
    assert de.pairs_low > 0


def test_a_budget_that_pays_the_exact_need_but_not_its_rounding_is_refused():
    """The plan trains whole pairs, rounded up; a budget between the exact and the rounded cost used to
    round the language down, below its target and its confidence, with no warning."""
    fits = _fits_with_share_never_reaching(0.0)
    exact = allocate(fits, budget=1e9, objective="target", targets={"de": 45.0}, target_confidence=0.9)
    de = exact.languages[0]
    assert de.pairs == np.ceil(de.pairs_exact) > de.pairs_exact
    with pytest.raises(UserError, match=f"at least {int(de.pairs) * 10:,}"):
        allocate(fits, budget=de.pairs_exact * 10.0, objective="target", targets={"de": 45.0}, target_confidence=0.9)
    enough = allocate(fits, budget=de.pairs * 10.0, objective="target", targets={"de": 45.0}, target_confidence=0.9)
    assert enough.languages[0].pairs == de.pairs and enough.languages[0].p_reach >= 0.9


def test_fits_without_draws_say_so_when_a_confidence_is_asked():
    fits = fitset({"de": fitted_power(52.0, SCALE, ALPHA)}, None, {"de": 10.0})  # as planner fit --bootstrap 0
    with pytest.raises(UserError, match="these fits have none"):
        allocate(fits, budget=1e9, objective="target", targets={"de": 45.0}, target_confidence=0.9)
    plan = allocate(fits, budget=1e9, objective="target", targets={"de": 45.0})  # the median: the point fit
    assert np.isnan(plan.languages[0].p_reach) and plan.languages[0].pairs > 0


def test_the_unreachable_notes_give_the_right_reason():
    none_improve = Curve("power", {"offset": np.full(50, 60.0), "scale": np.full(50, -SCALE), "alpha": np.full(50, ALPHA)})
    fits = fitset({"de": fitted_power(52.0, SCALE, ALPHA)}, {"de": none_improve}, {"de": 10.0})
    plan = allocate(fits, budget=1e9, objective="target", targets={"de": 45.0})
    assert any("none of its fits' draws improves with data" in w for w in plan.warnings)
    assert not any("nan%" in w for w in plan.warnings)
    point = fitset({"de": fitted_power(60.0, SCALE, ALPHA)}, None, {"de": 10.0})
    far = allocate(point, budget=1e9, objective="target", targets={"de": 60.0 - SCALE * 1e-10}, risk="mean")
    assert any("the fitted curve needs 1e+20 pairs" in w for w in far.warnings)
    above = allocate(point, budget=1e9, objective="target", targets={"de": 61.0}, risk="mean")
    assert any("above the fitted curve's ceiling" in w for w in above.warnings)


def test_the_why_of_a_target_plan_names_its_rule_and_target():
    """Not the sum objective's reasons (steeper/flatter curve than the median language), which say nothing
    about a plan that buys each language its target."""
    plan = allocate(_posterior_fits(), budget=1e9, objective="target", targets={"de": 50.0, "hi": 61.0},
                    target_confidence=0.9)
    why = {p.language: p.why for p in plan.languages}
    assert "the fewest pairs at which 90% of the fits' draws reach its target of 50 chrf" in why["de"]
    assert "its target 61 is out of reach" in why["hi"]
    assert not any("curve:" in w for w in why.values())
    point = allocate(_posterior_fits(), budget=1e9, objective="target", targets={"de": 50.0}, risk="mean")
    assert "at which its fitted curve reaches its target of 50 chrf" in point.languages[0].why
    assert "no target, kept at its floor" in point.languages[1].why


def test_an_open_interval_reads_as_open_everywhere(tmp_path):
    """A target some draws never reach has an allocation interval [x, ∞): the text plan, the report's
    table and its figure say so (the figure used to drop the whole whisker), and the why-lines compare
    with an equal split of what the plan spends, not of a budget that is only a ceiling."""
    from planner.allocation import format_result
    from reports.plan_figures import _error_bars
    from reports.style import fmt_interval
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plan = allocate(_fits_with_share_never_reaching(0.08), budget=1e13, objective="target", targets={"de": 45.0},
                    target_confidence=0.915)  # 92% of the draws ever reach it
    de = plan.languages[0]
    assert np.isinf(de.pairs_high) and de.pairs > 0
    text = format_result(plan)
    assert f"[{de.pairs_low:,.0f}, ∞)" in text and "at least 91.5% of" in text
    assert fmt_interval(de.pairs, de.pairs_low, de.pairs_high, 4).endswith(", ∞)")
    assert "the same as an equal share" in de.why  # one language: the plan's spend split equally is itself
    fig, ax = plt.subplots()
    ax.bar([0], [de.pairs])
    _error_bars(ax, [0], [de.pairs], [de.pairs_low], [de.pairs_high])
    (bars,) = [c for c in ax.collections if hasattr(c, "get_segments") and c.get_segments()]
    (segment,) = bars.get_segments()
    assert segment[0][1] == pytest.approx(de.pairs_low) and segment[1][1] > de.pairs
    plt.close(fig)
