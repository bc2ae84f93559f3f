#!/usr/bin/env python3
"""Aggregate every run into tables: per-variant summary, per-epoch history, comparisons, per-class, confusion."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import pandas as pd

from normstudy.cli import run_cli
from normstudy.runs import read_run
from normstudy.stats import compare_variants, over_seeds
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
    "best_epoch_test_acc_mean",
    "final_train_acc_mean",
    "train_test_gap_mean",
    "test_loss_mean",
    "misclassified_mean",
    "seconds_per_epoch_mean",
]


def read_runs(
    settings_files: list[Path], metrics_files: list[Path], history_files: list[Path]
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Per-run rows, the long per-epoch table, and per-run metrics, from each run's three files (same order)."""
    runs, epochs, metrics = [], [], {}
    for settings_file, metrics_file, history_file in zip(settings_files, metrics_files, history_files, strict=True):
        run = read_run(settings_file, history_file, metrics=metrics_file)
        (variant, seed), result, history = run.identity, run.metrics, run.history
        epochs.append(history.assign(variant=variant, seed=seed))
        metrics[(variant, seed)] = result
        final = history.iloc[-1]
        runs.append(
            {
                "variant": variant,
                "seed": seed,
                "norm": run.settings.variant.norm,
                "params": result["params"],
                "test_acc": result["test_acc"],
                "test_loss": result["test_loss"],
                "best_epoch_test_acc": history["test_acc"].max(),
                "final_train_acc": final["train_acc"],
                "train_test_gap": final["train_acc"] - result["test_acc"],
                "misclassified": result["n_misclassified"],
                "seconds_per_epoch": history["seconds"].mean(),
            }
        )
    order = ["variant", "seed", "epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc", "seconds"]
    return pd.DataFrame(runs), pd.concat(epochs, ignore_index=True)[order], metrics


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per variant: mean, spread and t-interval of test accuracy over seeds, and the rest."""
    rows = []
    for variant, group in runs.groupby("variant", sort=False):
        rows.append(
            {
                "variant": variant,
                "norm": group["norm"].iloc[0],
                "params": int(group["params"].iloc[0]),
                "n_seeds": len(group),
                **over_seeds(group["test_acc"], "test_acc"),
                "best_epoch_test_acc_mean": group["best_epoch_test_acc"].mean(),
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


def main(
    settings_files: list[Path],
    metrics_files: list[Path],
    history_files: list[Path],
    out: dict[str, Path],
) -> pd.DataFrame:
    """Write every table to its path in `out` (keys: the names of OUTPUTS) and return the summary."""
    runs, epochs, metrics = read_runs(settings_files, metrics_files, history_files)
    summary = summarize(runs)
    write_csv(summary, out["summary"])
    write_csv(runs, out["runs"])
    write_csv(epochs, out["epochs"])
    write_csv(compare_variants(runs[["variant", "seed", "test_acc"]]), out["comparisons"])
    write_csv(per_class_table(metrics), out["per_class"])
    write_csv(confusion_table(metrics), out["confusion"])
    # A single seed has no spread: shown as a dash, never as "nan".
    people = shown(summary)
    write_text(out["summary_md"], people.to_markdown(index=False, missingval="–"))
    write_text(out["summary_html"], people.to_html(index=False, na_rep="–", classes="summary", border=0))
    print(people.to_string(index=False, na_rep="–"))
    return summary


OUTPUTS = ("summary", "summary_md", "summary_html", "runs", "epochs", "comparisons", "per_class", "confusion")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--settings", type=Path, nargs="+", required=True, help="every run's settings.json")
    parser.add_argument("--metrics", type=Path, nargs="+", required=True, help="every run's metrics.json, same order")
    parser.add_argument("--histories", type=Path, nargs="+", required=True, help="every run's history.csv, same order")
    for name in OUTPUTS:
        parser.add_argument(f"--{name.replace('_', '-')}", type=Path, required=True, help=f"the {name} table to write")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    run_cli(lambda: main(args.settings, args.metrics, args.histories, {name: getattr(args, name) for name in OUTPUTS}))
