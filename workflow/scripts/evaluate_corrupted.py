#!/usr/bin/env python3
"""Score every trained run on one set of test images, the clean ones or a corrupted copy, in each evaluation mode:
the running statistics training left (every model); for models with BatchNorm also PreciseBN (statistics over clean
training images, computed once per run by precise_statistics.py) and test-time adaptation (statistics recomputed
over the scored set itself, all its images, before any is predicted; Schneider et al. 2020, Nado et al. 2020) and,
per --adaptation-batches size, a batch at a time (each batch normalized by its own statistics; mode adapted_<size>).
No model file is changed. Writes one row per run and mode, and every prediction."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from normstudy import atomic
from normstudy.cli import positive_int, run_cli
from normstudy.data.idx import DataIntegrityError, decode_idx, sha256_hex
from normstudy.data.shift_sets import batch_mode
from normstudy.data.tensors import Splits, load_splits
from normstudy.engine import evaluate, memory_format, prepare_model, resolve_device
from normstudy.model.adaptation import buffers, per_batch_statistics
from normstudy.model.norms import batch_statistics_layers
from normstudy.model.precise_bn import set_population_statistics
from normstudy.model_file import load_model
from normstudy.runs import read_named_json
from normstudy.settings import RunSettings
from normstudy.tables import write_csv

COLUMNS = ("variant", "seed", "corruption", "severity", "mode", "images", "correct", "accuracy", "loss")


def read_set(images_path: Path, record_path: Path, labels: int) -> tuple[torch.Tensor, str, int]:
    """A corrupted set's images (N x 1 x 28 x 28, uint8), its corruption and severity, after checking the images
    against the SHA-256 recorded when they were written and against the number of labels."""
    data = images_path.read_bytes()
    record = atomic.read_json(record_path)
    recorded = record["images"]["sha256"]
    if sha256_hex(data) != recorded:
        raise DataIntegrityError(
            f"{images_path}: SHA-256 {sha256_hex(data)} is not the {recorded} recorded in {record_path}; delete both "
            "to make the set again"
        )
    images = decode_idx(data, str(images_path))
    if len(images) != labels:
        raise DataIntegrityError(f"{images_path}: {len(images)} images for {labels} test labels")
    return torch.from_numpy(np.array(images)).unsqueeze(1), record["corruption"], int(record["severity"])


def judged(log_probs: torch.Tensor, labels: torch.Tensor, settings: RunSettings) -> tuple[float, float, np.ndarray]:
    """(mean NLL loss, accuracy in percent, predictions as int8) from [N, 10] log-probabilities, as engine.evaluate
    computes them, refusing outputs that are not finite."""
    loss = F.nll_loss(log_probs, labels, reduction="sum").item() / len(labels)
    if not math.isfinite(loss):
        raise ValueError(f"{settings.variant.name} seed {settings.seed}: loss {loss} on this set; outputs not finite")
    predicted = log_probs.argmax(1)
    accuracy = 100.0 * (predicted == labels).sum().item() / len(labels)
    return loss, accuracy, predicted.to(torch.int8).cpu().numpy()


def precise_statistics(path: Path | None, settings: RunSettings, model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The run's PreciseBN buffers from precise_statistics.py's file, checked to be of this run and its settings."""
    if path is None:
        raise ValueError(f"{settings.variant.name} seed {settings.seed} has BatchNorm but no --precise file was given")
    facts = read_named_json(path, (settings.variant.name, settings.seed), settings.digest())
    own = buffers(model)
    if set(facts["statistics"]) != set(own):
        raise ValueError(f"{path}: statistics of {sorted(facts['statistics'])}, not of the model's {sorted(own)}")
    return {name: torch.tensor(values, dtype=own[name].dtype) for name, values in facts["statistics"].items()}


def score_run(run: tuple[Path, Path, Path | None], settings: RunSettings, splits: Splits, images: torch.Tensor,
              name: tuple[str, int], batches: list[int]) -> tuple[list[tuple], list[np.ndarray]]:  # fmt: skip
    """One run's (settings.json, model.pt, PreciseBN file) rows, one per mode that applies to it, and predictions on
    `images`; `settings` are those its settings.json holds, `batches` the adaptation batch sizes."""
    device = images.device
    settings_path, model_path, precise_path = run
    model = prepare_model(settings, device)
    load_model(model, model_path, settings, settings_path)
    trained = {key: value.clone() for key, value in model.state_dict().items()}
    labels, layout = splits.eval_labels, memory_format(settings)
    log_probs = {"running": evaluate(model, images, labels, settings.data.mean, settings.data.std, layout=layout)[2]}
    if batch_statistics_layers(model):
        model.load_state_dict({**trained, **precise_statistics(precise_path, settings, model)})
        log_probs["precise"] = evaluate(model, images, labels, settings.data.mean, settings.data.std, layout=layout)[2]
        # The chain's outputs with the set's own statistics: the adapted model's, without a second pass.
        outputs = set_population_statistics(model, images, settings.data.mean, settings.data.std, layout=layout)
        log_probs["adapted"] = F.log_softmax(outputs.flatten(1), dim=1)
        model.load_state_dict(trained)
        for size in batches:
            log_probs[batch_mode(size)] = per_batch_statistics(
                model, images, settings.data.mean, settings.data.std, size, layout
            )
    rows, predicted = [], []
    for mode, values in log_probs.items():
        loss, accuracy, labels_predicted = judged(values, labels, settings)
        correct = int((labels_predicted == labels.cpu().numpy()).sum())
        rows.append((settings.variant.name, settings.seed, *name, mode, len(labels), correct, accuracy, loss))
        predicted.append(labels_predicted)
    return rows, predicted


def main(runs: list[tuple[Path, Path, Path | None]], data_files: list[Path], provenance: Path,
         scored_set: tuple[Path, Path] | None, threads: int, table: Path, predictions: Path,
         batches: list[int]) -> pd.DataFrame:  # fmt: skip
    """Score each run (settings, model, PreciseBN file or None) on the clean test images (`scored_set` None) or on a
    corrupted set (images, record), adapting models with BatchNorm also per batch of each of `batches` images; write
    the rows to `table` and the predictions (int8, one row per table row) to `predictions`."""
    torch.set_num_threads(threads)
    first = RunSettings.read(runs[0][0])
    device = resolve_device(first.train.device)
    splits = load_splits(data_files, provenance, first.data, device)
    if splits.eval_split != "test":
        raise ValueError(f"{runs[0][0]} is a tuning run (it evaluates on validation images): sets are test images")
    if scored_set is None:
        images, name = splits.eval_images, ("clean", 0)
    else:
        images, *name = read_set(*scored_set, len(splits.eval_labels))
        images = images.to(device)
    rows, predicted = [], []
    for run in runs:
        settings = RunSettings.read(run[0])
        if settings.data != first.data:
            raise ValueError(f"{run[0]}: other data settings than {runs[0][0]}; a set is scored on one test split")
        run_rows, run_predicted = score_run(run, settings, splits, images, tuple(name), batches)
        rows += run_rows
        predicted += run_predicted
    found = pd.DataFrame(rows, columns=list(COLUMNS))
    write_csv(found, table)
    with atomic.atomic_open(predictions, "wb") as handle:
        np.save(handle, np.stack(predicted))
    print(found.to_string(index=False))
    return found


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--settings", type=Path, nargs="+", required=True, help="every run's settings.json")
    parser.add_argument("--models", type=Path, nargs="+", required=True, help="every run's model.pt, same order")
    parser.add_argument("--precise", type=Path, nargs="*", default=[], help="PreciseBN files of the runs with BN")
    parser.add_argument("--data", type=Path, nargs=4, required=True, help="the four IDX files")
    parser.add_argument("--provenance", type=Path, required=True, help="provenance.json the files are checked against")
    parser.add_argument("--images", type=Path, help="a corrupted set's images (the clean test images when absent)")
    parser.add_argument("--record", type=Path, help="that set's record")
    parser.add_argument("--adaptation-batches", type=positive_int, nargs="*", default=[],
                        help="also adapt a batch of this many images at a time (each size its own mode)")  # fmt: skip
    parser.add_argument("--threads", type=positive_int, required=True, help="CPU threads for torch")
    parser.add_argument("--table", type=Path, required=True, help="the scores (CSV) to write")
    parser.add_argument("--predictions", type=Path, required=True, help="the predictions (.npy) to write")
    return parser.parse_args(argv)


def runs_given(args: argparse.Namespace) -> list[tuple[Path, Path, Path | None]]:
    """(settings, model, PreciseBN file or None) per run; a PreciseBN file belongs to the run in its folder."""
    if len(args.settings) != len(args.models):
        sys.exit(f"error: {len(args.settings)} --settings for {len(args.models)} --models")
    if (args.images is None) != (args.record is None):
        sys.exit("error: --images and --record go together (a corrupted set), or neither (the clean test images)")
    precise = {path.parent: path for path in args.precise}
    return [
        (settings, model, precise.get(settings.parent))
        for settings, model in zip(args.settings, args.models, strict=True)
    ]


if __name__ == "__main__":
    args = parse_args()
    runs = runs_given(args)
    scored_set = None if args.images is None else (args.images, args.record)
    run_cli(
        lambda: main(
            runs, args.data, args.provenance, scored_set, args.threads, args.table, args.predictions,
            args.adaptation_batches,
        )
    )  # fmt: skip
