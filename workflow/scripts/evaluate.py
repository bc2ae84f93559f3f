#!/usr/bin/env python3
"""Evaluate one trained run on the test set; write predictions.csv and metrics.json."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import torch

from normstudy import atomic
from normstudy.architecture import NUM_CLASSES
from normstudy.data import load_splits
from normstudy.engine import evaluate, memory_format, prepare_model, resolve_device
from normstudy.metrics import confusion_matrix, per_class_accuracy
from normstudy.model import count_parameters

PREDICTION_COLUMNS = ["index", "label", "prediction", "confidence"] + [f"p{k}" for k in range(NUM_CLASSES)]


def write_predictions(path: Path, labels: np.ndarray, probabilities: np.ndarray) -> None:
    """One row per test image: its index, label, predicted class, confidence and class probabilities."""
    predictions = probabilities.argmax(axis=1)
    with atomic.atomic_open(path, "w") as handle:
        handle.write(",".join(PREDICTION_COLUMNS) + "\n")
        for index, (label, row) in enumerate(zip(labels, probabilities, strict=True)):
            values = ",".join(f"{p:.6f}" for p in row)
            handle.write(f"{index},{label},{predictions[index]},{row[predictions[index]]:.6f},{values}\n")


def main(data_dir: Path, run_dir: Path, threads: int = 1) -> dict:
    """Evaluate `run_dir`/model.pt with the settings it was trained with; return the metrics."""
    torch.set_num_threads(threads)
    settings = json.loads((run_dir / "settings.json").read_text())
    device = resolve_device(settings["train"]["device"])
    model = prepare_model(settings, device)
    model.load_state_dict(torch.load(run_dir / "model.pt", map_location=device, weights_only=True))
    splits = load_splits(data_dir, device)
    data = settings["data"]
    loss, accuracy, log_probs = evaluate(
        model, splits.test_images, splits.test_labels, data["mean"], data["std"], layout=memory_format(settings)
    )
    probabilities = log_probs.exp().double().cpu().numpy()
    labels = splits.test_labels.cpu().numpy()
    predictions = probabilities.argmax(axis=1)
    matrix = confusion_matrix(labels, predictions)
    write_predictions(run_dir / "predictions.csv", labels, probabilities)
    metrics = {
        "test_acc": accuracy,
        "test_loss": loss,
        "n_test": len(labels),
        "n_misclassified": int((predictions != labels).sum()),
        "per_class_acc": per_class_accuracy(matrix),
        "confusion_matrix": matrix.tolist(),
        "params": count_parameters(model),
    }
    atomic.write_json(run_dir / "metrics.json", metrics)
    print(f"{run_dir}: test accuracy {accuracy:.2f}%, loss {loss:.4f}, {metrics['n_misclassified']} mistakes")
    return metrics


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True, help="directory of the four IDX files")
    parser.add_argument("--run-dir", type=Path, required=True, help="run directory with model.pt and settings.json")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    main(args.data_dir, args.run_dir, args.threads)
