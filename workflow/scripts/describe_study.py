#!/usr/bin/env python3
"""Write what the report shows about the study's config: the config itself and what the recipes derive from it
(the tuning search's digest, whether each variant runs its chosen values, the batch study's packing and images),
so the report reads files and never re-derives the config."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pandas as pd

from normstudy import atomic
from normstudy.analysis.tuning import configured_matches_chosen, search_digest
from normstudy.cli import run_cli
from normstudy.config.recipes import (
    batch_study_variants,
    batch_train_images,
    shared_references,
    study_batch_sizes,
    variant_recipe,
)
from normstudy.packing import is_packed


def batch_facts(config: dict[str, Any]) -> dict[str, Any] | None:
    """The batch study's images per run, the recipes' own batch sizes, the batch sizes trained packed, and the
    variants whose reference runs are the main study's."""
    if not config["batch_study"]["enabled"]:
        return None
    variants = batch_study_variants(config)
    return {
        "train_images": batch_train_images(config),
        "recipe_batch_sizes": sorted({variant_recipe(config, name)["batch_size"] for name in variants}),
        "packed_sizes": [size for size in study_batch_sizes(config) if is_packed(config, size)],
        "shared_references": shared_references(config),
    }


def main(config: dict[str, Any], tuning_summary: Path, out: Path) -> dict[str, Any]:
    """Write study.json: the validated config (less how MNIST is fetched) and the facts derived from it."""
    names = [name for name, variant in config["variants"].items() if variant["enabled"]]
    study = {
        "config": config,
        "variants": names,
        "tuning": {
            "search_sha256": search_digest(config, names),
            "uses_choice": configured_matches_chosen(config, pd.read_csv(tuning_summary)),
        },
        "batch": batch_facts(config),
    }
    # Not key-sorted: the variants' and the tuning grid's order are part of what the report shows.
    with atomic.atomic_open(out, "w") as handle:
        handle.write(json.dumps(study, indent=2, allow_nan=False) + "\n")
    print(f"{out}: {len(names)} variants, tuning search {study['tuning']['search_sha256'][:12]}")
    return study


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", type=json.loads, required=True, help="the validated study config as JSON")
    parser.add_argument("--tuning-summary", type=Path, required=True, help="the recorded recipe search's summary.csv")
    parser.add_argument("--out", type=Path, required=True, help="study.json to write")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    run_cli(lambda: main(args.config, args.tuning_summary, args.out))
