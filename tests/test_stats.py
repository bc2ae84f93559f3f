"""Statistics over seeds, against values worked out by hand (each test's docstring shows the arithmetic)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest import REPO
from scipy import stats as scipy_stats
from statsmodels.formula.api import ols

from normstudy.analysis.stats import (
    adjusted,
    compare_pair,
    compare_variants,
    pooled_sd,
    resolvable_margin,
    t_interval,
    t_test_power,
    tost_power,
)

T_975_DF2 = 4.302653  # Student's t, 97.5th percentile, 2 degrees of freedom (printed tables)


def test_t_interval_of_one_two_three() -> None:
    """mean 2, sd 1, standard error 1/sqrt(3) = 0.577350; half-width 4.302653 x 0.577350 = 2.484138."""
    low, high = t_interval(np.array([1.0, 2.0, 3.0]))
    assert low == pytest.approx(2 - 2.484138, abs=1e-6) and high == pytest.approx(2 + 2.484138, abs=1e-6)


def test_t_interval_needs_two_values_and_is_zero_wide_without_spread() -> None:
    assert all(math.isnan(v) for v in t_interval(np.array([99.4])))
    assert t_interval(np.array([99.4, 99.4, 99.4])) == (99.4, 99.4)


def series(values: list[float], seeds: list[int]) -> pd.Series:
    return pd.Series(values, index=pd.Index(seeds, name="seed"))


def test_paired_t_test_by_hand() -> None:
    """a = 1, 2, 3 and b = 0, 0, 1 on seeds 1-3: differences 1, 2, 2.

    mean 5/3; sd sqrt(((1 - 5/3)^2 + 2 (1/3)^2) / 2) = sqrt(1/3); standard error 1/3; t = 5, df 2.
    For 2 df the t CDF is 1/2 + t / (2 sqrt(2 + t^2)), so p = 2 (1/2 - 5 / (2 sqrt 27)) = 0.037750.
    95 % CI: 5/3 -+ 4.302653 / 3 = 0.232449 to 3.100884.
    """
    row = compare_pair(series([1, 2, 3], [1, 2, 3]), series([0, 0, 1], [1, 2, 3]))
    assert row["paired"] is True and row["n_a"] == row["n_b"] == 3
    assert row["diff_mean"] == pytest.approx(5 / 3)
    assert row["p_value"] == pytest.approx(1 - 5 / math.sqrt(27), abs=1e-9)
    assert row["ci95_low"] == pytest.approx(5 / 3 - T_975_DF2 / 3, abs=1e-6)
    assert row["ci95_high"] == pytest.approx(5 / 3 + T_975_DF2 / 3, abs=1e-6)


def test_welch_t_test_by_hand() -> None:
    """a = 1, 2, 3 (seeds 1-3) and b = 2, 4, 6, 8 (seeds 4-7): no common seeds, so Welch.

    variances 1 and 20/3; standard error sqrt(1/3 + 5/3) = sqrt 2; t = (2 - 5) / sqrt 2 = -2.121320.
    Welch-Satterthwaite df = 2^2 / ((1/3)^2 / 2 + (5/3)^2 / 3) = 4 / (1/18 + 25/27) = 4.075472.
    """
    row = compare_pair(series([1, 2, 3], [1, 2, 3]), series([2, 4, 6, 8], [4, 5, 6, 7]))
    df, t = 4 / (1 / 18 + 25 / 27), -3 / math.sqrt(2)
    assert row["paired"] is False and row["diff_mean"] == pytest.approx(-3)
    assert row["p_value"] == pytest.approx(2 * scipy_stats.t.sf(abs(t), df), rel=1e-9)
    half = scipy_stats.t.ppf(0.975, df) * math.sqrt(2)
    assert (row["ci95_low"], row["ci95_high"]) == pytest.approx((-3 - half, -3 + half), rel=1e-9)


def test_paired_differences_without_spread_have_no_p_value() -> None:
    row = compare_pair(series([1, 2, 3], [1, 2, 3]), series([0, 1, 2], [1, 2, 3]))
    assert row["paired"] and row["ci95_low"] == row["ci95_high"] == 1 and math.isnan(row["p_value"])


def test_one_seed_each_cannot_be_compared() -> None:
    row = compare_pair(series([99.4], [1]), series([99.3], [1]))
    assert not row["paired"] and math.isnan(row["p_value"]) and math.isnan(row["ci95_low"])
    assert row["diff_mean"] == pytest.approx(0.1)


def test_benjamini_hochberg_by_hand() -> None:
    """p = .01, .04, .03, .005 (m = 4). Sorted: .005, .01, .03, .04 times m / rank: .02, .02, .04, .04;
    running minimum from the largest rank down keeps them. Back in the original order: .02, .04, .04, .02.
    """
    np.testing.assert_allclose(adjusted([0.01, 0.04, 0.03, 0.005], "fdr_bh"), [0.02, 0.04, 0.04, 0.02])
    # Step-up: a larger p can lower a smaller one's adjustment. .01 x 3/1 = .03, .02 x 3/2 = .03, .03 x 3/3 = .03.
    np.testing.assert_allclose(adjusted([0.02, 0.01, 0.03], "fdr_bh"), [0.03, 0.03, 0.03])
    # And scipy's own Benjamini-Hochberg agrees, NaN left out.
    p_values = [0.2, 0.001, math.nan, 0.04, 0.03]
    tested = [p for p in p_values if not math.isnan(p)]
    expected = scipy_stats.false_discovery_control(tested, method="bh")
    np.testing.assert_allclose([p for p in adjusted(p_values, "fdr_bh") if not math.isnan(p)], expected)


def test_compare_variants_adjusts_only_tested_pairs() -> None:
    """Three variants on seeds 1-3; c ran seed 1 only, so its two pairs have no p-value and m = 1."""
    runs = pd.DataFrame(
        {
            "variant": ["a"] * 3 + ["b"] * 3 + ["c"],
            "seed": [1, 2, 3, 1, 2, 3, 1],
            "test_acc": [1.0, 2.0, 3.0, 0.0, 0.0, 1.0, 5.0],
        }
    )
    table = compare_variants(runs)
    assert list(zip(table["variant_a"], table["variant_b"], strict=True)) == [("a", "b"), ("a", "c"), ("b", "c")]
    assert table.loc[0, "p_adjusted"] == pytest.approx(table.loc[0, "p_value"])  # one test: nothing to adjust
    assert table["p_adjusted"].isna().tolist() == [False, True, True]
    assert table["significant"].tolist() == [True, False, False]  # p = 0.0378 < 0.05


def test_power_of_a_paired_t_test_matches_a_simulation() -> None:
    """10 pairs, true difference 1 sd: the classic power of about 0.80, checked by simulating 40,000 studies."""
    rng = np.random.default_rng(0)
    diffs = rng.normal(1.0, 1.0, size=(40_000, 10))
    t = diffs.mean(axis=1) / (diffs.std(axis=1, ddof=1) / math.sqrt(10))
    simulated = float(np.mean(np.abs(t) > scipy_stats.t.ppf(0.975, 9)))
    # The effect in standard errors of the mean difference: 1 sd / (1 sd / sqrt(10)).
    assert t_test_power(math.sqrt(10), 9) == pytest.approx(simulated, abs=0.01)
    assert t_test_power(math.sqrt(10), 9) == pytest.approx(0.80, abs=0.01)


def test_pooled_sd_by_hand_and_as_the_one_way_anovas_residual() -> None:
    """a = 1, 2, 3 (variance 1, df 2); b = 0, 0, 1 (1/3, df 2); c = 5 (one value: no df). Pooled:
    sqrt((2 x 1 + 2 x 1/3) / 4) = sqrt(2/3), df 4."""
    runs = pd.DataFrame({"group": ["a"] * 3 + ["b"] * 3 + ["c"], "value": [1, 2, 3, 0, 0, 1, 5]})
    sd, df = pooled_sd(runs.groupby("group")["value"])
    assert sd == pytest.approx(math.sqrt(2 / 3)) and df == 4
    # statsmodels' one-way model: its residual mean square is the pooled variance.
    fit = ols("value ~ C(group)", data=runs).fit()
    assert sd**2 == pytest.approx(fit.mse_resid) and df == fit.df_resid
    assert pooled_sd(runs[runs["group"] == "c"].groupby("group")["value"])[1] == 0


@pytest.mark.parametrize(
    ("se", "df", "margin", "alpha", "difference"),
    [(0.08 * math.sqrt(2 / 3), 8, 0.2, 0.0125, 0.0), (0.065, 8, 0.2, 0.05, 0.05), (0.03, 2, 0.2, 0.0125, 0.0)],
)
def test_tost_power_is_the_procedures_rate_of_declaring_equivalence(
    se: float, df: int, margin: float, alpha: float, difference: float
) -> None:
    # The procedure itself, simulated: an estimate around the true difference, its own standard error from a
    # chi-square, and both one-sided t-tests rejecting at alpha.
    generator = np.random.default_rng(7)
    draws = 200_000
    estimate = generator.normal(difference, se, draws)
    estimated_se = se * np.sqrt(generator.chisquare(df, draws) / df)
    critical = scipy_stats.t.ppf(1 - alpha, df)
    rate = np.mean(((estimate + margin) / estimated_se > critical) & ((margin - estimate) / estimated_se > critical))
    assert tost_power(se, df, margin, alpha, difference) == pytest.approx(rate, abs=0.005)


def test_the_resolvable_margin_is_where_the_tost_power_reaches_80_percent() -> None:
    se, df = 0.08 * math.sqrt(2 / 3), 8
    margin = resolvable_margin(se, df, 0.0125)
    assert tost_power(se, df, margin, 0.0125) == pytest.approx(0.8, abs=1e-6)
    assert margin > 0.2 > resolvable_margin(se / 2, 18, 0.0125)  # three seeds fall short at sd 0.08; more reach it
    assert math.isnan(tost_power(0.0, 8, 0.2)) and math.isnan(resolvable_margin(0.05, 0))


def test_the_confirmatory_studys_power_figures() -> None:
    # studies/confirmatory.yaml's header: at sd 0.043 and 0.080, a contrast's se is sd * sqrt(2 / seeds) on
    # 5 * (seeds - 1) df (six variants with the control, variant + seed model), TOST at Holm's first level over the
    # five comparisons.
    header = " ".join(line.lstrip("# ") for line in (REPO / "studies" / "confirmatory.yaml").read_text().splitlines())
    figures = {(sd, seeds): tost_power(sd * math.sqrt(2 / seeds), 5 * (seeds - 1), 0.2, 0.05 / 5)
               for sd in (0.043, 0.080) for seeds in (3, 5, 10)}  # fmt: skip
    assert (round(figures[(0.043, 3)], 2), round(figures[(0.080, 3)], 2)) == (0.99, 0.33)
    assert (round(figures[(0.043, 5)], 2), round(figures[(0.080, 5)], 2)) == (1.00, 0.82)
    assert (round(figures[(0.043, 10)], 2), round(figures[(0.080, 10)], 3)) == (1.00, 0.998)
    assert "probability 0.99 to 0.33" in header and "five with 1.00 to 0.82, ten with 1.00 to 0.998" in header
