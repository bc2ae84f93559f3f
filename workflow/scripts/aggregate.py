#!/usr/bin/env python3
"""Aggregate every run into tables: per-variant summary, per-epoch history, comparisons, per-class, confusion."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import pandas as pd

from normstudy import atomic
from normstudy.stats import compare_variants, t_interval

RUN_DIR = re.compile(r"(?P<variant>[^/]+)/seed(?P<seed>\d+)/?$")
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


def read_runs(run_dirs: list[Path]) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Per-run rows, the long per-epoch table, and per-run metrics, from the files each run wrote."""
    runs, epochs, metrics = [], [], {}
    for run_dir in run_dirs:
        match = RUN_DIR.search(run_dir.as_posix())
        if not match:
            raise ValueError(f"{run_dir}: not a results/runs/<variant>/seed<seed> directory")
        variant, seed = match["variant"], int(match["seed"])
        settings = json.loads((run_dir / "settings.json").read_text())
        result = json.loads((run_dir / "metrics.json").read_text())
        history = pd.read_csv(run_dir / "history.csv")
        epochs.append(history.assign(variant=variant, seed=seed))
        metrics[(variant, seed)] = result
        final = history.iloc[-1]
        runs.append(
            {
                "variant": variant,
                "seed": seed,
                "norm": settings["variant"]["norm"],
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
        low, high = t_interval(group["test_acc"].to_numpy())
        rows.append(
            {
                "variant": variant,
                "norm": group["norm"].iloc[0],
                "params": int(group["params"].iloc[0]),
                "n_seeds": len(group),
                "test_acc_mean": group["test_acc"].mean(),
                "test_acc_std": group["test_acc"].std(ddof=1) if len(group) > 1 else np.nan,
                "test_acc_ci95_low": low,
                "test_acc_ci95_high": high,
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


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """CSV with fixed float formatting, so the same numbers give the same bytes."""
    with atomic.atomic_open(path, "w") as handle:
        frame.to_csv(handle, index=False, float_format="%.6g", lineterminator="\n")


def main(run_dirs: list[Path], out_dir: Path) -> pd.DataFrame:
    """Write the tables under `out_dir` and return the summary."""
    runs, epochs, metrics = read_runs(run_dirs)
    summary = summarize(runs)
    comparisons = compare_variants(runs[["variant", "seed", "test_acc"]])
    write_csv(summary, out_dir / "summary.csv")
    write_csv(runs, out_dir / "runs.csv")
    write_csv(epochs, out_dir / "epochs.csv")
    write_csv(comparisons, out_dir / "comparisons.csv")
    write_csv(per_class_table(metrics), out_dir / "per_class.csv")
    write_csv(confusion_table(metrics), out_dir / "confusion.csv")
    shown = summary.round(3)
    with atomic.atomic_open(out_dir / "summary.md", "w") as handle:
        handle.write(shown.to_markdown(index=False) + "\n")
    with atomic.atomic_open(out_dir / "summary.html", "w") as handle:
        handle.write(shown.to_html(index=False, na_rep="–", classes="summary", border=0) + "\n")
    print(shown.to_string(index=False))
    return summary


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=Path, nargs="+", required=True, help="run directories (results/runs/V/seedS)")
    parser.add_argument("--out-dir", type=Path, required=True, help="where the tables go")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    main(args.runs, args.out_dir)
