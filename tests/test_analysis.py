"""The pre-declared analysis against reference computations: statsmodels' formula OLS for the two-way model,
scipy's paired t-test and statsmodels' TOST for two variants, statsmodels' power solver for the detectable difference,
and the analytic spread of a mean over test images for the bootstrap."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from helpers import tiny_settings
from scipy import stats
from statsmodels.stats.power import TTestPower
from statsmodels.stats.weightstats import ttost_paired

from normstudy.analysis.declared import (
    detectable,
    family_table,
    fit_model,
    held_equal,
    prediction_interval,
    sensitivity,
    tost_p,
)
from normstudy.analysis.stats import resolvable_margin, tost_power
from normstudy.config.study import Plan

# The previous release's fresh-clone study (docs/measurements.md, "Earlier runs"): final test accuracy (%) of 5
# variants x seeds 1-3.
ACCURACY = {
    "bn": [99.49, 99.48, 99.41],
    "gn": [99.37, 99.44, 99.45],
    "ln": [99.25, 99.33, 99.49],
    "in": [98.98, 99.12, 98.95],
    "bn_l1": [99.42, 99.37, 99.42],
}
PLAN = Plan(reference="bn", correction="holm", alpha=0.05, margin=0.2, test_resamples=2000)


def runs(accuracy: dict[str, list[float]] = ACCURACY) -> pd.DataFrame:
    """The long table (variant, seed, test_acc)."""
    return pd.DataFrame(
        [(name, seed, value) for name, values in accuracy.items() for seed, value in enumerate(values, 1)],
        columns=["variant", "seed", "test_acc"],
    )


def correctness(table: pd.DataFrame, images: int = 10_000) -> dict[tuple[str, int], np.ndarray]:
    """Per run, which of `images` test images it got right: as many as its accuracy says, shared mistakes first."""
    out = {}
    for row in table.itertuples():
        wrong = round(images * (100 - row.test_acc) / 100)
        hits = np.ones(images, dtype=bool)
        hits[(np.arange(wrong) * 7 + row.seed) % images] = False
        out[(row.variant, row.seed)] = hits
    return out


def test_the_two_way_model_is_statsmodels_formula_ols() -> None:
    table = runs()
    fit = fit_model(table, "bn")
    reference = smf.ols("test_acc ~ C(variant, Treatment('bn')) + C(seed)", data=table).fit()
    for i, name in enumerate(fit.variants):
        key = f"C(variant, Treatment('bn'))[T.{name}]"
        assert fit.coefficients[i] == pytest.approx(reference.params[key], abs=1e-10)
        assert math.sqrt(fit.covariance[i, i]) == pytest.approx(reference.bse[key], rel=1e-9)
    assert fit.df == 8 == reference.df_resid  # 15 runs - 1 - 4 variants - 2 seeds
    assert fit.residual_sd == pytest.approx(math.sqrt(reference.scale), rel=1e-9)
    family = family_table(table, PLAN, correctness(table), {})
    p_in = reference.pvalues["C(variant, Treatment('bn'))[T.in]"]
    assert family.set_index("variant").loc["in", "p_value"] == pytest.approx(p_in, rel=1e-9)


def test_with_two_variants_the_model_is_the_paired_t_test_and_tost_is_statsmodels() -> None:
    two = runs({"bn": ACCURACY["bn"], "gn": ACCURACY["gn"]})
    row = family_table(two, PLAN, correctness(two), {"gn": "norm only"}).iloc[0]
    paired = stats.ttest_rel(ACCURACY["gn"], ACCURACY["bn"])
    assert row["diff"] == pytest.approx(np.mean(np.subtract(ACCURACY["gn"], ACCURACY["bn"])))
    assert row["p_value"] == pytest.approx(paired.pvalue, rel=1e-9) and row["df"] == 2
    interval = paired.confidence_interval(0.95)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((interval.low, interval.high), rel=1e-9)
    p_tost, _, _ = ttost_paired(np.array(ACCURACY["gn"]), np.array(ACCURACY["bn"]), -0.2, 0.2)
    assert row["tost_p"] == pytest.approx(p_tost, rel=1e-9)
    assert row["held_equal"] == "norm only"


def test_the_family_is_corrected_by_holm_and_read_as_different_equivalent_or_inconclusive() -> None:
    table = runs()
    family = family_table(table, PLAN, correctness(table), {}).set_index("variant")
    p_values = family["p_value"].to_numpy()
    order = np.argsort(p_values)
    holm = np.maximum.accumulate((len(p_values) - np.arange(len(p_values))) * p_values[order]).clip(max=1)
    assert family["p_adjusted"].to_numpy()[order] == pytest.approx(holm)
    assert family.loc["in", "verdict"] == "different"  # 0.44 behind, 8 residual df
    # bn_l1 and gn are 0.06 and 0.04 behind: with a 0.2 margin and these spreads, neither is shown equivalent.
    assert family.loc["gn", "verdict"] in ("equivalent", "inconclusive")
    wide = family_table(table, Plan("bn", "holm", 0.05, 1.0, 500), correctness(table), {}).set_index("variant")
    assert wide.loc["gn", "verdict"] == "equivalent" and wide.loc["in", "verdict"] == "different"


def test_the_bootstrap_gives_the_spread_of_a_mean_over_test_images() -> None:
    table = runs({"bn": ACCURACY["bn"], "in": ACCURACY["in"]})
    hits = correctness(table)
    row = family_table(table, PLAN, hits, {}).iloc[0]
    # The contrast is the mean over images of d_i = mean over seeds of (in right - bn right), in points.
    per_image = np.mean([hits[("in", s)].astype(float) - hits[("bn", s)] for s in (1, 2, 3)], axis=0) * 100
    analytic = per_image.std() / math.sqrt(len(per_image))
    assert row["se_test_set"] == pytest.approx(analytic, rel=0.06)
    total = math.sqrt(row["se"] ** 2 + row["se_test_set"] ** 2)
    assert row["ci_high_test_set"] - row["diff"] == pytest.approx(stats.t.ppf(0.975, 2) * total)
    # The equivalence test beyond these images is the same TOST with that total error: by hand, the larger of the
    # two one-sided t-tests' p-values.
    by_hand = max(stats.t.sf((row["diff"] + 0.2) / total, 2), stats.t.sf((0.2 - row["diff"]) / total, 2))
    assert row["tost_p_test_set"] == pytest.approx(by_hand, rel=1e-9) == pytest.approx(row["tost_p_test_set_adjusted"])


def test_tost_needs_spread() -> None:
    assert math.isnan(tost_p(0.1, 0.0, 4, 0.2)) and math.isnan(tost_p(0.1, 0.05, 0, 0.2))


@pytest.mark.parametrize(("seeds", "sd"), [(3, 0.111), (5, 0.05)])
def test_the_detectable_difference_is_statsmodels_power_solution(seeds: int, sd: float) -> None:
    effect = TTestPower().solve_power(effect_size=None, nobs=seeds, alpha=0.05, power=0.8, alternative="two-sided")
    assert detectable(sd / math.sqrt(seeds), seeds - 1, 0.05) == pytest.approx(effect * sd, rel=1e-4)


def test_sensitivity_is_at_the_familys_corrected_level_with_the_sds_range() -> None:
    fit = fit_model(runs(), "bn")
    found = sensitivity(fit, PLAN, 3)
    assert found.level == pytest.approx(0.05 / 4)
    assert found.detectable == pytest.approx(detectable(fit.residual_sd * math.sqrt(2 / 3), 8, 0.05 / 4))
    assert found.detectable_low < found.detectable < found.detectable_high
    # The equivalence side at the same level: its power at the margin, the margin it resolves, the seeds it needs
    # (a contrast's se is sd * sqrt(2 / seeds), on (variants - 1) * (seeds - 1) df).
    se = fit.residual_sd * math.sqrt(2 / 3)
    assert found.equivalence_power == pytest.approx(tost_power(se, 8, 0.2, 0.05 / 4))
    assert found.resolvable_margin == pytest.approx(resolvable_margin(se, 8, 0.05 / 4))
    needed = found.seeds_for_equivalence
    level, sd = 0.05 / 4, fit.residual_sd
    before, at = (tost_power(sd * math.sqrt(2 / n), 4 * (n - 1), 0.2, level) for n in (needed - 1, needed))
    assert before < 0.8 <= at


def test_a_single_run_is_judged_against_a_prediction_interval_with_the_seed_variance() -> None:
    table = runs()
    fit = fit_model(table, "bn", seed_blocks=False)
    # By hand: each run's deviation from its variant's mean, pooled over the variants (a new run brings a new seed,
    # so the seed's share of the spread stays in), on N - k degrees of freedom.
    deviations = table["test_acc"] - table.groupby("variant")["test_acc"].transform("mean")
    df = len(table) - table["variant"].nunique()
    pooled = math.sqrt((deviations**2).sum() / df)
    assert (fit.residual_sd, fit.df) == (pytest.approx(pooled), df)
    low, high = prediction_interval(99.42, fit, 3)
    half = stats.t.ppf(0.975, df) * pooled * math.sqrt(1 + 1 / 3)
    assert (low, high) == pytest.approx((99.42 - half, 99.42 + half))
    # Where the seeds share a shift (seed 2 scores 0.2 more with every norm), the seed blocks take it out of their
    # residual sd; a new run's seed brings it back, so only the variant-alone fit sees it.
    shifted = table.assign(test_acc=table["test_acc"] + 0.2 * (table["seed"] == 2))
    assert fit_model(shifted, "bn").residual_sd == pytest.approx(fit_model(table, "bn").residual_sd)
    assert fit_model(shifted, "bn", seed_blocks=False).residual_sd > pooled + 0.02


def test_a_comparison_names_what_it_differs_in_besides_the_norm() -> None:
    bn = tiny_settings(norm="batch", seed=1)
    gn = tiny_settings(norm="group", seed=2)  # another norm, group count and seed: what is compared, not a confound
    assert held_equal(gn, bn) == ""
    layout = "contiguous" if bn.train.memory_format == "channels_last" else "channels_last"
    other_layout = dataclasses.replace(gn, train=dataclasses.replace(gn.train, memory_format=layout))
    assert held_equal(other_layout, bn) == ""  # a memory layout changes how a run computes, not what
    faster = dataclasses.replace(gn, train=dataclasses.replace(gn.train, schedule=dataclasses.replace(
        gn.train.schedule, max_lr=gn.train.schedule.max_lr * 2)))  # fmt: skip
    with_l1 = dataclasses.replace(bn, variant=dataclasses.replace(bn.variant, l1=1e-4))
    assert held_equal(faster, bn) == f"max_lr {faster.train.schedule.max_lr} vs {bn.train.schedule.max_lr}"
    assert held_equal(with_l1, bn) == "l1 0.0001 vs 0.0"
