"""The robustness study's numbers and sentences (normstudy.analysis.robustness and findings_robustness), on scores
built here, checked against scipy and statsmodels and against the definitions they cite."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from normstudy.analysis.declared import family_table
from normstudy.analysis.findings_robustness import (
    adaptation_sentence,
    contrast_sentence,
    ranking_flips,
    robustness_findings,
    robustness_overall,
)
from normstudy.analysis.robustness import (
    adaptation_gap,
    adapted_modes,
    contrast_family,
    corruption_errors,
    group_families,
    mean_hits_over_sets,
    mean_over_sets,
    per_set_family,
    primary_family,
    summarize,
)
from normstudy.config.study import Plan
from normstudy.data.shift_sets import batch_mode, mode_batch
from normstudy.model.nets.normnet import SPEC as NORMNET

PLAN = Plan("bn", "holm", 0.05, 0.2, 400)
PLAN_WORDS = {"reference": "bn", "correction": "holm", "alpha": 0.05, "margin": 0.2}
ENDPOINT = {"name": "all", "words": "every kind", "kinds": ["contrast", "fog"], "sets": 2}
IMAGES = 400
SEEDS = (1, 2, 3)
# Mean accuracy (%) per variant and set; each seed's run moves it by its own offset.
MEANS = {
    "bn": {"clean": 99.0, "contrast": 30.0, "fog": 60.0},
    "gn": {"clean": 98.5, "contrast": 90.0, "fog": 50.0},
    "in": {"clean": 98.0, "contrast": 95.0, "fog": 40.0},
}
ADAPTED = {"clean": 98.75, "contrast": 92.0, "fog": 70.0}
PRECISE = {"clean": 99.0, "contrast": 31.0, "fog": 61.0}
OFFSETS = {1: -0.75, 2: 0.0, 3: 0.5}
# How strongly each variant's runs follow their seed's offset (so that paired differences have a spread).
FOLLOWS = {"bn": 1.0, "gn": 0.5, "in": -0.5}


def scores_and_hits() -> tuple[pd.DataFrame, dict]:
    """Rows as evaluate_corrupted.py writes them, and per-image hits with exactly each row's number right."""
    rows, hits = [], {}
    generator = np.random.default_rng(7)
    for variant, sets in MEANS.items():
        for seed in SEEDS:
            modes = {"running": sets, **({"precise": PRECISE, "adapted": ADAPTED} if variant == "bn" else {})}
            for mode, accuracies in modes.items():
                for corruption, accuracy in accuracies.items():
                    follows = FOLLOWS[variant] if mode == "running" else 0.25
                    offset = OFFSETS[seed] * follows * (1 if corruption == "clean" else 4)
                    correct = round((accuracy + offset) * IMAGES / 100)
                    right = np.zeros(IMAGES, dtype=bool)
                    right[generator.choice(IMAGES, correct, replace=False)] = True
                    severity = 0 if corruption == "clean" else 3
                    hits[(variant, seed, corruption, severity, mode)] = right
                    rows.append((variant, seed, corruption, severity, mode, IMAGES, correct, 100 * correct / IMAGES))
    columns = ["variant", "seed", "corruption", "severity", "mode", "images", "correct", "accuracy"]
    return pd.DataFrame(rows, columns=columns), hits


@pytest.fixture(scope="module")
def study() -> tuple[pd.DataFrame, dict]:
    return scores_and_hits()


def test_a_cell_is_the_mean_over_seeds_with_scipys_interval_and_the_drop_from_its_own_clean_score(study) -> None:
    scores, hits = study
    cells = summarize(scores, hits, PLAN).set_index(["variant", "corruption", "mode"])
    own = scores[(scores["variant"] == "gn") & (scores["corruption"] == "fog")]["accuracy"].to_numpy()
    clean = scores[(scores["variant"] == "gn") & (scores["corruption"] == "clean")]["accuracy"].to_numpy()
    cell = cells.loc[("gn", "fog", "running")]
    low, high = stats.t.interval(0.95, 2, loc=own.mean(), scale=stats.sem(own))
    assert cell["acc_mean"] == pytest.approx(own.mean()) and cell["n_seeds"] == 3
    assert (cell["acc_ci95_low"], cell["acc_ci95_high"]) == pytest.approx((low, high))
    assert cell["drop_mean"] == pytest.approx((clean - own).mean())
    # The test set's sampling widens the interval, by the bootstrap's spread of the mean over seeds.
    assert cell["acc_se_test_set"] > 0
    half = stats.t.ppf(0.975, 2) * math.hypot(stats.sem(own), cell["acc_se_test_set"])
    assert cell["acc_ci95_high_test_set"] - cell["acc_mean"] == pytest.approx(half)
    every = cells[["acc_ci95_low", "acc_ci95_high", "acc_ci95_low_test_set", "acc_ci95_high_test_set"]].to_numpy()
    assert ((every >= 0) & (every <= 100)).all()
    assert cells.loc[("bn", "fog", "adapted"), "acc_mean"] == pytest.approx(
        ADAPTED["fog"] + np.mean(list(OFFSETS.values())), abs=0.2
    )


def test_mce_is_hendrycks_and_dietterichs_ratio_of_summed_errors_to_the_references(study) -> None:
    scores, hits = study
    errors = corruption_errors(summarize(scores, hits, PLAN), "bn").set_index(["variant", "mode"])
    mean = scores[scores["mode"] == "running"].groupby(["variant", "corruption"])["accuracy"].mean()

    def error(variant: str, corruption: str) -> float:
        return 100 - mean[(variant, corruption)]

    ratios = [error("in", c) / error("bn", c) for c in ("contrast", "fog")]
    relative = [
        (error("in", c) - error("in", "clean")) / (error("bn", c) - error("bn", "clean")) for c in ("contrast", "fog")
    ]
    assert errors.loc[("in", "running"), "mce"] == pytest.approx(100 * np.mean(ratios))
    assert errors.loc[("in", "running"), "relative_mce"] == pytest.approx(100 * np.mean(relative))
    assert errors.loc[("bn", "running"), "mce"] == pytest.approx(100.0)
    assert errors.loc[("bn", "adapted"), "mce"] < 100 and errors.loc[("bn", "adapted"), "corruptions"] == 2


def test_the_primary_family_is_the_declared_test_on_each_runs_mean_over_sets_with_each_pairs_own_spread(study) -> None:
    scores, hits = study
    family = primary_family(scores, hits, PLAN, {})
    runs, mean_hits = mean_over_sets(scores), mean_hits_over_sets(scores, hits)
    shifted = scores[(scores["corruption"] != "clean") & (scores["mode"] == "running")]
    assert runs.set_index(["variant", "seed"])["test_acc"].to_dict() == pytest.approx(
        shifted.groupby(["variant", "seed"])["accuracy"].mean().to_dict()
    )
    assert mean_hits[("gn", 2)].mean() * 100 == pytest.approx(
        runs.set_index(["variant", "seed"]).loc[("gn", 2), "test_acc"]
    )
    pd.testing.assert_frame_equal(family, family_table(runs, PLAN, mean_hits, {}, pooled=False))
    assert list(family["variant"]) == ["gn", "in"]
    # Each pair on its own differences: scipy's paired t-test, not a residual variance pooled with the other pair.
    by_run = runs.set_index(["variant", "seed"])["test_acc"]
    for row in family.itertuples():
        paired = stats.ttest_rel(by_run.xs(row.variant), by_run.xs("bn"))
        assert row.p_value == pytest.approx(paired.pvalue) and row.df == 2
        assert (row.ci_low, row.ci_high) == pytest.approx(tuple(paired.confidence_interval(0.95)))
    pooled = family_table(runs, PLAN, mean_hits, {})
    assert set(pooled["df"]) == {4} and not np.allclose(pooled["se"], family["se"])


def test_unequal_spreads_do_not_borrow_each_others_variance() -> None:
    # gn follows bn's seeds exactly (no spread of its differences); in scatters by 5 points: pooled, gn's
    # difference would inherit in's spread and be called inconclusive.
    runs = pd.DataFrame(
        [("bn", s, 50.0 + o) for s, o in zip(SEEDS, (0.0, 1.0, 2.0), strict=True)]
        + [("gn", s, 53.0 + o + e) for s, o, e in zip(SEEDS, (0.0, 1.0, 2.0), (0.01, -0.01, 0.0), strict=True)]
        + [("in", s, 50.0 + o + e) for s, o, e in zip(SEEDS, (0.0, 1.0, 2.0), (5.0, -5.0, 0.0), strict=True)],
        columns=["variant", "seed", "test_acc"],
    )
    correct = {(v, s): np.full(IMAGES, 0.5) for v, s in zip(runs["variant"], runs["seed"], strict=True)}
    own = family_table(runs, PLAN, correct, {}, pooled=False).set_index("variant")
    pooled = family_table(runs, PLAN, correct, {}).set_index("variant")
    assert own.loc["gn", "verdict"] == "different" and pooled.loc["gn", "verdict"] == "inconclusive"
    assert own.loc["gn", "se"] == pytest.approx(stats.sem([3.01, 2.99, 3.0]))


def test_intensity_shifts_and_the_other_kinds_are_compared_apart(study) -> None:
    scores, hits = study
    # fog renamed shear: one intensity kind (contrast) and one other.
    renamed = scores.replace({"corruption": {"fog": "shear"}})
    moved = {(v, s, "shear" if c == "fog" else c, sev, m): h for (v, s, c, sev, m), h in hits.items()}
    groups = group_families(renamed, moved, PLAN, {})
    assert list(dict.fromkeys(groups["sets"])) == ["intensity shifts", "other kinds"]
    assert set(groups.loc[groups["sets"] == "other kinds", "kinds"]) == {"shear"}
    alone = primary_family(renamed[renamed["corruption"] != "contrast"], moved, PLAN, {})
    other = groups[groups["sets"] == "other kinds"].drop(columns=["sets", "kinds"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(other, alone)
    # Only intensity kinds configured: one group, no empty one.
    assert list(dict.fromkeys(group_families(scores, hits, PLAN, {})["sets"])) == ["intensity shifts"]


def test_adaptation_modes_come_whole_set_first_then_by_batch_size() -> None:
    scores = pd.DataFrame({"mode": ["running", "adapted_256", "precise", "adapted_32", "adapted"]})
    assert adapted_modes(scores) == ["adapted", "adapted_32", "adapted_256"]
    assert mode_batch(batch_mode(32)) == 32 and mode_batch("adapted") is None and mode_batch("precise") is None


def test_per_set_comparisons_are_benjamini_hochberg_over_every_set_and_variant(study) -> None:
    scores, hits = study
    table = per_set_family(scores, hits, PLAN, {})
    assert len(table) == 4 and set(table["correction"]) == {"benjamini-hochberg (exploratory)"}
    expected = multipletests(table["p_value"], method="fdr_bh")[1]
    assert table["p_adjusted"].to_numpy() == pytest.approx(expected)
    contrast = table[(table["corruption"] == "contrast") & (table["variant"] == "in")].iloc[0]
    assert contrast["diff"] == pytest.approx(65.0, abs=1) and contrast["verdict"] == "different"


def test_adaptation_is_paired_by_seed_and_holm_corrected_over_its_comparisons(study) -> None:
    scores, hits = study
    table = adaptation_gap(scores, hits, PLAN, ["bn"])
    assert list(zip(table["mode"], table["against"], strict=True)) == [
        ("precise", "bn"), ("adapted", "bn"), ("adapted", "gn"), ("adapted", "in")
    ]  # fmt: skip
    # A batch-at-a-time mode is tested against its own running statistics and every per-image norm, too.
    batched = pd.concat([scores, scores[scores["mode"] == "adapted"].assign(mode="adapted_32")], ignore_index=True)
    modes = adaptation_gap(batched, hits, PLAN, ["bn"])
    assert list(zip(modes["mode"], modes["against"], strict=True))[1:] == [
        ("adapted", "bn"), ("adapted_32", "bn"), ("adapted", "gn"), ("adapted", "in"), ("adapted_32", "gn"),
        ("adapted_32", "in"),
    ]  # fmt: skip
    means = {mode: mean_over_sets(scores, mode).set_index(["variant", "seed"])["test_acc"] for mode in
             ("running", "adapted")}  # fmt: skip
    adapted, gn = means["adapted"].xs("bn"), means["running"].xs("gn")
    row = table[(table["mode"] == "adapted") & (table["against"] == "gn")].iloc[0]
    assert row["p_value"] == pytest.approx(stats.ttest_rel(adapted, gn).pvalue)
    assert table["p_adjusted"].to_numpy() == pytest.approx(multipletests(table["p_value"], method="holm")[1])


def test_the_contrast_claim_compares_drops_not_accuracies(study) -> None:
    scores, hits = study
    table = contrast_family(scores, hits, PLAN, {}, ["gn", "in"]).set_index("variant")
    # bn loses about 69 points of its 99 on contrast, gn about 8.5 of 98.5: a drop about 60.5 points smaller.
    running = scores[scores["mode"] == "running"].set_index(["variant", "seed", "corruption"])["accuracy"]
    drop = {v: np.mean([running[(v, s, "clean")] - running[(v, s, "contrast")] for s in SEEDS]) for v in ("bn", "gn")}
    assert table.loc["gn", "diff"] == pytest.approx(drop["gn"] - drop["bn"]) == pytest.approx(-60.5, abs=0.5)
    # Each pair on its own differences (scipy's paired t), no variance pooled with the other per-image norms.
    per_seed = {v: [running[(v, s, "clean")] - running[(v, s, "contrast")] for s in SEEDS] for v in ("bn", "gn", "in")}
    for name in ("gn", "in"):
        assert table.loc[name, "p_value"] == pytest.approx(stats.ttest_rel(per_seed[name], per_seed["bn"]).pvalue)
    assert table["p_adjusted"].to_numpy() == pytest.approx(multipletests(table["p_value"], method="holm")[1])
    assert (table["test"] == "paired t (the pair's own spread)").all()
    assert contrast_family(scores[scores["corruption"] != "contrast"], hits, PLAN, {}, ["gn"]).empty
    # The family holds the per-image norms named, corrected over them alone.
    alone = contrast_family(scores, hits, PLAN, {}, ["gn"])
    assert list(alone["variant"]) == ["gn"] and alone["p_adjusted"].iloc[0] == alone["p_value"].iloc[0]


def test_the_sentences_say_what_the_tables_show(study) -> None:
    scores, hits = study
    found = {
        "cells": summarize(scores, hits, PLAN),
        "family": primary_family(scores, hits, PLAN, {}),
        "per_set": per_set_family(scores, hits, PLAN, {}),
        "adaptation": adaptation_gap(scores, hits, PLAN, ["bn"]),
        "contrast": contrast_family(scores, hits, PLAN, {}, ["gn", "in"]),
    }
    found["errors"] = corruption_errors(found["cells"], "bn")
    found["groups"] = group_families(scores, hits, PLAN, {})
    said = robustness_findings(found, {"bn": "batch", "gn": "group", "in": "instance"}, PLAN, ENDPOINT, NORMNET)
    # gn and in are far ahead on contrast and behind on fog: the per-set flips name fog.
    assert "fog" in said["flips"] and "behind bn on fog" in said["flips"]
    assert "The claim held here" in said["contrast"]
    # The lead sentence is the declared family's; mCE is said as an untested description, with no superlative.
    family = found["family"]
    ahead = family.loc[(family["verdict"] == "different") & (family["diff"] > 0), "variant"].tolist()
    assert said["overall"].startswith("By the declared analysis of the mean accuracy over the endpoint, every kind (2")
    assert (
        "Apart (secondary, each group corrected within itself): intensity shifts (contrast, fog): gn" in said["overall"]
    )
    if ahead:
        assert f"shown ahead of bn: {', '.join(ahead)}" in said["overall"]
    assert "mCE against bn (exploratory: not declared, not tested" in said["overall"]
    assert "Most robust" not in said["overall"] and "least" not in said["overall"]


def test_the_flip_and_adaptation_verdicts_follow_the_rows() -> None:
    family = pd.DataFrame({"variant": ["in"], "diff": [5.0], "verdict": ["different"]})
    per_set = pd.DataFrame(
        {"variant": ["in", "in"], "corruption": ["fog", "contrast"], "severity": [3, 3], "diff": [-4.0, 20.0],
         "verdict": ["different", "different"]}
    )  # fmt: skip
    assert "in behind bn on fog 3 (-4.00 points)" in ranking_flips(family, per_set, "bn")
    assert "contrast" not in ranking_flips(family, per_set, "bn").split("flips on:")[1]
    plan = {"reference": "bn", "correction": "holm", "margin": 0.2, "alpha": 0.05}
    rows = pd.DataFrame(
        [("bn", mode, against, d, d - 1, d + 1, p, p, 0.5, 0.5, verdict) for mode, against, d, p, verdict in (
            ("adapted", "bn", 4.0, 0.01, "different"), ("precise", "bn", 0.1, 0.5, "inconclusive"),
            ("adapted", "in", -1.0, 0.01, "different"))],
        columns=["variant", "mode", "against", "diff_mean", "ci95_low", "ci95_high", "p_value", "p_adjusted",
                 "tost_p", "tost_p_adjusted", "verdict"],
    )  # fmt: skip
    assert "does not close the gap (still shown behind in)" in adaptation_sentence(rows, family, plan)
    closed = rows.assign(diff_mean=[4.0, 0.1, 0.05], verdict=["different", "inconclusive", "equivalent"])
    assert "it closes the gap" in adaptation_sentence(closed, family, plan)
    assert "adapted (whole set): − running +4.00" in adaptation_sentence(closed, family, plan)
    # No longer shown behind in, not shown equivalent: "narrows" only where adapted is shown ahead of running.
    narrowed = rows.assign(diff_mean=[4.0, 0.1, -0.5], verdict=["different", "inconclusive", "inconclusive"])
    assert "it narrows the gap (shown ahead of running)" in adaptation_sentence(narrowed, family, plan)
    unmoved = narrowed.assign(verdict=["inconclusive", "inconclusive", "inconclusive"])
    said = adaptation_sentence(unmoved, family, plan)
    assert "not shown to change the gap" in said and "narrows" not in said
    still = rows.assign(verdict=["inconclusive", "inconclusive", "different"])
    assert "does not close the gap (still shown behind in)." in adaptation_sentence(still, family, plan)
    assert "though it narrows it" in adaptation_sentence(rows, family, plan)
    none = pd.DataFrame(columns=["variant", "diff", "verdict"])
    contrast = pd.DataFrame(columns=["variant", "reference", "severity", "diff", "verdict"])
    assert "not tested" in contrast_sentence(pd.DataFrame(), {}, plan, NORMNET)
    assert "; it finds no gap to close" in adaptation_sentence(rows, none, plan) and contrast.empty


def test_a_reference_without_errors_gives_no_infinite_mce(study) -> None:
    scores, hits = study
    cells = summarize(scores, hits, PLAN)
    # The reference perfect on fog with running statistics: fog drops out of every mCE, contrast alone counts.
    cells.loc[
        (cells["variant"] == "bn") & (cells["corruption"] == "fog") & (cells["mode"] == "running"), "acc_mean"
    ] = 100
    errors = corruption_errors(cells, "bn").set_index(["variant", "mode"])
    assert np.isfinite(errors[["mce", "relative_mce"]].to_numpy()).all()
    contrast = cells.set_index(["variant", "corruption", "mode"])["acc_mean"]
    expected = 100 * (100 - contrast[("gn", "contrast", "running")]) / (100 - contrast[("bn", "contrast", "running")])
    assert errors.loc[("gn", "running"), "mce"] == pytest.approx(expected)
    # Severity 0 alone (the clean images again): no loss to compare, so no relative mCE.
    clean_only = cells[cells["corruption"] == "clean"]
    same = corruption_errors(pd.concat([clean_only, clean_only.assign(corruption="contrast", severity=0)]), "bn")
    assert same["relative_mce"].isna().all() and same["mce"].notna().all()
    # A reference with no error on any set: no mCE at all, and the sentence says so.
    perfect = cells.assign(acc_mean=np.where(cells["variant"] == "bn", 100.0, cells["acc_mean"]))
    undefined = corruption_errors(perfect, "bn")
    assert undefined["mce"].isna().all()
    said = robustness_overall(
        undefined, pd.DataFrame(columns=["variant", "diff", "verdict"]), pd.DataFrame(), PLAN_WORDS, ENDPOINT
    )
    assert "not defined" in said and "nan" not in said


def test_an_accuracy_interval_stops_at_0_and_100_percent(study) -> None:
    scores, hits = study
    wide = scores.copy()
    chosen = (wide["variant"] == "gn") & (wide["corruption"] == "contrast") & (wide["mode"] == "running")
    wide.loc[chosen, "accuracy"] = [40.0, 99.0, 100.0]  # three seeds far apart: the t-interval passes both bounds
    cell = summarize(wide, hits, PLAN).set_index(["variant", "corruption", "mode"]).loc[("gn", "contrast", "running")]
    low, high = stats.t.interval(0.95, 2, loc=np.mean([40, 99, 100]), scale=stats.sem([40, 99, 100]))
    assert low < 0 and high > 100
    assert (cell["acc_ci95_low"], cell["acc_ci95_high"]) == (0.0, 100.0)
    assert (cell["acc_ci95_low_test_set"], cell["acc_ci95_high_test_set"]) == (0.0, 100.0)
