"""Statistics over seeds with scipy.stats: t-intervals and paired or Welch comparisons of variants."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
from scipy import stats

ALPHA = 0.05


def t_interval(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided t confidence interval of the mean; NaN with fewer than two values."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return math.nan, math.nan
    spread = stats.sem(values)
    if spread == 0:  # every seed gave the same accuracy: a zero-width interval
        return float(values.mean()), float(values.mean())
    low, high = stats.t.interval(confidence, len(values) - 1, loc=values.mean(), scale=spread)
    return float(low), float(high)


def compare_pair(a: pd.Series, b: pd.Series) -> dict:
    """Difference of mean accuracy (a - b), its 95 % CI and p-value; paired when both ran the same seeds."""
    common = a.index.intersection(b.index)
    paired = len(common) >= 2 and len(common) == len(a) == len(b)
    row = {"n_a": len(a), "n_b": len(b), "paired": paired, "diff_mean": float(a.mean() - b.mean())}
    if paired:
        diffs = a.loc[common].to_numpy() - b.loc[common].to_numpy()
        if np.allclose(diffs, diffs[0]):  # no spread: a t-test is undefined
            return {**row, "ci95_low": float(diffs[0]), "ci95_high": float(diffs[0]), "p_value": math.nan}
        result = stats.ttest_rel(a.loc[common], b.loc[common])
    elif len(a) >= 2 and len(b) >= 2:
        result = stats.ttest_ind(a, b, equal_var=False)
    else:
        return {**row, "ci95_low": math.nan, "ci95_high": math.nan, "p_value": math.nan}
    interval = result.confidence_interval(0.95)
    return {
        **row,
        "ci95_low": float(interval.low),
        "ci95_high": float(interval.high),
        "p_value": float(result.pvalue),
    }


def compare_variants(final_acc: pd.DataFrame) -> pd.DataFrame:
    """Every pair of variants compared on final test accuracy, with Benjamini-Hochberg adjusted p-values.

    `final_acc` has columns variant, seed, test_acc.
    """
    by_variant = {name: group.set_index("seed")["test_acc"] for name, group in final_acc.groupby("variant", sort=False)}
    rows = [
        {"variant_a": a, "variant_b": b, **compare_pair(by_variant[a], by_variant[b])}
        for a, b in itertools.combinations(by_variant, 2)
    ]
    table = pd.DataFrame(
        rows,
        columns=[
            "variant_a",
            "variant_b",
            "n_a",
            "n_b",
            "paired",
            "diff_mean",
            "ci95_low",
            "ci95_high",
            "p_value",
        ],
    )
    tested = table["p_value"].notna()
    table["p_adjusted"] = math.nan
    if tested.any():
        table.loc[tested, "p_adjusted"] = stats.false_discovery_control(table.loc[tested, "p_value"], method="bh")
    table["significant"] = table["p_adjusted"] < ALPHA
    return table
