"""The report's generated sentences: each reading of the declared family, the key results, the sensitivity, the target
and the write-ups' single runs, on tables made up by hand."""

from __future__ import annotations

import math

import pandas as pd

from normstudy.analysis.declared import FAMILY_COLUMNS
from normstudy.analysis.findings import (
    TARGET_ACCURACY,
    family_verdict,
    key_results,
    reading_words,
    sensitivity_sentence,
    target_sentence,
    where_sentence,
    write_up_003_sentence,
)
from normstudy.analysis.findings_robustness import shift_key_sentence
from normstudy.data.sets.mnist import SPEC as MNIST
from normstudy.data.sets.synthetic import SPEC as SYNTHETIC

PLAN = {"reference": "bn", "correction": "holm", "alpha": 0.05, "margin": 0.2, "test_resamples": 2000}
FACTS = {
    "plan": PLAN,
    "residual_sd": 0.078,
    "df": 8,
    "sensitivity": {
        "residual_sd": 0.078,
        "df": 8,
        "level": 0.0125,
        "detectable": 0.27,
        "detectable_low": 0.18,
        "detectable_high": 0.51,
    },
    "prediction_intervals": {"bn": [99.25, 99.67], "gn": [99.21, 99.63], "ln": [99.15, 99.57], "in": [98.8, 99.2]},
}


def family(*rows: dict) -> pd.DataFrame:
    """A family table: each row's numbers, the rest of its columns filled in."""
    base = dict.fromkeys(FAMILY_COLUMNS, math.nan) | {"reference": "bn", "n_seeds": 3, "df": 8, "held_equal": ""}
    return pd.DataFrame([base | row for row in rows], columns=list(FAMILY_COLUMNS))


FAMILY = family(
    {"variant": "gn", "diff": -0.04, "ci_low": -0.19, "ci_high": 0.11, "p_value": 0.55, "p_adjusted": 0.80,
     "tost_p": 0.018, "tost_p_adjusted": 0.074, "verdict": "inconclusive", "held_equal": "max_lr 0.1 vs 0.2"},
    {"variant": "in", "diff": -0.44, "ci_low": -0.59, "ci_high": -0.30, "p_value": 0.0001, "p_adjusted": 0.0005,
     "tost_p": 0.99, "tost_p_adjusted": 0.99, "verdict": "different"},
    {"variant": "ln", "diff": 0.01, "ci_low": -0.05, "ci_high": 0.07, "p_value": 0.7, "p_adjusted": 0.8,
     "tost_p": 0.001, "tost_p_adjusted": 0.003, "verdict": "equivalent"},
)  # fmt: skip


def test_each_reading_is_said_with_its_test() -> None:
    rows = FAMILY.set_index("variant")
    assert reading_words(rows.loc["in"], 0.2) == "different (Holm p = 0.001)"
    assert reading_words(rows.loc["ln"], 0.2) == "equivalent within ±0.2 points (TOST, Holm p = 0.003)"
    assert reading_words(rows.loc["gn"], 0.2) == (
        "inconclusive: not shown different (Holm p = 0.80) nor within ±0.2 points (TOST Holm p = 0.07)"
    )
    # Equivalent on these seeds; beyond these test images only where the TOST with the test set's error rejects too.
    here_only = rows.loc["ln"].copy()
    here_only["tost_p_test_set_adjusted"] = 0.086
    assert reading_words(here_only, 0.2) == (
        "equivalent within ±0.2 points (TOST, Holm p = 0.003) on these test images only: with the test set's "
        "sampling error the TOST does not reject (Holm p = 0.086)"
    )
    here_only["tost_p_test_set_adjusted"] = 0.01
    assert reading_words(here_only, 0.2).endswith(", also with the test set's sampling error (Holm p = 0.010)")
    untested = family({"variant": "gn", "diff": -0.04, "verdict": "inconclusive"}).iloc[0]
    assert reading_words(untested, 0.2).startswith("not testable")
    assert reading_words(rows.loc["in"], 0.2, "bonferroni") == "different (Bonferroni p = 0.001)"
    # Below what three decimals show, the p-value is bounded, never printed as zero.
    tiny = rows.loc["in"].copy()
    tiny["p_adjusted"] = 0.0004
    assert reading_words(tiny, 0.2) == "different (Holm p < 0.001)"


def test_the_verdict_names_the_model_the_correction_and_what_else_differs() -> None:
    said = family_verdict(FAMILY, FACTS)
    assert said.startswith("Each variant against bn, by the declared model (variant + seed, 8 residual degrees of")
    assert "Holm-corrected over the 3 comparisons at α = 0.05, with equivalence tested against ±0.2 points" in said
    assert "in − bn: -0.44 points (95 % CI -0.59 to -0.30), different (Holm p = 0.001)" in said
    assert "gn − bn: -0.04 points (95 % CI -0.19 to +0.11), inconclusive" in said
    assert "it also differs in max_lr 0.1 vs 0.2" in said
    assert "no difference" not in said and "within seed-to-seed noise" not in said


def test_the_sensitivity_is_at_the_familys_level_with_the_sds_range() -> None:
    said = sensitivity_sentence(FACTS)
    assert "residual sd is 0.078 points (8 df)" in said and "(α = 0.0125)" in said
    assert "0.27 points is detected with 80 % power" in said and "from 0.18 to 0.51 points" in said
    none = {**FACTS, "sensitivity": {**FACTS["sensitivity"], "detectable": math.nan}}
    assert sensitivity_sentence(none).startswith("With no residual spread")


SUMMARY = pd.DataFrame(
    [
        ("bn", "batch", 99.46, 99.41, 99.51),
        ("gn", "group", 99.42, 99.31, 99.53),
        ("ln", "layer", 99.36, 99.05, 99.38),
        ("in", "instance", 99.02, 98.79, 99.24),
    ],
    columns=["variant", "norm", "test_acc_mean", "test_acc_ci95_low", "test_acc_ci95_high"],
).assign(n_seeds=3)
RUNS = pd.DataFrame(
    [(v, s, a) for v, accs in {"bn": [99.49, 99.48, 99.41], "gn": [99.37, 99.44, 99.45],
                               "ln": [99.25, 99.33, 99.49], "in": [98.98, 99.12, 98.95]}.items()
     for s, a in enumerate(accs, 1)],
    columns=["variant", "seed", "test_acc"],
)  # fmt: skip


def test_the_target_is_judged_on_the_interval_with_the_share_of_runs() -> None:
    said = target_sentence(SUMMARY, RUNS)
    assert said.startswith(f"Write-up 002's {TARGET_ACCURACY} % target, judged on each mean's 95 % CI (with each")
    assert "met: bn 3/3" in said and "undecided (99.4 inside the CI): gn 2/3" in said
    assert "missed: ln 1/3, in 0/3" in said  # grouped by verdict, each variant with its runs at or above


def test_single_published_runs_are_judged_against_a_prediction_interval() -> None:
    said = write_up_003_sentence(SUMMARY, FACTS)
    assert "gn 99.54 % (inside our prediction interval for one run (99.21–99.63))" in said
    assert "ln 99.48 % (inside our prediction interval for one run (99.15–99.57))" in said
    assert "8,880 parameters and 20 epochs (so not the same network or budget)" in said
    assert write_up_003_sentence(SUMMARY[SUMMARY["norm"] == "batch"], FACTS) is None


def test_key_results_on_mnist_and_on_synthetic_data() -> None:
    lines = key_results(SUMMARY, FAMILY, FACTS, RUNS, dataset=MNIST)
    assert lines[0] == (
        "Highest mean test accuracy: bn, 99.46 % (95 % CI 99.41–99.51); lowest: in, 99.02 % (95 % CI 98.79–99.24)."
    )
    assert lines[1] == (
        "Against bn (declared reference; Holm over 3): in different (-0.44 points, 95 % CI -0.59 to -0.30); "
        "ln equivalent within ±0.2 points; gn inconclusive at ±0.2 points (the study detects 0.27 points with 80 % "
        "power)."
    )
    assert any(line.startswith("Write-up 002's 99.4 % target") for line in lines)
    synthetic = key_results(SUMMARY, FAMILY, FACTS, RUNS, dataset=SYNTHETIC)
    assert "test images (not MNIST: the write-ups' claims go unchecked)" in synthetic[-1]
    assert not any("99.4 %" in s for s in synthetic)


def test_one_variant_has_nothing_to_compare() -> None:
    empty = family().iloc[0:0]
    assert family_verdict(empty, FACTS) == "There is one variant: nothing to compare."
    one = key_results(SUMMARY.iloc[:1], empty, FACTS, RUNS, dataset=SYNTHETIC)
    assert len(one) == 2 and "lowest" not in one[0]  # best, where (which says: not MNIST)


ENVIRONMENT = {
    "cpu": "Intel Xeon",
    "jobs": {"device": ["cpu"], "device_name": [""], "python": ["3.11.7"], "threads": ["1"], "torch": ["2.14.1"]},
}


def test_the_equivalence_power_is_said_with_the_seeds_it_needs() -> None:
    found = FACTS["sensitivity"] | {"equivalence_power": 0.35, "resolvable_margin": 0.27, "seeds_for_equivalence": 5}
    said = sensitivity_sentence(FACTS | {"sensitivity": found})
    assert "found equivalent within ±0.2 points with probability 0.35 (TOST at the same level)" in said
    assert "resolves with 80 % power is 0.27 points, and 5 seeds would give it 80 %." in said
    assert "Equal norms would be read inconclusive 65 % of the time" in said
    # analysis.json holds null where no seed count reaches it, read back as NaN: said in words, never "nan".
    unreachable = sensitivity_sentence(FACTS | {"sensitivity": found | {"seeds_for_equivalence": math.nan}})
    assert "no seed count up to 50 would give it 80 % at this sd" in unreachable and "nan" not in unreachable


def test_key_results_say_where_the_verdicts_hold_and_with_what_power() -> None:
    facts = FACTS | {
        "test_images": 10_000,
        "sensitivity": FACTS["sensitivity"] | {"equivalence_power": 0.35, "resolvable_margin": 0.27},
    }
    line = key_results(SUMMARY, FAMILY, facts, RUNS, dataset=MNIST, environment=ENVIRONMENT)[2]
    assert line == (
        "Verdicts hold for 3 seed(s) on cpu, 1 thread(s), torch 2.14.1 (Intel Xeon), these 10,000 MNIST test images; "
        "other machines give other numbers. Equal norms are found equivalent within ±0.2 with probability 0.35."
    )
    # A study from before the machine or the equivalence power were recorded: said as such, no power sentence.
    old = where_sentence(None, FACTS, 3, dataset=MNIST)
    assert "an unrecorded machine" in old and "Equal norms" not in old and "nan" not in old


CONTROLLED = pd.concat(
    [SUMMARY, pd.DataFrame([("none", "none", 98.90, 98.70, 99.10)], columns=SUMMARY.columns[:5]).assign(n_seeds=3)]
)


def against_control(*rows: dict) -> pd.DataFrame:
    """A control family: each row against `none`."""
    return family(*rows).assign(reference="none")


def test_the_first_key_result_says_whether_normalization_helps_from_the_control_family() -> None:
    shown = {"ci_low": 0.3, "ci_high": 0.8, "p_value": 0.001, "p_adjusted": 0.003, "verdict": "different"}
    every = against_control(
        {"variant": "bn", "diff": 0.56, **shown}, {"variant": "gn", "diff": 0.52, **shown},
        {"variant": "ln", "diff": 0.46, **shown}, {"variant": "in", "diff": 0.12, **shown},
    )  # fmt: skip
    lines = key_results(CONTROLLED, FAMILY, FACTS, RUNS, dataset=MNIST, control=every)
    assert lines[0] == (
        "Normalization helps this network: every norm is ahead of no normalization by +0.12 to +0.56 points, each "
        "shown (Holm over 4). No normalization (none): 98.90 % (95 % CI 98.70–99.10)."
    )
    # The ranking is of the norms (the control's accuracy is the sentence above), and the reference family's sentence
    # counts the control's row but leaves it to the control sentence.
    assert lines[1].startswith("Highest mean test accuracy of a norm: bn") and "none" not in lines[1]
    with_control = pd.concat([FAMILY, family({"variant": "none", "diff": -0.56, **shown})])
    said = key_results(CONTROLLED, with_control, FACTS, RUNS, dataset=MNIST, control=every)[2]
    assert said.startswith("Against bn (declared reference; Holm over 4): in different")
    assert said.endswith("; none: the control, above.") and "-0.56" not in said
    # Where a test does not show it, the sentence does not say it: mixed, and nothing shown.
    mixed = against_control(
        {"variant": "bn", "diff": 0.56, **shown},
        {"variant": "in", "diff": 0.05, "ci_low": -0.1, "ci_high": 0.2, "p_adjusted": 0.4, "verdict": "inconclusive"},
        {"variant": "gn", "diff": -0.3, **shown, "ci_low": -0.5, "ci_high": -0.1},
    )
    said = key_results(CONTROLLED, FAMILY, FACTS, RUNS, dataset=MNIST, control=mixed)[0]
    assert said.startswith("Normalization helps some norms here; against no normalization (Holm over 3): bn ahead")
    assert "bn ahead by +0.56 points" in said and "gn behind by -0.30 points" in said and "in inconclusive" in said
    equivalent = against_control(
        {"variant": "bn", "diff": 0.01, "ci_low": -0.1, "ci_high": 0.1, "p_adjusted": 0.9, "verdict": "equivalent"}
    )
    said = key_results(CONTROLLED, FAMILY, FACTS, RUNS, dataset=MNIST, control=equivalent)[0]
    assert said.startswith("Normalization is not shown to help this network;") and "bn equivalent within ±0.2" in said
    # No control: the key results begin as they did.
    assert key_results(SUMMARY, FAMILY, FACTS, RUNS, dataset=MNIST)[0].startswith("Highest mean test accuracy")


def test_the_first_screen_says_the_shift_leader_and_what_adaptation_does_each_with_its_test() -> None:
    endpoint = {"words": "MNIST-C's kinds", "sets": 15}
    robust = family(
        {"variant": "gn", "diff": 11.8, "ci_low": -5.0, "ci_high": 28.6, "p_value": 0.06, "p_adjusted": 0.12,
         "tost_p": 0.9, "tost_p_adjusted": 0.9, "verdict": "inconclusive"},
        {"variant": "ln", "diff": 7.2, "ci_low": 1.0, "ci_high": 13.4, "p_value": 0.01, "p_adjusted": 0.03,
         "tost_p": 0.9, "tost_p_adjusted": 0.9, "verdict": "different"},
    )  # fmt: skip
    adaptation = pd.DataFrame(
        [("bn", "adapted", "bn", 13.9, 0.001, 0.002, 0.9, 0.9, "different"),
         ("bn", "adapted", "gn", 2.1, 0.6, 1.0, 0.9, 0.9, "inconclusive")],
        columns=["variant", "mode", "against", "diff_mean", "p_value", "p_adjusted", "tost_p", "tost_p_adjusted",
                 "verdict"],
    )  # fmt: skip
    assert shift_key_sentence(robust, adaptation, PLAN, endpoint) == (
        "Under a shift (MNIST-C's kinds, 15 sets): gn leads bn by +11.80 points, inconclusive (Holm p = 0.12); "
        "adapting bn's statistics to each set moves it +13.90, shown (Holm p = 0.002)."
    )
    behind = robust.assign(diff=[-1.0, -2.0])
    assert shift_key_sentence(behind, adaptation.iloc[0:0], PLAN, {"words": "fog", "sets": 1}) == (
        "Under a shift (fog, 1 set): none is above bn; the closest, gn, -1.00 points, inconclusive (Holm p = 0.12)."
    )
