"""The report's findings in words, generated from the declared analysis' tables so that every sentence is one the
numbers support: "different", "equivalent within ±m", or "inconclusive", never "no difference" from a test that
merely failed to reject."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from normstudy.data.datasets import DatasetSpec, write_ups_dataset

# Write-up 002: "99.4 % test accuracy with less than 8k parameters in 15 epochs", the study's target.
TARGET_ACCURACY = 99.4
# Write-up 003's single runs (8,880 parameters, 20 epochs), by norm.
WRITE_UP_003_RESULTS = {"group": 99.54, "layer": 99.48}


def _interval(low: float, high: float) -> str:
    return f"95 % CI {low:+.2f} to {high:+.2f}"


def difference_words(diff: float, low: float, high: float) -> str:
    """'+0.12 points (95 % CI -0.05 to +0.29)', without the interval where the data give none (one seed)."""
    return f"{diff:+.2f} points" + ("" if pd.isna(low) or pd.isna(high) else f" ({_interval(low, high)})")


def _p(name: str, p: float) -> str:
    """'Holm p = 0.012', or 'Holm p < 0.001' where three decimals would print zero."""
    return f"{name} p < 0.001" if p < 0.0005 else f"{name} p = {p:.3f}"


def short_reading(row: pd.Series, margin: float, correction: str = "holm") -> str:
    """A comparison's reading in a few words, for the first screen: 'shown (Holm p = 0.003)', 'equivalent within
    ±0.2 (TOST Holm p = 0.010)', 'inconclusive (Holm p = 0.12)'."""
    name = correction.title()
    if pd.isna(row["p_value"]):
        return "not testable"
    if row["verdict"] == "different":
        return f"shown ({_p(name, row['p_adjusted'])})"
    if row["verdict"] == "equivalent":
        return f"equivalent within ±{margin:g} (TOST {_p(name, row['tost_p_adjusted'])})"
    return f"inconclusive ({name} p = {row['p_adjusted']:.2f})"


def reading_words(row: pd.Series, margin: float, correction: str = "holm", alpha: float = 0.05) -> str:
    """One comparison of the family in words: 'different (Holm p = 0.001)', 'equivalent within ±0.2 (TOST ...)';
    an equivalence says whether it holds beyond these test images where the row has the test set's TOST."""
    if pd.isna(row["p_value"]):
        return "not testable (no residual degrees of freedom: one seed, or no spread)"
    name = correction.title()
    if row["verdict"] == "different":
        return f"different ({_p(name, row['p_adjusted'])})"
    if row["verdict"] == "equivalent":
        words = f"equivalent within ±{margin:g} points (TOST, {_p(name, row['tost_p_adjusted'])})"
        beyond = row.get("tost_p_test_set_adjusted", math.nan)
        if pd.isna(beyond):
            return words
        if beyond < alpha:
            return words + f", also with the test set's sampling error ({_p(name, beyond)})"
        return words + (
            f" on these test images only: with the test set's sampling error the TOST does not reject "
            f"({name} p = {beyond:.3f})"
        )
    return (
        f"inconclusive: not shown different ({name} p = {row['p_adjusted']:.2f}) nor within ±{margin:g} points "
        f"(TOST {name} p = {row['tost_p_adjusted']:.2f})"
    )


def family_verdict(family: pd.DataFrame, facts: dict[str, Any]) -> str:
    """The comparisons section's verdict: every variant against the reference, by the declared analysis."""
    plan = facts["plan"]
    if family.empty:
        return "There is one variant: nothing to compare."
    lines = [
        f"{r.variant} − {r.reference}: {difference_words(r.diff, r.ci_low, r.ci_high)}, "
        f"{reading_words(pd.Series(r._asdict()), plan['margin'], plan['correction'], plan['alpha'])}"
        + (f"; it also differs in {r.held_equal}" if isinstance(r.held_equal, str) and r.held_equal else "")
        for r in family.itertuples()
    ]
    return (
        f"Each variant against {plan['reference']}, by the declared model (variant + seed, {facts['df']} residual "
        f"degrees of freedom), {plan['correction'].title()}-corrected over the {len(family)} comparisons at "
        f"α = {plan['alpha']:g}, with equivalence tested against ±{plan['margin']:g} points: " + "; ".join(lines) + "."
    )


def sensitivity_sentence(facts: dict[str, Any]) -> str:
    """What the family could detect, with the range the residual sd's own uncertainty implies."""
    found = facts["sensitivity"]
    if math.isnan(found["detectable"]):
        return "With no residual spread (one seed, or identical runs) the study gives no sensitivity figure."
    return (
        f"The model's residual sd is {found['residual_sd']:.3f} points ({found['df']} df). At the family's corrected "
        f"level (α = {found['level']:.4f}) a true difference of {found['detectable']:.2f} points is detected with 80 % "
        f"power; over the 95 % interval of that sd the figure ranges from {found['detectable_low']:.2f} to "
        f'{found["detectable_high"]:.2f} points. Smaller differences than that are what "inconclusive" can hide.'
        + equivalence_power_sentence(found, facts["plan"]["margin"])
    )


def equivalence_power_sentence(found: dict[str, Any], margin: float) -> str:
    """How often the equivalence test finds two equal norms equivalent, at this sd and seed count (empty for a
    sensitivity from before it was computed)."""
    power = found.get("equivalence_power", math.nan)
    if power is None or math.isnan(power):
        return ""
    seeds = found.get("seeds_for_equivalence")  # null in analysis.json (read back as NaN): none up to 50 would do
    reached = isinstance(seeds, int | float) and not math.isnan(seeds)
    more = (
        f"{int(seeds)} seeds would give it 80 %" if reached else "no seed count up to 50 would give it 80 % at this sd"
    )
    return (
        f" Two norms with no true difference are found equivalent within ±{margin:g} points with probability "
        f"{power:.2f} (TOST at the same level); the smallest margin it resolves with 80 % power is "
        f"{found['resolvable_margin']:.2f} points, and {more}. Equal norms would be read inconclusive "
        f"{100 * (1 - power):.0f} % of the time, so an inconclusive reading is no sign of a difference."
    )


def target_sentence(summary: pd.DataFrame, runs: pd.DataFrame) -> str:
    """Write-up 002's 99.4 % target per variant: judged on the 95 % CI of the mean, with the share of runs at it, the
    variants grouped by verdict (one clause each, so that six or more variants still read in two lines)."""
    groups: dict[str, list[str]] = {}
    for row in summary.itertuples():
        own = runs.loc[runs["variant"] == row.variant, "test_acc"]
        if pd.isna(row.test_acc_ci95_low):
            verdict = "one seed, no interval"
        elif row.test_acc_ci95_low >= TARGET_ACCURACY:
            verdict = "met"
        elif row.test_acc_ci95_high < TARGET_ACCURACY:
            verdict = "missed"
        else:
            verdict = f"undecided ({TARGET_ACCURACY} inside the CI)"
        groups.setdefault(verdict, []).append(f"{row.variant} {int((own >= TARGET_ACCURACY).sum())}/{len(own)}")
    said = "; ".join(f"{verdict}: {', '.join(names)}" for verdict, names in groups.items())
    return (
        f"Write-up 002's {TARGET_ACCURACY} % target, judged on each mean's 95 % CI (with each variant's runs at or "
        f"above it): {said}."
    )


def write_up_003_sentence(summary: pd.DataFrame, facts: dict[str, Any]) -> str | None:
    """Write-up 003's single published runs against our 95 % prediction interval for one more run (not the CI of the
    mean, which a single run may well fall outside by chance); None when no variant of those norms ran."""
    claims = []
    for norm, claimed in WRITE_UP_003_RESULTS.items():
        for row in summary[summary["norm"] == norm].itertuples():
            low, high = facts["prediction_intervals"].get(row.variant, (math.nan, math.nan))
            if math.isnan(low):
                where = "no prediction interval (one seed)"
            elif low <= claimed <= high:
                where = f"inside our prediction interval for one run ({low:.2f}–{high:.2f})"
            else:
                side = "above" if claimed > high else "below"
                where = f"{side} our prediction interval for one run ({low:.2f}–{high:.2f})"
            claims.append(f"{row.variant} {claimed:.2f} % ({where})")
    if not claims:
        return None
    return (
        "Write-up 003's single runs, with 8,880 parameters and 20 epochs (so not the same network or budget): "
        + "; ".join(claims)
        + "."
    )


def _accuracy(row: pd.Series) -> str:
    """Mean test accuracy with its 95 % interval when there is one."""
    if pd.isna(row["test_acc_ci95_low"]):
        return f"{row['test_acc_mean']:.2f} % (one seed, no interval)"
    return f"{row['test_acc_mean']:.2f} % (95 % CI {row['test_acc_ci95_low']:.2f}–{row['test_acc_ci95_high']:.2f})"


def family_summary(family: pd.DataFrame, facts: dict[str, Any], control: str | None = None) -> str:
    """The family in one sentence: which variants differ from the reference, which are equivalent, which undecided
    (with what the study could have detected, so that "inconclusive" is read for what it is); the control's row is
    the control sentence's, and only counted here."""
    plan, found = facts["plan"], facts["sensitivity"]
    size = len(family)
    family = family[family["variant"] != control]
    said = [
        f"{row.variant} different ({row.diff:+.2f} points, {_interval(row.ci_low, row.ci_high)})"
        for row in family[family["verdict"] == "different"].itertuples()
    ]
    equivalent = list(family.loc[family["verdict"] == "equivalent", "variant"])
    if equivalent:
        said.append(f"{', '.join(equivalent)} equivalent within ±{plan['margin']:g} points")
    undecided = list(family.loc[family["verdict"] == "inconclusive", "variant"])
    if undecided:
        detects = (
            f" (the study detects {found['detectable']:.2f} points with 80 % power)"
            if not math.isnan(found["detectable"])
            else ""
        )
        said.append(f"{', '.join(undecided)} inconclusive at ±{plan['margin']:g} points{detects}")
    if control is not None and size > len(family):
        said.append(f"{control}: the control, above")
    return (
        f"Against {plan['reference']} (declared reference; {plan['correction'].title()} over {size}): "
        + "; ".join(said or ["nothing testable"])
        + "."
    )


# The dataset the write-ups' published figures are on, named where a study's are not.
WRITE_UPS_DATASET = write_ups_dataset().title


def where_sentence(environment: dict[str, Any] | None, facts: dict[str, Any], seeds: int, dataset: DatasetSpec) -> str:
    """On which machine and which test images the verdicts hold, and what this seed count can resolve."""
    images = facts.get("test_images")
    data = "test images" if images is None else f"{images:,} {dataset.short} test images"
    if not dataset.write_ups:
        data += f" (not {WRITE_UPS_DATASET}: the write-ups' claims go unchecked)"
    jobs = (environment or {}).get("jobs", {})
    trained = (
        f"{'/'.join(jobs['device'])}, {'/'.join(jobs['threads'])} thread(s), torch {'/'.join(jobs['torch'])}"
        if {"device", "threads", "torch"} <= set(jobs)
        else "an unrecorded machine"
    )
    cpu = (environment or {}).get("cpu")
    sentence = (
        f"Verdicts hold for {seeds} seed(s) on {trained}" + (f" ({cpu})" if cpu else "") + f", these {data}; "
        "other machines give other numbers."
    )
    found = facts.get("sensitivity", {})
    if math.isnan(found.get("equivalence_power", math.nan)):
        return sentence
    # The detectable difference is in the family's sentence; the equivalence side is said here.
    return sentence + (
        f" Equal norms are found equivalent within ±{facts['plan']['margin']:g} with probability "
        f"{found['equivalence_power']:.2f}."
    )


def control_sentence(control: pd.DataFrame, summary: pd.DataFrame, plan: dict[str, Any]) -> str:
    """Whether normalization helps this network, from the control family (every norm against no normalization):
    said only where each test says it, with by how much."""
    name = str(control["reference"].iloc[0])
    own = f" No normalization ({name}): {_accuracy(summary.set_index('variant').loc[name])}."
    family = f"{plan['correction'].title()} over {len(control)}"
    ahead = control[(control["verdict"] == "different") & (control["diff"] > 0)]
    if len(ahead) == len(control):
        low, high = ahead["diff"].min(), ahead["diff"].max()
        span = f"{low:+.2f} to {high:+.2f}" if len(ahead) > 1 else f"{high:+.2f}"
        return (
            f"Normalization helps this network: every norm is ahead of no normalization by {span} points, each shown "
            f"({family}).{own}"
        )
    behind = control[(control["verdict"] == "different") & (control["diff"] < 0)]
    said = [
        f"{row.variant} ahead by {row.diff:+.2f} points ({_interval(row.ci_low, row.ci_high)})"
        for row in ahead.itertuples()
    ]
    said += [
        f"{row.variant} behind by {row.diff:+.2f} points ({_interval(row.ci_low, row.ci_high)})"
        for row in behind.itertuples()
    ]
    equivalent = list(control.loc[control["verdict"] == "equivalent", "variant"])
    if equivalent:
        said.append(f"{', '.join(equivalent)} equivalent within ±{plan['margin']:g} points")
    undecided = list(control.loc[control["verdict"] == "inconclusive", "variant"])
    if undecided:
        said.append(f"{', '.join(undecided)} inconclusive")
    verdict = (
        "Normalization is not shown to help this network" if ahead.empty else "Normalization helps some norms here"
    )
    return f"{verdict}; against no normalization ({family}): " + "; ".join(said) + f".{own}"


def key_results(
    summary: pd.DataFrame,
    family: pd.DataFrame,
    facts: dict[str, Any],
    runs: pd.DataFrame,
    dataset: DatasetSpec,
    environment: dict[str, Any] | None = None,
    control: pd.DataFrame | None = None,
) -> list[str]:
    """The few sentences a reader who stops after the first screen must get; with a control, whether normalization
    helps comes first."""
    controlled = control is not None and not control.empty
    name = str(control["reference"].iloc[0]) if controlled else None
    # Among the norms: the control's own accuracy is the control sentence's.
    ranked = summary[summary["variant"] != name].sort_values("test_acc_mean", ascending=False, kind="stable")
    best, worst = ranked.iloc[0], ranked.iloc[-1]
    # A description of the means: which differences are shown is the family's sentence, next.
    lowest = f"; lowest: {worst['variant']}, {_accuracy(worst)}" if len(ranked) > 1 else ""
    lines = [
        f"Highest mean test accuracy{' of a norm' if controlled else ''}: {best['variant']}, {_accuracy(best)}{lowest}."
    ]
    if controlled:
        lines.insert(0, control_sentence(control, summary, facts["plan"]))
    if not family.empty:
        lines.append(family_summary(family, facts, name))
    lines.append(where_sentence(environment, facts, int(summary["n_seeds"].min()), dataset))
    if not dataset.write_ups:
        return lines
    lines.append(target_sentence(summary, runs))
    said = write_up_003_sentence(summary, facts)
    if said:
        lines.append(said)
    return lines
