"""Statistics over seeds with scipy.stats: t-intervals and paired or Welch comparisons of variants."""

from __future__ import annotations

import gc
import itertools
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import integrate, optimize, stats
from statsmodels.stats.multitest import multipletests

ALPHA = 0.05


def t_interval(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided t confidence interval of the mean; NaN with fewer than two values."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return math.nan, math.nan
    if np.ptp(values) == 0:  # every seed gave the same accuracy: a zero-width interval at that value
        return float(values[0]), float(values[0])
    low, high = stats.t.interval(confidence, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
    return float(low), float(high)


def over_seeds(values: Sequence[float] | pd.Series, name: str) -> dict[str, float]:
    """One measure over seeds: `{name}_mean`, `{name}_std` (sample sd, NaN for one seed) and its 95 % t-interval
    (`{name}_ci95_low`, `{name}_ci95_high`); the one summary every table over seeds uses."""
    series = pd.Series(values, dtype=float).reset_index(drop=True)
    low, high = t_interval(series.to_numpy())
    return {
        f"{name}_mean": series.mean(),
        f"{name}_std": series.std(ddof=1) if len(series) > 1 else math.nan,
        f"{name}_ci95_low": low,
        f"{name}_ci95_high": high,
    }


def clipped_to_percent(row: dict[str, float], names: Sequence[str]) -> dict[str, float]:
    """`row` with the named interval bounds truncated to 0-100 %: a t-interval over a few seeds can pass 0 or 100 %,
    where no accuracy lies (NaN stays NaN)."""
    return {**row, **{name: float(np.clip(row[name], 0.0, 100.0)) for name in names}}


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


def tost_p(diff: float, se: float, df: float, margin: float) -> float:
    """Two one-sided t-tests of |true difference| >= margin: the larger of the two p-values (NaN without spread)."""
    if not se > 0 or df < 1:
        return math.nan
    lower = stats.t.sf((diff + margin) / se, df)  # H0: difference <= -margin
    upper = stats.t.cdf((diff - margin) / se, df)  # H0: difference >= +margin
    return float(max(lower, upper))


def adjusted(p_values: list[float], method: str) -> list[float]:
    """p-values corrected over the family (Holm or Bonferroni); NaN ones are left out and stay NaN."""
    tested = [i for i, p in enumerate(p_values) if not math.isnan(p)]
    out = [math.nan] * len(p_values)
    if tested:
        # statsmodels' Holm ends in gc.collect(), 0.4 s in a process holding torch's objects: frozen objects are
        # left out of a collection, and nothing here makes garbage that needs one.
        gc.freeze()
        try:
            corrected = multipletests([p_values[i] for i in tested], method=method)[1]
        finally:
            gc.unfreeze()
        for i, p in zip(tested, corrected, strict=True):
            out[i] = float(p)
    return out


def reading(p_adjusted: float, tost_adjusted: float, alpha: float) -> str:
    """different | equivalent | inconclusive (different wins when both hold: a real but small difference)."""
    if p_adjusted < alpha:
        return "different"
    if tost_adjusted < alpha:
        return "equivalent"
    return "inconclusive"


def decided(table: pd.DataFrame, correction: str, alpha: float, within: list[str] | None = None) -> pd.DataFrame:
    """`table` (columns p_value, tost_p) with both corrected by `correction` (statsmodels' name) over all its rows, or
    within each group of the columns `within`, and each row's reading at level `alpha` (columns p_adjusted,
    tost_p_adjusted, verdict): the one "correct and read" of every family."""
    table = table.copy()
    groups = table.groupby(within, sort=False).groups.values() if within else [table.index]
    for index in groups:
        table.loc[index, "p_adjusted"] = adjusted(list(table.loc[index, "p_value"]), correction)
        table.loc[index, "tost_p_adjusted"] = adjusted(list(table.loc[index, "tost_p"]), correction)
    pairs = zip(table["p_adjusted"], table["tost_p_adjusted"], strict=True)
    table["verdict"] = [reading(p, tost, alpha) for p, tost in pairs]
    return table


def pooled_sd(values: pd.core.groupby.SeriesGroupBy) -> tuple[float, int]:
    """The standard deviation within groups, pooled over every group with two or more values (each weighted by its
    degrees of freedom), and its degrees of freedom; NaN and 0 when no group has two."""
    counts, variances = values.count(), values.var(ddof=1)
    df = int((counts - 1).clip(lower=0).sum())
    if df == 0:
        return math.nan, 0
    return math.sqrt(float((variances.fillna(0) * (counts - 1).clip(lower=0)).sum()) / df), df


def paired_difference(a: pd.Series, b: pd.Series, margin: float) -> dict[str, float]:
    """a - b paired by index (seed): n, mean difference, its standard error and df, 95 % t-interval, two-sided p
    (scipy's paired t-test) and the TOST p against +-margin; NaN where fewer than two pairs or no spread."""
    common = a.index.intersection(b.index)
    diffs = a.loc[common].to_numpy(float) - b.loc[common].to_numpy(float)
    n, mean = len(diffs), float(np.mean(diffs)) if len(diffs) else math.nan
    row = {"n": n, "diff_mean": mean}
    if n < 2 or np.allclose(diffs, diffs[0]):
        return {**row, "se": math.nan, "df": n - 1, "ci95_low": math.nan, "ci95_high": math.nan,
                "p_value": math.nan, "tost_p": math.nan}  # fmt: skip
    result = stats.ttest_rel(a.loc[common], b.loc[common])
    interval = result.confidence_interval(0.95)
    se = float(np.std(diffs, ddof=1) / math.sqrt(n))
    return {**row, "se": se, "df": n - 1, "ci95_low": float(interval.low), "ci95_high": float(interval.high),
            "p_value": float(result.pvalue), "tost_p": tost_p(mean, se, n - 1, margin)}  # fmt: skip


def welch_difference(a: pd.Series, b: pd.Series, margin: float) -> dict[str, float]:
    """a - b unpaired, by Welch's t-test (scipy's, unequal variances): n (the smaller count), mean difference, its
    standard error and Welch-Satterthwaite df, 95 % t-interval, two-sided p and the TOST p against +-margin, the same
    test as statsmodels' ttost_ind(usevar="unequal"); NaN where either has fewer than two runs or neither spreads."""
    x, y = a.to_numpy(float), b.to_numpy(float)
    row = {"n": min(len(x), len(y)), "diff_mean": float(x.mean() - y.mean()) if len(x) and len(y) else math.nan}
    if len(x) < 2 or len(y) < 2 or not (x.std() > 0 or y.std() > 0):
        return {**row, "se": math.nan, "df": math.nan, "ci95_low": math.nan, "ci95_high": math.nan,
                "p_value": math.nan, "tost_p": math.nan}  # fmt: skip
    result = stats.ttest_ind(x, y, equal_var=False)
    interval = result.confidence_interval(0.95)
    va, vb = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(x) - 1) + vb**2 / (len(y) - 1))
    return {**row, "se": se, "df": float(df), "ci95_low": float(interval.low), "ci95_high": float(interval.high),
            "p_value": float(result.pvalue), "tost_p": tost_p(row["diff_mean"], se, df, margin)}  # fmt: skip


# The columns of a table of pairwise comparisons (compare_pair's, named by the pair), before the correction.
PAIR_COLUMNS = ("variant_a", "variant_b", "n_a", "n_b", "paired", "diff_mean", "ci95_low", "ci95_high", "p_value")


def with_adjusted_p(table: pd.DataFrame) -> pd.DataFrame:
    """The table with Benjamini-Hochberg adjusted p-values over its testable rows (one family) and a flag for
    those significant at ALPHA."""
    tested = table["p_value"].notna()
    table["p_adjusted"] = math.nan
    if tested.any():
        table.loc[tested, "p_adjusted"] = adjusted(list(table.loc[tested, "p_value"]), "fdr_bh")
    table["significant"] = table["p_adjusted"] < ALPHA
    return table


def compare_variants(final_acc: pd.DataFrame) -> pd.DataFrame:
    """Every pair of variants compared on final test accuracy, with Benjamini-Hochberg adjusted p-values.

    `final_acc` has columns variant, seed, test_acc.
    """
    by_variant = {name: group.set_index("seed")["test_acc"] for name, group in final_acc.groupby("variant", sort=False)}
    rows = [
        {"variant_a": a, "variant_b": b, **compare_pair(by_variant[a], by_variant[b])}
        for a, b in itertools.combinations(by_variant, 2)
    ]
    return with_adjusted_p(pd.DataFrame(rows, columns=list(PAIR_COLUMNS)))


POWER = 0.8


def t_test_power(shift: float, df: int, alpha: float = ALPHA) -> float:
    """Power of a two-sided t-test with `df` degrees of freedom when the true effect is `shift` standard errors,
    from the noncentral t distribution."""
    critical = stats.t.ppf(1 - alpha / 2, df)
    upper = float(stats.nct.sf(critical, df, shift))
    lower = float(stats.nct.cdf(-critical, df, shift))
    # scipy's noncentral t can return NaN far in a tail, where the true value is all but 0 (or 1).
    if math.isnan(upper):
        upper = 1.0 if shift > critical else 0.0
    if math.isnan(lower):
        lower = 1.0 if -shift > critical else 0.0
    return min(1.0, upper + lower)


def tost_power(se: float, df: int, margin: float, alpha: float = ALPHA, difference: float = 0.0) -> float:
    """Probability that the two one-sided t-tests at level `alpha` declare equivalence within +-margin when the true
    difference is `difference`: the estimate is normal around it with standard error `se`, and the test's own
    standard error is se * sqrt(chi2(df) / df); integrated over that chi-square (NaN without spread)."""
    if not se > 0 or df < 1:
        return math.nan
    critical = stats.t.ppf(1 - alpha, df)
    # Equivalence needs |estimate| < margin - critical * estimated se: impossible once that bound is below zero.
    highest = df * (margin / (critical * se)) ** 2

    def accepted(chi2: float) -> float:
        bound = margin - critical * se * math.sqrt(chi2 / df)
        inside = stats.norm.cdf((bound - difference) / se) - stats.norm.cdf((-bound - difference) / se)
        return max(0.0, float(inside)) * float(stats.chi2.pdf(chi2, df))

    return float(integrate.quad(accepted, 0.0, highest, limit=200)[0])


def resolvable_margin(se: float, df: int, alpha: float = ALPHA, power: float = POWER) -> float:
    """The smallest equivalence margin the two one-sided tests reach with `power` when there is no true difference."""
    if not se > 0 or df < 1:
        return math.nan
    high = se
    while tost_power(se, df, high, alpha) < power:
        high *= 2
    return float(optimize.brentq(lambda margin: tost_power(se, df, margin, alpha) - power, 0.0, high, xtol=1e-10))


def rank_correlation(
    runs_a: dict[str, np.ndarray], runs_b: dict[str, np.ndarray], resamples: int = 2000, seed: int = 0
) -> dict[str, float]:
    """Kendall's tau-b (scipy's) between two studies' mean accuracies of the same items (`runs_x[item]`: that item's
    accuracies over seeds), with a 95 % percentile bootstrap interval: each resample draws every item's seeds with
    replacement in each study, independently (the studies share no runs). Resamples whose means all tie (no tau)
    are left out and counted. NaN with fewer than three items."""
    items = list(runs_a)
    means = [np.array([np.mean(runs[item]) for item in items]) for runs in (runs_a, runs_b)]
    row = {"items": len(items), "tau": math.nan, "tau_low": math.nan, "tau_high": math.nan, "untied_resamples": 0}
    if len(items) < 3:
        return row
    row["tau"] = float(stats.kendalltau(*means).statistic)
    rng = np.random.default_rng(seed)
    taus = []
    for _ in range(resamples):
        drawn = [
            np.array([rng.choice(np.asarray(runs[item], float), size=len(runs[item])).mean() for item in items])
            for runs in (runs_a, runs_b)
        ]
        tau = stats.kendalltau(*drawn).statistic
        if not math.isnan(tau):
            taus.append(tau)
    row["untied_resamples"] = len(taus)
    if taus:
        row["tau_low"], row["tau_high"] = (float(q) for q in np.percentile(taus, [2.5, 97.5]))
    return row
