"""The robustness section's sentences (robustness_summary.py writes them to its findings): the declared endpoint's
family and the groups apart, where the ranking flips per set, test-time statistics, and the contrast claim. Each
reads a decided table, and says what its test shows and no more."""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from normstudy.analysis.findings import difference_words, reading_words, short_reading
from normstudy.data.shift_sets import mode_batch
from normstudy.model.architecture import NetworkSpec
from normstudy.model.norm_specs import norm_spec, takes_batch_statistics


def verdict_words(row: Any, margin: float, correction: str) -> str:
    """A comparison's difference with its interval and reading, from a row of a decided table."""
    low, high = (row.ci_low, row.ci_high) if hasattr(row, "ci_low") else (row.ci95_low, row.ci95_high)
    diff = row.diff if hasattr(row, "diff") else row.diff_mean
    words = reading_words(pd.Series(row._asdict()), margin, correction)
    return f"{difference_words(diff, low, high)}, {words}"


def shown_sides(family: pd.DataFrame, reference: str) -> str:
    """Which variants a decided family shows ahead of, behind, or not different from the reference."""
    ahead = [r.variant for r in family.itertuples() if r.verdict == "different" and r.diff > 0]
    behind = [r.variant for r in family.itertuples() if r.verdict == "different" and r.diff < 0]
    others = [r.variant for r in family.itertuples() if r.verdict != "different"]
    groups = [(f"shown ahead of {reference}", ahead), (f"shown behind {reference}", behind)]
    groups.append((f"not shown to differ from {reference}", others))
    return "; ".join(f"{label}: {', '.join(names)}" for label, names in groups if names) or "nothing to compare"


def robustness_overall(
    errors: pd.DataFrame, family: pd.DataFrame, groups: pd.DataFrame, plan: dict[str, Any], endpoint: dict[str, Any]
) -> str:
    """What the declared family says of each variant against the reference over the endpoint's sets (the only tested
    claim), the same on the intensity shifts and the other kinds apart (secondary), then the mean accuracies and mCE
    as descriptions: no superlative rests on an untested statistic."""
    reference, running = plan["reference"], errors[errors["mode"] == "running"]
    lines = [
        f"{r.variant} − {r.reference}: {verdict_words(r, plan['margin'], plan['correction'])}"
        for r in family.itertuples()
    ]
    apart = [
        f"{name} ({group['kinds'].iloc[0]}): "
        + "; ".join(f"{r.variant} {verdict_words(r, plan['margin'], plan['correction'])}" for r in group.itertuples())
        for name, group in (groups.groupby("sets", sort=False) if len(groups) else [])
    ]
    by_accuracy = running.sort_values("mean_acc", ascending=False, kind="stable")
    order = ", ".join(f"{r.variant} {r.mean_acc:.2f}" for r in by_accuracy.itertuples())
    if running["mce"].isna().all():
        mce = (
            f"The mean corruption error, a ratio to {reference}'s errors, is not defined here: {reference} made no "
            "error on any corrupted set."
        )
    else:
        values = ", ".join(f"{r.variant} {r.mce:.0f} %" for r in running.sort_values("mce", kind="stable").itertuples())
        mce = (
            f"mCE against {reference} (exploratory: not declared, not tested; it weighs each corruption by "
            f"{reference}'s error on it): {values}."
        )
    return (
        f"By the declared analysis of the mean accuracy over the endpoint, {endpoint['words']} ({endpoint['sets']} "
        f"sets; each pair paired by seed with its own spread, {plan['correction'].title()} over {len(family)}, "
        f"±{plan['margin']:g} points), {shown_sides(family, reference)}: "
        + "; ".join(lines or ["nothing to compare"])
        + (". Apart (secondary, each group corrected within itself): " + "; ".join(apart) if apart else "")
        + f". Mean accuracy over every corrupted set (running statistics; a description, its order not tested): "
        f"{order} %. {mce}"
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


def adaptation_words(mode: str) -> str:
    """A scoring mode of adaptation in words: the whole set, or a batch of N images at a time."""
    size = mode_batch(mode)
    return "adapted (whole set)" if size is None else f"adapted per {size}-image batch"


def adaptationverdict_words(own: Any, versus: list[Any], gap: set[str]) -> str:
    """One adaptation mode's reading: whether it narrows BatchNorm's gap (shown ahead of running statistics) and
    whether it closes it (ahead of or equivalent to every per-image norm the family showed ahead)."""
    still = [r.against for r in versus if r.verdict == "different" and r.diff_mean < 0]
    improved = own.verdict == "different" and own.diff_mean > 0
    if not gap:
        return "finds no gap to close (no per-image norm shown ahead of it over the endpoint's sets)"
    if still:
        return f"does not close the gap (still shown behind {', '.join(still)})" + (
            ", though it narrows it (shown ahead of running)" if improved else ""
        )
    if all(r.verdict in ("equivalent", "different") for r in versus):
        return "closes the gap (shown ahead of or equivalent to every norm without batch statistics)"
    if improved:
        return (
            "narrows the gap (shown ahead of running) and is no longer shown behind; that it closes the gap is not "
            "shown (inconclusive against the per-image norms)"
        )
    return (
        "not shown to change the gap: not shown ahead of running, and not being shown behind the per-image norms is "
        "no evidence that it caught up"
    )


def adaptation_sentence(adaptation: pd.DataFrame, family: pd.DataFrame, plan: dict[str, Any]) -> str:
    """Whether test-time statistics (PreciseBN; adaptation to the whole set and a batch at a time) close the gap
    between BatchNorm's running statistics and the per-image norms, per adaptation mode."""
    if adaptation.empty:
        return "No variant with BatchNorm ran: test-time statistics are not tested."
    # The gap: per-image norms shown ahead of the reference over the endpoint's sets (running statistics).
    gap = set(family.loc[(family["verdict"] == "different") & (family["diff"] > 0), "variant"])
    verdict = partial(verdict_words, margin=plan["margin"], correction=plan["correction"])
    parts = []
    for variant, rows in adaptation.groupby("variant", sort=False):
        said = [f"PreciseBN − running {verdict(r)}" for r in rows.itertuples() if r.mode == "precise"]
        for mode, own_rows in rows[rows["mode"] != "precise"].groupby("mode", sort=False):
            own = next(r for r in own_rows.itertuples() if r.against == variant)
            versus = [r for r in own_rows.itertuples() if r.against != variant]
            said.append(
                f"{adaptation_words(mode)}: − running {verdict(own)}; "
                + "; ".join(f"− {r.against} {verdict(r)}" for r in versus)
                + f"; it {adaptationverdict_words(own, versus, gap)}"
            )
        parts.append(f"{variant}: " + ". ".join(said))
    return (
        "Test-time statistics on the endpoint's sets (mean accuracy over them, paired by seed, "
        f"{plan['correction'].title()} over {len(adaptation)}): " + ". ".join(parts) + "."
    )


def contrast_sentence(contrast: pd.DataFrame, norms: dict[str, str], plan: dict[str, Any], network: NetworkSpec) -> str:
    """The literature's claim that per-image statistics help under a change of contrast, held or not here (in
    `network`, whose first layer decides whether a norm removes a contrast change by construction)."""
    if contrast.empty:
        return "No contrast set is configured: the claim that per-image statistics help under contrast is not tested."
    own = contrast[~contrast["variant"].map(norms).map(takes_batch_statistics)]
    lines = [
        f"{r.variant} − {r.reference} (severity {r.severity}): {verdict_words(r, plan['margin'], plan['correction'])}"
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
    identities = [name for name in own["variant"].unique() if network.removes_image_affine(norm_spec(norms[name]))]
    identity = (
        f" For {', '.join(identities)} the invariance is an identity of the architecture, not a finding: a contrast "
        "change is a per-image affine map of the pixels, the first convolution (no bias, no padding) passes it on as "
        "a per-channel affine map, and a norm over each image and channel removes that, up to the set's 8-bit "
        "rounding and the norm's epsilon."
        if identities
        else ""
    )
    return (
        "The literature's claim that per-image statistics help under a change of contrast, tested as each per-image "
        f"norm's drop from clean on the contrast set against {plan['reference']}'s (running statistics; a paired "
        "t-test per pair on its own differences, as the drops' spreads differ by orders of magnitude; "
        f"{plan['correction'].title()} over {len(own)}): " + "; ".join(lines) + f". The claim {verdict}.{identity}"
    )


def robustness_findings(
    found: dict[str, pd.DataFrame], norms: dict[str, str], plan: Any, endpoint: dict[str, Any], network: NetworkSpec
) -> dict[str, str]:
    """The robustness section's sentences, by name: overall, flips, adaptation, contrast."""
    declared = plan.values()
    return {
        "overall": robustness_overall(found["errors"], found["family"], found["groups"], declared, endpoint),
        "flips": ranking_flips(found["family"], found["per_set"], plan.reference),
        "adaptation": adaptation_sentence(found["adaptation"], found["family"], declared),
        "contrast": contrast_sentence(found["contrast"], norms, declared, network),
    }


def shift_key_sentence(
    family: pd.DataFrame, adaptation: pd.DataFrame, plan: dict[str, Any], endpoint: dict[str, Any]
) -> str:
    """The first screen's sentence on a shift: the variant furthest ahead of the reference on the declared endpoint
    (the family is paired by seed, so its differences rank the endpoint's means), by how much, with its test; and
    what adapting the reference's statistics to each whole shifted set does there, where it was scored."""
    where = f"Under a shift ({endpoint['words']}, {endpoint['sets']} set{'s' * (endpoint['sets'] != 1)})"
    if family.empty:
        return f"{where}: nothing to compare."
    best = family.loc[family["diff"].idxmax()]
    reading = short_reading(best, plan["margin"], plan["correction"])
    reference, difference = plan["reference"], f"{best['diff']:+.2f} points"
    said = (
        f"{where}: {best['variant']} leads {reference} by {difference}, {reading}"
        if best["diff"] > 0
        else f"{where}: none is above {reference}; the closest, {best['variant']}, {difference}, {reading}"
    )
    own = adaptation[
        (adaptation["mode"] == "adapted")
        & (adaptation["variant"] == plan["reference"])
        & (adaptation["against"] == plan["reference"])
    ]
    if own.empty:
        return said + "."
    row = own.iloc[0]
    adapted = short_reading(row.rename({"diff_mean": "diff"}), plan["margin"], plan["correction"])
    return f"{said}; adapting {plan['reference']}'s statistics to each set moves it {row['diff_mean']:+.2f}, {adapted}."
