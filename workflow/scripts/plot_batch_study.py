#!/usr/bin/env python3
"""Test error against the statistics batch size per variant (log2 axis, 95 % bands over seeds), batch norms with their
running averages and with PreciseBN, a norm run at one size as a level line; beside the GN paper's Figure 1 data."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from matplotlib.ticker import FixedLocator, NullLocator

from normstudy.analysis.batches import GN_PAPER_BATCH_SIZES, GN_PAPER_ERROR
from normstudy.cli import run_cli
from normstudy.model.norm_specs import takes_batch_statistics
from normstudy.report.plots import figure_args, save_figures, use_style


def log2_batch_axis(ax: plt.Axes, sizes: list[int]) -> None:
    """Batch sizes on a log2 axis, largest on the left, as in the GN paper's Figure 1."""
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(sizes))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([str(size) for size in sizes])
    ax.set_xlim(max(sizes) * 1.25, min(sizes) / 1.25)


def band(ax: plt.Axes, sizes: pd.Series, low: pd.Series, high: pd.Series, colour) -> None:
    """A 95 % band; none for a single seed (no interval), and an error's band kept within 0-100 %."""
    keep = low.notna()
    ax.fill_between(sizes[keep], low[keep].clip(0, 100), high[keep].clip(0, 100), color=colour, alpha=0.18, linewidth=0)


def draw_variant(ax: plt.Axes, rows: pd.DataFrame, colour, name: str) -> None:
    """One variant's errors: a line per scoring mode, or a level line across the axis when it ran at one size only
    (a batch-free norm in the ghost design: the statistics batch cannot change it)."""
    if len(rows) == 1:
        row = rows.iloc[0]
        ax.axhline(row["test_err_mean"], color=colour, linestyle=":", label=f"{name} (no batch statistics)")
        if pd.notna(row["test_err_ci95_low"]):
            ax.axhspan(max(row["test_err_ci95_low"], 0), min(row["test_err_ci95_high"], 100), color=colour, alpha=0.12)
        return
    ax.plot(rows["batch_size"], rows["test_err_mean"], marker="o", color=colour, label=f"{name}, running averages")
    band(ax, rows["batch_size"], rows["test_err_ci95_low"], rows["test_err_ci95_high"], colour)
    if rows["norm"].map(takes_batch_statistics).all():
        ax.plot(rows["batch_size"], rows["precise_err_mean"], marker="o", linestyle="--", color=colour,
                alpha=0.8, label=f"{name}, PreciseBN")  # fmt: skip


def error_vs_batch_size(summary: pd.DataFrame, order: list[str]) -> plt.Figure:
    """Left: our mean test error per variant and statistics batch size with its 95 % t-interval; right: the paper's."""
    fig, (ours, paper) = plt.subplots(1, 2, figsize=(10.5, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    colours = dict(zip(order, sns.color_palette("deep", len(order)), strict=True))
    sizes = sorted(summary["batch_size"].unique())
    for variant in order:
        rows = summary[summary["variant"] == variant].sort_values("batch_size")
        draw_variant(ours, rows, colours[variant], variant)
    log2_batch_axis(ours, sizes)
    seeds = int(summary["n_seeds"].max())
    ours.set(
        xlabel="statistics batch size (images)",
        ylabel="test error (%)",
        title=f"This study (band: 95 % t-interval over {seeds} seeds)",
    )
    ours.legend(fontsize=7)
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
    args = figure_args(__doc__, "results/default/batch_study/summary.csv", ("error_vs_batch_size",))
    run_cli(lambda: main(args.table, args.error_vs_batch_size, args.variants))
