"""The train, evaluate and misclassified steps on a tiny synthetic study, through their real entry points."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import batch_summary
import evaluate
import make_synthetic
import misclassified
import numpy as np
import pandas as pd
import pytest
import train
import tune_summary
import write_settings
from helpers import DataFiles, synthetic_files, tiny_settings
from matplotlib import image as mpimg

from normstudy.engine import HISTORY_COLUMNS, TrainingDivergedError
from normstudy.settings import RunSettings


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
    assert list(predictions.columns) == ["index", "label", "prediction", "confidence", *(f"p{k}" for k in range(10))]
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
        run_dir / "metrics.json",
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
        "--threads",
        "1",
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


def train_command(data: DataFiles, runs: list[Path], checkpoint: Path) -> list:
    """train.py's command line for the runs in these folders (several: one packed network)."""
    return [
        sys.executable, train.__file__, "--settings", *(run / "settings.json" for run in runs), "--data", *data.files,
        "--provenance", data.provenance, "--model", *(run / "model.pt" for run in runs),
        "--history", *(run / "history.csv" for run in runs), "--job", *(run / "job.json" for run in runs),
        "--checkpoint", checkpoint, "--threads", "1",
    ]  # fmt: skip


def test_train_packs_seeds_into_one_network_and_writes_each_runs_files(tmp_path: Path) -> None:
    """Each packed run gets a plain 7,652-parameter model.pt, which evaluate.py scores as the pack scored it."""
    base = tiny_settings(epochs=2, seed=5, train_size=320, test_size=80, data_seed=4)
    data = synthetic_files(tmp_path / "raw", base)
    runs = [tmp_path / "runs" / f"seed{seed}" for seed in (5, 6)]
    for run, seed in zip(runs, (5, 6), strict=True):
        write_settings.main(dataclasses.replace(base, seed=seed).to_dict(), run / "settings.json")
    done = subprocess.run(train_command(data, runs, tmp_path / "pack.pt"), capture_output=True, text=True, check=True)
    assert "seeds 5, 6 packed into one network" in done.stdout
    assert not (tmp_path / "pack.pt").exists()
    jobs = [json.loads((run / "job.json").read_text()) for run in runs]
    assert [job["seed"] for job in jobs] == [5, 6] and all(job["pack_seeds"] == [5, 6] for job in jobs)
    assert all(job["params"] == 7652 for job in jobs)
    histories = [pd.read_csv(run / "history.csv") for run in runs]
    assert all(history["epoch"].tolist() == [1, 2] for history in histories)
    assert histories[0]["seconds"].equals(histories[1]["seconds"])  # one pass of the packed network per epoch
    assert not histories[0]["train_loss"].equals(histories[1]["train_loss"])
    for run, history in zip(runs, histories, strict=True):
        metrics = evaluate_run(data, run)  # the plain model, alone, with its running statistics
        assert metrics["test_acc"] == pytest.approx(history["test_acc"].iloc[-1], abs=100 / 80 + 1e-9)
        assert metrics["test_loss"] == pytest.approx(history["test_loss"].iloc[-1], rel=1e-4)


def test_train_refuses_a_pack_whose_runs_differ_in_more_than_their_seed(tmp_path: Path) -> None:
    base = tiny_settings(epochs=2, seed=5, train_size=320, test_size=80, data_seed=4)
    data = synthetic_files(tmp_path / "raw", base)
    other = dataclasses.replace(base, seed=6, variant=dataclasses.replace(base.variant, l1=0.01))
    runs = [tmp_path / "seed5", tmp_path / "seed6"]
    for run, settings in zip(runs, (base, other), strict=True):
        write_settings.main(settings.to_dict(), run / "settings.json")
    done = subprocess.run(train_command(data, runs, tmp_path / "pack.pt"), capture_output=True, text=True)
    assert done.returncode == 2
    assert "error: seed 6 has other settings than seed 5" in done.stderr
    command = train_command(data, runs, tmp_path / "pack.pt")
    del command[command.index("--model") + 2]  # two runs, one model path
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 2 and "need one path per run each" in done.stderr
    assert sorted(p.name for run in runs for p in run.iterdir()) == ["settings.json", "settings.json"]


@pytest.mark.parametrize("script", [train, evaluate, misclassified, make_synthetic, write_settings, batch_summary])
def test_every_step_has_a_help_text(script) -> None:
    done = subprocess.run([sys.executable, script.__file__, "--help"], capture_output=True, text=True, check=True)
    assert done.stdout.startswith("usage:") and "--help" in done.stdout


def test_a_tuning_run_that_diverges_records_it_and_a_study_run_publishes_nothing(tmp_path: Path) -> None:
    # test_engine's diverging recipe: weight decay 1 at a peak rate of 10 overflows the weights within 20 epochs.
    recipe = {"epochs": 20, "schedule": {"max_lr": 10.0}, "optimizer": {"momentum": 0.99, "weight_decay": 1.0}}
    tuning = tiny_settings(validation_size=40, **recipe)
    data = synthetic_files(tmp_path / "data", tuning)
    pair = dataclasses.replace(data, files=[p for p in data.files if p.name.startswith("train-")])
    run_dir = tmp_path / "tuning"
    train_run(run_dir, pair, tuning)
    job = json.loads((run_dir / "job.json").read_text())
    epoch = job["diverged"]["epoch"]
    assert 1 <= epoch <= 20 and "training diverged" in job["diverged"]["error"]
    history = pd.read_csv(run_dir / "history.csv")
    assert list(history["epoch"]) == list(range(1, epoch)) and np.isfinite(history["val_loss"]).all()
    assert (run_dir / "model.pt").exists() and not (run_dir / "checkpoint.pt").exists()
    table, _ = tune_summary.read_tuning_runs(
        [{"variant": "tiny", "point": "max_lr=10.0", "seed": 0, "settings": run_dir / "settings.json",
          "history": run_dir / "history.csv", "job": run_dir / "job.json"}]
    )  # fmt: skip
    assert bool(table["diverged"].iloc[0]) and np.isnan(table["val_acc"].iloc[0])
    study = dataclasses.replace(tuning, data=dataclasses.replace(tuning.data, validation_size=0))
    with pytest.raises(TrainingDivergedError):
        train_run(tmp_path / "study", data, study)
    assert sorted(p.name for p in (tmp_path / "study").iterdir()) == ["checkpoint.pt", "settings.json"]
