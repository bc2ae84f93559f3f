"""The report's robustness section: its tables, findings and figures, read from robustness_summary.py's files."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from normstudy import atomic

# What the section's tables are read from, by role (robustness_summary.py's outputs).
TABLES = ("cells", "errors", "family", "adaptation", "contrast")
MODE_NAMES = {"running": "running statistics", "precise": "PreciseBN", "adapted": "adapted to the set"}


@dataclass(frozen=True)
class RobustnessInputs:
    """The robustness study's tables, findings and figures (robustness.smk)."""

    tables: dict[str, Path]  # by role: TABLES
    findings: Path
    heatmap: Path
    gallery: Path


def accuracy_rows(cells: pd.DataFrame, modes: tuple[str, ...], title: str) -> dict[str, Any]:
    """An accuracy table of `modes`: one row per set (clean first), one column per variant and mode, each cell the
    mean over seeds with its 95 % interval including the test images' sampling."""
    chosen = cells[cells["mode"].isin(modes)]
    names = chosen["variant"] + ("" if modes == ("running",) else " · " + chosen["mode"].map(MODE_NAMES))
    keyed = chosen.assign(column=names)
    columns = list(dict.fromkeys(keyed["column"]))
    rows = []
    for (corruption, severity), group in keyed.groupby(["corruption", "severity"], sort=False):
        by_column = group.set_index("column")
        rows.append(
            {
                # Spaces, not underscores: a long name wraps instead of widening the table.
                "set": "clean" if corruption == "clean" else f"{corruption.replace('_', ' ')} {severity}",
                "cells": [by_column.loc[c].to_dict() if c in by_column.index else None for c in columns],
            }
        )
    return {"title": title, "columns": columns, "rows": rows}


def robustness_context(inputs: RobustnessInputs, image: Callable[[Path, str], str]) -> dict[str, Any]:
    """Everything the section shows."""
    tables = {name: pd.read_csv(path) for name, path in inputs.tables.items()}
    facts = atomic.read_json(inputs.findings)
    return {
        # With running statistics (every variant), then BatchNorm's test-time statistics: two tables fit a laptop.
        "accuracy": [
            accuracy_rows(tables["cells"], ("running",), "Every variant, with its running statistics"),
            accuracy_rows(tables["cells"], ("precise", "adapted"), "Models with BatchNorm, with test-time statistics"),
        ],
        "errors": tables["errors"].assign(mode=tables["errors"]["mode"].map(MODE_NAMES)).to_dict("records"),
        "family": tables["family"].fillna({"held_equal": ""}).to_dict("records"),
        "adaptation": tables["adaptation"].to_dict("records"),
        "contrast": tables["contrast"].to_dict("records"),
        "findings": facts["findings"],
        "sets": facts["sets"],
        "plan": facts["plan"],
        "heatmap": image(inputs.heatmap, "robustness"),
        "gallery": image(inputs.gallery, "corruptions"),
    }
