"""The synthetic digits: deterministic, balanced, learnable, and in MNIST's layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torchvision
from helpers import write_synthetic

from normstudy.data.datasets import RAW_FILES
from normstudy.data.idx import read_verified
from normstudy.data.stroke_digits import generate


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    images_a, labels_a = generate(200, seed=5)
    images_b, labels_b = generate(200, seed=5)
    images_c, _ = generate(200, seed=6)
    assert images_a.tobytes() == images_b.tobytes()
    assert labels_a.tobytes() == labels_b.tobytes()
    assert images_a.tobytes() != images_c.tobytes()


def test_labels_are_balanced_and_images_have_ink() -> None:
    images, labels = generate(300, seed=1)
    assert images.shape == (300, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels, minlength=10).tolist() == [30] * 10
    ink = (images > 128).reshape(300, -1).sum(axis=1)
    assert ink.min() > 20  # every image shows a stroke, not just noise


def test_digits_are_learnable_by_nearest_centroid() -> None:
    train_x, train_y = generate(1000, seed=2)
    test_x, test_y = generate(300, seed=3)
    flat = train_x.reshape(len(train_x), -1).astype(np.float64)
    centroids = np.stack([flat[train_y == k].mean(axis=0) for k in range(10)])
    distances = ((test_x.reshape(len(test_x), 1, -1) - centroids[None]) ** 2).sum(axis=2)
    accuracy = (distances.argmin(axis=1) == test_y).mean()
    assert accuracy > 0.5  # chance is 0.1; a CNN does far better


def test_written_files_read_like_mnist(tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"  # torchvision's layout: root/MNIST/raw/<files>
    data = write_synthetic(raw, train_size=40, test_size=20, seed=0)
    arrays, _ = read_verified(data.files, data.provenance, "synthetic")
    assert arrays["train-images-idx3-ubyte"].shape == (40, 28, 28)
    assert arrays["t10k-labels-idx1-ubyte"].shape == (20,)
    provenance = json.loads((raw / "provenance.json").read_text())
    assert set(provenance["files"]) == set(RAW_FILES)
    assert provenance["files"]["train-images-idx3-ubyte"]["shape"] == [40, 28, 28]
    dataset = torchvision.datasets.MNIST(str(tmp_path), train=True, download=False)
    assert int(dataset.targets[3]) == int(arrays["train-labels-idx1-ubyte"][3])


def test_rewriting_gives_identical_files(tmp_path: Path) -> None:
    first = write_synthetic(tmp_path / "a", 50, 10, 7)
    second = write_synthetic(tmp_path / "b", 50, 10, 7)
    for a, b in zip([*first.files, first.provenance], [*second.files, second.provenance], strict=True):
        assert a.read_bytes() == b.read_bytes()
