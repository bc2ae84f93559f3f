"""The recipe search: one table of tuning runs, the best grid point per variant, and what identifies a search."""

from __future__ import annotations

import hashlib
import math
from typing import Any

import pandas as pd
import yaml
from scipy import stats

from normstudy.analysis.stats import over_seeds, pooled_sd
from normstudy.config.recipes import tuned_variant, tuning_points, tuning_settings, variant_recipe
from normstudy.config.study import Study

RUN_COLUMNS = (
    "variant", "point", "seed", "val_acc", "val_loss", "best_epoch_val_acc", "seconds_per_epoch", "diverged"
)  # fmt: skip
SUMMARY_COLUMNS = (
    "variant",
    "point",
    "n_seeds",
    "n_diverged",
    "val_acc_mean",
    "val_acc_std",
    "val_acc_ci95_low",
    "val_acc_ci95_high",
    "val_loss_mean",
    "within_noise",
    "chosen",
)


def search_digest(study: Study, variants: list[str]) -> str:
    """SHA-256 over the settings of every tuning run of `variants`: equal digests, the same search."""
    digest = hashlib.sha256()
    for variant in variants:
        for point in tuning_points(study):
            for seed in study.tune.seeds:
                digest.update(tuning_settings(study, variant, point, seed).to_json().encode() + b"\n")
    return digest.hexdigest()


def pooled_spread(runs: pd.DataFrame) -> tuple[float, int]:
    """The sd of final validation accuracy within a (variant, point) cell, pooled over every cell with two or more
    seeds that trained, and its degrees of freedom: two seeds give a cell one df, too few for an interval of its own."""
    return pooled_sd(_trained(runs).groupby(["variant", "point"], sort=False)["val_acc"])


def _trained(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs that did not diverge (a table recorded before divergence was recorded has no such column)."""
    return runs[~runs["diverged"].astype(bool)] if "diverged" in runs else runs


def untrained(summary: pd.DataFrame) -> list[str]:
    """The variants no point of the grid trains: every point diverged for at least one seed."""
    return [variant for variant, cells in summary.groupby("variant", sort=False) if not cells["chosen"].any()]


def summarize(runs: pd.DataFrame, point_order: list[str]) -> pd.DataFrame:
    """Per variant and grid point: validation accuracy over the tuning seeds (the cell's own sd; a 95 % interval
    from the pooled sd), and the chosen point, by the declared rule: the points whose mean is within one standard
    error of a difference (pooled sd x sqrt(1/n + 1/n_best)) of the best mean are alike, and the middle one of them in
    grid order is chosen (the lower middle of an even number). So noise between neighbours picks no edge, and a
    plateau's centre is chosen over its rim. The test set plays no part."""
    sd, df = pooled_spread(runs)
    half = stats.t.ppf(0.975, df) * sd if df else math.nan
    rows = []
    for (variant, point), cells in runs.groupby(["variant", "point"], sort=False):
        group = _trained(cells)
        width = half / math.sqrt(len(group)) if len(group) else math.nan
        cell = (
            over_seeds(group["val_acc"], "val_acc")
            if len(group)
            else {"val_acc_mean": math.nan, "val_acc_std": math.nan}
        )
        rows.append(
            {
                "variant": variant,
                "point": point,
                "n_seeds": len(group),
                "n_diverged": len(cells) - len(group),
                "val_acc_mean": cell["val_acc_mean"],
                "val_acc_std": cell["val_acc_std"],
                "val_acc_ci95_low": cell["val_acc_mean"] - width,
                "val_acc_ci95_high": cell["val_acc_mean"] + width,
                "val_loss_mean": group["val_loss"].mean(),
            }
        )
    summary = pd.DataFrame(rows)
    summary["within_noise"], summary["chosen"] = False, False
    for _, index in summary.groupby("variant", sort=False).groups.items():
        cells = summary.loc[index].assign(order=lambda t: t["point"].map(point_order.index)).sort_values("order")
        # A rate that diverges for any seed is no candidate: its mean over the seeds it trained hides a failure.
        cells = cells[(cells["n_diverged"] == 0) & (cells["n_seeds"] > 0)]
        if cells.empty:
            continue
        best = cells.loc[cells["val_acc_mean"].idxmax()]
        noise = sd * (1 / cells["n_seeds"] + 1 / best["n_seeds"]) ** 0.5 if df else 0.0
        alike = cells[cells["val_acc_mean"] >= best["val_acc_mean"] - noise]
        summary.loc[alike.index, "within_noise"] = True
        summary.loc[alike.index[(len(alike) - 1) // 2], "chosen"] = True
    return summary[list(SUMMARY_COLUMNS)]


def grid_edges(study: Study, summary: pd.DataFrame) -> list[str]:
    """Why the search does not bracket a variant's choice: its chosen value of a grid key is the grid's first or last
    (a first value of 0, where a key can go no lower, is not an edge); one line each."""
    points, grid, problems = tuning_points(study), study.tune.grid, []
    for variant, name in chosen_points(summary).items():
        for key, value in points[name].items():
            values = list(grid[key])
            if len(values) < 2:
                continue
            if value == max(values):
                problems.append(f"{variant}: chosen {key} {value} is the top of the grid {values}; extend it above")
            elif value == min(values) and value != 0:
                problems.append(f"{variant}: chosen {key} {value} is the bottom of the grid {values}; extend it below")
    return problems


def chosen_points(summary: pd.DataFrame) -> dict[str, str]:
    """Variant -> the name of its chosen grid point, in the summary's variant order."""
    chosen = summary[summary["chosen"]]
    return dict(zip(chosen["variant"], chosen["point"], strict=True))


def chosen_overrides(study: Study, summary: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Variant -> the config keys of its chosen point, nested as a variant's section in config.yaml."""
    points = tuning_points(study)
    return {variant: tuned_variant({}, points[name]) for variant, name in chosen_points(summary).items()}


def chosen_yaml(study: Study, summary: pd.DataFrame, table: str) -> str:
    """The chosen values as config.yaml's `variants` section, ready to merge into a variant's settings."""
    header = (
        f"# Chosen by `make tune` on the validation split by the declared rule (of a variant's points whose mean "
        f"validation accuracy over tuning seeds {list(study.tune.seeds)} is within one standard error of a "
        f"difference of the best, the middle one); the evidence is {table}. Merge each variant's keys into "
        "config.yaml.\n"
    )
    return header + yaml.safe_dump({"variants": chosen_overrides(study, summary)}, sort_keys=False)


def configured_matches_chosen(study: Study, summary: pd.DataFrame) -> dict[str, bool]:
    """Variant -> whether the study's config runs it with the values its chosen point holds."""
    points = tuning_points(study)
    matches = {}
    for variant, name in chosen_points(summary).items():
        if variant in study.variants and name in points:
            settings = {**study.variants[variant].values(), "train": variant_recipe(study, variant)}
            matches[variant] = all(_lookup(settings, path) == value for path, value in points[name].items())
    return matches


def _lookup(tree: dict[str, Any], path: str) -> Any:
    node: Any = tree
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node
