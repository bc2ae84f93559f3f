#!/usr/bin/env python3
"""Evaluate one trained run on the test set; write predictions.csv and metrics.json."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import torch

from normstudy import atomic
from normstudy.analysis.metrics import confusion_matrix, per_class_accuracy
from normstudy.cli import non_negative_int, positive_int, run_cli
from normstudy.data.datasets import dataset_spec
from normstudy.data.tensors import Splits, load_splits
from normstudy.engine import evaluate, memory_format, prepare_model, resolve_device
from normstudy.model.network import count_parameters
from normstudy.model.norms import batch_statistics_layers
from normstudy.model.precise_bn import set_population_statistics
from normstudy.model_file import load_model
from normstudy.settings import RunSettings


def prediction_columns(classes: int) -> list[str]:
    """predictions.csv's header: index, label, predicted class, confidence, then p0 ... p<classes - 1>."""
    return ["index", "label", "prediction", "confidence"] + [f"p{k}" for k in range(classes)]


def write_predictions(path: Path, labels: np.ndarray, probabilities: np.ndarray) -> None:
    """One row per test image: its index, label, predicted class, confidence and class probabilities."""
    predictions = probabilities.argmax(axis=1)
    with atomic.atomic_open(path, "w") as handle:
        handle.write(",".join(prediction_columns(probabilities.shape[1])) + "\n")
        for index, (label, row) in enumerate(zip(labels, probabilities, strict=True)):
            values = ",".join(f"{p:.6f}" for p in row)
            handle.write(f"{index},{label},{predictions[index]},{row[predictions[index]]:.6f},{values}\n")


def precise_bn_scores(model: torch.nn.Module, splits: Splits, settings: RunSettings, images: int) -> dict:
    """The model scored again after PreciseBN: its BatchNorm statistics recomputed over the first `images` training
    images (the model keeps them)."""
    data, layout = settings.data, memory_format(settings)
    set_population_statistics(model, splits.train_images[:images], data.mean, data.std, layout=layout)
    loss, accuracy, _ = evaluate(model, splits.eval_images, splits.eval_labels, data.mean, data.std, layout=layout)
    print(f"PreciseBN over {images} training images: test accuracy {accuracy:.2f}%")
    return {"images": images, "test_acc": accuracy, "test_loss": loss}


def main(
    settings_path: Path,
    model_path: Path,
    data_files: list[Path],
    provenance: Path,
    predictions_path: Path,
    metrics_path: Path,
    threads: int = 1,
    precise_bn_images: int = 0,
) -> dict:
    """Evaluate a trained model with the settings it was trained with; return the metrics.

    `precise_bn_images` N > 0: a model with BatchNorm is scored a second time, its statistics recomputed over the
    first N training images (PreciseBN), under metrics["precise_bn"]; predictions.csv is the first scoring's.
    """
    torch.set_num_threads(threads)
    settings = RunSettings.read(settings_path)
    if settings.data.validation_size:
        raise ValueError(f"{settings_path}: a tuning run's settings; only study runs are scored on the test set")
    device = resolve_device(settings.train.device)
    model = prepare_model(settings, device)
    load_model(model, model_path, settings, settings_path)
    splits = load_splits(data_files, provenance, settings.data, device)
    loss, accuracy, log_probs = evaluate(
        model,
        splits.eval_images,
        splits.eval_labels,
        settings.data.mean,
        settings.data.std,
        layout=memory_format(settings),
    )
    if not math.isfinite(loss):
        raise ValueError(f"{model_path}: test loss is {loss}; the model's outputs are not finite")
    probabilities = log_probs.exp().double().cpu().numpy()
    labels = splits.eval_labels.cpu().numpy()
    predictions = probabilities.argmax(axis=1)
    matrix = confusion_matrix(labels, predictions, len(dataset_spec(settings.data.dataset).classes))
    write_predictions(predictions_path, labels, probabilities)
    metrics = {
        "variant": settings.variant.name,
        "seed": settings.seed,
        "settings_digest": settings.digest(),
        "test_acc": accuracy,
        "test_loss": loss,
        "n_test": len(labels),
        "n_misclassified": int((predictions != labels).sum()),
        "per_class_acc": per_class_accuracy(matrix),
        "confusion_matrix": matrix.tolist(),
        "params": count_parameters(model),
    }
    if precise_bn_images and batch_statistics_layers(model):
        metrics["precise_bn"] = precise_bn_scores(model, splits, settings, precise_bn_images)
    atomic.write_json(metrics_path, metrics)
    print(f"{model_path}: test accuracy {accuracy:.2f}%, loss {loss:.4f}, {metrics['n_misclassified']} mistakes")
    return metrics


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--settings", type=Path, required=True, help="settings.json of the run")
    parser.add_argument("--model", type=Path, required=True, help="model.pt of the run")
    parser.add_argument("--data", type=Path, nargs=4, required=True, help="the four IDX files")
    parser.add_argument("--provenance", type=Path, required=True, help="provenance.json the files are checked against")
    parser.add_argument("--predictions", type=Path, required=True, help="predictions.csv to write")
    parser.add_argument("--metrics", type=Path, required=True, help="metrics.json to write")
    parser.add_argument("--threads", type=positive_int, required=True, help="CPU threads for torch (the job's threads)")
    parser.add_argument(
        "--precise-bn-images", type=non_negative_int, required=True,
        help="score a BatchNorm model again with its statistics over the first N training images (0: do not)",
    )  # fmt: skip
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    run_cli(
        lambda: main(
            args.settings,
            args.model,
            args.data,
            args.provenance,
            args.predictions,
            args.metrics,
            args.threads,
            args.precise_bn_images,
        )
    )
