#!/usr/bin/env python3
"""Final test accuracy of every run, per variant: a box over seeds with each seed as a point."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from normstudy.cli import run_cli
from normstudy.report.plots import figure_args, save_figures, use_style


def final_accuracy(runs: pd.DataFrame, order: list[str]) -> plt.Figure:
    """Box plot over seeds with every seed drawn, so the spread is visible."""
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    sns.boxplot(data=runs, x="variant", y="test_acc", order=order, color="0.9", width=0.5, showfliers=False, ax=ax)
    sns.stripplot(
        data=runs,
        x="variant",
        y="test_acc",
        order=order,
        hue="seed",
        palette="deep",
        size=7,
        jitter=0.12,
        ax=ax,
    )
    ax.set(xlabel="variant", ylabel="final test accuracy (%)", title="Final test accuracy per seed")
    ax.legend(title="seed", fontsize=8, loc="best")
    return fig


def main(runs_csv: Path, outputs: list[Path], order: list[str]) -> None:
    """Write the final-accuracy figure to each of `outputs` (format by extension)."""
    use_style()
    save_figures(final_accuracy(pd.read_csv(runs_csv), order), outputs)
    print(f"wrote {', '.join(map(str, outputs))}")


if __name__ == "__main__":
    args = figure_args(__doc__, "results/default/tables/runs.csv", ("final_accuracy",))
    run_cli(lambda: main(args.table, args.final_accuracy, args.variants))
