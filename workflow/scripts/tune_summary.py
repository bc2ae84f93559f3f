#!/usr/bin/env python3
"""Summarize the recipe search: per tuning run, per variant and grid point, the chosen values and provenance."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pandas as pd
import torch

from normstudy import atomic
from normstudy.analysis.tuning import RUN_COLUMNS, chosen_yaml, grid_edges, search_digest, summarize, untrained
from normstudy.cli import run_cli
from normstudy.config.recipes import tuning_points
from normstudy.config.study import Study
from normstudy.report.provenance import cpu_name, duration, git_state
from normstudy.runs import read_run
from normstudy.tables import shown, write_csv, write_text


def read_tuning_runs(runs: list[dict]) -> tuple[pd.DataFrame, list[dict]]:
    """One row per tuning run (final-epoch validation scores) and each run's job.json, from the manifest."""
    rows, jobs = [], []
    for entry in runs:
        run = read_run(
            entry["settings"], entry["history"], job=entry["job"], expected=(entry["variant"], entry["seed"])
        )
        if not run.settings.data.validation_size:
            raise ValueError(f"{entry['settings']} is not a tuning run (it holds out no validation images)")
        history = run.history
        if "val_acc" not in history:
            raise ValueError(f"{entry['history']}: no val_acc column; not a tuning run's history")
        diverged = "diverged" in run.job
        if not diverged and history.empty:
            raise ValueError(f"{entry['history']}: no epochs, and its job record says no divergence")
        # A diverged run has no final score: its cell is not a candidate (tuning.summarize), and says so.
        final = history.iloc[-1] if not diverged else {"val_acc": math.nan, "val_loss": math.nan}
        rows.append(
            {
                "variant": entry["variant"],
                "point": entry["point"],
                "seed": entry["seed"],
                "val_acc": final["val_acc"],
                "val_loss": final["val_loss"],
                "best_epoch_val_acc": history["val_acc"].max() if len(history) else math.nan,
                "seconds_per_epoch": history["seconds"].mean() if len(history) else math.nan,
                "diverged": diverged,
            }
        )
        jobs.append(run.job)
    return pd.DataFrame(rows, columns=list(RUN_COLUMNS)), jobs


def search_record(study: Study, variants: list[str], jobs: list[dict]) -> dict:
    """What identifies the search and where it ran: the digest of its runs' settings, machine, time."""
    started = min(dt.datetime.fromisoformat(job["started_utc"]) for job in jobs)
    finished = max(dt.datetime.fromisoformat(job["finished_utc"]) for job in jobs)
    git = git_state(Path.cwd())
    return {
        "search_sha256": search_digest(study, variants),
        "commit": git.commit + (" (with uncommitted changes)" if git.dirty else ""),
        "variants": variants,
        "grid": {key: list(values) for key, values in study.tune.grid.items()},
        "bracket": study.tune.bracket,
        "seeds": list(study.tune.seeds),
        "validation_images": study.data.validation,
        "runs": len(jobs),
        "machine": cpu_name(),
        "cores": os.cpu_count(),
        "devices": sorted({job["device"] for job in jobs}),
        "torch": torch.__version__,
        "first_run_started_utc": started.isoformat(timespec="seconds"),
        "last_run_finished_utc": finished.isoformat(timespec="seconds"),
        "wall_time": duration((finished - started).total_seconds()),
    }


def main(study: Study, runs: list[dict], out: dict[str, Path]) -> pd.DataFrame:
    """Write the run table, the summary (CSV and Markdown), chosen.yaml and search.json; return the summary."""
    table, jobs = read_tuning_runs(runs)
    summary = summarize(table, list(tuning_points(study)))
    print(shown(summary).to_string(index=False, na_rep="–"))
    edges = grid_edges(study, summary)
    if edges and not study.tune.bracket:
        print(f"warning: the search does not bracket its choice: {'; '.join(edges)}")
    elif edges:
        # Failed, not written: a chosen edge would be copied into config.yaml as if it were the optimum. The runs stay,
        # so a search over an extended grid trains only its new points.
        raise ValueError(
            "the search does not bracket its choice: " + "; ".join(edges) + " (tune.grid, in a --configfile)"
        )
    for variant in untrained(summary):
        print(f"{variant}: no point of the grid trains it (every point diverged for a seed): nothing chosen")
    write_csv(table, out["runs_table"])
    write_csv(summary, out["summary"])
    write_text(out["summary_md"], shown(summary).to_markdown(index=False, missingval="–"))
    write_text(out["chosen"], chosen_yaml(study, summary, str(out["summary"])))
    variants = list(dict.fromkeys(entry["variant"] for entry in runs))
    atomic.write_json(out["search"], search_record(study, variants, jobs))
    return summary


OUTPUTS = ("runs_table", "summary", "summary_md", "chosen", "search")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", type=json.loads, required=True, help="the validated study config as JSON")
    parser.add_argument(
        "--runs",
        type=json.loads,
        required=True,
        help='JSON: [{"variant", "point", "seed", "settings", "history", "job"}], one per tuning run',
    )
    for name in OUTPUTS:
        parser.add_argument(f"--{name.replace('_', '-')}", type=Path, required=True, help=f"the {name} file to write")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    run_cli(lambda: main(Study.from_config(args.config), args.runs, {name: getattr(args, name) for name in OUTPUTS}))
