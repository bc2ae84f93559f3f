"""The batch-size study's tables and its verdict on the GN paper's ordering, from the runs' final test scores."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from normstudy.stats import PAIR_COLUMNS, compare_pair, t_interval, with_adjusted_p

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
        low, high = t_interval(group["test_err"].to_numpy())
        rows.append(
            {
                "variant": variant,
                "norm": group["norm"].iloc[0],
                "batch_size": int(batch_size),
                "max_lr": group["max_lr"].iloc[0],
                "steps": int(group["steps"].iloc[0]),
                "n_seeds": len(group),
                "test_err_mean": group["test_err"].mean(),
                "test_err_std": group["test_err"].std(ddof=1) if len(group) > 1 else np.nan,
                "test_err_ci95_low": low,
                "test_err_ci95_high": high,
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
        return Ordering(
            "cannot be tested",
            (
                "The ordering needs a BatchNorm variant and a batch-free one (group, layer or instance norm) in the "
                f"batch study; it has {', '.join(norms)}.",
                paper_sentence(),
            ),
        )
    at_smallest = changes[changes["batch_size"] == smallest].set_index("variant")
    mean_err = summary.set_index(["variant", "batch_size"])["test_err_mean"]
    described = [
        f"{variant}'s from {mean_err[(variant, base)]:.2f} % to {mean_err[(variant, smallest)]:.2f} % "
        f"({_change_words(at_smallest.loc[variant])})"
        for variant in [*batch_norm, *batch_free]
    ]
    sentences = [f"From batch {base} to batch {smallest}, mean test error went: " + "; ".join(described) + "."]
    if at_smallest["p_adjusted"].isna().all():
        return Ordering(
            "cannot be tested",
            (*sentences, "With fewer than two seeds per point no change can be tested.", paper_sentence()),
        )

    def rose(variant: str) -> bool:
        row = at_smallest.loc[variant]
        return bool(row["significant"]) and row["diff_mean"] > 0

    pairs = comparisons[comparisons["batch_size"] == smallest]
    above = []
    for bn in batch_norm:
        for free in batch_free:
            match = pairs[((pairs["variant_a"] == bn) & (pairs["variant_b"] == free))]
            sign = 1
            if match.empty:
                match, sign = pairs[(pairs["variant_a"] == free) & (pairs["variant_b"] == bn)], -1
            row = match.iloc[0]
            worse = bool(row["significant"]) and sign * row["diff_mean"] > 0
            above.append((bn, free, sign * row["diff_mean"], row["p_adjusted"], worse))
    sentences.append(
        f"At batch {smallest}: "
        + "; ".join(
            f"{bn} − {free} {_points(diff)} (adjusted p = {p:.3f}{', significant' if worse else ''})"
            for bn, free, diff, p, worse in above
        )
        + "."
    )
    bn_rose = [v for v in batch_norm if rose(v)]
    free_rose = [v for v in batch_free if rose(v)]
    all_above = all(worse for *_, worse in above)
    if len(bn_rose) == len(batch_norm) and not free_rose and all_above:
        verdict = "holds"
        said = (
            f"The GN paper's ordering holds here: BatchNorm's error rises at small batches, significantly, while "
            f"{', '.join(batch_free)} do not get significantly worse, and at batch {smallest} BatchNorm is "
            "significantly behind them."
        )
    elif bn_rose:
        verdict = "holds in part"
        missing = []
        if len(bn_rose) < len(batch_norm):
            missing.append(f"{', '.join(v for v in batch_norm if v not in bn_rose)} did not degrade significantly")
        if free_rose:
            missing.append(f"{', '.join(free_rose)} got significantly worse too")
        if not all_above:
            missing.append(f"at batch {smallest} BatchNorm is not significantly behind every batch-free norm")
        said = (
            f"The GN paper's ordering holds in part here: {', '.join(bn_rose)} got significantly worse at small "
            f"batches, but {'; '.join(missing)}."
        )
    else:
        verdict = "does not hold"
        said = (
            "The GN paper's ordering does not hold here: no BatchNorm variant's error at batch "
            f"{smallest} is significantly above its error at batch {base}."
        )
    return Ordering(verdict, (said, *sentences, paper_sentence()))
