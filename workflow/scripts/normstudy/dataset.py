"""What the datasets are: the four IDX file names, MNIST's canonical checksums, and where each dataset lives."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

RAW_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
# The roles the rules and loaders know the files by, in the order of RAW_FILES.
ROLES = ("train_images", "train_labels", "test_images", "test_labels")
FILE_OF_ROLE = dict(zip(ROLES, RAW_FILES, strict=True))
# MD5 of the four uncompressed files as published with MNIST (and checked by torchvision).
CANONICAL_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
# MD5 of the gz files the mirrors serve (torchvision.datasets.MNIST.resources).
MIRROR_GZ_MD5 = {
    "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
}
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


def paths_by_name(paths: Sequence[str | Path]) -> dict[str, Path]:
    """IDX file name -> path, for exactly the four files of RAW_FILES (a script's --data list)."""
    by_name = {Path(p).name: Path(p) for p in paths}
    if sorted(by_name) != sorted(RAW_FILES) or len(paths) != len(RAW_FILES):
        raise ValueError(f"expected paths to the four files {', '.join(RAW_FILES)}, got {', '.join(map(str, paths))}")
    return by_name
