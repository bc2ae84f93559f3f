#!/usr/bin/env python3
"""Per-variant model summaries (layer, output shape, parameters) and the receptive-field table."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pandas as pd

from normstudy import atomic
from normstudy.cli import run_cli
from normstudy.model.architecture import NetworkSpec, network_names, network_spec
from normstudy.model.network import build_model, model_summary
from normstudy.settings import VariantSettings


def main(variants: list[VariantSettings], network: NetworkSpec, out_summary: Path, out_receptive_field: Path) -> None:
    """Build each variant's model of `network`, trace its layers, and write both tables as CSV."""
    rows = [
        {"variant": variant.name, **row, "output_shape": str(row["output_shape"])}
        for variant in variants
        for row in model_summary(build_model(variant, network=network), network.input_shape)
    ]
    with atomic.atomic_open(out_summary, "w") as handle:
        pd.DataFrame(rows).to_csv(handle, index=False, lineterminator="\n")
    with atomic.atomic_open(out_receptive_field, "w") as handle:
        pd.DataFrame(network.receptive_field_rows()).to_csv(handle, index=False, lineterminator="\n")
    totals = pd.DataFrame(rows).groupby("variant", sort=False)["params"].sum()
    print("parameters per variant: " + ", ".join(f"{k} {v}" for k, v in totals.items()))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--variants", type=json.loads, required=True, help='JSON: [{"name": "bn", "norm": "batch", ...}, ...]'
    )
    parser.add_argument("--network", choices=network_names(), required=True, help="the registry's network")
    parser.add_argument("--out-summary", type=Path, required=True, help="model_summary.csv to write")
    parser.add_argument("--out-receptive-field", type=Path, required=True, help="receptive_field.csv to write")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    run_cli(
        lambda: main(
            [VariantSettings(**variant) for variant in args.variants],
            network_spec(args.network),
            args.out_summary,
            args.out_receptive_field,
        )
    )
