#!/usr/bin/env python3
"""The recipe search: validation accuracy of every tuning run per grid point, one panel per variant."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from normstudy.cli import run_cli
from normstudy.report.plots import figure_args, save_figures, use_style


def validation_accuracy(runs: pd.DataFrame, order: list[str]) -> plt.Figure:
    """Each seed as a point and the mean over seeds as a line, grid points in config order."""
    points = list(dict.fromkeys(runs["point"]))
    variants = [name for name in order if name in set(runs["variant"])]
    fig, axes = plt.subplots(1, len(variants), figsize=(2.6 * len(variants) + 1, 3.6), sharey=True, squeeze=False)
    for ax, variant in zip(axes[0], variants, strict=True):
        mine = runs[runs["variant"] == variant]
        means = mine.groupby("point", sort=False)["val_acc"].mean().reindex(points)
        ax.plot(range(len(points)), means.to_numpy(), color="0.3", marker="_", markersize=14, zorder=1)
        sns.stripplot(data=mine, x="point", y="val_acc", order=points, hue="seed", palette="deep", size=6, ax=ax)
        ax.set(title=variant, xlabel="", ylabel="validation accuracy (%)")
        ax.tick_params(axis="x", labelrotation=30)
        legend = ax.get_legend()
        if legend is not None and ax is not axes[0][-1]:
            legend.remove()
    fig.suptitle("Recipe search: final validation accuracy per grid point (line: mean over tuning seeds)")
    fig.tight_layout()
    return fig


def main(runs_csv: Path, outputs: list[Path], order: list[str]) -> None:
    """Write the tuning figure to each of `outputs` (format by extension)."""
    use_style()
    save_figures(validation_accuracy(pd.read_csv(runs_csv), order), outputs)
    print(f"wrote {', '.join(map(str, outputs))}")


if __name__ == "__main__":
    args = figure_args(__doc__, "results/default/tuning/runs.csv", ("validation_accuracy",))
    run_cli(lambda: main(args.table, args.validation_accuracy, args.variants))
