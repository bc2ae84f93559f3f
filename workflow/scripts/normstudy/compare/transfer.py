"""Whether the ranking of norms on one dataset held on another (make compare of two studies on different datasets):
the rank correlation of the shared variants' mean accuracies with its interval, and each pair's ordering on both
datasets with the test behind it."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pandas as pd

from normstudy.analysis.stats import decided, paired_difference, rank_correlation, welch_difference
from normstudy.compare.comparison import Study

# How one dataset orders a pair, from its corrected test: shown above, shown below, shown equal, or not shown.
ABOVE, BELOW, EQUAL, UNKNOWN = ">", "<", "≈", "?"


def dataset_of(study: Study) -> str:
    """The dataset a study ran on, as its recorded config names it (MNIST for a study from before the key)."""
    return str(study.config.get("data", {}).get("dataset", "mnist"))


def on_other_datasets(a: Study, b: Study) -> bool:
    """Whether the two studies ran on different datasets (their runs cannot be paired image by image)."""
    return dataset_of(a) != dataset_of(b)


def _ordering(reading: str, diff: float) -> str:
    if reading == "different":
        return ABOVE if diff > 0 else BELOW
    return EQUAL if reading == "equivalent" else UNKNOWN


def _pair_reading(first: str, second: str) -> str:
    """A pair's reading from its ordering on each dataset: flipped and held need both shown."""
    strict = {ABOVE, BELOW}
    if first in strict and second in strict:
        return "held" if first == second else "flipped"
    return "not shown on both"


def pair_orderings(a: Study, b: Study, variants: list[str], plan: dict[str, Any]) -> pd.DataFrame:
    """Per pair of shared variants (x, y): x - y in points on each dataset, paired by seed within its study, with
    the plan's correction over the pairs of that dataset; the change of the gap between datasets (Welch's test on
    the per-seed gaps, corrected over pairs); each dataset's ordering and the pair's reading: held, flipped (shown
    in opposite directions on the two), or not shown on both."""
    rows = []
    for x, y in itertools.combinations(variants, 2):
        row: dict[str, Any] = {"x": x, "y": y}
        gaps = {}
        for side, study in (("a", a), ("b", b)):
            first, second = study.accuracies(x), study.accuracies(y)
            row.update({f"{side}_{k}": v for k, v in paired_difference(first, second, plan["margin"]).items()})
            common = first.index.intersection(second.index)
            gaps[side] = first.loc[common] - second.loc[common]
        row.update({f"moved_{k}": v for k, v in welch_difference(gaps["b"], gaps["a"], plan["margin"]).items()})
        rows.append(row)
    if not rows:  # one shared variant: no pair to order
        return pd.DataFrame(columns=["x", "y", "a_order", "b_order", "reading"])
    table = pd.DataFrame(rows)
    for side in ("a", "b", "moved"):
        family = table[[f"{side}_p_value", f"{side}_tost_p"]].rename(columns=lambda c: c.split("_", 1)[1])
        read = decided(family, plan["correction"], plan["alpha"])
        table[f"{side}_p_adjusted"], table[f"{side}_reading"] = read["p_adjusted"], read["verdict"]
    for side in ("a", "b"):
        readings = zip(table[f"{side}_reading"], table[f"{side}_diff_mean"], strict=True)
        table[f"{side}_order"] = [_ordering(reading, diff) for reading, diff in readings]
    table["reading"] = [_pair_reading(p, q) for p, q in zip(table["a_order"], table["b_order"], strict=True)]
    return table


def ranking(a: Study, b: Study, variants: list[str]) -> dict[str, float]:
    """Kendall's tau between the two studies' mean accuracies of the shared variants, with its bootstrap interval."""
    runs = [{name: study.accuracies(name).to_numpy() for name in variants} for study in (a, b)]
    return rank_correlation(*runs)


def _gap(row: Any, side: str) -> str:
    return f"{getattr(row, f'{side}_diff_mean'):+.2f}"


def ranking_sentence(a: Study, b: Study, tau: dict[str, float], pairs: pd.DataFrame) -> str:
    """One sentence from the numbers: whether the ranking of norms on A's dataset held on B's, with its tests."""
    on = f"{dataset_of(a)} ({a.label}) and {dataset_of(b)} ({b.label})"
    if tau["items"] < 3:
        return f"Too few variants in common on {on} to rank ({tau['items']}): the ranking's transfer is not tested."
    interval = (
        f"95 % bootstrap interval over seeds {tau['tau_low']:+.2f} to {tau['tau_high']:+.2f}"
        if not math.isnan(tau["tau_low"])
        else "no interval: every resample tied"
    )
    lead = f"The ranking of the {tau['items']} variants on {on}: Kendall's τ = {tau['tau']:+.2f} ({interval})."
    flipped, held = pairs[pairs["reading"] == "flipped"], pairs[pairs["reading"] == "held"]
    unshown = len(pairs) - len(flipped) - len(held)
    if not flipped.empty:
        listed = "; ".join(
            f"{row.x} − {row.y} {_gap(row, 'a')} points on {dataset_of(a)}, {_gap(row, 'b')} on {dataset_of(b)}"
            for row in flipped.itertuples()
        )
        return (
            f"{lead} It did not hold: {len(flipped)} of the {len(pairs)} pairwise orderings flipped, each shown in "
            f"opposite directions by its corrected test on the two datasets ({listed})."
        )
    if not held.empty and tau["tau_low"] > 0:
        return (
            f"{lead} It held as far as the tests can tell: no pairwise ordering flipped, {len(held)} of {len(pairs)} "
            f"were shown in the same direction on both datasets ({unshown} not shown on both), and τ's interval "
            "excludes 0."
        )
    reasons = [f"{unshown} of {len(pairs)} orderings were not shown on both datasets"] if unshown else []
    if not tau["tau_low"] > 0:
        reasons.append("τ's interval does not exclude 0")
    return f"{lead} Inconclusive: no pairwise ordering was shown to flip, but {' and '.join(reasons)}."
