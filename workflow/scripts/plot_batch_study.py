#!/usr/bin/env python3
"""Test error against batch size per variant (log2 axis, 95 % bands over seeds), beside the GN paper's Figure 1 data."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from matplotlib.ticker import FixedLocator, NullLocator

from normstudy.batches import GN_PAPER_BATCH_SIZES, GN_PAPER_ERROR
from normstudy.cli import run_cli
from normstudy.plots import figure_args, save_figures, use_style


def log2_batch_axis(ax: plt.Axes, sizes: list[int]) -> None:
    """Batch sizes on a log2 axis, largest on the left, as in the GN paper's Figure 1."""
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(sizes))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([str(size) for size in sizes])
    ax.set_xlim(max(sizes) * 1.25, min(sizes) / 1.25)


def error_vs_batch_size(summary: pd.DataFrame, order: list[str]) -> plt.Figure:
    """Left: our mean test error per variant and batch size with its 95 % t-interval; right: the GN paper's."""
    fig, (ours, paper) = plt.subplots(1, 2, figsize=(10.5, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    colours = dict(zip(order, sns.color_palette("deep", len(order)), strict=True))
    sizes = sorted(summary["batch_size"].unique())
    for variant in order:
        rows = summary[summary["variant"] == variant].sort_values("batch_size")
        ours.plot(rows["batch_size"], rows["test_err_mean"], marker="o", color=colours[variant], label=variant)
        # A single seed has no interval: the band is left out, never drawn at zero width from NaN. An error lies
        # in 0-100 %, and so does the drawn band (a t-interval over few seeds can reach past either end).
        banded = rows.dropna(subset=["test_err_ci95_low"])
        ours.fill_between(
            banded["batch_size"],
            banded["test_err_ci95_low"].clip(0, 100),
            banded["test_err_ci95_high"].clip(0, 100),
            color=colours[variant],
            alpha=0.18,
            linewidth=0,
        )
    log2_batch_axis(ours, sizes)
    seeds = int(summary["n_seeds"].max())
    ours.set(
        xlabel="batch size (images per step)",
        ylabel="test error (%)",
        title=f"This study (band: 95 % t-interval over {seeds} seeds)",
    )
    ours.legend(title="variant", fontsize=8)
    for name, errors in GN_PAPER_ERROR.items():
        paper.plot(GN_PAPER_BATCH_SIZES, errors, marker="s", label=name)
    log2_batch_axis(paper, list(GN_PAPER_BATCH_SIZES))
    paper.set(
        xlabel="batch size (images per GPU)",
        ylabel="validation error (%)",
        title="Wu & He 2018, Table 2: ResNet-50, ImageNet",
    )
    paper.legend(fontsize=8)
    for ax in (ours, paper):
        ax.title.set_fontsize(9)
    fig.tight_layout()
    return fig


def main(summary_csv: Path, outputs: list[Path], order: list[str]) -> None:
    """Write the figure to each of `outputs` (format by extension)."""
    use_style()
    save_figures(error_vs_batch_size(pd.read_csv(summary_csv), order), outputs)
    print(f"wrote {', '.join(map(str, outputs))}")


if __name__ == "__main__":
    args = figure_args(__doc__, "results/batch_study/summary.csv", ("error_vs_batch_size",))
    run_cli(lambda: main(args.table, args.error_vs_batch_size, args.variants))
