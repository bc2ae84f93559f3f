#!/usr/bin/env python3
"""Print the name of the study that Snakemake's arguments run in this checkout: config.yaml, then each --configfile,
then --config, merged as the workflow merges them (the one resolver the workflow, make compare and the Makefile use)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from normstudy.cli import run_cli, snakemake_arguments
from normstudy.config.sources import study_name


def main(snakemake_args: list[str]) -> str:
    """Print and return the study's name (its folders: results/<name>/, report/<name>/)."""
    name = study_name(Path.cwd(), snakemake_args)
    print(name)
    return name


if __name__ == "__main__":
    arguments = snakemake_arguments(__doc__, "--configfile my.yaml --config study=mine")
    run_cli(lambda: main(arguments))
