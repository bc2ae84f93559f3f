"""The robustness study's numbers: every run's accuracy on the clean test images and on each corrupted set, in each
evaluation mode, summarized over seeds with the test set's sampling error, the mean corruption error against the
reference norm (mCE; Hendrycks & Dietterich 2019), and the declared analysis (analysis.family_table, each pair with
its own spread over seeds: the spreads over sets differ severalfold between batch and per-image statistics) applied
to the mean accuracy over the declared endpoint's sets: the primary family. The same comparisons on the intensity
shifts and on the other kinds apart are secondary; per set they are exploratory, Benjamini-Hochberg-corrected over
every set and variant, and labelled so."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from normstudy.analysis.declared import bootstrap_accuracies, family_table
from normstudy.analysis.stats import clipped_to_percent, decided, over_seeds, paired_difference
from normstudy.config.study import Plan
from normstudy.data.shift_sets import INTENSITY_KINDS, mode_batch

# One scoring: a run (variant, seed), a set (corruption, severity; ("clean", 0) for the clean images) and a mode.
Scoring = tuple[str, int, str, int, str]
SET = ["corruption", "severity"]
RUN = ["variant", "seed"]
# What the exploratory per-set comparisons are corrected with (statsmodels' name for Benjamini-Hochberg).
EXPLORATORY = "fdr_bh"
# The test-time modes whose gain over running statistics is tested, besides PreciseBN: all of a set's images at once
# (adapted) and a batch at a time (adapted_<images>; evaluate_corrupted.py).
ADAPTED = "adapted"


def adapted_modes(scores: pd.DataFrame) -> list[str]:
    """The adaptation modes scored, the whole set first, then by batch size."""
    found = [mode for mode in dict.fromkeys(scores["mode"]) if mode.startswith(ADAPTED)]
    return sorted(found, key=lambda mode: (mode != ADAPTED, mode_batch(mode) or 0))


def of_kinds(scores: pd.DataFrame, kinds: list[str]) -> pd.DataFrame:
    """The clean rows and those of the sets of `kinds`."""
    return scores[scores["corruption"].isin(["clean", *kinds])]


def with_drops(scores: pd.DataFrame) -> pd.DataFrame:
    """The scores with each row's drop from clean: the same run's clean accuracy in the same mode less its own."""
    clean = scores[scores["corruption"] == "clean"].set_index([*RUN, "mode"])["accuracy"]
    keys = pd.MultiIndex.from_frame(scores[[*RUN, "mode"]])
    return scores.assign(drop=clean.reindex(keys).to_numpy() - scores["accuracy"].to_numpy())


def scoring(row: pd.Series | tuple) -> Scoring:
    """The key of a scores row in the hits mapping."""
    return (row.variant, int(row.seed), row.corruption, int(row.severity), row.mode)


def summarize(scores: pd.DataFrame, hits: dict[Scoring, np.ndarray], plan: Plan) -> pd.DataFrame:
    """One row per variant, set and mode: accuracy and drop over seeds (mean, sd, 95 % t-interval), and the accuracy's
    interval widened by the test images' sampling error of the mean (one bootstrap shared by every cell); accuracy
    intervals truncated to 0-100 %."""
    scores = with_drops(scores).reset_index(drop=True)
    keys = [scoring(row) for row in scores.itertuples()]
    resampled = bootstrap_accuracies(np.stack([hits[key] for key in keys]), plan.test_resamples)
    rows = []
    for (variant, corruption, severity, mode), cell in scores.groupby(["variant", *SET, "mode"], sort=False):
        n = len(cell)
        spread = float(np.std(resampled[:, cell.index].mean(axis=1), ddof=1))
        row = {"variant": variant, "corruption": corruption, "severity": severity, "mode": mode, "n_seeds": n}
        row |= over_seeds(cell["accuracy"], "acc") | over_seeds(cell["drop"], "drop")
        half = stats.t.ppf(0.975, n - 1) * math.hypot(row["acc_std"] / math.sqrt(n), spread) if n > 1 else math.nan
        row |= {"acc_se_test_set": spread, "acc_ci95_low_test_set": row["acc_mean"] - half,
                "acc_ci95_high_test_set": row["acc_mean"] + half}  # fmt: skip
        bounds = ("acc_ci95_low", "acc_ci95_high", "acc_ci95_low_test_set", "acc_ci95_high_test_set")
        rows.append(clipped_to_percent(row, bounds))
    return pd.DataFrame(rows)


def mean_ratio(own: pd.Series, base: pd.Series) -> float:
    """100 x the mean over corruptions of own / base, leaving out a corruption where the base is not positive (the
    reference made no error there, or lost nothing): no infinite figure; NaN when none is left."""
    ratios = own / base.where(base > 0)
    return float(100.0 * ratios.mean()) if ratios.notna().any() else math.nan


def corruption_errors(cells: pd.DataFrame, reference: str) -> pd.DataFrame:
    """Per variant and mode, over the corrupted sets: mean accuracy, mCE and relative mCE (%) against the reference
    variant's running statistics. CE of a corruption: the variant's error summed over severities over the
    reference's; relative CE: the same of the errors less each one's clean error. mCE: their mean over corruptions."""
    error = cells.assign(error=100.0 - cells["acc_mean"])
    clean = error[error["corruption"] == "clean"].set_index(["variant", "mode"])["error"]
    shifted = error[error["corruption"] != "clean"].copy()
    shifted["gap"] = shifted["error"] - clean.reindex(pd.MultiIndex.from_frame(shifted[["variant", "mode"]])).values
    summed = shifted.groupby(["variant", "mode", "corruption"], sort=False)[["error", "gap"]].sum()
    base = summed.xs((reference, "running"), level=("variant", "mode"))
    rows = []
    mean_acc = shifted.groupby(["variant", "mode"], sort=False)["acc_mean"].mean()
    for (variant, mode), own in summed.groupby(level=["variant", "mode"], sort=False):
        own = own.droplevel(["variant", "mode"])
        rows.append(
            {
                "variant": variant,
                "mode": mode,
                "corruptions": len(own),
                "mean_acc": float(mean_acc[(variant, mode)]),
                "clean_acc": float(100.0 - clean[(variant, mode)]),
                "mce": mean_ratio(own["error"], base["error"].reindex(own.index)),
                "relative_mce": mean_ratio(own["gap"], base["gap"].reindex(own.index)),
            }
        )
    return pd.DataFrame(rows)


def mean_over_sets(scores: pd.DataFrame, mode: str = "running") -> pd.DataFrame:
    """Per run, in `mode`: its mean accuracy over the corrupted sets (column test_acc, as the declared model reads
    it)."""
    shifted = scores[(scores["corruption"] != "clean") & (scores["mode"] == mode)]
    return shifted.groupby(RUN, sort=False)["accuracy"].mean().rename("test_acc").reset_index()


def mean_hits_over_sets(scores: pd.DataFrame, hits: dict[Scoring, np.ndarray]) -> dict[tuple[str, int], np.ndarray]:
    """Per run, the mean of its per-image hits over the corrupted sets, running statistics (the bootstrap's input)."""
    shifted = scores[(scores["corruption"] != "clean") & (scores["mode"] == "running")]
    return {
        (variant, int(seed)): np.mean([hits[scoring(row)] for row in group.itertuples()], axis=0)
        for (variant, seed), group in shifted.groupby(RUN, sort=False)
    }


def primary_family(scores: pd.DataFrame, hits: dict, plan: Plan, held_equal: dict[str, str]) -> pd.DataFrame:
    """The declared family on the mean accuracy over the corrupted sets in `scores` (running statistics; the
    endpoint's sets): each variant against the reference, the declared correction and margin, each pair's own spread."""
    return family_table(mean_over_sets(scores), plan, mean_hits_over_sets(scores, hits), held_equal, pooled=False)


def group_families(scores: pd.DataFrame, hits: dict, plan: Plan, held_equal: dict[str, str]) -> pd.DataFrame:
    """The same comparisons on the intensity shifts and on the other kinds apart (secondary: each group corrected
    within itself), with the group and its kinds named; a group with no configured kind is left out."""
    kinds = list(dict.fromkeys(scores.loc[scores["corruption"] != "clean", "corruption"]))
    groups = {
        "intensity shifts": [kind for kind in kinds if kind in INTENSITY_KINDS],
        "other kinds": [kind for kind in kinds if kind not in INTENSITY_KINDS],
    }
    tables = [
        primary_family(of_kinds(scores, members), hits, plan, held_equal).assign(sets=group, kinds=", ".join(members))
        for group, members in groups.items()
        if members
    ]
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def per_set_family(scores: pd.DataFrame, hits: dict, plan: Plan, held_equal: dict[str, str]) -> pd.DataFrame:
    """The same comparisons on each set alone (running statistics), exploratory: corrected by Benjamini-Hochberg
    over every set and variant at once, not by the declared correction."""
    tables = []
    running = scores[(scores["mode"] == "running") & (scores["corruption"] != "clean")]
    for (corruption, severity), group in running.groupby(SET, sort=False):
        runs = group.rename(columns={"accuracy": "test_acc"})[[*RUN, "test_acc"]].reset_index(drop=True)
        correct = {(row.variant, int(row.seed)): hits[scoring(row)] for row in group.itertuples()}
        tables.append(family_table(runs, plan, correct, held_equal).assign(corruption=corruption, severity=severity))
    table = decided(pd.concat(tables, ignore_index=True), EXPLORATORY, plan.alpha)
    return table.assign(correction="benjamini-hochberg (exploratory)")


def adaptation_gap(scores: pd.DataFrame, hits: dict, plan: Plan, batch_variants: list[str]) -> pd.DataFrame:
    """Whether test-time statistics close BatchNorm's gap: per BatchNorm variant, its mean accuracy over corrupted
    sets with PreciseBN and with each adaptation mode against its own running statistics, and each adaptation mode
    against every variant without batch statistics (running), paired by seed; the declared correction over all these
    comparisons and TOST against the margin."""
    modes = ["precise", *adapted_modes(scores)]
    means = {mode: mean_over_sets(scores, mode).set_index(RUN)["test_acc"] for mode in ["running", *modes]}
    running = means["running"]
    others = [name for name in dict.fromkeys(running.index.get_level_values("variant")) if name not in batch_variants]
    rows = []
    for variant in batch_variants:
        pairs = [(mode, variant) for mode in modes]
        pairs += [(mode, other) for mode in modes if mode != "precise" for other in others]
        for mode, against in pairs:
            own, base = means[mode].xs(variant, level="variant"), running.xs(against, level="variant")
            rows.append({"variant": variant, "mode": mode, "against": against, "against_mode": "running"}
                        | paired_difference(own, base, plan.margin))  # fmt: skip
    return decided(pd.DataFrame(rows), plan.correction, plan.alpha) if rows else pd.DataFrame()


def contrast_family(
    scores: pd.DataFrame, hits: dict, plan: Plan, held_equal: dict[str, str], per_image: list[str]
) -> pd.DataFrame:
    """The literature's claim that per-image statistics help under a change of contrast: each `per_image` variant's
    drop from clean on the contrast set (running statistics) against the reference's, a paired t-test per pair on
    that pair's own differences (the drops' spreads differ by orders of magnitude between batch and per-image
    statistics, so no pooled variance), the declared correction over those variants per severity. Empty when no
    contrast set is configured."""
    scores = with_drops(scores)
    contrast = scores[(scores["corruption"] == "contrast") & (scores["mode"] == "running")]
    if contrast.empty:
        return pd.DataFrame()
    tables = []
    for severity, group in contrast.groupby("severity"):
        drops = {name: cell.set_index("seed")["drop"] for name, cell in group.groupby("variant", sort=False)}
        rows = [
            {"variant": name, "reference": plan.reference, "test": "paired t (the pair's own spread)"}
            | paired_difference(drops[name], drops[plan.reference], plan.margin)
            | {"held_equal": held_equal.get(name, "")}
            for name in per_image
            if name in drops and plan.reference in drops
        ]
        if not rows:
            continue
        table = decided(pd.DataFrame(rows), plan.correction, plan.alpha).rename(
            columns={"diff_mean": "diff", "ci95_low": "ci_low", "ci95_high": "ci_high"}
        )
        tables.append(table.assign(severity=severity))
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
