"""Figures shared by the workflow's plotting steps (matplotlib, headless)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: the workflow runs without a display

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from normstudy import atomic

# No creation date in the files, so that the same figure is the same bytes.
PNG_METADATA = {"Software": None}
SVG_METADATA = {"Date": None, "Creator": None}


def figure_args(
    description: str,
    table_help: str,
    figures: tuple[str, ...],
    argv: list[str] | None = None,
    dataset: bool = False,
) -> argparse.Namespace:
    """The command line every figure script shares: one input table, the files of each figure, the variant order (and
    with `dataset`, the registry's dataset whose class names label it)."""
    parser = argparse.ArgumentParser(description=description)
    if dataset:
        parser.add_argument("--dataset", required=True, help="the registry's dataset, whose class names label it")
    parser.add_argument("--table", type=Path, required=True, help=table_help)
    for name in figures:
        flag = "--" + name.replace("_", "-")
        parser.add_argument(flag, type=Path, nargs="+", required=True, help=f"{name} files to write (.png, .svg)")
    parser.add_argument("--variants", nargs="+", required=True, help="variants in the order to show them")
    return parser.parse_args(argv)


def use_style() -> None:
    """One look for every figure of the study."""
    import seaborn as sns  # here: the mistakes grid, drawn in ten jobs, needs no seaborn (1.2 s to import)

    sns.set_theme(style="whitegrid", context="notebook", font_scale=0.9)
    # seaborn's stripplot jitters its points with numpy's global generator: seeded, the same runs draw the same figure,
    # byte for byte (unseeded, two identical runs of the smoke study gave two different final-accuracy PNGs).
    np.random.seed(0)


def save_figures(fig: plt.Figure, paths: list[str | Path], dpi: int = 120) -> None:
    """Save one figure atomically under each name (PNG or SVG by extension), then close it."""
    # An SVG's clip-path ids are hashes salted at random unless a salt is given: fixed, equal figures are equal files.
    plt.rcParams["svg.hashsalt"] = "normstudy"
    for path in map(Path, paths):
        metadata = SVG_METADATA if path.suffix == ".svg" else PNG_METADATA
        with atomic.atomic_path(path) as tmp:
            fig.savefig(tmp, format=path.suffix.lstrip("."), dpi=dpi, bbox_inches="tight", metadata=metadata)
    plt.close(fig)


# The characters of a title line that fit over one panel of the grid (1.9 inches at 8.5 pt).
TITLE_WIDTH = 26


def mistake_title(true: str, predicted: str, row: pd.Series) -> str:
    """A mistake's panel title: true class and prediction on one line where they fit (digits), else on two (long
    class names, Fashion-MNIST's or CIFAR-10's), then confidence and test index."""
    classes = f"true {true} → pred {predicted}"
    if len(classes) > TITLE_WIDTH:
        classes = f"true {true}\n→ pred {predicted}"
    return f"{classes}\nconf {row['confidence']:.2f} · #{int(row['index'])}"


def misclassified_grid(
    images: np.ndarray, mistakes: pd.DataFrame, rows: int, cols: int, title: str, classes: Sequence[str]
) -> plt.Figure:
    """A rows x cols grid of mistaken test images, each annotated with true class, prediction (by their names in
    `classes`) and confidence."""
    fig, axes = plt.subplots(rows, cols, figsize=(1.9 * cols, 2.05 * rows + 0.5), squeeze=False)
    for ax, (_, row) in zip(axes.flat, mistakes.iloc[: rows * cols].iterrows(), strict=False):
        image = images[int(row["index"])]  # [H, W], or [C, H, W] for a colour dataset
        if image.ndim == 3:
            ax.imshow(image.transpose(1, 2, 0))
        else:
            ax.imshow(image, cmap="gray_r", vmin=0, vmax=255)
        ax.set_title(mistake_title(classes[int(row["label"])], classes[int(row["prediction"])], row), fontsize=8.5)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes.flat[len(mistakes) :]:
        ax.set_axis_off()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
