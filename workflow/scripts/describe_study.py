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
    is_packed,
    shared_references,
    study_batch_sizes,
    variant_recipe,
)
from normstudy.config.study import Study


def batch_facts(study: Study) -> dict[str, Any] | None:
    """The batch study's images per run, the recipes' own batch sizes, the batch sizes trained packed, and the
    variants whose reference runs are the main study's."""
    if not study.batch_study.enabled:
        return None
    variants = batch_study_variants(study)
    return {
        "train_images": batch_train_images(study),
        "recipe_batch_sizes": sorted({variant_recipe(study, name)["batch_size"] for name in variants}),
        "packed_sizes": [size for size in study_batch_sizes(study) if is_packed(study, size)],
        "shared_references": shared_references(study),
    }


def main(study: Study, tuning_summary: Path, out: Path) -> dict[str, Any]:
    """Write study.json: the validated config (less how MNIST is fetched) and the facts derived from it."""
    names = study.enabled_variants()
    facts = {
        "config": study.values,
        "variants": names,
        "tuning": {
            "search_sha256": search_digest(study, names),
            "uses_choice": configured_matches_chosen(study, pd.read_csv(tuning_summary)),
        },
        "batch": batch_facts(study),
    }
    # Not key-sorted: the variants' and the tuning grid's order are part of what the report shows.
    with atomic.atomic_open(out, "w") as handle:
        handle.write(json.dumps(facts, indent=2, allow_nan=False) + "\n")
    print(f"{out}: {len(names)} variants, tuning search {facts['tuning']['search_sha256'][:12]}")
    return facts


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", type=json.loads, required=True, help="the validated study config as JSON")
    parser.add_argument("--tuning-summary", type=Path, required=True, help="the recorded recipe search's summary.csv")
    parser.add_argument("--out", type=Path, required=True, help="study.json to write")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    run_cli(lambda: main(Study.from_config(args.config), args.tuning_summary, args.out))
