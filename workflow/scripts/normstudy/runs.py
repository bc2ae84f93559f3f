"""One reader of a run's files: settings.json, history.csv and the JSON files that name their run (job.json,
metrics.json), each checked to be of the run it is read for."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from normstudy import atomic
from normstudy.settings import RunSettings

# metrics.json's test_acc is 100 x the share of predictions.csv's rows right; the file's classes come from the
# probabilities (exp of the scored log-probabilities), where a float32 tie could move one image.
IMAGES_TOLERATED = 1
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


@dataclass
class Runs:
    """What the tables are made from: a row per run, the per-epoch rows, each run's metrics, its per-test-image
    correctness (from predictions.csv) and settings, keyed by (variant, seed)."""

    table: pd.DataFrame
    epochs: pd.DataFrame
    metrics: dict[tuple[str, int], dict]
    correct: dict[tuple[str, int], np.ndarray]
    settings: dict[tuple[str, int], RunSettings]


def read_runs(files: dict[str, list[Path]]) -> Runs:
    """Every run's settings, metrics, history and predictions (`files`: a list per kind, in the same run order)."""
    runs, epochs, metrics, correct, settings = [], [], {}, {}, {}
    kinds = ("settings", "metrics", "histories", "predictions")
    for settings_file, metrics_file, history_file, predictions_file in zip(*(files[k] for k in kinds), strict=True):
        run = read_run(settings_file, history_file, metrics=metrics_file)
        (variant, seed), result, history = run.identity, run.metrics, run.history
        epochs.append(history.assign(variant=variant, seed=seed))
        metrics[(variant, seed)], settings[(variant, seed)] = result, run.settings
        predictions = pd.read_csv(predictions_file, usecols=["label", "prediction"])
        if len(predictions) != result["n_test"]:
            raise ValueError(f"{predictions_file}: {len(predictions)} rows, {metrics_file} scored {result['n_test']}")
        correct[(variant, seed)] = (predictions["label"] == predictions["prediction"]).to_numpy()
        # The two records of one score must agree: an edited number in either is refused, not published.
        scored = 100.0 * correct[(variant, seed)].mean() if len(predictions) else math.nan
        tolerance = 100.0 * IMAGES_TOLERATED / max(len(predictions), 1) + 1e-9
        said = result["test_acc"]
        if not isinstance(said, int | float) or not math.isfinite(said) or abs(scored - said) > tolerance:
            raise ValueError(
                f"{metrics_file}: test_acc {result['test_acc']!r} disagrees with {predictions_file} "
                f"({scored:.4f} % of its rows right); rebuild the run's evaluation"
            )
        final = history.iloc[-1]
        runs.append(
            {
                "variant": variant,
                "seed": seed,
                "norm": run.settings.variant.norm,
                "params": result["params"],
                "test_acc": result["test_acc"],
                "test_loss": result["test_loss"],
                "final_train_acc": final["train_acc"],
                "train_test_gap": final["train_acc"] - result["test_acc"],
                "misclassified": result["n_misclassified"],
                "seconds_per_epoch": history["seconds"].mean(),
            }
        )
    order = ["variant", "seed", "epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc", "seconds"]
    return Runs(pd.DataFrame(runs), pd.concat(epochs, ignore_index=True)[order], metrics, correct, settings)


def study_run_files(folder: Path, variants: list[str], seeds: list[int]) -> dict[str, list[Path]]:
    """The run files of a study's enabled `variants` and `seeds` in the order its aggregate rule lists them (variants
    in config order, then seeds): settings, metrics, histories, predictions and jobs, each a list."""
    names = {"settings": "settings.json", "metrics": "metrics.json", "histories": "history.csv"}
    names |= {"predictions": "predictions.csv", "jobs": "job.json"}
    runs = [folder / "runs" / variant / f"seed{seed}" for variant in variants for seed in seeds]
    return {kind: [run / name for run in runs] for kind, name in names.items()}
