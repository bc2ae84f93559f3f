"""What the datasets are: the four IDX file names, MNIST's canonical checksums, and where each dataset lives."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

# The one place the four file names are spelled; everything else uses these constants.
TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"
RAW_FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)
# The roles the rules and loaders know the files by, in the order of RAW_FILES.
ROLES = ("train_images", "train_labels", "test_images", "test_labels")
FILE_OF_ROLE = dict(zip(ROLES, RAW_FILES, strict=True))
# MD5 of the four uncompressed files as published with MNIST (and checked by torchvision).
CANONICAL_MD5 = {
    TRAIN_IMAGES: "6bbc9ace898e44ae57da46a324031adb",
    TRAIN_LABELS: "a25bea736e30d166cdddb491f175f624",
    TEST_IMAGES: "2646ac647ad5339dbf082846283269ea",
    TEST_LABELS: "27ae3e4e09519cfbb04c329615203637",
}
# MD5 of the gz files the mirrors serve (torchvision.datasets.MNIST.resources).
MIRROR_GZ_MD5 = {
    TRAIN_IMAGES: "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    TRAIN_LABELS: "d53e105ee54ea40749a09fcbcd1e9432",
    TEST_IMAGES: "9fb629c4189551a2d022fa330f9573f3",
    TEST_LABELS: "ec29112dd5afa0611ce80d1b7f02629c",
}
# Each file's shape; 0 stands for "any count" (the synthetic set is smaller than MNIST).
EXPECTED_DIMS = {TRAIN_IMAGES: (0, 28, 28), TRAIN_LABELS: (0,), TEST_IMAGES: (0, 28, 28), TEST_LABELS: (0,)}
# Images and the labels that must be as many, per split.
SPLITS = {"train": (TRAIN_IMAGES, TRAIN_LABELS), "test": (TEST_IMAGES, TEST_LABELS)}
MNIST_TRAIN_SIZE = 60000
# torchvision's layout: torchvision.datasets.MNIST("results/data") reads results/data/MNIST/raw.
FOLDER = {"mnist": "MNIST", "synthetic": "synthetic"}


def raw_dir(dataset: str, root: str = "results/data") -> str:
    """The folder holding a dataset's four IDX files and its provenance.json."""
    return f"{root}/{FOLDER[dataset]}/raw"


def raw_paths(dataset: str, root: str = "results/data") -> dict[str, str]:
    """Role -> path of the four IDX files and of `provenance`, for one dataset."""
    folder = raw_dir(dataset, root)
    return {
        **{role: f"{folder}/{name}" for role, name in FILE_OF_ROLE.items()},
        "provenance": f"{folder}/provenance.json",
    }


def paths_by_name(paths: Sequence[str | Path], names: Sequence[str] = RAW_FILES) -> dict[str, Path]:
    """IDX file name -> path, for exactly the files `names` (all four unless told; a script's --data list)."""
    by_name = {Path(p).name: Path(p) for p in paths}
    if sorted(by_name) != sorted(names) or len(paths) != len(names):
        raise ValueError(f"expected paths to the files {', '.join(names)}, got {', '.join(map(str, paths))}")
    return by_name
