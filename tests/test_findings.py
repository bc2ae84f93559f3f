"""The report's generated sentences: every verdict branch, the key results, and the power statement."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from normstudy.findings import TARGET_ACCURACY, Power, key_results, verdict

COLUMNS = ["variant_a", "variant_b", "diff_mean", "ci95_low", "ci95_high", "p_value", "p_adjusted", "significant"]


def comparisons(*rows: tuple) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=COLUMNS)


UNTESTED = comparisons(("bn", "gn", 0.1, math.nan, math.nan, math.nan, math.nan, False))
NOTHING = comparisons(
    ("bn", "gn", 0.07, -0.1, 0.2, 0.3, 0.6, False),
    ("bn", "ln", 0.14, -0.1, 0.4, 0.2, 0.6, False),
)
SOMETHING = comparisons(
    ("bn", "in", 0.69, 0.4, 1.0, 0.004, 0.012, True),
    ("in", "gn", -0.62, -0.9, -0.3, 0.006, 0.012, True),
    ("bn", "gn", 0.07, -0.1, 0.2, 0.3, 0.3, False),
)


def test_verdict_without_a_testable_pair() -> None:
    assert verdict(UNTESTED, 1) == (
        "With 1 seed(s) per variant no difference can be tested; the table only describes these runs, "
        "and no variant can be called better."
    )


def test_verdict_when_nothing_is_significant() -> None:
    said = verdict(NOTHING, 3)
    assert said.startswith("None of the 2 pairwise differences is significant at the 5 % level")
    assert "with 3 seeds per variant" in said and "does not show that any normalization is better" in said


def test_verdict_names_each_significant_pair_with_its_direction() -> None:
    said = verdict(SOMETHING, 5)
    assert said.startswith("2 of 3 pairwise differences are significant")
    assert "bn above in by 0.69 points (95 % CI +0.40 to +1.00, adjusted p = 0.012)" in said
    assert "in below gn by 0.62 points (95 % CI -0.90 to -0.30, adjusted p = 0.012)" in said
    assert "The other 1 are within seed-to-seed noise with 5 seeds" in said


def summary(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["variant", "norm", "test_acc_mean", "test_acc_ci95_low", "test_acc_ci95_high"])


STUDY = summary(
    [
        ("bn", "batch", 99.46, 99.32, 99.60),
        ("gn", "group", 99.39, 99.38, 99.41),
        ("ln", "layer", 99.32, 99.08, 99.56),
        ("in", "instance", 98.77, 98.45, 99.10),
    ]
)
POWER = Power(seeds=3, sd=0.08, detectable=0.26, reference=0.05, seeds_for_reference=23)


def test_key_results_on_mnist() -> None:
    lines = key_results(STUDY, NOTHING, POWER, mnist=True)
    assert lines[0] == "Highest mean test accuracy: bn, 99.46 % (95 % CI 99.32–99.60)."
    assert lines[1] == "Lowest: in, 98.77 % (95 % CI 98.45–99.10)."
    assert lines[2] == (
        "None of the 2 pairwise differences is significant after Benjamini–Hochberg correction; "
        "the study could detect differences of 0.26 points or more."
    )
    assert lines[3] == f"Write-up 002's {TARGET_ACCURACY} % target (mean over seeds): met by bn; missed by gn, ln, in."
    # Write-up 003's GN 99.54 is above gn's interval; its LN 99.48 is inside ln's.
    assert lines[4] == (
        "Write-up 003's single runs (8,880 parameters, 20 epochs): gn 99.54 % vs our 99.39 % (above our 95 % CI); "
        "ln 99.48 % vs our 99.32 % (inside our 95 % CI)."
    )


def test_key_results_list_significant_pairs() -> None:
    lines = key_results(STUDY, SOMETHING, POWER, mnist=True)
    assert lines[2] == "Significant after Benjamini–Hochberg correction (2 of 3): bn > in (+0.69), in < gn (-0.62)."


def test_key_results_with_one_seed_and_no_target_met() -> None:
    one_seed = summary([("gn", "group", 99.10, math.nan, math.nan), ("ln", "layer", 99.60, math.nan, math.nan)])
    lines = key_results(one_seed, UNTESTED, Power.of(pd.DataFrame(columns=["variant", "seed", "test_acc"])), True)
    assert lines[0] == "Highest mean test accuracy: ln, 99.60 % (one seed, no interval)."
    assert lines[2] == "No difference could be tested (fewer than two seeds per variant)."
    assert lines[3] == f"Write-up 002's {TARGET_ACCURACY} % target (mean over seeds): met by ln; missed by gn."
    assert "gn 99.54 % vs our 99.10 % (one seed, no interval)" in lines[4]
    assert "ln 99.48 % vs our 99.60 % (one seed, no interval)" in lines[4]


def test_key_results_on_synthetic_data_check_no_mnist_claim() -> None:
    lines = key_results(STUDY, NOTHING, POWER, mnist=False)
    assert lines[-1] == "Synthetic digits, not MNIST: the write-ups' MNIST claims are not checked on this data."
    assert not any("Write-up 002" in line for line in lines)


def test_power_from_runs_and_its_sentence() -> None:
    """bn - gn differences over seeds 1-3: 0.1, 0.2, 0.3 (sd 0.1)."""
    runs = pd.DataFrame(
        {"variant": ["bn"] * 3 + ["gn"] * 3, "seed": [1, 2, 3] * 2, "test_acc": [99.5, 99.6, 99.7, 99.4, 99.4, 99.4]}
    )
    power = Power.of(runs)
    assert power.seeds == 3 and power.sd == pytest.approx(0.1)
    said = power.sentence()
    assert f"a true difference of {power.detectable:.2f} points with 80% power" in said
    assert f"would take {power.seeds_for_reference} seeds" in said and "too few seeds to tell" in said


@pytest.mark.parametrize(
    ("power", "words"),
    [
        (Power(1, math.nan, math.nan, 0.05, 0), "With one seed per variant"),
        (Power(3, 0.0, math.nan, 0.05, 2), "did not vary over the 3 seeds"),
    ],
)
def test_power_sentence_without_a_spread(power: Power, words: str) -> None:
    assert words in power.sentence()
