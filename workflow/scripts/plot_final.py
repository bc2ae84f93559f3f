#!/usr/bin/env python3
"""Final test accuracy of every run, per variant: a box over seeds with each seed as a point."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from normstudy.plots import figure_args, save_figures, use_style


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


def main(runs_csv: Path, out_dir: Path, order: list[str]) -> None:
    """Write final_accuracy as PNG and SVG."""
    use_style()
    save_figures(
        final_accuracy(pd.read_csv(runs_csv), order),
        [out_dir / "final_accuracy.png", out_dir / "final_accuracy.svg"],
    )
    print(f"wrote final_accuracy to {out_dir}")


if __name__ == "__main__":
    args = figure_args(__doc__, "runs", "results/tables/runs.csv")
    main(args.runs, args.out_dir, args.variants)
