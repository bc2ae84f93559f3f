#!/usr/bin/env python3
"""The landing-page metadata of `snakemake --report` (its --report-metadata file): the commit the study ran from,
the digest of its config and the report's Key results, as a flat YAML mapping."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pandas as pd
import yaml

from normstudy import atomic
from normstudy.analysis.declared import read_facts
from normstudy.analysis.findings import key_results
from normstudy.cli import run_cli
from normstudy.config.study import Study
from normstudy.report import provenance
from normstudy.values import config_digest


def main(
    study: Path, summary: Path, family: Path, control: Path, analysis: Path, runs: Path, environment: Path, out: Path
) -> dict:
    """Write `out` and return its mapping."""
    typed = Study.from_config(atomic.read_json(study)["config"])
    git = provenance.git_state(Path.cwd())
    found = key_results(
        pd.read_csv(summary),
        pd.read_csv(family, keep_default_na=True).fillna({"held_equal": ""}),
        read_facts(analysis),
        pd.read_csv(runs),
        typed.data.spec,
        atomic.read_json(environment),
        pd.read_csv(control),
    )
    metadata = {
        "Study": typed.report_title,
        "Commit": git.commit + (" (with uncommitted changes)" if git.dirty else ""),
        "Config SHA-256": config_digest(typed.values),
        "Key results": found,
    }
    with atomic.atomic_open(out, "w") as handle:
        yaml.safe_dump(metadata, handle, sort_keys=False, allow_unicode=True, width=1000)
    print(yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True, width=1000))
    return metadata


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--study", type=Path, required=True, help="study.json: the config the report shows")
    for name in ("summary", "family", "control", "analysis", "runs"):
        parser.add_argument(f"--{name}", type=Path, required=True, help=f"the main study's {name} table")
    parser.add_argument("--environment", type=Path, required=True, help="environment.json: machine and jobs")
    parser.add_argument("--out", type=Path, required=True, help="the metadata (YAML) to write")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    run_cli(
        lambda: main(
            args.study, args.summary, args.family, args.control, args.analysis, args.runs, args.environment, args.out
        )
    )
