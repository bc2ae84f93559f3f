"""The main comparison's pre-declared analysis (config `analysis`): one linear model of final test accuracy, the
family of every variant against the reference, equivalence tests against the margin, and the test set's sampling
error by a paired bootstrap over test images.

The model is accuracy ~ variant + seed (a seed gives every variant the same initial convolution weights, data order
and rotations, so it is a block), fitted by least squares (statsmodels); each variant's difference from the
reference is its coefficient, tested with the residual degrees of freedom pooled over every variant. A difference is
"different" when the corrected two-sided test rejects zero, "equivalent" when the corrected two one-sided tests
(TOST) reject a difference of the margin or more, and "inconclusive" otherwise.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.optimize import brentq
from statsmodels.regression.linear_model import OLS

from normstudy.analysis.stats import POWER, adjusted, decided, resolvable_margin, t_test_power, tost_p, tost_power
from normstudy.config.study import Plan
from normstudy.settings import RunSettings
from normstudy.values import differences

FAMILY_COLUMNS = (
    "variant",
    "reference",
    "n_seeds",
    "diff",
    "se",
    "df",
    "ci_low",
    "ci_high",
    "p_value",
    "p_adjusted",
    "tost_p",
    "tost_p_adjusted",
    "se_test_set",
    "ci_low_test_set",
    "ci_high_test_set",
    "tost_p_test_set",
    "tost_p_test_set_adjusted",
    "verdict",
    "held_equal",
)
# The columns decided over the whole family, after each row's own.
DECIDED_COLUMNS = ("p_adjusted", "tost_p_adjusted", "verdict")


@dataclass(frozen=True)
class Fit:
    """The fitted model: each variant's coefficient against the reference, their covariance, the residual sd and df,
    and the least-squares map from run accuracies to the coefficients (rows: variants, columns: runs)."""

    variants: list[str]
    coefficients: np.ndarray
    covariance: np.ndarray
    residual_sd: float
    df: int
    solve: np.ndarray


def design(runs: pd.DataFrame, reference: str, seed_blocks: bool = True) -> tuple[np.ndarray, list[str]]:
    """The model's design matrix for `runs` (columns variant, seed): intercept, a dummy per other variant, a dummy per
    seed after the first (unless not `seed_blocks`); and the variants in column order."""
    variants = [name for name in dict.fromkeys(runs["variant"]) if name != reference]
    seeds = sorted(set(runs["seed"]))[1:] if seed_blocks else []
    columns = [np.ones(len(runs))]
    columns += [(runs["variant"] == name).to_numpy(float) for name in variants]
    columns += [(runs["seed"] == seed).to_numpy(float) for seed in seeds]
    return np.column_stack(columns), variants


def fit_model(runs: pd.DataFrame, reference: str, value: str = "test_acc", seed_blocks: bool = True) -> Fit:
    """Least squares of `value` on variant + seed (statsmodels OLS), or on variant alone without `seed_blocks`;
    NaN spreads where no degree of freedom is left."""
    matrix, variants = design(runs, reference, seed_blocks)
    result = OLS(runs[value].to_numpy(float), matrix).fit()
    chosen = slice(1, 1 + len(variants))
    solve = np.linalg.pinv(matrix)[chosen]
    df = round(result.df_resid)
    if df < 1:
        nan = np.full((len(variants), len(variants)), math.nan)
        return Fit(variants, result.params[chosen], nan, math.nan, 0, solve)
    covariance = np.asarray(result.cov_params())[chosen, chosen]
    return Fit(variants, result.params[chosen], covariance, math.sqrt(result.scale), df, solve)


def bootstrap_accuracies(hits: np.ndarray, resamples: int) -> np.ndarray:
    """Accuracy (%) of each row of `hits` (rows: scorings, columns: test images; 1 where right, or a mean of such) on
    `resamples` bootstrap resamples of the images, one resample shared by every row (the same images score every
    model), seeded for repeatability: [resamples, rows]."""
    hits = np.asarray(hits, dtype=np.float64)
    images = hits.shape[1]
    generator = np.random.default_rng(0)
    estimates = []
    for start in range(0, resamples, 250):
        count = min(250, resamples - start)
        # A resample's weights: how often each image was drawn, `images` draws with replacement (multinomial counts;
        # drawn as indices and counted, about 30x faster than Generator.multinomial over 10,000 categories).
        drawn = generator.integers(0, images, size=(count, images)) + images * np.arange(count)[:, None]
        weights = np.bincount(drawn.ravel(), minlength=count * images).reshape(count, images).astype(np.float64)
        estimates.append(100.0 * weights @ hits.T / images)
    return np.concatenate(estimates)


def test_set_spread(correct: dict[tuple[str, int], np.ndarray], runs: pd.DataFrame, fit: Fit, plan: Plan) -> np.ndarray:
    """Each contrast's standard error from the test set's sampling: the contrasts refitted on bootstrap resamples of
    the test images (bootstrap_accuracies)."""
    hits = np.stack([correct[(row.variant, row.seed)] for row in runs.itertuples()])
    return np.std(bootstrap_accuracies(hits, plan.test_resamples) @ fit.solve.T, axis=0, ddof=1)


def held_equal(settings: RunSettings, reference: RunSettings) -> str:
    """What a variant's runs differ in from the reference's besides the norm itself, its name and the seed ("max_lr
    0.1 vs 0.2"; empty when only the norm differs): a comparison holds the rest equal, and says when it does not."""
    ours, theirs = settings.to_dict(), reference.to_dict()
    for side in (ours, theirs):
        side.pop("seed")
        for key in ("name", "norm", "groups"):  # the norm and its group count are what is compared
            side["variant"].pop(key)
        for key in ("memory_format", "device", "threads"):  # how it runs, not what it computes
            side["train"].pop(key, None)
    return ", ".join(f"{key.rsplit('.', 1)[-1]} {a} vs {b}" for key, a, b in differences(ours, theirs))


def contrasts(
    runs: pd.DataFrame, plan: Plan, correct: dict[tuple[str, int], np.ndarray], pooled: bool = True
) -> list[tuple[str, float, float, int, float]]:
    """Each variant's (name, difference from the reference, its se, df and test-set se): from the declared model fitted
    to every run (one residual variance pooled over the variants) or, unless `pooled`, fitted to that variant's and the
    reference's runs alone, which is the paired t-test on the pair's own differences (where spreads differ)."""
    others = [name for name in dict.fromkeys(runs["variant"]) if name != plan.reference]
    groups = [runs] if pooled else [runs[runs["variant"].isin([plan.reference, name])] for name in others]
    found = []
    for group in groups:
        fit = fit_model(group, plan.reference)
        ses = np.sqrt(np.diag(fit.covariance))
        test_ses = test_set_spread(correct, group, fit, plan) if fit.variants else np.array([])
        found += [
            (name, float(fit.coefficients[i]), float(ses[i]), fit.df, float(test_ses[i]))
            for i, name in enumerate(fit.variants)
        ]
    return found


def family_table(
    runs: pd.DataFrame,
    plan: Plan,
    correct: dict[tuple[str, int], np.ndarray],
    held_equal: dict[str, str],
    pooled: bool = True,
) -> pd.DataFrame:
    """One row per variant against the reference, by the declared model (each pair's own spread unless `pooled`:
    contrasts), correction and margin; `correct` holds each run's per-test-image correctness (the bootstrap's input),
    `held_equal` what else each pair differs in."""
    rows = []
    for name, diff, se, df, test_se in contrasts(runs, plan, correct, pooled):
        critical = stats.t.ppf(1 - plan.alpha / 2, df) if df else math.nan
        p = float(2 * stats.t.sf(abs(diff) / se, df)) if se > 0 and df else math.nan
        total = math.sqrt(se**2 + test_se**2)
        rows.append(
            {
                "variant": name,
                "reference": plan.reference,
                "n_seeds": int((runs["variant"] == name).sum()),
                "diff": diff,
                "se": se,
                "df": df,
                "ci_low": diff - critical * se,
                "ci_high": diff + critical * se,
                "p_value": p,
                "tost_p": tost_p(diff, se, df, plan.margin),
                "se_test_set": test_se,
                "ci_low_test_set": diff - critical * total,
                "ci_high_test_set": diff + critical * total,
                # Equivalence beyond these test images: the same TOST with the test set's sampling error added.
                "tost_p_test_set": tost_p(diff, total, df, plan.margin),
                "held_equal": held_equal.get(name, ""),
            }
        )
    table = pd.DataFrame(rows, columns=[name for name in FAMILY_COLUMNS if name not in DECIDED_COLUMNS])
    table["tost_p_test_set_adjusted"] = adjusted(list(table["tost_p_test_set"]), plan.correction)
    return decided(table, plan.correction, plan.alpha)[list(FAMILY_COLUMNS)]


def detectable(se: float, df: int, alpha: float, power: float = POWER) -> float:
    """The smallest true difference a two-sided t-test with this standard error and df detects with `power` at
    level `alpha`; NaN without spread."""
    if not se > 0 or df < 1:
        return math.nan
    high = se
    while t_test_power(high / se, df, alpha) < power:
        high *= 2
    return float(brentq(lambda d: t_test_power(d / se, df, alpha) - power, 0.0, high, xtol=1e-10))


@dataclass(frozen=True)
class Sensitivity:
    """What the family could detect: the smallest difference found with POWER at the family's most stringent
    corrected level (Holm's first step, Bonferroni's every step: alpha / family size), and its range over the 95 %
    interval of the residual sd itself (chi-square), which three seeds estimate loosely."""

    residual_sd: float
    df: int
    level: float
    detectable: float
    detectable_low: float
    detectable_high: float
    # The equivalence test's side: how often it finds two equal norms within the margin, the smallest margin it
    # resolves with POWER, and the seeds that would give POWER at the margin (the same sd and family size).
    equivalence_power: float = math.nan
    resolvable_margin: float = math.nan
    seeds_for_equivalence: int | None = None


# Seed counts searched for the equivalence test's power (beyond it: not reachable at this sd).
MOST_SEEDS = 50


def sensitivity(fit: Fit, plan: Plan, n_seeds: int) -> Sensitivity:
    """From the fitted model: a contrast's standard error is sd * sqrt(2 / seeds) when every variant ran every seed,
    with (variants - 1) * (seeds - 1) residual degrees of freedom for another seed count."""
    level = plan.alpha / max(len(fit.variants), 1)
    if fit.df < 1 or not fit.residual_sd > 0:
        return Sensitivity(fit.residual_sd, fit.df, level, math.nan, math.nan, math.nan)
    scale = math.sqrt(2 / n_seeds)
    low_sd = fit.residual_sd * math.sqrt(fit.df / stats.chi2.ppf(0.975, fit.df))
    high_sd = fit.residual_sd * math.sqrt(fit.df / stats.chi2.ppf(0.025, fit.df))
    variants = len(fit.variants) + 1
    enough = next(
        (
            seeds
            for seeds in range(2, MOST_SEEDS + 1)
            if tost_power(fit.residual_sd * math.sqrt(2 / seeds), (variants - 1) * (seeds - 1), plan.margin, level)
            >= POWER
        ),
        None,
    )
    return Sensitivity(
        fit.residual_sd,
        fit.df,
        level,
        detectable(fit.residual_sd * scale, fit.df, level),
        detectable(low_sd * scale, fit.df, level),
        detectable(high_sd * scale, fit.df, level),
        tost_power(fit.residual_sd * scale, fit.df, plan.margin, level),
        resolvable_margin(fit.residual_sd * scale, fit.df, level),
        enough,
    )


def prediction_interval(mean: float, fit: Fit, n_runs: int, alpha: float = 0.05) -> tuple[float, float]:
    """Where one more run of a variant would fall (its mean over `n_runs` seeds; `fit` on variant alone, no seed
    blocks: a new run brings a new seed, so its spread is the seed's and the residual's together, pooled over the
    variants): mean +- t * sd * sqrt(1 + 1/n). A single published run is judged against this, not the mean's
    interval."""
    if fit.df < 1 or math.isnan(fit.residual_sd):
        return math.nan, math.nan
    half = stats.t.ppf(1 - alpha / 2, fit.df) * fit.residual_sd * math.sqrt(1 + 1 / n_runs)
    return mean - half, mean + half


def facts_json(value: Any) -> Any:
    """The model's facts for analysis.json: JSON has no NaN, so a figure the data cannot give (one seed) is null."""
    if isinstance(value, dict):
        return {key: facts_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [facts_json(item) for item in value]
    return None if isinstance(value, float) and math.isnan(value) else value


def read_facts(path: str | Path) -> dict[str, Any]:
    """analysis.json as aggregate wrote it, its nulls read back as NaN."""

    def numbers(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: numbers(item) for key, item in value.items()}
        if isinstance(value, list):
            return [numbers(item) for item in value]
        return math.nan if value is None else value

    return numbers(json.loads(Path(path).read_text(encoding="utf-8")))
