"""The dataset registry: one spec per dataset (its files and their canonical checksums, where it comes from, its image
shape, classes, sizes and normalization constants, the network it is studied with, and what the report may claim of
it), like torchvision's MNIST and its subclasses, which differ only in mirrors, checksums and class names.

Each dataset is one module of `data/sets/`, named as the dataset, that defines `SPEC`: a run imports and hashes its own
dataset's module alone, so adding a dataset is a new module and its config, and reruns nothing of another dataset's
study (docs/extending.md). The settings, the recipes, the validation, the fetch and the report ask a spec.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The folder of the dataset modules (listed, never imported as a whole: see dataset_names), and the folder that
# holds the package (module paths are relative to it). These registry helpers live here, with the shared data types,
# and not in a module of their own: the fetch rule's inputs must never change, or Snakemake would delete the verified
# files to fetch them again.
SETS_DIR = Path(__file__).resolve().parent / "sets"
PACKAGE_ROOT = Path(__file__).resolve().parents[2]

# The IDX format's four file names (MNIST's, and every dataset of its layout); everything else uses these constants.
TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"
RAW_FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)
# The roles the rules and loaders know the files by, in the order of RAW_FILES.
ROLES = ("train_images", "train_labels", "test_images", "test_labels")
FILE_OF_ROLE = dict(zip(ROLES, RAW_FILES, strict=True))


def expected_dims(image_shape: tuple[int, int, int]) -> dict[str, tuple[int, ...]]:
    """Each IDX file's shape for images of `image_shape`: [N, H, W] for one channel (MNIST's), [N, C, H, W] for more
    (a colour dataset's files as this study writes them); 0 stands for "any count"."""
    channels, *size = image_shape
    images = (0, *size) if channels == 1 else (0, channels, *size)
    return {TRAIN_IMAGES: images, TRAIN_LABELS: (0,), TEST_IMAGES: images, TEST_LABELS: (0,)}


# Images and the labels that must be as many, per split.
SPLITS = {"train": (TRAIN_IMAGES, TRAIN_LABELS), "test": (TEST_IMAGES, TEST_LABELS)}


@dataclass(frozen=True)
class Archive:
    """A dataset published as one archive of pickled batches (CIFAR's python format), read into the four IDX files."""

    filename: str  # as its mirrors serve it: cifar-10-python.tar.gz
    md5: str  # the archive's published MD5: the dataset's identity
    folder: str  # the folder inside it that holds the batches
    train: tuple[tuple[str, str], ...]  # (member, its published MD5) of each training batch, in order
    test: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class DatasetSpec:
    """What one dataset is, as the study asks it."""

    name: str  # the config's `data.dataset` value
    title: str  # how the report's data section names it
    short: str  # how a sentence names its images: "10,000 MNIST test images"
    folder: str  # results/data/<folder>/raw: torchvision's layout, torchvision.datasets.MNIST("results/data") reads it
    file_format: str  # the reader of its files: "idx"
    image_shape: tuple[int, int, int]  # channels, height, width
    classes: tuple[str, ...]  # display names, by label
    # Training and test images; None: set by the config (a generated dataset's size).
    train_size: int | None
    test_size: int | None
    network: str  # the registry network it is studied with (architecture.NETWORKS)
    # Training-set pixel mean and standard deviation: the input normalization unless the config sets its own.
    mean: float
    std: float
    # Canonical MD5 of each uncompressed file. Empty for a dataset published by its gz files alone (torchvision
    # lists only those for Fashion-MNIST and KMNIST): gz_md5 is then its identity. Both empty: generated, its files
    # recorded by SHA-256 when written.
    md5: dict[str, str] = field(default_factory=dict)
    gz_md5: dict[str, str] = field(default_factory=dict)  # each gz file's MD5, as its mirrors serve it
    archive: Archive | None = None  # a dataset published as one archive: it is its identity
    mirrors: tuple[str, ...] = ()  # its mirrors (torchvision's), tried where config data.mirrors names none
    sources: tuple[str, ...] = ("mirrors", "local")  # the fetch sources that can deliver it (data.sources)
    # The write-ups' figures are on this dataset: the report sets its numbers beside them and checks their claims.
    write_ups: bool = False
    # What the report says of the robustness study's corruptions on these images (empty: nothing to add).
    corruption_note: str = ""

    @property
    def fetched(self) -> bool:
        """Whether it is fetched and verified against canonical checksums (else generated by the workflow)."""
        return bool(self.md5 or self.gz_md5 or self.archive)


def registry_names(folder: Path) -> list[str]:
    """The entries of a registry kept as one module each in `folder` (data/sets/, model/nets/): listed, not imported,
    so that a run imports its own entry's module alone."""
    return sorted(path.stem for path in folder.glob("*.py") if path.stem != "__init__")


def registry_spec(folder: Path, name: str, kind: str) -> Any:
    """The SPEC of entry `name` of the registry in `folder` (a package folder), checked to be named as its module."""
    known = registry_names(folder)
    if name not in known:
        raise ValueError(f"unknown {kind} '{name}'; known: {', '.join(known)}")
    package = ".".join(folder.relative_to(PACKAGE_ROOT).parts)
    spec = importlib.import_module(f"{package}.{name}").SPEC
    if spec.name != name:
        raise ValueError(f"{folder.name}/{name}.py defines {kind} '{spec.name}'; its module is named as it is")
    return spec


def dataset_names() -> list[str]:
    """The registry's datasets, from the module names in data/sets/ (listed, not imported: a run imports its own)."""
    return registry_names(SETS_DIR)


def dataset_spec(name: str) -> DatasetSpec:
    """The registry's dataset `name`: the SPEC of data/sets/<name>.py."""
    return registry_spec(SETS_DIR, name, "dataset")


@functools.cache
def all_datasets() -> dict[str, DatasetSpec]:
    """Every dataset of the registry by name (imports every module of data/sets/: for the config and the CLIs)."""
    return {name: dataset_spec(name) for name in dataset_names()}


def write_ups_dataset() -> DatasetSpec:
    """The dataset the write-ups' published figures are on (MNIST)."""
    (spec,) = [spec for spec in all_datasets().values() if spec.write_ups]
    return spec


def spec_of_folder(folder: str) -> DatasetSpec:
    """The dataset whose files live in results/data/<folder>/raw."""
    (spec,) = [spec for spec in all_datasets().values() if spec.folder == folder]
    return spec


def raw_dir(dataset: str, root: str = "results/data") -> str:
    """The folder holding a dataset's four IDX files and its provenance.json."""
    return f"{root}/{dataset_spec(dataset).folder}/raw"


def raw_paths(dataset: str, root: str = "results/data") -> dict[str, str]:
    """Role -> path of the four IDX files and of `provenance`, for one dataset."""
    return raw_paths_of_folder(dataset_spec(dataset).folder, root)


def raw_paths_of_folder(folder: str, root: str = "results/data") -> dict[str, str]:
    """Role -> path of the four IDX files and of `provenance` in results/data/<folder>/raw (a rule's wildcard)."""
    folder = f"{root}/{folder}/raw"
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
