"""The batch-size study's tables and its verdict on the GN paper's ordering, from the runs' final test scores."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from normstudy.stats import PAIR_COLUMNS, compare_pair, over_seeds, with_adjusted_p

# Wu & He, Group Normalization (ECCV 2018), Table 2: ResNet-50's ImageNet validation error (%) by batch size per GPU.
GN_PAPER_BATCH_SIZES = (32, 16, 8, 4, 2)
GN_PAPER_ERROR = {"BN": (23.6, 23.7, 24.8, 27.3, 34.7), "GN": (24.1, 24.2, 24.0, 24.1, 24.1)}
# Norms whose statistics do not depend on the batch (the GN paper's claim is that these stay flat).
BATCH_FREE_NORMS = ("group", "layer", "instance")

RUN_COLUMNS = (
    "variant",
    "norm",
    "batch_size",
    "seed",
    "max_lr",
    "epochs",
    "train_images",
    "steps",
    "pack_seeds",
    "test_acc",
    "test_err",
    "test_loss",
    "train_acc",
    "train_loss",
    "seconds_per_epoch",
)
SUMMARY_COLUMNS = (
    "variant",
    "norm",
    "batch_size",
    "max_lr",
    "steps",
    "n_seeds",
    "test_err_mean",
    "test_err_std",
    "test_err_ci95_low",
    "test_err_ci95_high",
    "test_acc_mean",
    "test_loss_mean",
    "packed",
    "seconds_per_epoch_mean",
)


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """Per variant and batch size: test error over seeds (mean, sd, 95 % t-interval) and how the runs were made."""
    rows = []
    for (variant, batch_size), group in runs.groupby(["variant", "batch_size"], sort=False):
        rows.append(
            {
                "variant": variant,
                "norm": group["norm"].iloc[0],
                "batch_size": int(batch_size),
                "max_lr": group["max_lr"].iloc[0],
                "steps": int(group["steps"].iloc[0]),
                "n_seeds": len(group),
                **over_seeds(group["test_err"], "test_err"),
                "test_acc_mean": group["test_acc"].mean(),
                "test_loss_mean": group["test_loss"].mean(),
                "packed": bool((group["pack_seeds"] > 1).any()),
                "seconds_per_epoch_mean": group["seconds_per_epoch"].mean(),
            }
        )
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


COMPARISON_COLUMNS = ("batch_size", *PAIR_COLUMNS)


def compare_at_each_batch_size(runs: pd.DataFrame) -> pd.DataFrame:
    """Every pair of variants at every batch size: difference in test error (a - b) with the main comparison's
    tests (paired t over common seeds, else Welch), Benjamini-Hochberg over all pairs and batch sizes together."""
    rows = []
    variants = list(dict.fromkeys(runs["variant"]))
    for batch_size, group in runs.groupby("batch_size", sort=True):
        errors = {name: part.set_index("seed")["test_err"] for name, part in group.groupby("variant", sort=False)}
        for i, a in enumerate(variants):
            for b in variants[i + 1 :]:
                if a in errors and b in errors:
                    rows.append({"batch_size": int(batch_size), "variant_a": a, "variant_b": b,
                                 **compare_pair(errors[a], errors[b])})  # fmt: skip
    return with_adjusted_p(pd.DataFrame(rows, columns=list(COMPARISON_COLUMNS)))


CHANGE_COLUMNS = (
    "variant",
    "norm",
    "batch_size",
    "base_batch_size",
    "n",
    "diff_mean",
    "ci95_low",
    "ci95_high",
    "p_value",
)


def changes_from_base(runs: pd.DataFrame) -> pd.DataFrame:
    """Per variant and batch size: test error there minus at the largest batch size (the base), paired by seed.

    A seed gives a variant the same initial weights at every batch size, so the pairs share their start; the
    Benjamini-Hochberg correction runs over every variant and batch size together.
    """
    rows = []
    base = int(runs["batch_size"].max())
    for variant, group in runs.groupby("variant", sort=False):
        at_base = group[group["batch_size"] == base].set_index("seed")["test_err"]
        for batch_size, part in group[group["batch_size"] != base].groupby("batch_size", sort=True):
            result = compare_pair(part.set_index("seed")["test_err"], at_base)
            rows.append(
                {
                    "variant": variant,
                    "norm": group["norm"].iloc[0],
                    "batch_size": int(batch_size),
                    "base_batch_size": base,
                    "n": result["n_a"],
                    **{key: result[key] for key in ("diff_mean", "ci95_low", "ci95_high", "p_value")},
                }
            )
    return with_adjusted_p(pd.DataFrame(rows, columns=list(CHANGE_COLUMNS)))


@dataclass(frozen=True)
class Ordering:
    """Whether the GN paper's ordering held here, and the sentences that say so."""

    verdict: str  # holds | holds in part | does not hold | cannot be tested
    sentences: tuple[str, ...]

    @property
    def text(self) -> str:
        """The sentences as one paragraph."""
        return " ".join(self.sentences)


def _points(value: float) -> str:
    return f"{value:+.2f} points"


def _change_words(row: pd.Series) -> str:
    """'+1.20 points, 95 % CI +0.80 to +1.60, adjusted p = 0.010'."""
    if pd.isna(row["p_adjusted"]):
        return f"{_points(row['diff_mean'])}, not testable (too few seeds or no spread)"
    return (
        f"{_points(row['diff_mean'])}, 95 % CI {row['ci95_low']:+.2f} to {row['ci95_high']:+.2f}, adjusted p = "
        f"{row['p_adjusted']:.3f}"
    )


def paper_sentence() -> str:
    """The GN paper's own figures, to read ours beside."""
    (bn, gn), sizes = GN_PAPER_ERROR.values(), GN_PAPER_BATCH_SIZES
    return (
        f"In the GN paper (ResNet-50 on ImageNet, batch per GPU {sizes[0]} → {sizes[-1]}) BN's validation error rose "
        f"from {bn[0]} % to {bn[-1]} % ({bn[-1] - bn[0]:+.1f} points) while GN's went from {gn[0]} % to {gn[-1]} %."
    )


@dataclass(frozen=True)
class BatchNormGap:
    """At the smallest batch size: one BatchNorm variant against one batch-free variant."""

    bn: str
    free: str
    diff: float  # bn's error minus the batch-free one's, in points
    p_adjusted: float
    worse: bool  # bn significantly behind


def gaps_at(
    comparisons: pd.DataFrame, batch_size: int, batch_norm: list[str], batch_free: list[str]
) -> list[BatchNormGap]:
    """Every BatchNorm variant against every batch-free one at `batch_size`, signed as BatchNorm minus the other."""
    pairs = comparisons[comparisons["batch_size"] == batch_size]
    gaps = []
    for bn in batch_norm:
        for free in batch_free:
            match, sign = pairs[(pairs["variant_a"] == bn) & (pairs["variant_b"] == free)], 1
            if match.empty:
                match, sign = pairs[(pairs["variant_a"] == free) & (pairs["variant_b"] == bn)], -1
            row = match.iloc[0]
            diff = sign * row["diff_mean"]
            gaps.append(BatchNormGap(bn, free, diff, row["p_adjusted"], bool(row["significant"]) and diff > 0))
    return gaps


def judged(
    batch_norm: list[str],
    batch_free: list[str],
    bn_rose: list[str],
    free_rose: list[str],
    gaps: list[BatchNormGap],
    smallest: int,
    base: int,
) -> tuple[str, str]:
    """The verdict, and the sentence that states it, from which variants' error rose significantly."""
    all_above = all(gap.worse for gap in gaps)
    if len(bn_rose) == len(batch_norm) and not free_rose and all_above:
        return "holds", (
            f"The GN paper's ordering holds here: BatchNorm's error rises at small batches, significantly, while "
            f"{', '.join(batch_free)} do not get significantly worse, and at batch {smallest} BatchNorm is "
            "significantly behind them."
        )
    if bn_rose:
        missing = []
        if len(bn_rose) < len(batch_norm):
            missing.append(f"{', '.join(v for v in batch_norm if v not in bn_rose)} did not degrade significantly")
        if free_rose:
            missing.append(f"{', '.join(free_rose)} got significantly worse too")
        if not all_above:
            missing.append(f"at batch {smallest} BatchNorm is not significantly behind every batch-free norm")
        return "holds in part", (
            f"The GN paper's ordering holds in part here: {', '.join(bn_rose)} got significantly worse at small "
            f"batches, but {'; '.join(missing)}."
        )
    return "does not hold", (
        "The GN paper's ordering does not hold here: no BatchNorm variant's error at batch "
        f"{smallest} is significantly above its error at batch {base}."
    )


def ordering(summary: pd.DataFrame, comparisons: pd.DataFrame, changes: pd.DataFrame) -> Ordering:
    """Does BN degrade at small batches while the batch-free norms stay flat, as in the GN paper? From the numbers.

    It holds when every BatchNorm variant's error at the smallest batch size is significantly above its error at
    the base (largest) batch size, no batch-free variant's is, and at the smallest batch size every BatchNorm
    variant is significantly worse than every batch-free one (adjusted p < 0.05 throughout).
    """
    sizes = sorted(summary["batch_size"].unique())
    smallest, base = int(sizes[0]), int(sizes[-1])
    norms = dict(zip(summary["variant"], summary["norm"], strict=False))
    batch_norm = [v for v, n in norms.items() if n == "batch"]
    batch_free = [v for v, n in norms.items() if n in BATCH_FREE_NORMS]
    if not batch_norm or not batch_free:
        needs = (
            "The ordering needs a BatchNorm variant and a batch-free one (group, layer or instance norm) in the "
            f"batch study; it has {', '.join(norms)}."
        )
        return Ordering("cannot be tested", (needs, paper_sentence()))
    at_smallest = changes[changes["batch_size"] == smallest].set_index("variant")
    mean_err = summary.set_index(["variant", "batch_size"])["test_err_mean"]
    described = [
        f"{variant}'s from {mean_err[(variant, base)]:.2f} % to {mean_err[(variant, smallest)]:.2f} % "
        f"({_change_words(at_smallest.loc[variant])})"
        for variant in [*batch_norm, *batch_free]
    ]
    sentences = [f"From batch {base} to batch {smallest}, mean test error went: " + "; ".join(described) + "."]
    if at_smallest["p_adjusted"].isna().all():
        untestable = "With fewer than two seeds per point no change can be tested."
        return Ordering("cannot be tested", (*sentences, untestable, paper_sentence()))

    def rose(variant: str) -> bool:
        row = at_smallest.loc[variant]
        return bool(row["significant"]) and row["diff_mean"] > 0

    gaps = gaps_at(comparisons, smallest, batch_norm, batch_free)
    said = "; ".join(
        f"{g.bn} − {g.free} {_points(g.diff)} (adjusted p = {g.p_adjusted:.3f}{', significant' if g.worse else ''})"
        for g in gaps
    )
    sentences.append(f"At batch {smallest}: {said}.")
    bn_rose, free_rose = [v for v in batch_norm if rose(v)], [v for v in batch_free if rose(v)]
    verdict, stated = judged(batch_norm, batch_free, bn_rose, free_rose, gaps, smallest, base)
    return Ordering(verdict, (stated, *sentences, paper_sentence()))
