"""The batch study's tables, gate and generated verdict, on runs made up by hand: batch norm at several statistics
batch sizes, the batch-free norms at the reference (the ghost design) or at every size."""

from __future__ import annotations

import pandas as pd
import pytest
from scipy import stats

from normstudy.analysis.batches import (
    GN_PAPER_ERROR,
    batch_norm_versus_free,
    changes_from_reference,
    convergence_gate,
    gated,
    ordering,
    paper_sentence,
    read_from_family,
    summarize,
)
from normstudy.analysis.batches import tested as said_with_test
from normstudy.config.study import Plan

NORMS = {"bn": "batch", "gn": "group", "ln": "layer"}
PLAN = Plan(reference="bn", correction="holm", alpha=0.05, margin=0.2, test_resamples=0)


def runs_table(errors: dict[tuple[str, int], list[float]], precise: dict[tuple[str, int], list[float]] | None = None):
    """Runs with these test errors: (variant, size) -> one error per seed (seeds 1, 2, 3, ...); PreciseBN's errors
    where given, else the same."""
    rows = []
    for (variant, size), values in errors.items():
        for seed, error in enumerate(values, start=1):
            better = (precise or {}).get((variant, size), values)[seed - 1]
            rows.append({"variant": variant, "norm": NORMS[variant], "batch_size": size, "sgd_batch": 128,
                         "ghost": size if size < 128 and variant == "bn" else 0, "seed": seed, "max_lr": 0.2,
                         "epochs": 3, "train_images": 60000, "steps": 1407, "pack_seeds": 1, "test_acc": 100 - error,
                         "test_err": error, "precise_err": better, "test_loss": error / 30, "train_acc": 99.0,
                         "train_loss": 0.05, "seconds_per_epoch": 10.0})  # fmt: skip
    return pd.DataFrame(rows)


FREE = {("gn", 128): [1.2, 1.3, 1.1], ("ln", 128): [1.3, 1.2, 1.2]}
BN_RISES = {("bn", 128): [1.0, 1.1, 0.9], ("bn", 8): [1.4, 1.6, 1.4], ("bn", 2): [3.0, 3.2, 2.9]}
BN_FLAT = {("bn", 128): [1.0, 1.1, 0.9], ("bn", 8): [1.01, 1.1, 0.92], ("bn", 2): [1.02, 1.08, 0.93]}
MAIN = pd.DataFrame({"variant": ["bn", "gn", "ln"], "test_acc_mean": [99.3, 99.0, 98.9]})


def judge(errors: dict, precise: dict | None = None, main: pd.DataFrame = MAIN, ghost: bool = True):
    runs = runs_table(errors, precise)
    summary = summarize(runs)
    gate = convergence_gate(summary, main, 0.5)
    changes, versus = changes_from_reference(runs, PLAN), batch_norm_versus_free(runs, PLAN)
    return ordering(summary, changes, versus, gate, ghost), changes, versus, gate


def test_summary_gives_each_cell_its_error_over_seeds_in_both_modes() -> None:
    """bn at 2: errors 3.0, 3.2, 2.9: mean 3.0333, sd 0.15275, t-interval 3.0333 +- 4.3027 x 0.15275 / sqrt(3)."""
    precise = {("bn", 2): [2.0, 2.2, 1.9]}
    summary = summarize(runs_table({**BN_RISES, **FREE}, precise)).set_index(["variant", "batch_size"])
    row = summary.loc[("bn", 2)]
    assert row["n_seeds"] == 3 and row["sgd_batch"] == 128
    assert row["test_err_mean"] == pytest.approx(3.03333, abs=1e-4)
    assert row["test_err_std"] == pytest.approx(0.15275, abs=1e-4)
    assert (row["test_err_ci95_low"], row["test_err_ci95_high"]) == pytest.approx((2.6539, 3.4128), abs=1e-3)
    assert row["precise_err_mean"] == pytest.approx(2.03333, abs=1e-4)
    assert ("gn", 2) not in summary.index  # the ghost design trains a batch-free norm at the reference only


def test_changes_are_paired_by_seed_against_the_reference_with_holm_over_the_sizes() -> None:
    """bn at 2 - bn at 128 per seed: 2.0, 2.1, 2.0 (scipy's paired t), and at 8: 0.4, 0.5, 0.5."""
    changes = changes_from_reference(runs_table({**BN_RISES, **FREE}), PLAN)
    running = changes[(changes["variant"] == "bn") & (changes["mode"] == "running")].set_index("batch_size")
    at_2 = running.loc[2]
    reference = stats.ttest_rel(BN_RISES[("bn", 2)], BN_RISES[("bn", 128)])
    assert at_2["diff_mean"] == pytest.approx(2.03333, abs=1e-4) and at_2["p_value"] == pytest.approx(reference.pvalue)
    p_8 = stats.ttest_rel(BN_RISES[("bn", 8)], BN_RISES[("bn", 128)]).pvalue
    holm = sorted([reference.pvalue, p_8])
    assert sorted(running["p_adjusted"]) == pytest.approx([2 * holm[0], max(2 * holm[0], holm[1])])
    assert at_2["verdict"] == "different" and at_2["reference"] == 128
    assert set(changes["variant"]) == {"bn"}  # gn and ln ran at one size: nothing to change


def test_the_declared_correction_and_level_decide_the_readings() -> None:
    """Bonferroni over bn's two sizes doubles each p: the rise at 2 (paired p 0.00027) becomes 0.00054, above a
    declared alpha of 0.0005, so it is no longer read as different; the sentences name the correction."""
    runs = runs_table({**BN_RISES, **FREE})
    strict = Plan(reference="bn", correction="bonferroni", alpha=0.0005, margin=0.2, test_resamples=0)
    changes = changes_from_reference(runs, strict)
    at_2 = changes[(changes["mode"] == "running") & (changes["batch_size"] == 2)].iloc[0]
    p_2 = stats.ttest_rel(BN_RISES[("bn", 2)], BN_RISES[("bn", 128)]).pvalue
    assert at_2["p_adjusted"] == pytest.approx(2 * p_2) and 0.0005 < 2 * p_2 < 0.05
    assert at_2["verdict"] == "inconclusive" and at_2["correction"] == "bonferroni"
    assert "inconclusive at ±0.2" in said_with_test(at_2)
    loose = changes_from_reference(runs, Plan("bn", "bonferroni", 0.05, 0.2, 0))
    assert said_with_test(loose[(loose["mode"] == "running") & (loose["batch_size"] == 2)].iloc[0]).endswith(
        f"different, Bonferroni p = {2 * p_2:.3f})"
    )


def test_batch_norm_is_compared_with_the_batch_free_norms_at_their_reference() -> None:
    versus = batch_norm_versus_free(runs_table({**BN_RISES, **FREE}), PLAN)
    row = versus[(versus["variant_b"] == "gn") & (versus["mode"] == "running") & (versus["batch_size"] == 2)].iloc[0]
    assert row["b_batch_size"] == 128 and row["diff_mean"] == pytest.approx(3.03333 - 1.2, abs=1e-4)
    assert row["verdict"] == "different"
    # At the reference, bn is 0.2 points better than gn: not shown different, not within +-0.2 either.
    at_reference = versus[(versus["variant_b"] == "gn") & (versus["mode"] == "running") & (versus["batch_size"] == 128)]
    assert at_reference.iloc[0]["verdict"] == "inconclusive"


def test_a_pair_of_main_study_cells_takes_the_declared_familys_reading() -> None:
    # At 128 bn's and gn's cells are the main study's runs: the family has judged that pair (by its model, with its
    # sd over all five norms), so the batch table reads it from there, and nowhere else.
    versus = batch_norm_versus_free(runs_table({**BN_RISES, **FREE}), PLAN)
    family = pd.DataFrame(
        [{"variant": "gn", "reference": "bn", "n_seeds": 3, "diff": -0.2, "se": 0.06, "df": 8, "ci_low": -0.34,
          "ci_high": -0.06, "p_value": 0.01, "p_adjusted": 0.04, "tost_p": 0.5, "tost_p_adjusted": 1.0,
          "verdict": "different"}]
    )  # fmt: skip
    main_cells = {("bn", 128), ("gn", 128), ("ln", 128)}
    read = read_from_family(versus, family, main_cells).set_index(["variant_b", "mode", "batch_size"])
    shared = read.loc[("gn", "running", 128)]
    assert shared["read_from"] == "declared family" and shared["verdict"] == "different"
    # error bn - error gn is accuracy gn - accuracy bn: the family's sign.
    assert (shared["diff_mean"], shared["ci95_low"], shared["p_adjusted"], shared["n"]) == (-0.2, -0.34, 0.04, 3)
    own = versus.set_index(["variant_b", "mode", "batch_size"])
    # PreciseBN's bn is not the family's run; bn at 2 is not a main cell; ln is not in this family.
    for key in [("gn", "precise", 128), ("gn", "running", 2), ("ln", "running", 128)]:
        assert read.loc[key, "read_from"] == "batch study"
        assert read.loc[key, "verdict"] == own.loc[key, "verdict"]
    # Where gn's cell is not every seed a main run, the batch study's own test stands.
    alone = read_from_family(versus, family, {("bn", 128)}).set_index(["variant_b", "mode", "batch_size"])
    assert alone.loc[("gn", "running", 128), "read_from"] == "batch study"


def test_the_ordering_holds_when_batch_norm_degrades_and_falls_behind() -> None:
    found, *_ = judge({**BN_RISES, **FREE})
    assert found.verdict == "holds"
    # The ghost design tests BatchNorm's penalty; the batch-free norms' flatness is by construction, not a finding.
    assert found.sentences[0] == (
        "BatchNorm's small-statistics penalty is shown here: its error rises at the smallest statistics batch and "
        "falls behind every batch-free norm there (the batch-free norms' flatness is by construction: they take no "
        "batch statistics)."
    )
    assert "GN paper's ordering holds" not in found.text
    assert found.sentences[1].startswith("Convergence gate passed: every reference run is within 0.5 points")
    assert "bn's error from size 128 to 2 (running averages): +2.03 points (95 % CI" in found.text
    # The size of the penalty as a multiple of the error too (the paper's 1.5 times), from the cell means.
    assert "; 3.0× its error at 128 (1.00 % → 3.03 %)." in found.text
    assert "bn falls behind gn from size 8 down" in found.text
    assert "gn, ln have no batch statistics: the statistics batch cannot change them." in found.text
    assert found.sentences[-1] == paper_sentence()


def test_the_ordering_does_not_hold_when_batch_norm_is_shown_flat() -> None:
    found, *_ = judge({**BN_FLAT, **FREE})
    assert found.verdict == "does not hold"
    assert "equivalent within ±0.2" in found.text


def test_the_ordering_is_inconclusive_when_neither_is_shown() -> None:
    noisy = {("bn", 128): [1.0, 1.1, 0.9], ("bn", 8): [1.0, 1.5, 0.7], ("bn", 2): [1.5, 0.8, 1.4]}
    found, *_ = judge({**noisy, **FREE})
    assert found.verdict == "inconclusive" and "inconclusive at ±0.2" in found.text


def test_precise_bn_is_reported_beside_the_running_averages() -> None:
    precise = {("bn", 2): [1.0, 1.1, 0.9], ("bn", 8): [1.0, 1.1, 0.9]}
    found, changes, *_ = judge({**BN_RISES, **FREE}, precise)
    assert found.verdict == "holds"  # judged on the running averages
    # Where PreciseBN's statistics give another verdict, the lead says so beside the declared mode's.
    assert found.sentences[0].endswith(
        "(judged on the running averages; with PreciseBN's statistics: whether BatchNorm has a small-statistics "
        "penalty here is inconclusive)."
    )
    assert "bn's error from size 128 to 2 (PreciseBN): +0.00 points (not testable" in found.text
    assert set(changes["mode"]) == {"running", "precise"}


def test_no_verdict_where_the_reference_runs_are_not_trained() -> None:
    behind = pd.DataFrame({"variant": ["bn", "gn", "ln"], "test_acc_mean": [99.5, 99.5, 98.9]})
    found, _, _, gate = judge({**BN_RISES, **FREE}, main=behind)
    assert found.verdict == "not tested"
    assert found.sentences[0].startswith("Not tested: runs not trained. The reference runs of gn are more than 0.5")
    assert "holds" not in found.text and list(gate["trained"]) == [True, False, True]
    assert gate.set_index("variant").loc["gn", "shortfall"] == pytest.approx(99.5 - 98.8)
    # bn's own reference and ln's passed: their figures are still said, gn's crossover is not.
    assert "bn's error from size 128 to 2 (running averages): +2.03 points (95 % CI" in found.text
    assert "bn's error from size 128 to 2 (PreciseBN)" in found.text
    assert "bn falls behind ln from size 2 down: bn − ln +1.80 points" in found.text
    assert found.sentences[1] == "The runs whose references did pass, described without a verdict on the ordering:"
    assert "behind gn" not in found.text and "no batch statistics" not in found.text


def test_rows_naming_an_untrained_variant_read_not_tested() -> None:
    behind = pd.DataFrame({"variant": ["bn", "gn", "ln"], "test_acc_mean": [99.5, 99.5, 98.9]})
    _, changes, versus, gate = judge({**BN_RISES, **FREE}, main=behind)
    versus_read = gated(versus, gate, ("variant_a", "variant_b"))
    assert set(versus_read.loc[versus_read["variant_b"] == "gn", "verdict"]) == {"not tested"}
    kept = versus["variant_b"] != "gn"
    assert versus_read.loc[kept, "verdict"].tolist() == versus.loc[kept, "verdict"].tolist()
    assert versus_read["diff_mean"].tolist() == versus["diff_mean"].tolist()  # the numbers stay
    assert gated(changes, gate, ("variant",))["verdict"].tolist() == changes["verdict"].tolist()  # bn passed
    assert "not tested: a reference run in it is not trained" in said_with_test(versus_read[~kept].iloc[0])


def test_the_sgd_batch_design_needs_the_batch_free_norms_shown_flat() -> None:
    moving_free = {("gn", 128): [1.2, 1.3, 1.1], ("gn", 8): [1.3, 1.5, 1.6], ("gn", 2): [2.2, 2.5, 2.1]}
    found, *_ = judge({**BN_RISES, **moving_free}, ghost=False)
    assert found.verdict == "holds in part"
    # There the SGD batch itself changes, as in the paper: the lead speaks of the paper's ordering.
    assert found.sentences[0].startswith("The GN paper's ordering holds in part here")


def test_the_ordering_cannot_be_tested_without_both_kinds_of_norm() -> None:
    found, *_ = judge(BN_RISES)
    assert found.verdict == "not tested" and "needs a batch norm at several sizes and a batch-free norm" in found.text


def test_the_papers_own_figures() -> None:
    assert GN_PAPER_ERROR["BN"][-1] == 34.7
    said = paper_sentence()
    assert said.startswith("In the GN paper (ResNet-50 on ImageNet, images per GPU 32 → 2, with the SGD batch 8 × that")
    assert "(+11.1 points, 1.5× its error)" in said
