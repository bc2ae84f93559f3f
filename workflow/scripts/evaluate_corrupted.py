#!/usr/bin/env python3
"""Score one trained run on the clean test images and on every corrupted set, in each evaluation mode: the running
statistics training left (every model); for models with BatchNorm also PreciseBN (statistics recomputed over clean
training images) and test-time adaptation (statistics recomputed over the scored set itself, all its images, before
any is predicted). The model file is never changed. Writes one row per set and mode, and every prediction."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import pandas as pd
import torch

from normstudy import atomic
from normstudy.adaptation import set_population_statistics
from normstudy.cli import positive_int, run_cli
from normstudy.data import load_splits
from normstudy.engine import evaluate, memory_format, prepare_model, resolve_device
from normstudy.idx import DataIntegrityError, decode_idx, sha256_hex
from normstudy.model_file import load_model
from normstudy.precise_bn import batch_norms
from normstudy.settings import RunSettings
from normstudy.tables import write_csv

CLEAN = ("clean", 0)
COLUMNS = ("variant", "seed", "corruption", "severity", "mode", "images", "correct", "accuracy", "loss")


def read_set(images_path: Path, record_path: Path, labels: int) -> torch.Tensor:
    """A corrupted set's images (N x 1 x 28 x 28, uint8), after checking them against the SHA-256 recorded when
    they were written and against the number of labels."""
    data = images_path.read_bytes()
    recorded = atomic.read_json(record_path)["images"]["sha256"]
    if sha256_hex(data) != recorded:
        raise DataIntegrityError(
            f"{images_path}: SHA-256 {sha256_hex(data)} is not the {recorded} recorded in {record_path}; delete both "
            "to make the set again"
        )
    images = decode_idx(data, str(images_path))
    if len(images) != labels:
        raise DataIntegrityError(f"{images_path}: {len(images)} images for {labels} test labels")
    return torch.from_numpy(np.array(images)).unsqueeze(1)


def scored(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, settings: RunSettings) -> tuple:
    """(loss, accuracy, predictions) of `model` as it stands, refusing outputs that are not finite."""
    loss, accuracy, log_probs = evaluate(
        model, images, labels, settings.data.mean, settings.data.std, layout=memory_format(settings)
    )
    if not math.isfinite(loss):
        raise ValueError(f"{settings.variant.name} seed {settings.seed}: loss {loss} on this set; outputs not finite")
    return loss, accuracy, log_probs.argmax(1).to(torch.int8).cpu().numpy()


def statistics_of(model: torch.nn.Module, images: torch.Tensor, settings: RunSettings) -> dict[str, torch.Tensor]:
    """The model's BatchNorm buffers after setting them to the population statistics of `images`."""
    set_population_statistics(model, images, settings.data.mean, settings.data.std, layout=memory_format(settings))
    return {name: value.clone() for name, value in model.state_dict().items() if "running_" in name}


def main(settings_path: Path, model_path: Path, data_files: list[Path], provenance: Path,
         sets: list[tuple[Path, Path]], precise_images: int, threads: int, table: Path,
         predictions: Path) -> pd.DataFrame:  # fmt: skip
    """Score the run on the clean test images, then on each set (images, record); write the rows to `table` and
    the predictions (int8, one row per table row) to `predictions`."""
    torch.set_num_threads(threads)
    settings = RunSettings.read(settings_path)
    device = resolve_device(settings.train.device)
    splits = load_splits(data_files, provenance, settings.data, device)
    labels = splits.eval_labels
    model = prepare_model(settings, device)
    load_model(model, model_path, settings, settings_path)
    trained = {name: value.clone() for name, value in model.state_dict().items()}
    precise = statistics_of(model, splits.train_images[:precise_images], settings) if batch_norms(model) else None
    rows, predicted = [], []
    for images_path, record in [(None, None), *sets]:
        name = CLEAN if record is None else set_key(record)
        images = splits.eval_images if record is None else read_set(images_path, record, len(labels)).to(device)
        model.load_state_dict(trained)
        modes = [("running", None)]
        if precise is not None:
            modes += [("precise", precise), ("adapted", statistics_of(model, images, settings))]
        for mode, statistics in modes:
            model.load_state_dict({**trained, **(statistics or {})})
            loss, accuracy, labels_predicted = scored(model, images, labels, settings)
            correct = int((labels_predicted == labels.cpu().numpy()).sum())
            rows.append((settings.variant.name, settings.seed, *name, mode, len(labels), correct, accuracy, loss))
            predicted.append(labels_predicted)
    found = pd.DataFrame(rows, columns=list(COLUMNS))
    write_csv(found, table)
    with atomic.atomic_open(predictions, "wb") as handle:
        np.save(handle, np.stack(predicted))
    print(found.to_string(index=False))
    return found


def set_key(record: Path) -> tuple[str, int]:
    """(corruption, severity) of a set, from its record."""
    facts = atomic.read_json(record)
    return facts["corruption"], int(facts["severity"])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--settings", type=Path, required=True, help="the run's settings.json")
    parser.add_argument("--model", type=Path, required=True, help="the run's model.pt")
    parser.add_argument("--data", type=Path, nargs=4, required=True, help="the four IDX files")
    parser.add_argument("--provenance", type=Path, required=True, help="provenance.json the files are checked against")
    parser.add_argument("--images", type=Path, nargs="+", required=True, help="every corrupted set's images")
    parser.add_argument("--records", type=Path, nargs="+", required=True, help="every set's record, same order")
    parser.add_argument("--precise-bn-images", type=positive_int, required=True, help="clean images for PreciseBN")
    parser.add_argument("--threads", type=positive_int, required=True, help="CPU threads for torch")
    parser.add_argument("--table", type=Path, required=True, help="the scores (CSV) to write")
    parser.add_argument("--predictions", type=Path, required=True, help="the predictions (.npy) to write")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    if len(args.images) != len(args.records):
        sys.exit(f"error: {len(args.images)} --images for {len(args.records)} --records")
    run_cli(
        lambda: main(
            args.settings, args.model, args.data, args.provenance, list(zip(args.images, args.records, strict=True)),
            args.precise_bn_images, args.threads, args.table, args.predictions,
        )
    )  # fmt: skip
