#!/usr/bin/env python3
"""Train one normalization variant for one seed, or a pack of seeds as one network; write each run's model.pt,
history.csv and job.json."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import platform
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch

from normstudy import atomic
from normstudy.cli import positive_int, run_cli
from normstudy.data.tensors import Splits, load_splits
from normstudy.engine import (
    Run,
    TrainingDivergedError,
    fit_pack,
    history_columns,
    last_finished,
    resolve_device,
)
from normstudy.model.ghost_kernel import ghost_form
from normstudy.model.network import count_parameters
from normstudy.model_file import save_model
from normstudy.packing import PackError, unpack_state_dict
from normstudy.settings import RunSettings


def write_history(path: Path, history: list[dict[str, float]], eval_split: str = "test") -> None:
    """history.csv: one row per epoch, accuracies in percent."""
    with atomic.atomic_open(path, "w") as handle:
        writer = csv.DictWriter(handle, fieldnames=history_columns(eval_split), lineterminator="\n")
        writer.writeheader()
        writer.writerows(history)


def job_record(
    member: RunSettings,
    run: Run,
    seeds: list[int],
    device: torch.device,
    threads: int,
    data_sha256: dict[str, str],
    span: tuple[dt.datetime, dt.datetime],
) -> dict[str, Any]:
    """job.json of one run: where, how and when it was trained."""
    started, finished = span
    return {
        "variant": member.variant.name,
        "seed": member.seed,
        "settings_digest": member.digest(),
        "params": count_parameters(run.model) // len(seeds),
        # The seeds trained together in this job's packed network (this one alone when unpacked).
        "pack_seeds": seeds,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
        "threads": threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "data_sha256": data_sha256,
        "checkpoint_key": run.key,
        "resumed_from_epoch": run.resumed_from,
        # When this job ran (a resumed job counts from its restart); the report's wall time comes from these.
        "started_utc": started.isoformat(timespec="seconds"),
        "finished_utc": finished.isoformat(timespec="seconds"),
    }


def log(line: str) -> None:
    """A line of the job's log, written at once."""
    print(line, flush=True)


def trained_or_diverged(
    pack: tuple[RunSettings, ...],
    splits: Splits,
    device: torch.device,
    threads: int,
    checkpoint: Path,
    stop_after_epoch: int | None,
) -> tuple[Run, dict[str, Any] | None]:
    """The trained pack, and None; or, for a tuning run whose loss turned NaN or infinite, the pack as its last
    finished epoch left it and the divergence (epoch, message): the search's record that this rate does not train the
    variant. A study run that diverges raises, and publishes nothing."""
    try:
        return fit_pack(pack, splits, device, threads, checkpoint, log=log, stop_after_epoch=stop_after_epoch), None
    except TrainingDivergedError as error:
        if not pack[0].data.validation_size:
            raise TrainingDivergedError(f"{error}; nothing was written", error.epoch) from None
        log(f"diverged in epoch {error.epoch}: recorded as this tuning run's result")
        return last_finished(pack, splits, device, threads, checkpoint, log), {
            "epoch": error.epoch,
            "error": str(error),
        }


def main(
    settings_paths: list[Path],
    data_files: list[Path],
    provenance: Path,
    model_paths: list[Path],
    history_paths: list[Path],
    job_paths: list[Path],
    checkpoint: Path,
    threads: int = 1,
    stop_after_epoch: int | None = None,
) -> None:
    """Train, checkpointing each epoch; the outputs appear only once training is complete.

    Several settings files (seeds of one variant and recipe) are trained as one packed network, and each run
    gets its own files, in the order of its settings.
    """
    started = dt.datetime.now(dt.UTC)
    if not len(settings_paths) == len(model_paths) == len(history_paths) == len(job_paths):
        raise PackError("--settings, --model, --history and --job need one path per run each")
    pack = tuple(RunSettings.read(path) for path in settings_paths)
    settings = pack[0]
    device = resolve_device(settings.train.device)
    splits = load_splits(data_files, provenance, settings.data, device)
    seeds = [member.seed for member in pack]
    packed = f"seeds {', '.join(map(str, seeds))} packed into one network" if len(pack) > 1 else f"seed {seeds[0]}"
    print(
        f"training {settings.variant.name} {packed} on {device} with {threads} thread(s): "
        f"{len(splits.train_images)} train / {len(splits.eval_images)} {splits.eval_split} images, "
        f"batch {settings.train.batch_size}",
        flush=True,
    )
    run, diverged = trained_or_diverged(pack, splits, device, threads, checkpoint, stop_after_epoch)
    finished = dt.datetime.now(dt.UTC)
    states = unpack_state_dict(run.model.to("cpu").state_dict(), len(pack))
    for member, state, history, model_path, history_path, job_path in zip(
        pack, states, run.histories, model_paths, history_paths, job_paths, strict=True
    ):
        save_model(model_path, state, member)
        write_history(history_path, history, splits.eval_split)
        job = job_record(member, run, seeds, device, threads, splits.sha256, (started, finished))
        if member.variant.ghost:  # its two forms give other last bits: the record says which one computed it
            job["ghost_batch_norm"] = ghost_form(device, member.train.memory_format)
        atomic.write_json(job_path, job if diverged is None else {**job, "diverged": diverged})
        split = splits.eval_split
        if diverged:
            print(f"done: seed {member.seed}: diverged in epoch {diverged['epoch']}", flush=True)
        else:
            final = history[-1]
            print(
                f"done: seed {member.seed}: {split} accuracy {final[f'{split}_acc']:.2f}% after {final['epoch']} "
                "epochs",
                flush=True,
            )
    # Outputs are complete: the checkpoint has done its job and must not outlive them.
    checkpoint.unlink(missing_ok=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--settings", type=Path, nargs="+", required=True, help="settings.json of the run (several: a pack of seeds)"
    )
    parser.add_argument(
        "--data", type=Path, nargs="+", required=True, help="the IDX files: all four, or a tuning run's training pair"
    )
    parser.add_argument("--provenance", type=Path, required=True, help="provenance.json the files are checked against")
    parser.add_argument("--model", type=Path, nargs="+", required=True, help="model.pt to write, per run")
    parser.add_argument("--history", type=Path, nargs="+", required=True, help="history.csv to write, per run")
    parser.add_argument(
        "--job", type=Path, nargs="+", required=True, help="job.json to write per run (device, timing, checksums)"
    )
    parser.add_argument("--checkpoint", type=Path, required=True, help="per-epoch checkpoint, resumed if it matches")
    parser.add_argument("--threads", type=positive_int, required=True, help="CPU threads for torch (the job's threads)")
    # Test hook: simulate a job killed after epoch K (the checkpoint stays, the outputs are not written).
    parser.add_argument("--stop-after-epoch", type=positive_int, default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def train_from(args: argparse.Namespace) -> None:
    """main() with the command line's arguments; a job stopped as asked (the test hook) exits 1, its checkpoint
    kept."""
    try:
        main(
            args.settings,
            args.data,
            args.provenance,
            args.model,
            args.history,
            args.job,
            args.checkpoint,
            args.threads,
            args.stop_after_epoch,
        )
    except InterruptedError as error:  # an OSError: caught here, before run_cli takes it for bad input
        sys.exit(f"interrupted: {error}")


if __name__ == "__main__":
    args = parse_args()
    run_cli(lambda: train_from(args), also=(TrainingDivergedError,))
