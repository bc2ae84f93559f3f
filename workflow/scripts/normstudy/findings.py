"""The report's findings in words, generated from the declared analysis' tables so that every sentence is one the
numbers support: "different", "equivalent within ±m", or "inconclusive", never "no difference" from a test that
merely failed to reject."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pandas as pd

# Write-up 002: "99.4 % test accuracy with less than 8k parameters in 15 epochs", the study's target.
TARGET_ACCURACY = 99.4
# Write-up 003's single runs (8,880 parameters, 20 epochs), by norm.
WRITE_UP_003_RESULTS = {"group": 99.54, "layer": 99.48}


def _interval(low: float, high: float) -> str:
    return f"95 % CI {low:+.2f} to {high:+.2f}"


def _difference(diff: float, low: float, high: float) -> str:
    """'+0.12 points (95 % CI -0.05 to +0.29)', without the interval where the data give none (one seed)."""
    return f"{diff:+.2f} points" + ("" if pd.isna(low) or pd.isna(high) else f" ({_interval(low, high)})")


def _p(name: str, p: float) -> str:
    """'Holm p = 0.012', or 'Holm p < 0.001' where three decimals would print zero."""
    return f"{name} p < 0.001" if p < 0.0005 else f"{name} p = {p:.3f}"


def reading_words(row: pd.Series, margin: float, correction: str = "holm") -> str:
    """One comparison of the family in words: 'different (Holm p = 0.001)', 'equivalent within ±0.2 (TOST ...)'."""
    if pd.isna(row["p_value"]):
        return "not testable (no residual degrees of freedom: one seed, or no spread)"
    name = correction.title()
    if row["verdict"] == "different":
        return f"different ({_p(name, row['p_adjusted'])})"
    if row["verdict"] == "equivalent":
        return f"equivalent within ±{margin:g} points (TOST, {_p(name, row['tost_p_adjusted'])})"
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
        f"{r.variant} − {r.reference}: {_difference(r.diff, r.ci_low, r.ci_high)}, "
        f"{reading_words(pd.Series(r._asdict()), plan['margin'], plan['correction'])}"
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
    )


def target_sentence(summary: pd.DataFrame, runs: pd.DataFrame) -> str:
    """Write-up 002's 99.4 % target per variant: judged on the 95 % CI of the mean, with the share of runs at it."""
    parts = []
    for row in summary.itertuples():
        own = runs.loc[runs["variant"] == row.variant, "test_acc"]
        share = f"{int((own >= TARGET_ACCURACY).sum())} of {len(own)} runs at or above"
        if pd.isna(row.test_acc_ci95_low):
            judged = f"one seed, no interval ({share})"
        elif row.test_acc_ci95_low >= TARGET_ACCURACY:
            judged = f"met ({share})"
        elif row.test_acc_ci95_high < TARGET_ACCURACY:
            judged = f"missed ({share})"
        else:
            judged = f"undecided ({TARGET_ACCURACY} inside its CI, {share})"
        parts.append(f"{row.variant} {judged}")
    return f"Write-up 002's {TARGET_ACCURACY} % target, judged on each mean's 95 % CI: " + "; ".join(parts) + "."


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


def family_summary(family: pd.DataFrame, facts: dict[str, Any]) -> str:
    """The family in one sentence: which variants differ from the reference, which are equivalent, which undecided
    (with what the study could have detected, so that "inconclusive" is read for what it is)."""
    plan, found = facts["plan"], facts["sensitivity"]
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
    return (
        f"Against {plan['reference']} (declared reference; {plan['correction'].title()} over {len(family)}): "
        + "; ".join(said or ["nothing testable"])
        + "."
    )


def key_results(
    summary: pd.DataFrame, family: pd.DataFrame, facts: dict[str, Any], runs: pd.DataFrame, mnist: bool
) -> list[str]:
    """The few sentences a reader who stops after the first screen must get."""
    ranked = summary.sort_values("test_acc_mean", ascending=False, kind="stable")
    best, worst = ranked.iloc[0], ranked.iloc[-1]
    lines = [f"Highest mean test accuracy: {best['variant']}, {_accuracy(best)}."]
    if len(ranked) > 1:
        lines.append(f"Lowest: {worst['variant']}, {_accuracy(worst)}.")
    if not family.empty:
        lines.append(family_summary(family, facts))
    if not mnist:
        lines.append("Synthetic digits, not MNIST: the write-ups' MNIST claims are not checked on this data.")
        return lines
    lines.append(target_sentence(summary, runs))
    said = write_up_003_sentence(summary, facts)
    if said:
        lines.append(said)
    return lines


def _verdict(row: Any, margin: float, correction: str) -> str:
    """A comparison's difference with its interval and reading, from a row of a decided table."""
    low, high = (row.ci_low, row.ci_high) if hasattr(row, "ci_low") else (row.ci95_low, row.ci95_high)
    diff = row.diff if hasattr(row, "diff") else row.diff_mean
    words = reading_words(pd.Series(row._asdict()), margin, correction)
    return f"{_difference(diff, low, high)}, {words}"


def _most_robust(errors: pd.DataFrame, family: pd.DataFrame, reference: str) -> tuple[pd.Series, pd.Series, bool]:
    """The most and least robust variant by mCE (running statistics), and whether the declared family shows the
    first's lead: over every other variant when it is the reference, over the reference otherwise."""
    running = errors[errors["mode"] == "running"].sort_values("mce", kind="stable")
    best, worst = running.iloc[0], running.iloc[-1]
    if best["variant"] == reference:
        shown = not family.empty and all(r.verdict == "different" and r.diff < 0 for r in family.itertuples())
    else:
        lead = family[family["variant"] == best["variant"]]
        shown = not lead.empty and lead.iloc[0]["verdict"] == "different" and lead.iloc[0]["diff"] > 0
    return best, worst, shown


def robustness_overall(errors: pd.DataFrame, family: pd.DataFrame, plan: dict[str, Any]) -> str:
    """Which norm is most robust by mCE (running statistics), and what the declared family says of it."""
    if errors.loc[errors["mode"] == "running", "mce"].isna().all():
        return (
            f"{plan['reference']} made no error on any corrupted set: the mean corruption error, a ratio to its "
            "errors, is not defined here."
        )
    best, worst, shown = _most_robust(errors, family, plan["reference"])
    lines = [
        f"{r.variant} − {r.reference}: {_verdict(r, plan['margin'], plan['correction'])}" for r in family.itertuples()
    ]
    over = "every other norm" if best["variant"] == plan["reference"] else plan["reference"]
    by_accuracy = errors[errors["mode"] == "running"].sort_values("mean_acc", ascending=False, kind="stable")
    order = ", ".join(f"{r.variant} {r.mean_acc:.2f}" for r in by_accuracy.itertuples())
    by_mce = list(errors[errors["mode"] == "running"].sort_values("mce", kind="stable")["variant"])
    # mCE averages ratios to the reference's error per corruption, so it can rank otherwise than the mean accuracy.
    other = f" By mean accuracy over the corruptions: {order} %." + (
        " mCE ranks otherwise: it weighs each corruption by the reference's error on it, so those the reference "
        "handles best count most."
        if list(by_accuracy["variant"]) != by_mce
        else ""
    )
    return (
        f"Most robust by mean corruption error: {best['variant']} (mCE {best['mce']:.0f} % of "
        f"{plan['reference']}'s, mean accuracy over the {int(best['corruptions'])} corruptions "
        f"{best['mean_acc']:.2f} %); least: {worst['variant']} (mCE {worst['mce']:.0f} %, {worst['mean_acc']:.2f} %)."
        f"{other} "
        f"Its lead over {over} is {'shown' if shown else 'not shown'} by the declared analysis of the mean "
        f"accuracy over corrupted sets (variant + seed, {plan['correction'].title()} over {len(family)}, "
        f"±{plan['margin']:g} points): " + "; ".join(lines or ["nothing to compare"]) + "."
    )


def ranking_flips(family: pd.DataFrame, per_set: pd.DataFrame, reference: str) -> str:
    """The sets on which a variant is shown on the other side of the reference than over all sets (exploratory)."""
    overall = family.set_index("variant")["diff"]
    shown = per_set[per_set["verdict"] == "different"]
    flips = [
        f"{row.variant} {'ahead of' if row.diff > 0 else 'behind'} {reference} on {row.corruption} {row.severity} "
        f"({row.diff:+.2f} points)"
        for row in shown.itertuples()
        if np.sign(row.diff) != np.sign(overall.get(row.variant, 0.0))
    ]
    head = (
        f"Per set (exploratory: Benjamini–Hochberg over {len(per_set)} comparisons, not the declared correction), "
        f"{len(shown)} differences from {reference} are shown. "
    )
    if not flips:
        return head + "On no set is a variant shown on the other side of the reference than over all sets."
    return head + "The ranking flips on: " + "; ".join(flips) + "."


def adaptation_sentence(adaptation: pd.DataFrame, family: pd.DataFrame, plan: dict[str, Any]) -> str:
    """Whether test-time adaptation closes the gap between BatchNorm's running statistics and the per-image norms."""
    if adaptation.empty:
        return "No variant with BatchNorm ran: test-time statistics are not tested."
    # The gap: per-image norms shown ahead of the reference over the corrupted sets (running statistics).
    behind = set(family.loc[(family["verdict"] == "different") & (family["diff"] > 0), "variant"])
    parts = []
    for variant, rows in adaptation.groupby("variant", sort=False):
        own = {(r.mode, r.against): r for r in rows.itertuples()}
        said = [
            f"{label} − running {_verdict(own[(mode, variant)], plan['margin'], plan['correction'])}"
            for mode, label in (("adapted", "adapted"), ("precise", "PreciseBN"))
        ]
        versus = [r for r in rows.itertuples() if r.against != variant]
        still = [r.against for r in versus if r.verdict == "different" and r.diff_mean < 0]
        gap = [r.against for r in versus if r.against in behind]
        if not gap:
            verdict = "there was no gap to close (no per-image norm shown ahead of it over the corrupted sets)"
        elif still:
            verdict = f"it does not close the gap (still shown behind {', '.join(still)})"
        elif all(r.verdict in ("equivalent", "different") for r in versus):
            verdict = "it closes the gap (shown ahead of or equivalent to every norm without batch statistics)"
        else:
            verdict = "it narrows the gap: no longer shown behind, but not shown equivalent either (inconclusive)"
        said += [f"adapted − {r.against} {_verdict(r, plan['margin'], plan['correction'])}" for r in versus]
        parts.append(f"{variant}: " + "; ".join(said) + f". Test-time adaptation: {verdict}")
    return (
        "Test-time statistics on the corrupted sets (mean accuracy over them, paired by seed, "
        f"{plan['correction'].title()} over {len(adaptation)}): " + ". ".join(parts) + "."
    )


def contrast_sentence(contrast: pd.DataFrame, norms: dict[str, str], plan: dict[str, Any]) -> str:
    """The literature's claim that per-image statistics help under a change of contrast, held or not here."""
    if contrast.empty:
        return "No contrast set is configured: the claim that per-image statistics help under contrast is not tested."
    own = contrast[contrast["variant"].map(norms) != "batch"]
    lines = [
        f"{r.variant} − {r.reference} (severity {r.severity}): {_verdict(r, plan['margin'], plan['correction'])}"
        for r in own.itertuples()
    ]
    smaller = own[(own["verdict"] == "different") & (own["diff"] < 0)]
    larger = own[(own["verdict"] == "different") & (own["diff"] > 0)]
    if len(own) and len(smaller) == len(own):
        verdict = "held here: every per-image norm lost significantly less than batch norm"
    elif len(smaller) and not len(larger):
        verdict = f"held in part: {', '.join(smaller['variant'])} lost significantly less, the others not shown to"
    elif len(larger) and not len(smaller):
        verdict = f"did not hold: {', '.join(larger['variant'])} lost significantly more than batch norm"
    elif len(larger):
        verdict = "held for some and was reversed for others"
    else:
        verdict = "inconclusive: no per-image norm's loss is shown to differ from batch norm's"
    return (
        "The literature's claim that per-image statistics help under a change of contrast, tested as each per-image "
        f"norm's drop from clean on the contrast set against {plan['reference']}'s (running statistics; "
        f"{plan['correction'].title()} over {len(own)}): " + "; ".join(lines) + f". The claim {verdict}."
    )


def robustness_findings(found: dict[str, pd.DataFrame], norms: dict[str, str], plan: Any) -> dict[str, str]:
    """The robustness section's sentences, by name: overall, flips, adaptation, contrast."""
    declared = dataclasses.asdict(plan)
    return {
        "overall": robustness_overall(found["errors"], found["family"], declared),
        "flips": ranking_flips(found["family"], found["per_set"], plan.reference),
        "adaptation": adaptation_sentence(found["adaptation"], found["family"], declared),
        "contrast": contrast_sentence(found["contrast"], norms, declared),
    }
