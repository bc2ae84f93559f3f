#!/usr/bin/env python3
"""Per-epoch curves of every variant: test loss, test accuracy (bands over seeds), train vs test per variant."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from matplotlib.ticker import MaxNLocator

from normstudy.cli import run_cli
from normstudy.report.plots import figure_args, save_figures, use_style


def curve(epochs: pd.DataFrame, column: str, label: str, title: str, order: list[str]) -> plt.Figure:
    """All variants on one plot: mean over seeds per epoch, with a band of one standard deviation."""
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    sns.lineplot(
        data=epochs,
        x="epoch",
        y=column,
        hue="variant",
        hue_order=order,
        errorbar="sd",
        marker="o",
        markersize=4,
        ax=ax,
    )
    ax.set(xlabel="epoch", ylabel=label, title=title)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if column == "test_loss":
        ax.set_yscale("log")  # the first epochs' losses would flatten the rest to a line
    if column == "test_acc":
        late = epochs[epochs["epoch"] > epochs["epoch"].max() / 3][column]
        ax.set_ylim(max(late.min() - 0.2, 0), min(late.max() + 0.1, 100))
    ax.legend(title="variant", ncols=min(len(order), 5), fontsize=8)
    return fig


def train_vs_test(epochs: pd.DataFrame, order: list[str]) -> plt.Figure:
    """One panel per variant: train and test accuracy per epoch, bands over seeds."""
    long = epochs.melt(
        id_vars=["variant", "seed", "epoch"],
        value_vars=["train_acc", "test_acc"],
        var_name="split",
        value_name="accuracy",
    )
    long["split"] = long["split"].map({"train_acc": "train", "test_acc": "test"})
    grid = sns.relplot(
        data=long,
        x="epoch",
        y="accuracy",
        hue="split",
        col="variant",
        col_order=order,
        kind="line",
        errorbar="sd",
        col_wrap=min(len(order), 3),
        height=2.8,
        aspect=1.2,
    )
    late = long[long["epoch"] > long["epoch"].max() / 3]["accuracy"]
    grid.set(ylim=(max(late.min() - 0.3, 0), min(late.max() + 0.1, 100)))
    grid.set_axis_labels("epoch", "accuracy (%)")
    for ax in grid.axes.flat:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    grid.figure.suptitle("Train vs test accuracy per variant (band: ±1 sd over seeds)", y=1.02)
    return grid.figure


FIGURES = ("test_loss", "test_accuracy", "train_vs_test")


def main(epochs_csv: Path, outputs: dict[str, list[Path]], order: list[str]) -> None:
    """Write each of FIGURES to its files in `outputs` (format by extension)."""
    use_style()
    epochs = pd.read_csv(epochs_csv)
    seeds = epochs["seed"].nunique()
    band = f"band: ±1 sd over {seeds} seeds"
    figures = {
        "test_loss": curve(epochs, "test_loss", "test loss (NLL)", f"Test loss per epoch ({band})", order),
        "test_accuracy": curve(epochs, "test_acc", "test accuracy (%)", f"Test accuracy per epoch ({band})", order),
        "train_vs_test": train_vs_test(epochs, order),
    }
    for name, fig in figures.items():
        save_figures(fig, outputs[name])
    print(f"wrote {', '.join(str(path) for paths in outputs.values() for path in paths)}")


if __name__ == "__main__":
    args = figure_args(__doc__, "results/default/tables/epochs.csv", FIGURES)
    run_cli(lambda: main(args.table, {name: getattr(args, name) for name in FIGURES}, args.variants))
