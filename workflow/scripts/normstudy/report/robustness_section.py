"""The report's robustness section: its tables, findings and figures, read from robustness_summary.py's files."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from normstudy import atomic
from normstudy.analysis.findings_robustness import shift_key_sentence
from normstudy.data.shift_sets import mode_batch
from normstudy.model.norm_specs import statistics_words

# What the section's tables are read from, by role (robustness_summary.py's outputs).
TABLES = ("cells", "errors", "family", "groups", "adaptation", "contrast")
MODE_NAMES = {"running": "running statistics", "precise": "PreciseBN", "adapted": "adapted to the set"}


def mode_name(mode: str) -> str:
    """A scoring mode in words (adapted_<N>: adapted a batch of N test images at a time)."""
    return MODE_NAMES.get(mode) or f"adapted per {mode_batch(mode)} images"


@dataclass(frozen=True)
class RobustnessInputs:
    """The robustness study's tables, findings and figures (robustness.smk)."""

    tables: dict[str, Path]  # by role: TABLES
    findings: Path
    heatmap: Path
    gallery: Path


def read_table(path: Path) -> pd.DataFrame:
    """A table robustness_summary.py wrote; empty where it had no row to write (no BatchNorm model, no contrast set,
    no group of kinds)."""
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def accuracy_rows(cells: pd.DataFrame, modes: tuple[str, ...], title: str) -> dict[str, Any]:
    """An accuracy table of `modes`: one row per set (clean first), one column per variant and mode, each cell the
    mean over seeds with its 95 % interval including the test images' sampling."""
    chosen = cells[cells["mode"].isin(modes)]
    names = chosen["variant"] + ("" if modes == ("running",) else " · " + chosen["mode"].map(mode_name))
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


def robustness_context(
    inputs: RobustnessInputs, image: Callable[[Path, str], str], norms: dict[str, str], dataset_note: str = ""
) -> dict[str, Any]:
    """Everything the section shows; `norms`: each studied variant's norm; `dataset_note`: what the dataset's spec
    says of the corruptions on its images."""
    tables = {name: read_table(path) for name, path in inputs.tables.items()}
    facts = atomic.read_json(inputs.findings)
    test_time = tuple(mode for mode in dict.fromkeys(tables["cells"]["mode"]) if mode != "running")
    return {
        # With running statistics (every variant), then each BatchNorm model's test-time statistics: tables that fit
        # a laptop's width whatever the number of variants and adaptation modes.
        "accuracy": [
            accuracy_rows(tables["cells"], ("running",), "Every variant, with its running statistics"),
            *(
                accuracy_rows(cells, test_time, f"{variant}, with test-time statistics")
                for variant, cells in tables["cells"][tables["cells"]["mode"] != "running"].groupby(
                    "variant", sort=False
                )
            ),
        ],
        "errors": tables["errors"].assign(mode=tables["errors"]["mode"].map(mode_name)).to_dict("records"),
        "family": tables["family"].fillna({"held_equal": ""}).to_dict("records"),
        "groups": tables["groups"].to_dict("records"),
        "endpoint": facts["endpoint"],
        "adaptation": tables["adaptation"].assign(mode=tables["adaptation"]["mode"].map(mode_name)).to_dict("records")
        if len(tables["adaptation"])
        else [],
        "contrast": tables["contrast"].to_dict("records"),
        "findings": facts["findings"],
        "statistics": statistics_words(norms),
        "sets": facts["sets"],
        "plan": facts["plan"],
        "dataset_note": dataset_note,
        "heatmap": image(inputs.heatmap, "robustness"),
        "gallery": image(inputs.gallery, "corruptions"),
    }


def shift_sentences(inputs: RobustnessInputs) -> list[str]:
    """The first screen's sentence on the shift: the endpoint's leader against the reference, and what test-time
    adaptation does to the reference (where it was scored)."""
    facts = atomic.read_json(inputs.findings)
    family, adaptation = read_table(inputs.tables["family"]), read_table(inputs.tables["adaptation"])
    return [shift_key_sentence(family, adaptation, facts["plan"], facts["endpoint"])]
