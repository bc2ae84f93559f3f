"""The dataset as in-memory tensors, and whole-batch augmentation: a random angle, crop offset and flip per image."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from normstudy.data.datasets import RAW_FILES, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS
from normstudy.data.idx import read_dataset
from normstudy.settings import DataSettings


@dataclass(frozen=True)
class Splits:
    """Training and evaluation images as uint8 [N, C, H, W] and labels as int64 [N], all on one device."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    # The test set for a study run; the held-out end of the training set for a tuning run.
    eval_images: torch.Tensor
    eval_labels: torch.Tensor
    # SHA-256 of each verified file: what the data was, for the checkpoint key and the run's record.
    sha256: dict[str, str] = field(default_factory=dict)
    eval_split: str = "test"  # test | val: the prefix of the evaluation columns in history.csv


def needed_files(data: DataSettings) -> tuple[str, ...]:
    """The IDX files a run reads: a tuning run only the training pair, so the test set stays unseen."""
    return (TRAIN_IMAGES, TRAIN_LABELS) if data.validation_size else RAW_FILES


def load_splits(
    paths: Sequence[str | Path], provenance: str | Path, data: DataSettings, device: torch.device | str = "cpu"
) -> Splits:
    """Verify the run's IDX files against their provenance, then load them onto `device` (47 MB for MNIST).

    A tuning run (data.validation_size N > 0) gets the two training files only: it trains on all but their
    last N images and is scored on those. A run with data.train_images M > 0 trains on the first M images of
    its training split (the batch study).
    """
    arrays, sha256 = read_dataset(paths, provenance, data, needed_files(data))

    def images(name: str) -> torch.Tensor:
        pixels = torch.from_numpy(np.array(arrays[name]))  # [N, H, W] for one channel, else [N, C, H, W]
        return (pixels.unsqueeze(1) if pixels.ndim == 3 else pixels).to(device)

    def labels(name: str) -> torch.Tensor:
        return torch.from_numpy(arrays[name].astype(np.int64)).to(device)

    train_images, train_labels, held_out = images(TRAIN_IMAGES), labels(TRAIN_LABELS), data.validation_size
    if held_out >= len(train_images):
        raise ValueError(f"validation_size {held_out} leaves none of the {len(train_images)} training images")
    keep = len(train_images) - held_out
    if data.train_images > keep:
        raise ValueError(f"train_images {data.train_images} is more than the {keep} training images")
    used = data.train_images or keep
    if not held_out:
        return Splits(train_images[:used], train_labels[:used], images(TEST_IMAGES), labels(TEST_LABELS), sha256)
    return Splits(
        train_images[:used], train_labels[:used], train_images[keep:], train_labels[keep:], sha256, eval_split="val"
    )


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels to floats in [0, 1], as torchvision's ToTensor gives."""
    return images.float().div_(255.0)


def normalize(pixels: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """Standardize [0, 1] pixels with the dataset's mean and std (in place)."""
    return pixels.sub_(mean).div_(std)


def random_angles(count: int, max_degrees: float, generator: torch.Generator) -> torch.Tensor:
    """One angle per image, uniform in [-max_degrees, max_degrees]."""
    draws = torch.rand(count, generator=generator, device=generator.device)
    return (draws * 2.0 - 1.0) * max_degrees


def rotate(pixels: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """Rotate each image about its centre by its own angle, bilinear, filling with 0 (black).

    Same convention as torchvision's RandomRotation on [0, 1] pixels before normalization.
    """
    radians = degrees.to(pixels.dtype) * (math.pi / 180.0)
    cos, sin = torch.cos(radians).view(-1, 1, 1), torch.sin(radians).view(-1, 1, 1)
    # F.affine_grid's sums for the matrix [[cos, -sin, 0], [sin, cos, 0]], term by term: the same grid bit for bit
    # (tests/test_data.py), without its batched matrix product of inner size 3, 1.6 ms of a 30-40 ms step here.
    base = F.affine_grid(
        torch.eye(2, 3, dtype=pixels.dtype, device=pixels.device)[None], [1, *pixels.shape[1:]], align_corners=False
    )
    x, y = base[..., 0], base[..., 1]
    grid = torch.stack([cos * x + (-sin) * y, sin * x + cos * y], dim=-1)
    return F.grid_sample(pixels, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def random_crop(pixels: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Each image cut at its own random offset from itself padded by `padding` black pixels a side: torchvision's
    RandomCrop(size, padding) on [0, 1] pixels, for a whole batch at once."""
    count, _, height, width = pixels.shape
    offsets = torch.randint(0, 2 * padding + 1, (2, count), generator=generator, device=generator.device)
    offsets = offsets.to(pixels.device)
    rows = offsets[0].view(count, 1) + torch.arange(height, device=pixels.device)  # [N, H]: rows of the padded image
    cols = offsets[1].view(count, 1) + torch.arange(width, device=pixels.device)
    image = torch.arange(count, device=pixels.device).view(count, 1, 1)
    padded = F.pad(pixels, (padding, padding, padding, padding)).permute(0, 2, 3, 1)  # [N, H + 2p, W + 2p, C]
    return padded[image, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()


def random_flip(pixels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each image mirrored left-right with probability 1/2 (torchvision's RandomHorizontalFlip)."""
    flips = torch.rand(len(pixels), generator=generator, device=generator.device).to(pixels.device) < 0.5
    return torch.where(flips.view(-1, 1, 1, 1), pixels.flip(-1), pixels)


def training_batch(
    images: torch.Tensor,
    max_degrees: float,
    mean: float,
    std: float,
    generator: torch.Generator,
    crop_padding: int = 0,
    horizontal_flip: bool = False,
) -> torch.Tensor:
    """A ready training batch from uint8 images: to [0, 1], rotate, crop and flip each image as told (drawing from
    `generator` only for what is on, in that order), then normalize."""
    pixels = to_float(images)
    if max_degrees > 0:
        pixels = rotate(pixels, random_angles(len(pixels), max_degrees, generator))
    if crop_padding > 0:
        pixels = random_crop(pixels, crop_padding, generator)
    if horizontal_flip:
        pixels = random_flip(pixels, generator)
    return normalize(pixels, mean, std)


def eval_batch(images: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """A ready evaluation batch: to [0, 1] and normalize, no augmentation."""
    return normalize(to_float(images), mean, std)
