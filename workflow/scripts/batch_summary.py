#!/usr/bin/env python3
"""Tables of the batch-size study: one row per run, test error per variant and size in both evaluation modes, batch
norm's changes and its comparisons with the batch-free norms, and the convergence gate."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pandas as pd

from normstudy.analysis.batches import (
    RUN_COLUMNS,
    batch_norm_versus_free,
    changes_from_reference,
    convergence_gate,
    gated,
    ordering,
    read_from_family,
    summarize,
)
from normstudy.cli import run_cli
from normstudy.config.study import Plan
from normstudy.runs import read_run
from normstudy.settings import steps_per_epoch, training_images
from normstudy.tables import shown, write_csv, write_text


def read_runs(files: dict[str, list[Path]]) -> pd.DataFrame:
    """One row per run: its variant, statistics batch size and seed, the recipe it ran, its final test scores."""
    rows = []
    kinds = ("settings", "histories", "jobs", "metrics")
    for settings_file, history_file, job_file, metrics_file in zip(*(files[k] for k in kinds), strict=True):
        run = read_run(settings_file, history_file, job=job_file, metrics=metrics_file)
        settings, history, metrics = run.settings, run.history, run.metrics
        train, images, final = settings.train, training_images(settings.data), history.iloc[-1]
        error = 100.0 - metrics["test_acc"]
        precise = metrics.get("precise_bn")
        rows.append(
            {
                "variant": settings.variant.name,
                "norm": settings.variant.norm,
                # The batch its norm's training statistics were taken over: the ghost groups, or the SGD batch.
                "batch_size": settings.variant.ghost or train.batch_size,
                "sgd_batch": train.batch_size,
                "ghost": settings.variant.ghost,
                "seed": settings.seed,
                "max_lr": train.schedule.max_lr,
                "epochs": train.epochs,
                "train_images": images,
                "steps": train.epochs * steps_per_epoch(images, train.batch_size),
                "pack_seeds": len(run.job["pack_seeds"]),
                "test_acc": metrics["test_acc"],
                "test_err": error,
                # A norm without batch statistics has nothing to recompute: its PreciseBN error is its error.
                "precise_err": 100.0 - precise["test_acc"] if precise else error,
                "test_loss": metrics["test_loss"],
                "train_acc": final["train_acc"],
                "train_loss": final["train_loss"],
                "seconds_per_epoch": history["seconds"].mean(),
            }
        )
    return pd.DataFrame(rows, columns=list(RUN_COLUMNS))


def main_cells(runs: pd.DataFrame, shared: list[list]) -> set[tuple[str, int]]:
    """(variant, size) of the cells whose every run is a main-study run (`shared`: [variant, size, seed] each)."""
    listed = {(variant, int(size), int(seed)) for variant, size, seed in shared}
    cells = runs.groupby(["variant", "batch_size"])["seed"].apply(list)
    return {cell for cell, seeds in cells.items() if all((*cell, seed) in listed for seed in seeds)}


def main(
    files: dict[str, list[Path]], main_summary: Path, family: Path, shared: list[list], design: str,
    gate_margin: float, plan: Plan, out: dict[str, Path],
) -> pd.DataFrame:  # fmt: skip
    """Write every table to its path in `out` (keys: OUTPUTS) and return the summary."""
    runs = read_runs(files)
    summary = summarize(runs)
    gate = convergence_gate(summary, pd.read_csv(main_summary), gate_margin)
    changes = gated(changes_from_reference(runs, plan), gate, ("variant",))
    versus = read_from_family(batch_norm_versus_free(runs, plan), pd.read_csv(family), main_cells(runs, shared))
    versus = gated(versus, gate, ("variant_a", "variant_b"))
    for name, table in (("runs", runs), ("summary", summary), ("comparisons", versus), ("changes", changes)):
        write_csv(table, out[name])
    write_csv(gate, out["gate_table"])
    people = shown(summary)
    write_text(out["summary_md"], people.to_markdown(index=False, missingval="–"))
    print(people.to_string(index=False, na_rep="–"))
    print(ordering(summary, changes, versus, gate, design == "ghost").text)
    return summary


OUTPUTS = ("runs", "summary", "summary_md", "comparisons", "changes", "gate_table")
INPUTS = ("settings", "histories", "jobs", "metrics")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    for name in INPUTS:
        parser.add_argument(f"--{name}", type=Path, nargs="+", required=True, help=f"every run's {name}, same order")
    parser.add_argument("--main-summary", type=Path, required=True, help="the main study's summary.csv (the gate)")
    parser.add_argument(
        "--family", type=Path, required=True, help="the main study's family.csv (its declared readings)"
    )
    parser.add_argument(
        "--shared", type=json.loads, default=[], help="JSON [[variant, size, seed], ...]: the runs that are main runs"
    )
    parser.add_argument(
        "--design", choices=("ghost", "paper", "sgd_batch"), required=True, help="the batch study's design"
    )
    parser.add_argument(
        "--gate-margin", type=float, required=True, help="convergence gate: how far below the main study, in points"
    )
    parser.add_argument("--analysis-plan", type=json.loads, required=True, help="the config's analysis section (JSON)")
    for name in OUTPUTS:
        parser.add_argument(f"--{name.replace('_', '-')}", type=Path, required=True, help=f"the {name} table to write")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    run_cli(
        lambda: main(
            {name: getattr(args, name) for name in INPUTS},
            args.main_summary,
            args.family,
            args.shared,
            args.design,
            args.gate_margin,
            Plan.from_config(args.analysis_plan),
            {name: getattr(args, name) for name in OUTPUTS},
        )
    )
