"""One reader of a run's files: settings.json, history.csv and the JSON files that name their run (job.json,
metrics.json), each checked to be of the run it is read for."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from normstudy.settings import RunSettings

# A run's identity: its variant's name and its random seed.
Identity = tuple[str, int]


class RunMismatchError(ValueError):
    """A file that belongs to another run than the one it is read for."""


def check_identity(path: str | Path, said: Identity, expected: Identity) -> None:
    """Refuse a file whose run (variant, seed) is not the expected one, naming both."""
    if tuple(said) != tuple(expected):
        raise RunMismatchError(f"{path} is of {said[0]} seed {said[1]}, not {expected[0]} seed {expected[1]}")


def read_named_json(path: str | Path, expected: Identity) -> dict[str, Any]:
    """A job.json or metrics.json, checked to name the expected run."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    check_identity(path, (data["variant"], data["seed"]), expected)
    return data


@dataclass(frozen=True)
class RunFiles:
    """What one run's files hold: its settings, its per-epoch history, and its job and metrics where read."""

    settings: RunSettings
    history: pd.DataFrame
    job: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None

    @property
    def identity(self) -> Identity:
        """(variant, seed) of the run."""
        return self.settings.variant.name, self.settings.seed


def read_run(
    settings: str | Path,
    history: str | Path,
    job: str | Path | None = None,
    metrics: str | Path | None = None,
    expected: Identity | None = None,
) -> RunFiles:
    """Read one run's files; each must be of the run its settings name (and of `expected`, when given)."""
    typed = RunSettings.read(settings)
    identity = (typed.variant.name, typed.seed)
    if expected is not None:
        check_identity(settings, identity, expected)
    return RunFiles(
        settings=typed,
        history=pd.read_csv(history),
        job=None if job is None else read_named_json(job, identity),
        metrics=None if metrics is None else read_named_json(metrics, identity),
    )
