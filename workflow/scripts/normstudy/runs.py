"""One reader of a run's files: settings.json, history.csv and the JSON files that name their run (job.json,
metrics.json), each checked to be of the run it is read for."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from normstudy import atomic
from normstudy.settings import RunSettings

# A run's identity: its variant's name and its random seed.
Identity = tuple[str, int]


class RunMismatchError(ValueError):
    """A file that belongs to another run than the one it is read for."""


def check_identity(path: str | Path, said: Identity, expected: Identity) -> None:
    """Refuse a file whose run (variant, seed) is not the expected one, naming both."""
    if tuple(said) != tuple(expected):
        raise RunMismatchError(f"{path} is of {said[0]} seed {said[1]}, not {expected[0]} seed {expected[1]}")


def read_named_json(path: str | Path, expected: Identity, settings_digest: str | None = None) -> dict[str, Any]:
    """A job.json or metrics.json, checked to name the expected run and (when given) to come from its settings."""
    data = atomic.read_json(path)
    if not isinstance(data, dict) or not {"variant", "seed", "settings_digest"} <= set(data):
        raise RunMismatchError(f"{path}: does not name its run (variant, seed, settings_digest); rebuild it")
    check_identity(path, (data["variant"], data["seed"]), expected)
    if settings_digest is not None and data["settings_digest"] != settings_digest:
        raise RunMismatchError(
            f"{path} was made with other settings than the run's settings.json (digest"
            f" {str(data['settings_digest'])[:12]}, not {settings_digest[:12]}); rebuild it"
        )
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
        job=None if job is None else read_named_json(job, identity, typed.digest()),
        metrics=None if metrics is None else read_named_json(metrics, identity, typed.digest()),
    )
