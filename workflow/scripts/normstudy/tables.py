"""Tables as files: CSV with fixed float formatting and text ending in one newline, written atomically."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from normstudy import atomic


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """CSV with fixed float formatting, so the same numbers give the same bytes."""
    with atomic.atomic_open(path, "w") as handle:
        frame.to_csv(handle, index=False, float_format="%.6g", lineterminator="\n")


def write_text(path: Path, text: str) -> None:
    """A text file, atomically, ending in one newline."""
    with atomic.atomic_open(path, "w") as handle:
        handle.write(text.rstrip("\n") + "\n")


def shown(frame: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """A table for people: rounded, with missing values as None (printed as a dash, never as "nan")."""
    rounded = frame.round(digits).astype(object)
    return rounded.where(rounded.notna(), None)
