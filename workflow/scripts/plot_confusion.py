#!/usr/bin/env python3
"""Confusion-matrix heat maps, one panel per variant, counts averaged over seeds."""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from normstudy.cli import run_cli
from normstudy.data.datasets import DatasetSpec, dataset_spec
from normstudy.report.plots import figure_args, save_figures, use_style


def confusion_heatmaps(confusion: pd.DataFrame, order: list[str], classes: Sequence[str]) -> plt.Figure:
    """Off-diagonal counts coloured (the diagonal would swamp the scale), every cell annotated, rows and columns named
    by `classes`."""
    cols = min(len(order), 3)
    rows = math.ceil(len(order) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 4.2 * rows), squeeze=False)
    for ax, variant in zip(axes.flat, order, strict=False):
        matrix = (
            confusion[confusion["variant"] == variant]
            .pivot(index="true", columns="predicted", values="count_mean")
            .rename(index=dict(enumerate(classes)), columns=dict(enumerate(classes)))
        )
        errors = matrix.where(~np.eye(len(matrix), dtype=bool))
        sns.heatmap(
            errors,
            annot=matrix.round(1),
            fmt="g",
            cmap="Reds",
            cbar=False,
            ax=ax,
            annot_kws={"size": 6.5},
            linewidths=0.3,
            linecolor="0.85",
        )
        ax.set(title=variant, xlabel="predicted", ylabel="true")
    for ax in axes.flat[len(order) :]:
        ax.set_axis_off()
    fig.suptitle("Confusion matrices (mean count over seeds; mistakes coloured)")
    fig.tight_layout()
    return fig


def main(confusion_csv: Path, outputs: list[Path], order: list[str], dataset: DatasetSpec) -> None:
    """Write the confusion heat maps to each of `outputs` (format by extension), its classes named as `dataset`'s."""
    use_style()
    save_figures(confusion_heatmaps(pd.read_csv(confusion_csv), order, dataset.classes), outputs)
    print(f"wrote {', '.join(map(str, outputs))}")


if __name__ == "__main__":
    args = figure_args(__doc__, "results/default/tables/confusion.csv", ("confusion",), dataset=True)
    run_cli(lambda: main(args.table, args.confusion, args.variants, dataset_spec(args.dataset)))
