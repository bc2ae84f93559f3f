#!/usr/bin/env python3
"""Write the synthetic digits dataset in MNIST's IDX layout, with a provenance JSON beside it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from normstudy import atomic
from normstudy.idx import encode_idx, md5_hex, sha256_hex
from normstudy.synthetic import generate


def main(out_dir: Path, train_size: int, test_size: int, seed: int) -> None:
    """Generate train and test splits from one seed and write the four IDX files and provenance.json."""
    # Distinct streams for the two splits, so that changing one size leaves the other split as it was.
    train_images, train_labels = generate(train_size, seed * 2)
    test_images, test_labels = generate(test_size, seed * 2 + 1)
    arrays = {
        "train-images-idx3-ubyte": train_images,
        "train-labels-idx1-ubyte": train_labels,
        "t10k-images-idx3-ubyte": test_images,
        "t10k-labels-idx1-ubyte": test_labels,
    }
    files = {name: encode_idx(array) for name, array in arrays.items()}
    for name, data in files.items():
        atomic.write_bytes(out_dir / name, data)
    atomic.write_json(
        out_dir / "provenance.json",
        {
            "dataset": "synthetic",
            "source": "synthetic",
            "fetched": {
                "generator": "normstudy.synthetic",
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
    print(f"wrote {train_size} train and {test_size} test synthetic digits to {out_dir}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out-dir", type=Path, required=True, help="where the four IDX files go")
    parser.add_argument("--train-size", type=int, default=6000, help="training images")
    parser.add_argument("--test-size", type=int, default=1000, help="test images")
    parser.add_argument("--seed", type=int, default=0, help="generator seed")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    main(args.out_dir, args.train_size, args.test_size, args.seed)
