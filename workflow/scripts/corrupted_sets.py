#!/usr/bin/env python3
"""The corrupted test sets' manifest (each file's SHA-256, checked against the file) and a gallery figure: the same
ten digits, one of each class, clean and under every corruption and severity."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import matplotlib.pyplot as plt
import numpy as np

from normstudy import atomic
from normstudy.cli import run_cli
from normstudy.data.datasets import TEST_IMAGES, TEST_LABELS, dataset_names
from normstudy.data.idx import DataIntegrityError, decode_idx, read_verified, sha256_hex
from normstudy.report.plots import save_figures, use_style


def checked_records(records: list[Path], images: list[Path]) -> list[dict]:
    """Each set's record, after checking that its images file still has the SHA-256 recorded when it was written."""
    found = []
    for record_path, image_path in zip(records, images, strict=True):
        record = atomic.read_json(record_path)
        digest = sha256_hex(image_path.read_bytes())
        if digest != record["images"]["sha256"]:
            raise DataIntegrityError(
                f"{image_path}: SHA-256 {digest} is not the {record['images']['sha256']} recorded in {record_path} "
                "(changed after it was written); delete both to make the set again"
            )
        found.append({**record, "images": {**record["images"], "path": str(image_path)}})
    return sorted(found, key=lambda r: (r["corruption"], r["severity"]))


def first_of_each_class(labels: np.ndarray) -> np.ndarray:
    """The index of the first test image of each class present, in class order."""
    return np.array([int(np.flatnonzero(labels == digit)[0]) for digit in np.unique(labels)])


def gallery(clean: np.ndarray, sets: list[tuple[str, np.ndarray]], chosen: np.ndarray) -> plt.Figure:
    """One row per set (clean first), one column per chosen digit."""
    rows = [("clean", clean), *sets]
    fig, axes = plt.subplots(len(rows), len(chosen), figsize=(len(chosen) * 0.75 + 1.6, len(rows) * 0.75 + 0.4),
                             squeeze=False)  # fmt: skip
    for r, (name, images) in enumerate(rows):
        for c, index in enumerate(chosen):
            ax = axes[r][c]
            ax.imshow(images[index], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r][0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle("The same test digits under each corruption", fontsize=10)
    fig.tight_layout()
    return fig


def main(data: list[Path], provenance: Path, dataset: str, records: list[Path], images: list[Path], manifest: Path,
         figures: list[Path]) -> dict:  # fmt: skip
    """Check every set against its record; write the manifest and the gallery; return the manifest."""
    sets = checked_records(records, images)
    arrays, sha256 = read_verified(data, provenance, dataset, names=(TEST_IMAGES, TEST_LABELS))
    stale = [s["images"]["path"] for s in sets if s["clean_images_sha256"] != sha256[TEST_IMAGES]]
    if stale:
        raise DataIntegrityError(f"made from other clean images than {provenance} records: {', '.join(stale)}")
    listed = {"dataset": dataset, "clean_images_sha256": sha256[TEST_IMAGES],
              "labels": {"file": TEST_LABELS, "sha256": sha256[TEST_LABELS]}, "sets": sets}  # fmt: skip
    atomic.write_json(manifest, listed)
    use_style()
    shown = [(f"{s['corruption']} {s['severity']}", decode_idx(Path(s["images"]["path"]).read_bytes())) for s in sets]
    save_figures(gallery(arrays[TEST_IMAGES], shown, first_of_each_class(arrays[TEST_LABELS])), figures)
    print(f"{len(sets)} corrupted sets checked; wrote {manifest} and {', '.join(map(str, figures))}")
    return listed


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, nargs=2, required=True, help="the clean test images and labels (IDX)")
    parser.add_argument("--provenance", type=Path, required=True, help="the dataset's provenance.json")
    parser.add_argument("--dataset", choices=dataset_names(), required=True, help="the dataset it records")
    parser.add_argument("--records", type=Path, nargs="+", required=True, help="every set's record (JSON)")
    parser.add_argument("--images", type=Path, nargs="+", required=True, help="every set's images, same order")
    parser.add_argument("--manifest", type=Path, required=True, help="the manifest (JSON) to write")
    parser.add_argument("--figures", type=Path, nargs="+", required=True, help="the gallery (.png, .svg) to write")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    run_cli(
        lambda: main(args.data, args.provenance, args.dataset, args.records, args.images, args.manifest, args.figures),
        also=(DataIntegrityError,),
    )
