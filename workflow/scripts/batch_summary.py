#!/usr/bin/env python3
"""Tables of the batch-size study: one row per run, test error per variant and batch size, and the comparisons."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pandas as pd

from normstudy.batches import RUN_COLUMNS, changes_from_base, compare_at_each_batch_size, ordering, summarize
from normstudy.cli import run_cli
from normstudy.runs import read_run
from normstudy.settings import steps_per_epoch, training_images
from normstudy.tables import shown, write_csv, write_text


def read_runs(settings_files: list[Path], history_files: list[Path], job_files: list[Path]) -> pd.DataFrame:
    """One row per run: its variant, batch size and seed, the recipe it ran and its final test scores."""
    rows = []
    for settings_file, history_file, job_file in zip(settings_files, history_files, job_files, strict=True):
        run = read_run(settings_file, history_file, job=job_file)
        settings, job, history = run.settings, run.job, run.history
        final = history.iloc[-1]
        train, images = settings.train, training_images(settings.data)
        rows.append(
            {
                "variant": settings.variant.name,
                "norm": settings.variant.norm,
                "batch_size": train.batch_size,
                "seed": settings.seed,
                "max_lr": train.schedule.max_lr,
                "epochs": train.epochs,
                "train_images": images,
                "steps": train.epochs * steps_per_epoch(images, train.batch_size),
                "pack_seeds": len(job["pack_seeds"]),
                "test_acc": final["test_acc"],
                "test_err": 100.0 - final["test_acc"],
                "test_loss": final["test_loss"],
                "train_acc": final["train_acc"],
                "train_loss": final["train_loss"],
                "seconds_per_epoch": history["seconds"].mean(),
            }
        )
    return pd.DataFrame(rows, columns=list(RUN_COLUMNS))


def main(
    settings_files: list[Path], history_files: list[Path], job_files: list[Path], out: dict[str, Path]
) -> pd.DataFrame:
    """Write every table to its path in `out` (keys: OUTPUTS) and return the summary."""
    runs = read_runs(settings_files, history_files, job_files)
    summary = summarize(runs)
    comparisons = compare_at_each_batch_size(runs)
    changes = changes_from_base(runs)
    write_csv(runs, out["runs"])
    write_csv(summary, out["summary"])
    write_csv(comparisons, out["comparisons"])
    write_csv(changes, out["changes"])
    people = shown(summary)
    write_text(out["summary_md"], people.to_markdown(index=False, missingval="–"))
    print(people.to_string(index=False, na_rep="–"))
    print(ordering(summary, comparisons, changes).text)
    return summary


OUTPUTS = ("runs", "summary", "summary_md", "comparisons", "changes")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--settings", type=Path, nargs="+", required=True, help="every run's settings.json")
    parser.add_argument("--histories", type=Path, nargs="+", required=True, help="every run's history.csv, same order")
    parser.add_argument("--jobs", type=Path, nargs="+", required=True, help="every run's job.json, same order")
    for name in OUTPUTS:
        parser.add_argument(f"--{name.replace('_', '-')}", type=Path, required=True, help=f"the {name} table to write")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    run_cli(lambda: main(args.settings, args.histories, args.jobs, {name: getattr(args, name) for name in OUTPUTS}))
