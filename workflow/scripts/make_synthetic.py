#!/usr/bin/env python3
"""Write the synthetic digits dataset in MNIST's IDX layout, with a provenance JSON beside it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from normstudy import atomic
from normstudy.cli import non_negative_int, positive_int, run_cli
from normstudy.data.datasets import TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS, paths_by_name
from normstudy.data.idx import encode_idx, md5_hex, sha256_hex
from normstudy.data.sets.synthetic import SPEC as SYNTHETIC
from normstudy.data.stroke_digits import generate


def main(data_files: list[Path], provenance: Path, train_size: int, test_size: int, seed: int) -> None:
    """Generate train and test splits from one seed and write the four IDX files and provenance.json."""
    # Distinct streams for the two splits, so that changing one size leaves the other split as it was.
    train_images, train_labels = generate(train_size, seed * 2)
    test_images, test_labels = generate(test_size, seed * 2 + 1)
    arrays = {
        TRAIN_IMAGES: train_images,
        TRAIN_LABELS: train_labels,
        TEST_IMAGES: test_images,
        TEST_LABELS: test_labels,
    }
    files = {name: encode_idx(array) for name, array in arrays.items()}
    targets = paths_by_name(data_files)
    for name, data in files.items():
        atomic.write_bytes(targets[name], data)
    atomic.write_json(
        provenance,
        {
            "dataset": SYNTHETIC.name,
            "source": SYNTHETIC.name,
            "fetched": {
                "generator": "normstudy.data.synthetic",
                "train_size": train_size,
                "test_size": test_size,
                "seed": seed,
            },
            "files": {
                name: {
                    "md5": md5_hex(data),
                    "sha256": sha256_hex(data),
                    "bytes": len(data),
                    "shape": list(arrays[name].shape),
                }
                for name, data in files.items()
            },
        },
    )
    print(f"wrote {train_size} train and {test_size} test synthetic digits beside {provenance}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, nargs=4, required=True, help="the four IDX files to write")
    parser.add_argument("--provenance", type=Path, required=True, help="provenance.json to write, last")
    parser.add_argument("--train-size", type=positive_int, required=True, help="training images")
    parser.add_argument("--test-size", type=positive_int, required=True, help="test images")
    parser.add_argument("--seed", type=non_negative_int, required=True, help="generator seed")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    run_cli(lambda: main(args.data, args.provenance, args.train_size, args.test_size, args.seed))
