"""make compare of two studies on different datasets: whether the ranking of the norms held, from the rank correlation
with its interval and each pair's ordering with its test, on studies made up here (the ranking holding, flipping,
or not shown); tests/test_cifar10.py compares two finished studies of two datasets."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from normstudy.analysis.stats import rank_correlation
from normstudy.compare.comparison import Study
from normstudy.compare.transfer import pair_orderings, ranking, ranking_sentence

PLAN = {"margin": 0.5, "correction": "holm", "alpha": 0.05}
# Per-seed deviations of each variant (seeds 1-5): spread enough for the paired tests, small beside the gaps.
NOISE = {"bn": [0.10, -0.05, 0.02, -0.08, 0.01], "gn": [-0.04, 0.07, -0.02, 0.03, -0.05],
         "ln": [0.02, -0.06, 0.08, -0.01, -0.03]}  # fmt: skip


def made_up(label: str, dataset: str, means: dict[str, float], spread: float = 1.0) -> Study:
    """A study on `dataset` whose variants' five seeds lie about `means` (nothing on disk: for the statistics)."""
    rows = [
        {"variant": name, "seed": seed, "test_acc": mean + spread * NOISE[name][seed - 1]}
        for name, mean in means.items()
        for seed in range(1, 6)
    ]
    config = {"data": {"dataset": dataset}, "analysis": PLAN}
    return Study(label, Path(label), config, pd.DataFrame(rows), pd.DataFrame(), {}, True)


def readings(a: Study, b: Study) -> tuple[pd.DataFrame, str]:
    """Each pair's ordering and the sentence, for the variants both studies ran."""
    variants = list(dict.fromkeys(b.runs["variant"]))
    pairs = pair_orderings(a, b, variants, PLAN)
    return pairs, ranking_sentence(a, b, ranking(a, b, variants), pairs)


MNIST = {"bn": 99.4, "gn": 99.0, "ln": 98.5}


def test_a_ranking_that_holds_is_said_to_hold_with_its_tests() -> None:
    pairs, sentence = readings(
        made_up("digits", "mnist", MNIST), made_up("colour", "cifar10", {"bn": 80, "gn": 75, "ln": 70})
    )
    assert list(pairs["reading"]) == ["held"] * 3 and list(pairs["a_order"]) == list(pairs["b_order"]) == [">"] * 3
    assert sentence.startswith(
        "The ranking of the 3 variants on mnist (digits) and cifar10 (colour): Kendall's τ = +1.00"
    )
    assert "It held as far as the tests can tell: no pairwise ordering flipped, 3 of 3 were shown" in sentence
    # The gaps grew (0.4 to 5 points): the test of the gap's change says so, though the order held.
    assert (pairs["moved_reading"] == "different").all()


def test_a_ranking_that_flips_names_each_flipped_pair_with_its_gaps() -> None:
    flipped = made_up("colour", "cifar10", {"bn": 70, "gn": 75, "ln": 80})
    pairs, sentence = readings(made_up("digits", "mnist", MNIST), flipped)
    assert list(pairs["reading"]) == ["flipped"] * 3 and list(pairs["b_order"]) == ["<"] * 3
    assert "It did not hold: 3 of the 3 pairwise orderings flipped" in sentence and "τ = -1.00" in sentence
    bn_gn = pairs.iloc[0]
    assert f"bn − gn {bn_gn.a_diff_mean:+.2f} points on mnist, {bn_gn.b_diff_mean:+.2f} on cifar10" in sentence
    # One flip among orderings that held: the sentence says it did not hold, naming that pair alone.
    pairs, sentence = readings(
        made_up("digits", "mnist", MNIST), made_up("c", "cifar10", {"bn": 80, "gn": 70, "ln": 75})
    )
    assert list(pairs["reading"]) == ["held", "held", "flipped"]
    assert "1 of the 3 pairwise orderings flipped" in sentence and "gn − ln" in sentence and "bn − gn" not in sentence


def test_orderings_the_seeds_cannot_show_are_inconclusive_not_a_flip() -> None:
    # On B the variants lie within their seeds' noise of each other: nothing is shown there, so nothing flipped.
    noisy = made_up("colour", "cifar10", {"bn": 75.0, "gn": 75.1, "ln": 74.9}, spread=20.0)
    pairs, sentence = readings(made_up("digits", "mnist", MNIST), noisy)
    assert set(pairs["b_order"]) == {"?"} and set(pairs["reading"]) == {"not shown on both"}
    assert (
        "Inconclusive: no pairwise ordering was shown to flip, but 3 of 3 orderings were not shown on both" in sentence
    )
    two = {name: MNIST[name] for name in ("bn", "gn")}
    _, sentence = readings(made_up("a", "mnist", two), made_up("b", "cifar10", two))
    assert sentence.startswith("Too few variants in common on mnist (a) and cifar10 (b) to rank (2)")
    pairs, sentence = readings(made_up("a", "mnist", {"bn": 99.4}), made_up("b", "cifar10", {"bn": 80.0}))
    assert pairs.empty and "to rank (1)" in sentence


def test_the_rank_correlation_is_scipys_kendall_tau_with_a_seeded_bootstrap_interval() -> None:
    rng = np.random.default_rng(4)
    a = {name: rng.normal(mean, 0.2, 3) for name, mean in {"w": 1.0, "x": 2.0, "y": 3.0, "z": 3.1}.items()}
    b = {name: rng.normal(mean, 0.2, 3) for name, mean in {"w": 1.5, "x": 1.0, "y": 3.0, "z": 2.9}.items()}
    row = rank_correlation(a, b, resamples=500)
    expected = stats.kendalltau([np.mean(v) for v in a.values()], [np.mean(v) for v in b.values()]).statistic
    assert row["tau"] == pytest.approx(expected) and row["items"] == 4
    assert -1 <= row["tau_low"] <= row["tau"] <= row["tau_high"] <= 1 and row["untied_resamples"] == 500
    assert rank_correlation(a, b, resamples=500) == row  # seeded: the same interval every time
    assert math.isnan(rank_correlation({"w": a["w"], "x": a["x"]}, {"w": b["w"], "x": b["x"]})["tau"])
