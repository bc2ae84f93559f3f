#!/usr/bin/env python3
"""Aggregate every run into tables: per-variant summary, per-epoch history, comparisons, per-class, confusion."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import pandas as pd

from normstudy import atomic
from normstudy.analysis.declared import (
    FAMILY_COLUMNS,
    facts_json,
    family_table,
    fit_model,
    held_equal,
    prediction_interval,
    sensitivity,
)
from normstudy.analysis.stats import clipped_to_percent, compare_variants, over_seeds
from normstudy.cli import run_cli
from normstudy.config.study import Plan
from normstudy.report.provenance import environment
from normstudy.runs import Runs, read_named_json, read_runs
from normstudy.tables import shown, write_csv, write_text

SUMMARY_COLUMNS = [
    "variant",
    "norm",
    "params",
    "n_seeds",
    "test_acc_mean",
    "test_acc_std",
    "test_acc_ci95_low",
    "test_acc_ci95_high",
    "final_train_acc_mean",
    "train_test_gap_mean",
    "test_loss_mean",
    "misclassified_mean",
    "seconds_per_epoch_mean",
]


# The summary's interval bounds shown truncated to 0-100 % (stats.clipped_to_percent).
TRUNCATED = ("test_acc_ci95_low", "test_acc_ci95_high")


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per variant: mean, spread and t-interval of test accuracy over seeds (truncated to 0-100 %), and the
    rest."""
    rows = []
    for variant, group in runs.groupby("variant", sort=False):
        rows.append(
            {
                "variant": variant,
                "norm": group["norm"].iloc[0],
                "params": int(group["params"].iloc[0]),
                "n_seeds": len(group),
                **clipped_to_percent(over_seeds(group["test_acc"], "test_acc"), TRUNCATED),
                "final_train_acc_mean": group["final_train_acc"].mean(),
                "train_test_gap_mean": group["train_test_gap"].mean(),
                "test_loss_mean": group["test_loss"].mean(),
                "misclassified_mean": group["misclassified"].mean(),
                "seconds_per_epoch_mean": group["seconds_per_epoch"].mean(),
            }
        )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def per_class_table(metrics: dict) -> pd.DataFrame:
    """Per-variant, per-class test accuracy: mean and standard deviation over seeds."""
    rows = [
        {"variant": variant, "seed": seed, "class": k, "acc": acc}
        for (variant, seed), result in metrics.items()
        for k, acc in enumerate(result["per_class_acc"])
    ]
    table = pd.DataFrame(rows).groupby(["variant", "class"], sort=False)["acc"]
    return table.agg(acc_mean="mean", acc_std="std").reset_index()


def confusion_table(metrics: dict) -> pd.DataFrame:
    """Per-variant confusion matrix (true x predicted), counts averaged over seeds, in long form."""
    by_variant: dict[str, list[np.ndarray]] = {}
    for (variant, _seed), result in metrics.items():
        by_variant.setdefault(variant, []).append(np.array(result["confusion_matrix"], dtype=float))
    rows = [
        {"variant": variant, "true": t, "predicted": p, "count_mean": mean[t, p]}
        for variant, matrices in by_variant.items()
        for mean in [np.mean(matrices, axis=0)]
        for t in range(mean.shape[0])
        for p in range(mean.shape[1])
    ]
    return pd.DataFrame(rows)


def main(files: dict[str, list[Path]], plan: Plan, out: dict[str, Path]) -> pd.DataFrame:
    """Write every table to its path in `out` (keys: the names of OUTPUTS) and return the summary."""
    runs = read_runs(files)
    summary = summarize(runs.table)
    write_csv(summary, out["summary"])
    write_csv(runs.table, out["runs"])
    write_csv(runs.epochs, out["epochs"])
    write_csv(compare_variants(runs.table[["variant", "seed", "test_acc"]]), out["comparisons"])
    write_csv(per_class_table(runs.metrics), out["per_class"])
    write_csv(confusion_table(runs.metrics), out["confusion"])
    family, facts = analysed(runs, plan)
    write_csv(family, out["family"])
    write_csv(control_family(runs, plan), out["control"])
    atomic.write_json(out["analysis"], facts_json(facts))
    jobs = [
        read_named_json(path, key, settings.digest())
        for path, (key, settings) in zip(files["jobs"], runs.settings.items(), strict=True)
    ]
    atomic.write_json(out["environment"], environment(jobs, Path.cwd()))
    # A single seed has no spread: shown as a dash, never as "nan".
    people = shown(summary)
    write_text(out["summary_md"], people.to_markdown(index=False, missingval="–"))
    write_text(out["summary_html"], people.to_html(index=False, na_rep="–", classes="summary", border=0))
    print(people.to_string(index=False, na_rep="–"))
    print(family[["variant", "reference", "diff", "ci_low", "ci_high", "p_adjusted", "verdict"]].to_string(index=False))
    return summary


def held_equal_to(runs: Runs, reference: str) -> dict[str, str]:
    """What each other variant's runs differ in from `reference`'s besides the norm (declared.held_equal)."""
    settings = next(s for (variant, _), s in runs.settings.items() if variant == reference)
    others = {variant: s for (variant, _), s in runs.settings.items() if variant != reference}
    return {variant: held_equal(other, settings) for variant, other in others.items()}


def control_family(runs: Runs, plan: Plan) -> pd.DataFrame:
    """Every other variant against the no-normalization control, a family of its own under the same declared model,
    correction and margin; no rows when the plan names no control."""
    if plan.control is None:
        return pd.DataFrame(columns=list(FAMILY_COLUMNS))
    table = runs.table[["variant", "seed", "test_acc"]]
    return family_table(table, plan.against_control(), runs.correct, held_equal_to(runs, plan.control))


def analysed(runs: Runs, plan: Plan) -> tuple[pd.DataFrame, dict]:
    """The declared analysis: the family table, and the model's facts the report quotes (plan, residual sd and df,
    sensitivity, each variant's prediction interval for one more run)."""
    table = runs.table[["variant", "seed", "test_acc"]]
    family = family_table(table, plan, runs.correct, held_equal_to(runs, plan.reference))
    fit = fit_model(table, plan.reference)
    # One more run brings a new seed: its spread is a run's about its variant's mean, the seed's share included.
    one_run = fit_model(table, plan.reference, seed_blocks=False)
    seeds = int(table.groupby("variant")["seed"].count().min())
    means = table.groupby("variant", sort=False)["test_acc"].agg(["mean", "count"])
    facts = {
        "plan": plan.values(),
        "residual_sd": fit.residual_sd,
        "df": fit.df,
        "sensitivity": dataclasses.asdict(sensitivity(fit, plan, seeds)),
        # What the verdicts were scored on: the test images every run was scored on (read_runs checks the count).
        "test_images": int(next(iter(runs.metrics.values()))["n_test"]),
        "run_sd": one_run.residual_sd,
        "run_df": one_run.df,
        "prediction_intervals": {
            variant: list(prediction_interval(row["mean"], one_run, int(row["count"]), plan.alpha))
            for variant, row in means.iterrows()
        },
    }
    return family, facts


OUTPUTS = (
    "summary",
    "summary_md",
    "summary_html",
    "runs",
    "epochs",
    "comparisons",
    "per_class",
    "confusion",
    "family",
    "control",
    "analysis",
    "environment",
)
INPUTS = ("settings", "metrics", "histories", "predictions", "jobs")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    for name in INPUTS:
        parser.add_argument(f"--{name}", type=Path, nargs="+", required=True, help=f"every run's {name}, same order")
    parser.add_argument("--analysis-plan", type=json.loads, required=True, help="the config's analysis section (JSON)")
    for name in OUTPUTS:
        parser.add_argument(f"--{name.replace('_', '-')}", type=Path, required=True, help=f"the {name} table to write")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    run_cli(
        lambda: main(
            {name: getattr(args, name) for name in INPUTS},
            Plan.from_config(args.analysis_plan),
            {name: getattr(args, name) for name in OUTPUTS},
        )
    )
