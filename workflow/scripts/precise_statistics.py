#!/usr/bin/env python3
"""PreciseBN for one trained run with BatchNorm: the population statistics of each BatchNorm layer over the first N
clean training images (no augmentation), computed once and written as JSON, for the robustness evaluations that
score the run with them on every set. The model file is never changed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch

from normstudy import atomic
from normstudy.cli import positive_int, run_cli
from normstudy.data.tensors import load_splits
from normstudy.engine import memory_format, prepare_model, resolve_device
from normstudy.model.adaptation import buffers
from normstudy.model.norms import batch_statistics_layers
from normstudy.model.precise_bn import set_population_statistics
from normstudy.model_file import load_model
from normstudy.settings import RunSettings


def main(settings_path: Path, model_path: Path, data_files: list[Path], provenance: Path, images: int, threads: int,
         out: Path) -> dict:  # fmt: skip
    """Write `out`: the run's identity, the images used and each BatchNorm buffer's values (float32, as lists)."""
    torch.set_num_threads(threads)
    settings = RunSettings.read(settings_path)
    device = resolve_device(settings.train.device)
    model = prepare_model(settings, device)
    load_model(model, model_path, settings, settings_path)
    if not batch_statistics_layers(model):
        raise ValueError(f"{settings.variant.name} has no BatchNorm layer: PreciseBN does not apply to it")
    splits = load_splits(data_files, provenance, settings.data, device)
    used = splits.train_images[:images]
    set_population_statistics(model, used, settings.data.mean, settings.data.std, layout=memory_format(settings))
    facts = {
        "variant": settings.variant.name,
        "seed": settings.seed,
        "settings_digest": settings.digest(),
        "images": len(used),
        "statistics": {name: value.cpu().tolist() for name, value in buffers(model).items()},
    }
    atomic.write_json(out, facts)
    print(f"{settings.variant.name} seed {settings.seed}: PreciseBN over {len(used)} training images -> {out}")
    return facts


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--settings", type=Path, required=True, help="the run's settings.json")
    parser.add_argument("--model", type=Path, required=True, help="the run's model.pt")
    parser.add_argument("--data", type=Path, nargs=4, required=True, help="the four IDX files")
    parser.add_argument("--provenance", type=Path, required=True, help="provenance.json the files are checked against")
    parser.add_argument("--images", type=positive_int, required=True, help="clean training images to use")
    parser.add_argument("--threads", type=positive_int, required=True, help="CPU threads for torch")
    parser.add_argument("--out", type=Path, required=True, help="the statistics (JSON) to write")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    run_cli(lambda: main(args.settings, args.model, args.data, args.provenance, args.images, args.threads, args.out))
