"""The recipe search: one table of tuning runs, the best grid point per variant, and what identifies a search."""

from __future__ import annotations

import hashlib
from typing import Any

import pandas as pd
import yaml

from normstudy.recipes import tuned_variant, tuning_points, tuning_settings, variant_recipe
from normstudy.stats import over_seeds

RUN_COLUMNS = ("variant", "point", "seed", "val_acc", "val_loss", "best_epoch_val_acc", "seconds_per_epoch")
SUMMARY_COLUMNS = (
    "variant",
    "point",
    "n_seeds",
    "val_acc_mean",
    "val_acc_std",
    "val_acc_ci95_low",
    "val_acc_ci95_high",
    "val_loss_mean",
    "chosen",
)


def search_digest(config: dict[str, Any], variants: list[str]) -> str:
    """SHA-256 over the settings of every tuning run of `variants`: equal digests, the same search."""
    digest = hashlib.sha256()
    for variant in variants:
        for point in tuning_points(config):
            for seed in config["tune"]["seeds"]:
                digest.update(tuning_settings(config, variant, point, seed).to_json().encode() + b"\n")
    return digest.hexdigest()


def summarize(runs: pd.DataFrame, point_order: list[str]) -> pd.DataFrame:
    """Per variant and grid point: validation accuracy over the tuning seeds, and which point is chosen.

    A variant's chosen point has the highest mean validation accuracy; ties go to the lower mean validation
    loss, then to the earlier point in the grid. The test set plays no part.
    """
    rows = []
    for (variant, point), group in runs.groupby(["variant", "point"], sort=False):
        rows.append(
            {
                "variant": variant,
                "point": point,
                "n_seeds": len(group),
                **over_seeds(group["val_acc"], "val_acc"),
                "val_loss_mean": group["val_loss"].mean(),
            }
        )
    summary = pd.DataFrame(rows, columns=SUMMARY_COLUMNS[:-1])
    summary["grid_order"] = summary["point"].map(point_order.index)
    ranked = summary.sort_values(
        ["variant", "val_acc_mean", "val_loss_mean", "grid_order"], ascending=[True, False, True, True], kind="stable"
    )
    best = set(ranked.groupby("variant", sort=False).head(1).index)
    summary["chosen"] = summary.index.isin(best)
    return summary.drop(columns="grid_order")[list(SUMMARY_COLUMNS)]


def chosen_points(summary: pd.DataFrame) -> dict[str, str]:
    """Variant -> the name of its chosen grid point, in the summary's variant order."""
    chosen = summary[summary["chosen"]]
    return dict(zip(chosen["variant"], chosen["point"], strict=True))


def chosen_overrides(config: dict[str, Any], summary: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Variant -> the config keys of its chosen point, nested as a variant's section in config.yaml."""
    points = tuning_points(config)
    return {variant: tuned_variant({}, points[name]) for variant, name in chosen_points(summary).items()}


def chosen_yaml(config: dict[str, Any], summary: pd.DataFrame, table: str) -> str:
    """The chosen values as config.yaml's `variants` section, ready to merge into a variant's settings."""
    header = (
        f"# Chosen by `make tune` on the validation split (best mean validation accuracy over tuning seeds "
        f"{config['tune']['seeds']}); the evidence is {table}. Merge each variant's keys into config.yaml.\n"
    )
    return header + yaml.safe_dump({"variants": chosen_overrides(config, summary)}, sort_keys=False)


def configured_matches_chosen(config: dict[str, Any], summary: pd.DataFrame) -> dict[str, bool]:
    """Variant -> whether the study's config runs it with the values its chosen point holds."""
    points = tuning_points(config)
    matches = {}
    for variant, name in chosen_points(summary).items():
        if variant in config["variants"] and name in points:
            settings = {**config["variants"][variant], "train": variant_recipe(config, variant)}
            matches[variant] = all(_lookup(settings, path) == value for path, value in points[name].items())
    return matches


def _lookup(tree: dict[str, Any], path: str) -> Any:
    node: Any = tree
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node
