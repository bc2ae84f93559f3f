"""The train, evaluate and misclassified steps on a tiny synthetic study, through their real entry points."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import evaluate
import make_synthetic
import misclassified
import numpy as np
import pandas as pd
import pytest
import train
import write_settings
from helpers import DataFiles, synthetic_files, tiny_settings
from matplotlib import image as mpimg

from normstudy.config import RunSettings
from normstudy.engine import HISTORY_COLUMNS


def train_run(run_dir: Path, data: DataFiles, settings: RunSettings, **extra) -> None:
    """settings.json, then train.py's main, as the workflow runs them."""
    write_settings.main(settings.to_dict(), run_dir / "settings.json")
    train.main(
        [run_dir / "settings.json"],
        data.files,
        data.provenance,
        [run_dir / "model.pt"],
        [run_dir / "history.csv"],
        [run_dir / "job.json"],
        run_dir / "checkpoint.pt",
        **extra,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[DataFiles, Path]:
    """A synthetic dataset and one run trained on it by train.py's main."""
    root = tmp_path_factory.mktemp("steps")
    settings = tiny_settings(epochs=3, seed=5, train_size=320, test_size=80, data_seed=4)
    data = synthetic_files(root / "raw", settings)
    run_dir = root / "runs" / "tiny" / "seed5"
    train_run(run_dir, data, settings)
    return data, run_dir


def evaluate_run(data: DataFiles, run_dir: Path) -> dict:
    return evaluate.main(
        run_dir / "settings.json",
        run_dir / "model.pt",
        data.files,
        data.provenance,
        run_dir / "predictions.csv",
        run_dir / "metrics.json",
    )


def test_train_writes_model_history_and_job(trained: tuple[DataFiles, Path]) -> None:
    data, run_dir = trained
    history = pd.read_csv(run_dir / "history.csv")
    assert list(history.columns) == list(HISTORY_COLUMNS)
    assert history["epoch"].tolist() == [1, 2, 3]
    assert history["test_acc"].between(0, 100).all()
    settings = RunSettings.read(run_dir / "settings.json")
    assert settings.seed == 5 and settings.variant.norm == "batch" and settings.variant.name == "tiny"
    job = json.loads((run_dir / "job.json").read_text())
    assert job["params"] == 7652 and job["seed"] == 5 and job["device"] == "cpu"
    assert len(job["checkpoint_key"]) == 64 and job["resumed_from_epoch"] == 0
    recorded = json.loads(data.provenance.read_text())["files"]
    assert job["data_sha256"] == {name: entry["sha256"] for name, entry in recorded.items()}
    assert not (run_dir / "checkpoint.pt").exists()  # removed once the outputs are complete


def test_evaluate_writes_consistent_predictions_and_metrics(trained: tuple[DataFiles, Path]) -> None:
    data, run_dir = trained
    metrics = evaluate_run(data, run_dir)
    predictions = pd.read_csv(run_dir / "predictions.csv")
    assert list(predictions.columns) == evaluate.PREDICTION_COLUMNS
    assert len(predictions) == 80 and predictions["index"].tolist() == list(range(80))
    probabilities = predictions[[f"p{k}" for k in range(10)]].to_numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)
    assert (predictions["prediction"] == probabilities.argmax(axis=1)).all()
    np.testing.assert_allclose(predictions["confidence"], probabilities.max(axis=1))
    accuracy = 100.0 * (predictions["prediction"] == predictions["label"]).mean()
    assert metrics["test_acc"] == pytest.approx(accuracy)
    history = pd.read_csv(run_dir / "history.csv")
    assert metrics["test_acc"] == pytest.approx(history["test_acc"].iloc[-1])  # same model, same test set
    matrix = np.array(metrics["confusion_matrix"])
    assert matrix.sum() == 80 and np.trace(matrix) == round(accuracy * 0.8)
    assert metrics["n_misclassified"] == 80 - np.trace(matrix)
    assert json.loads((run_dir / "metrics.json").read_text()) == json.loads(json.dumps(metrics))


def test_misclassified_lists_every_mistake_and_draws_the_grid(trained: tuple[DataFiles, Path]) -> None:
    data, run_dir = trained
    evaluate_run(data, run_dir)
    out_csv, out_png = run_dir / "misclassified.csv", run_dir / "misclassified.png"
    count = misclassified.main(
        run_dir / "settings.json",
        data.files,
        data.provenance,
        run_dir / "predictions.csv",
        out_csv,
        out_png,
        6,
        3,
        2,
        "bn, seed 5",
    )
    mistakes = pd.read_csv(out_csv)
    predictions = pd.read_csv(run_dir / "predictions.csv")
    assert count == len(mistakes) == (predictions["prediction"] != predictions["label"]).sum() > 0
    assert (mistakes["prediction"] != mistakes["label"]).all()
    assert mistakes["confidence"].is_monotonic_decreasing
    picture = mpimg.imread(out_png)
    assert picture.ndim == 3 and picture.shape[0] > picture.shape[1]  # 3 rows x 2 columns: taller than wide


def test_find_mistakes_orders_by_confidence_then_index() -> None:
    table = pd.DataFrame(
        {
            "index": [0, 1, 2, 3],
            "label": [1, 2, 3, 4],
            "prediction": [1, 0, 0, 0],
            "confidence": [0.9, 0.5, 0.7, 0.5],
        }
    )
    assert misclassified.find_mistakes(table)["index"].tolist() == [2, 1, 3]


def test_train_cli_interruption_keeps_the_checkpoint_and_writes_no_outputs(tmp_path: Path) -> None:
    settings = tiny_settings(epochs=3, seed=1, train_size=320, data_seed=1)
    data = synthetic_files(tmp_path / "raw", settings)
    run_dir = tmp_path / "run"
    write_settings.main(settings.to_dict(), run_dir / "settings.json")
    outputs = {name: run_dir / name for name in ("model.pt", "history.csv", "job.json", "checkpoint.pt")}
    command = [
        sys.executable,
        train.__file__,
        "--settings",
        run_dir / "settings.json",
        "--data",
        *data.files,
        "--provenance",
        data.provenance,
        "--model",
        outputs["model.pt"],
        "--history",
        outputs["history.csv"],
        "--job",
        outputs["job.json"],
        "--checkpoint",
        outputs["checkpoint.pt"],
        "--stop-after-epoch",
        "1",
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 1 and "interrupted" in done.stderr
    assert sorted(p.name for p in run_dir.iterdir()) == ["checkpoint.pt", "settings.json"]
    again = subprocess.run(command[:-2], capture_output=True, text=True, check=True)
    assert "resumed from" in again.stdout and "after epoch 1" in again.stdout
    assert sorted(p.name for p in run_dir.iterdir()) == ["history.csv", "job.json", "model.pt", "settings.json"]
    assert json.loads(outputs["job.json"].read_text())["resumed_from_epoch"] == 1


@pytest.mark.parametrize("script", [train, evaluate, misclassified, make_synthetic, write_settings])
def test_every_step_has_a_help_text(script) -> None:
    done = subprocess.run([sys.executable, script.__file__, "--help"], capture_output=True, text=True, check=True)
    assert done.stdout.startswith("usage:") and "--help" in done.stdout
