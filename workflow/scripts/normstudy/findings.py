"""The report's findings in words, generated from the numbers so that they stay true whatever the numbers are."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from normstudy.stats import ALPHA, POWER, detectable_difference, pooled_paired_sd, seeds_needed

# Write-up 002: "99.4 % test accuracy with less than 8k parameters in 15 epochs", the study's target.
TARGET_ACCURACY = 99.4
# Write-up 003's single runs (8,880 parameters, 20 epochs), by norm.
SEED_003_RESULTS = {"group": 99.54, "layer": 99.48}
# The difference the power figure is also quoted for: about the size of the write-ups' claims.
REFERENCE_DIFFERENCE = 0.05


@dataclass(frozen=True)
class Power:
    """What the study could detect: from the observed seed-to-seed spread of paired differences."""

    seeds: int
    sd: float
    detectable: float  # smallest difference detected with POWER at level ALPHA (NaN: not computable)
    reference: float  # REFERENCE_DIFFERENCE
    seeds_for_reference: int

    @classmethod
    def of(cls, final_acc: pd.DataFrame) -> Power:
        """From the per-run table (variant, seed, test_acc)."""
        sd, seeds = pooled_paired_sd(final_acc)
        if seeds < 2 or math.isnan(sd):
            return cls(seeds, math.nan, math.nan, REFERENCE_DIFFERENCE, 0)
        return cls(
            seeds, sd, detectable_difference(seeds, sd), REFERENCE_DIFFERENCE, seeds_needed(REFERENCE_DIFFERENCE, sd)
        )

    def sentence(self) -> str:
        """The power statement shown beside the verdict."""
        if self.seeds < 2:
            return "With one seed per variant there is no seed-to-seed spread, so no difference can be tested."
        if self.sd == 0:
            return (
                f"The paired differences did not vary over the {self.seeds} seeds, so the spread gives no power figure."
            )
        return (
            f"With {self.seeds} seeds and the observed seed-to-seed spread of paired differences (sd "
            f"{self.sd:.3f} points), a paired t-test at the {ALPHA:.0%} level detects a true difference of "
            f"{self.detectable:.2f} points with {POWER:.0%} power (before the correction for multiple comparisons). "
            f"Detecting a {self.reference:.2f}-point difference would take {self.seeds_for_reference} seeds. "
            'A non-significant difference smaller than that is "too few seeds to tell", not "no difference".'
        )


def verdict(comparisons: pd.DataFrame, seeds: int) -> str:
    """A plain statement of which differences the seeds support, and which they do not."""
    tested = comparisons[comparisons["p_adjusted"].notna()]
    significant = tested[tested["significant"]]
    if tested.empty:
        return (
            f"With {seeds} seed(s) per variant no difference can be tested; the table only describes these runs, "
            "and no variant can be called better."
        )
    if significant.empty:
        return (
            f"None of the {len(tested)} pairwise differences is significant at the 5 % level after Benjamini–Hochberg "
            f"correction, with {seeds} seeds per variant. The differences in the summary are within seed-to-seed "
            "noise: this study does not show that any normalization is better than another here."
        )
    pairs = "; ".join(
        f"{r.variant_a} {'above' if r.diff_mean > 0 else 'below'} {r.variant_b} by {abs(r.diff_mean):.2f} points "
        f"(95 % CI {r.ci95_low:+.2f} to {r.ci95_high:+.2f}, adjusted p = {r.p_adjusted:.3f})"
        for r in significant.itertuples()
    )
    rest = len(tested) - len(significant)
    return (
        f"{len(significant)} of {len(tested)} pairwise differences are significant at the 5 % level after "
        f"Benjamini–Hochberg correction: {pairs}. The other {rest} are within seed-to-seed noise "
        f"with {seeds} seeds, and are not evidence either way."
    )


def _accuracy(row: pd.Series) -> str:
    """Mean test accuracy with its 95 % interval when there is one."""
    if pd.isna(row["test_acc_ci95_low"]):
        return f"{row['test_acc_mean']:.2f} % (one seed, no interval)"
    return f"{row['test_acc_mean']:.2f} % (95 % CI {row['test_acc_ci95_low']:.2f}–{row['test_acc_ci95_high']:.2f})"


def _names(names: list[str]) -> str:
    return ", ".join(names) if names else "none"


def key_results(summary: pd.DataFrame, comparisons: pd.DataFrame, power: Power, mnist: bool) -> list[str]:
    """The few sentences a reader who stops after the first screen must get."""
    ranked = summary.sort_values("test_acc_mean", ascending=False, kind="stable")
    best, worst = ranked.iloc[0], ranked.iloc[-1]
    lines = [f"Highest mean test accuracy: {best['variant']}, {_accuracy(best)}."]
    if len(ranked) > 1:
        lines.append(f"Lowest: {worst['variant']}, {_accuracy(worst)}.")
    tested = comparisons[comparisons["p_adjusted"].notna()]
    significant = tested[tested["significant"]]
    if tested.empty:
        lines.append("No difference could be tested (fewer than two seeds per variant).")
    elif significant.empty:
        lines.append(
            f"None of the {len(tested)} pairwise differences is significant after Benjamini–Hochberg correction; "
            + (
                f"the study could detect differences of {power.detectable:.2f} points or more."
                if not math.isnan(power.detectable)
                else "the spread gives no power figure."
            )
        )
    else:
        pairs = ", ".join(
            f"{r.variant_a} {'>' if r.diff_mean > 0 else '<'} {r.variant_b} ({r.diff_mean:+.2f})"
            for r in significant.itertuples()
        )
        lines.append(f"Significant after Benjamini–Hochberg correction ({len(significant)} of {len(tested)}): {pairs}.")
    if not mnist:
        lines.append("Synthetic digits, not MNIST: the write-ups' MNIST claims are not checked on this data.")
        return lines
    met = list(summary.loc[summary["test_acc_mean"] >= TARGET_ACCURACY, "variant"])
    missed = list(summary.loc[summary["test_acc_mean"] < TARGET_ACCURACY, "variant"])
    lines.append(
        f"Write-up 002's {TARGET_ACCURACY} % target (mean over seeds): met by {_names(met)}; "
        f"missed by {_names(missed)}."
    )
    claims = []
    for norm, claimed in SEED_003_RESULTS.items():
        for row in summary[summary["norm"] == norm].itertuples():
            low, high = row.test_acc_ci95_low, row.test_acc_ci95_high
            if pd.isna(low):
                where = "one seed, no interval"
            elif low <= claimed <= high:
                where = "inside our 95 % CI"
            else:
                where = f"{'above' if claimed > high else 'below'} our 95 % CI"
            claims.append(f"{row.variant} {claimed:.2f} % vs our {row.test_acc_mean:.2f} % ({where})")
    if claims:
        lines.append("Write-up 003's single runs (8,880 parameters, 20 epochs): " + "; ".join(claims) + ".")
    return lines
