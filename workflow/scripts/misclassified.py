#!/usr/bin/env python3
"""Collect a run's misclassified test images: all of them as CSV, the most confident ones as a grid."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pandas as pd

from normstudy import atomic
from normstudy.cli import positive_int, run_cli
from normstudy.data.datasets import TEST_IMAGES, dataset_spec
from normstudy.data.idx import read_dataset
from normstudy.report.plots import misclassified_grid, save_figures
from normstudy.runs import read_named_json
from normstudy.settings import RunSettings

COLUMNS = ["index", "label", "prediction", "confidence"]


def find_mistakes(predictions: pd.DataFrame) -> pd.DataFrame:
    """Rows whose prediction is wrong, most confident first (ties by test index, for a stable order)."""
    wrong = predictions.loc[predictions["prediction"] != predictions["label"], COLUMNS]
    return wrong.sort_values(["confidence", "index"], ascending=[False, True], kind="stable").reset_index(drop=True)


def main(
    settings_path: Path,
    metrics: Path,
    data_files: list[Path],
    provenance: Path,
    predictions_csv: Path,
    out_csv: Path,
    out_png: Path,
    count: int,
    rows: int,
    cols: int,
    title: str,
) -> int:
    """Write misclassified.csv and the annotated grid of the `count` most confident mistakes; return their number."""
    if rows * cols < count:
        raise ValueError(f"{count} images do not fit a {rows} x {cols} grid")
    settings = RunSettings.read(settings_path)
    # The predictions come from the model metrics.json names: it must be this run's, trained with these settings.
    read_named_json(metrics, (settings.variant.name, settings.seed), settings.digest())
    mistakes = find_mistakes(pd.read_csv(predictions_csv))
    with atomic.atomic_open(out_csv, "w") as handle:
        mistakes.to_csv(handle, index=False, float_format="%.6f", lineterminator="\n")
    arrays, _ = read_dataset(data_files, provenance, settings.data)
    images = arrays[TEST_IMAGES]
    shown = mistakes.head(count)
    heading = f"{title}: {len(shown)} most confident of {len(mistakes)} mistakes"
    classes = dataset_spec(settings.data.dataset).classes
    save_figures(misclassified_grid(images, shown, rows, cols, heading, classes), [out_png])
    print(f"{len(mistakes)} mistakes; grid of {len(shown)} written to {out_png}")
    return len(mistakes)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--settings", type=Path, required=True, help="settings.json of the run (its data identity)")
    parser.add_argument(
        "--metrics", type=Path, required=True, help="metrics.json of the run (the settings its predictions come from)"
    )
    parser.add_argument("--data", type=Path, nargs=4, required=True, help="the four IDX files")
    parser.add_argument("--provenance", type=Path, required=True, help="provenance.json the files are checked against")
    parser.add_argument("--predictions", type=Path, required=True, help="predictions.csv of the run")
    parser.add_argument("--out-csv", type=Path, required=True, help="misclassified.csv to write")
    parser.add_argument("--out-png", type=Path, required=True, help="grid image to write")
    parser.add_argument("--count", type=positive_int, required=True, help="images in the grid")
    parser.add_argument("--rows", type=positive_int, required=True, help="grid rows")
    parser.add_argument("--cols", type=positive_int, required=True, help="grid columns")
    parser.add_argument("--title", required=True, help="figure title")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    run_cli(
        lambda: main(
            args.settings,
            args.metrics,
            args.data,
            args.provenance,
            args.predictions,
            args.out_csv,
            args.out_png,
            args.count,
            args.rows,
            args.cols,
            args.title,
        )
    )
