"""The batch study's tables and its generated verdict on the GN paper's ordering, on runs made up by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from normstudy.batches import (
    GN_PAPER_ERROR,
    changes_from_base,
    compare_at_each_batch_size,
    ordering,
    paper_sentence,
    summarize,
)

NORMS = {"bn": "batch", "gn": "group", "ln": "layer", "in": "instance"}


def runs_table(errors: dict[tuple[str, int], list[float]]) -> pd.DataFrame:
    """Runs with these test errors: (variant, batch size) -> one error per seed (seeds 1, 2, 3, ...)."""
    rows = []
    for (variant, batch_size), values in errors.items():
        for seed, error in enumerate(values, start=1):
            rows.append(
                {
                    "variant": variant,
                    "norm": NORMS[variant],
                    "batch_size": batch_size,
                    "seed": seed,
                    "max_lr": 0.1 * batch_size / 128,
                    "epochs": 1,
                    "train_images": 20000,
                    "steps": 20000 // batch_size,
                    "pack_seeds": len(values) if batch_size < 128 else 1,
                    "test_acc": 100 - error,
                    "test_err": error,
                    "test_loss": error / 30,
                    "train_acc": 99.0,
                    "train_loss": 0.05,
                    "seconds_per_epoch": 10.0,
                }
            )
    return pd.DataFrame(rows)


FLAT = {
    ("gn", 128): [1.2, 1.3, 1.1],
    ("gn", 2): [1.25, 1.2, 1.15],
    ("ln", 128): [1.3, 1.2, 1.2],
    ("ln", 2): [1.2, 1.3, 1.2],
}
BN_RISES = {("bn", 128): [1.0, 1.1, 0.9], ("bn", 2): [3.0, 3.2, 2.9]}


def verdict_of(errors: dict[tuple[str, int], list[float]]):
    runs = runs_table(errors)
    summary = summarize(runs)
    return ordering(summary, compare_at_each_batch_size(runs), changes_from_base(runs))


def test_summary_gives_each_variant_and_batch_size_its_error_over_seeds() -> None:
    """bn at batch 2: errors 3.0, 3.2, 2.9: mean 3.0333, sd 0.15275; the t-interval is
    3.0333 +- t(0.975, 2) 4.3027 x 0.15275 / sqrt(3) = 3.0333 +- 0.3795."""
    summary = summarize(runs_table({**BN_RISES, **FLAT})).set_index(["variant", "batch_size"])
    row = summary.loc[("bn", 2)]
    assert row["n_seeds"] == 3 and row["steps"] == 10000 and bool(row["packed"])
    assert row["test_err_mean"] == pytest.approx(3.03333, abs=1e-4)
    assert row["test_err_std"] == pytest.approx(0.15275, abs=1e-4)
    assert (row["test_err_ci95_low"], row["test_err_ci95_high"]) == pytest.approx((2.6539, 3.4128), abs=1e-3)
    assert not bool(summary.loc[("bn", 128), "packed"])
    assert row["test_acc_mean"] == pytest.approx(100 - 3.03333, abs=1e-4)


def test_changes_are_paired_by_seed_against_the_largest_batch_size() -> None:
    """bn's paired differences (batch 2 - batch 128) are 2.0, 2.1, 2.0: mean 2.0333, sd 0.05774, so the
    interval is 2.0333 +- 4.3027 x 0.05774 / sqrt(3) = 2.0333 +- 0.1434 and t = 61.0 (p = 0.00027)."""
    changes = changes_from_base(runs_table({**BN_RISES, **FLAT})).set_index("variant")
    bn = changes.loc["bn"]
    assert (bn["batch_size"], bn["base_batch_size"], bn["n"]) == (2, 128, 3)
    assert bn["diff_mean"] == pytest.approx(2.03333, abs=1e-4)
    assert (bn["ci95_low"], bn["ci95_high"]) == pytest.approx((1.8899, 2.1768), abs=1e-3)
    assert bn["p_value"] == pytest.approx(0.000268, rel=0.02)
    assert bool(bn["significant"]) and not bool(changes.loc["gn", "significant"])
    # Benjamini-Hochberg over the three changes: the smallest p is multiplied by 3 / 1.
    assert bn["p_adjusted"] == pytest.approx(3 * bn["p_value"], rel=1e-9)


def test_pairs_are_compared_at_each_batch_size_with_one_correction() -> None:
    comparisons = compare_at_each_batch_size(runs_table({**BN_RISES, **FLAT}))
    assert list(comparisons[["batch_size", "variant_a", "variant_b"]].itertuples(index=False, name=None)) == [
        (2, "bn", "gn"), (2, "bn", "ln"), (2, "gn", "ln"), (128, "bn", "gn"), (128, "bn", "ln"), (128, "gn", "ln"),
    ]  # fmt: skip
    at_2 = comparisons.iloc[0]
    assert bool(at_2["paired"]) and at_2["diff_mean"] == pytest.approx(3.03333 - 1.2, abs=1e-4)
    assert bool(at_2["significant"])
    # bn - gn at 128 differs by exactly 0.2 for every seed: no spread, no test. The other five are one family:
    # each adjusted p is at least its raw p and at most five times it.
    untested = comparisons[comparisons["p_value"].isna()]
    assert list(untested[["batch_size", "variant_a", "variant_b"]].iloc[0]) == [128, "bn", "gn"] and len(untested) == 1
    assert not bool(untested["significant"].iloc[0])
    tested = comparisons.dropna(subset=["p_value"])
    assert (tested["p_adjusted"] >= tested["p_value"]).all()
    assert (tested["p_adjusted"] <= 5 * tested["p_value"] + 1e-12).all()


def test_the_ordering_holds_when_only_batch_norm_degrades() -> None:
    result = verdict_of({**BN_RISES, **FLAT})
    assert result.verdict == "holds"
    assert result.sentences[0].startswith("The GN paper's ordering holds here")
    assert "bn's from 1.00 % to 3.03 % (+2.03 points, 95 % CI +1.89 to +2.18, adjusted p = 0.001)" in result.text
    assert "At batch 2: bn − gn +1.83 points" in result.text
    assert result.sentences[-1] == paper_sentence()
    assert f"{GN_PAPER_ERROR['BN'][0]} % to {GN_PAPER_ERROR['BN'][-1]} %" in result.text


def test_the_ordering_does_not_hold_when_batch_norm_stays_flat() -> None:
    flat_bn = {("bn", 128): [1.0, 1.1, 0.9], ("bn", 2): [1.05, 1.0, 0.95]}
    result = verdict_of({**flat_bn, **FLAT})
    assert result.verdict == "does not hold"
    assert "no BatchNorm variant's error at batch 2 is significantly above its error at batch 128" in result.text


def test_the_ordering_holds_in_part_when_a_batch_free_norm_degrades_too() -> None:
    gn_rises = {("gn", 128): [1.2, 1.3, 1.1], ("gn", 2): [2.2, 2.4, 2.1]}
    result = verdict_of({**BN_RISES, **gn_rises, **{k: v for k, v in FLAT.items() if k[0] == "ln"}})
    assert result.verdict == "holds in part"
    assert "gn got significantly worse too" in result.sentences[0]


def test_the_ordering_cannot_be_tested_without_both_kinds_of_norm_or_with_one_seed() -> None:
    assert verdict_of(FLAT).verdict == "cannot be tested"
    assert "needs a BatchNorm variant and a batch-free one" in verdict_of(FLAT).text
    one_seed = {key: values[:1] for key, values in {**BN_RISES, **FLAT}.items()}
    result = verdict_of(one_seed)
    assert result.verdict == "cannot be tested"
    assert "not testable" in result.text and "fewer than two seeds" in result.text
