#!/usr/bin/env python3
"""Write one corrupted copy of the verified test images (one corruption, one severity) in MNIST's IDX layout, and a
record of it: its SHA-256, the seed, and the clean images and labels it was made from (the labels are the originals,
not copied)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from normstudy import atomic
from normstudy.cli import non_negative_int, run_cli
from normstudy.data.corruptions import KINDS, SEVERITIES, corrupt
from normstudy.data.datasets import TEST_IMAGES, TEST_LABELS, dataset_names
from normstudy.data.idx import encode_idx, read_verified, sha256_hex
from normstudy.data.shift_sets import MNIST_C_SEVERITY


def main(data: list[Path], provenance: Path, dataset: str, kind: str, severity: int, seed: int, out: Path,
         record: Path) -> dict:  # fmt: skip
    """Corrupt the test images read from `data` (checked against `provenance`); write them to `out`, the record to
    `record`, and return the record."""
    arrays, sha256 = read_verified(data, provenance, dataset, names=(TEST_IMAGES, TEST_LABELS))
    images = encode_idx(corrupt(arrays[TEST_IMAGES], kind, severity, seed))
    atomic.write_bytes(out, images)
    facts = {
        "corruption": kind,
        "severity": severity,
        "mnist_c_severity": MNIST_C_SEVERITY[kind],
        "seed": seed,
        "images": {
            "file": out.name,
            "sha256": sha256_hex(images),
            "bytes": len(images),
            "shape": list(arrays[TEST_IMAGES].shape),
        },
        "clean_images_sha256": sha256[TEST_IMAGES],
        "labels": {"file": TEST_LABELS, "sha256": sha256[TEST_LABELS]},
        "dataset": dataset,
    }
    atomic.write_json(record, facts)
    print(
        f"{kind} at severity {severity} (seed {seed}): {len(arrays[TEST_IMAGES])} images, {facts['images']['sha256']}"
    )
    return facts


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, nargs=2, required=True, help="the clean test images and labels (IDX)")
    parser.add_argument("--provenance", type=Path, required=True, help="the dataset's provenance.json")
    parser.add_argument("--dataset", choices=dataset_names(), required=True, help="the dataset it records")
    parser.add_argument("--corruption", choices=tuple(KINDS), required=True, help="the kind of corruption")
    parser.add_argument("--severity", type=int, choices=SEVERITIES, required=True, help="0 (none) to 5")
    parser.add_argument("--seed", type=non_negative_int, required=True, help="the corruptions' seed")
    parser.add_argument("--out", type=Path, required=True, help="the corrupted images (IDX) to write")
    parser.add_argument("--record", type=Path, required=True, help="the set's record (JSON) to write")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    run_cli(
        lambda: main(
            args.data, args.provenance, args.dataset, args.corruption, args.severity, args.seed, args.out, args.record
        )
    )
