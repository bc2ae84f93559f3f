#!/usr/bin/env python3
"""Train one normalization variant for one seed; write model.pt, history.csv and settings.json."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import platform
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch

from normstudy import atomic
from normstudy.data import load_splits
from normstudy.engine import HISTORY_COLUMNS, fit, resolve_device, settings_hash
from normstudy.model import count_parameters

CHECKPOINT = "checkpoint.pt"


def write_history(path: Path, history: list[dict[str, float]]) -> None:
    """history.csv: one row per epoch, accuracies in percent."""
    with atomic.atomic_open(path, "w") as handle:
        writer = csv.DictWriter(handle, fieldnames=HISTORY_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(history)


def main(
    data_dir: Path,
    out_dir: Path,
    settings: dict[str, Any],
    seed: int,
    threads: int = 1,
    stop_after_epoch: int | None = None,
) -> None:
    """Train, checkpointing each epoch in `out_dir`; the outputs appear only once training is complete."""
    started = dt.datetime.now(dt.UTC)
    device = resolve_device(settings["train"]["device"])
    splits = load_splits(data_dir, device)
    checkpoint = out_dir / CHECKPOINT
    print(
        f"training {settings['variant']} seed {seed} on {device} with {threads} thread(s): "
        f"{len(splits.train_images)} train / {len(splits.test_images)} test images",
        flush=True,
    )
    run = fit(
        settings,
        splits,
        seed,
        device,
        threads,
        checkpoint,
        log=lambda line: print(line, flush=True),
        stop_after_epoch=stop_after_epoch,
    )
    model = run.model.to("cpu")
    with atomic.atomic_path(out_dir / "model.pt") as tmp:
        torch.save(model.state_dict(), tmp)
    write_history(out_dir / "history.csv", run.history)
    atomic.write_json(
        out_dir / "settings.json",
        {
            **settings,
            "seed": seed,
            "params": count_parameters(model),
            "device": str(device),
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
            "threads": threads,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "settings_hash": settings_hash(settings, device, threads),
            # When this job ran (a resumed job counts from its restart); the report's wall time comes from these.
            "started_utc": started.isoformat(timespec="seconds"),
            "finished_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        },
    )
    # Outputs are complete: the checkpoint has done its job and must not outlive them.
    checkpoint.unlink(missing_ok=True)
    final = run.history[-1]
    print(f"done: test accuracy {final['test_acc']:.2f}% after {final['epoch']} epochs", flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True, help="directory of the four IDX files")
    parser.add_argument("--out-dir", type=Path, required=True, help="run directory for the outputs")
    parser.add_argument(
        "--settings",
        type=json.loads,
        required=True,
        help='JSON: {"variant": {norm, groups, l1, dropout}, "train": {...}, "data": {mean, std}}',
    )
    parser.add_argument("--seed", type=int, required=True, help="random seed of the run")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch")
    # Test hook: simulate a job killed after epoch K (the checkpoint stays, the outputs are not written).
    parser.add_argument("--stop-after-epoch", type=int, default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    try:
        main(args.data_dir, args.out_dir, args.settings, args.seed, args.threads, args.stop_after_epoch)
    except InterruptedError as error:
        sys.exit(f"interrupted: {error}")
