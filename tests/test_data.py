"""In-memory data and whole-batch augmentation."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from helpers import synthetic_files, tiny_settings

from normstudy.data.datasets import RAW_FILES, dataset_names, dataset_spec, expected_dims
from normstudy.data.idx import DataIntegrityError, IdxError, check_raw_file, encode_idx, read_verified
from normstudy.data.sets.mnist import SPEC as MNIST
from normstudy.data.tensors import (
    eval_batch,
    load_splits,
    random_angles,
    random_crop,
    random_flip,
    rotate,
    training_batch,
)
from normstudy.model.architecture import network_spec
from normstudy.settings import SyntheticSettings


def test_load_splits_gives_uint8_images_and_int64_labels(tmp_path: Path) -> None:
    settings = tiny_settings(train_size=200, test_size=20, data_seed=1)
    data = synthetic_files(tmp_path, settings)
    splits = load_splits(data.files, data.provenance, settings.data)
    assert splits.train_images.shape == (200, 1, 28, 28) and splits.train_images.dtype == torch.uint8
    assert splits.eval_labels.shape == (20,) and splits.eval_labels.dtype == torch.int64
    assert splits.sha256 == {k: v["sha256"] for k, v in json.loads(data.provenance.read_text())["files"].items()}


@pytest.mark.parametrize("name", RAW_FILES)
@pytest.mark.parametrize("edit", ["flip a byte", "truncate", "replace with another set"])
def test_a_file_changed_after_it_was_written_is_refused_by_name(tmp_path: Path, name: str, edit: str) -> None:
    settings = tiny_settings(train_size=200, test_size=20, data_seed=1)
    data = synthetic_files(tmp_path / "data", settings)
    path = data.files[RAW_FILES.index(name)]
    content = bytearray(path.read_bytes())
    if edit == "flip a byte":
        content[-1] = (content[-1] + 1) % 10  # a label (or pixel) that is still valid IDX
    elif edit == "truncate":
        content = content[:-1]
    else:
        other = synthetic_files(tmp_path / "other", tiny_settings(train_size=200, test_size=20, data_seed=2))
        content = bytearray(other.files[RAW_FILES.index(name)].read_bytes())
    path.write_bytes(bytes(content))
    with pytest.raises(DataIntegrityError, match=rf"{path}: SHA-256 .* has been changed since"):
        load_splits(data.files, data.provenance, settings.data)


def test_data_of_other_generator_settings_is_refused(tmp_path: Path) -> None:
    settings = tiny_settings(train_size=200, test_size=20, data_seed=1)
    data = synthetic_files(tmp_path, settings)
    other = dataclasses.replace(settings.data, synthetic=SyntheticSettings(200, 20, 2))
    with pytest.raises(DataIntegrityError, match=r"generated with .*'seed': 1.* the run expects .*'seed': 2"):
        load_splits(data.files, data.provenance, other)


def test_synthetic_data_is_not_taken_for_mnist(tmp_path: Path) -> None:
    data = synthetic_files(tmp_path, tiny_settings(train_size=200, test_size=20))
    with pytest.raises(DataIntegrityError, match="holds dataset 'synthetic', not 'mnist'"):
        read_verified(data.files, data.provenance, "mnist", MNIST.md5)
    provenance = json.loads(data.provenance.read_text())
    data.provenance.write_text(json.dumps({**provenance, "dataset": "mnist"}))
    with pytest.raises(DataIntegrityError, match=r"train-images-idx3-ubyte: MD5 .* is not the canonical"):
        read_verified(data.files, data.provenance, "mnist", MNIST.md5)


def test_files_read_out_of_another_archive_are_refused(tmp_path: Path) -> None:
    # A dataset published as one archive (CIFAR's) is defined by its MD5, which provenance.json records per file.
    data = synthetic_files(tmp_path, tiny_settings(train_size=200, test_size=20))
    provenance = json.loads(data.provenance.read_text())
    for entry in provenance["files"].values():
        entry["archive_md5"] = "a" * 32
    data.provenance.write_text(json.dumps(provenance))
    arrays, _ = read_verified(data.files, data.provenance, "synthetic", expected_archive_md5="a" * 32)
    assert len(arrays) == 4
    with pytest.raises(DataIntegrityError, match=r"train-images-idx3-ubyte: read out of an archive of MD5 a{32}"):
        read_verified(data.files, data.provenance, "synthetic", expected_archive_md5="b" * 32)


def test_angles_differ_within_a_batch_and_stay_in_range() -> None:
    generator = torch.Generator().manual_seed(0)
    angles = random_angles(128, 7.0, generator)
    assert angles.unique().numel() == 128
    assert angles.abs().max() <= 7.0
    assert angles.min() < -5 and angles.max() > 5  # both directions are drawn


def test_zero_degrees_is_the_identity() -> None:
    pixels = torch.rand(5, 1, 28, 28)
    # Up to float rounding of the sampling grid (about 2e-6 of a pixel value).
    torch.testing.assert_close(rotate(pixels, torch.zeros(5)), pixels, atol=1e-5, rtol=0)
    # With rotation off, a training batch skips the resampling entirely: exactly the identity.
    images = (pixels * 255).to(torch.uint8)
    exact = training_batch(images, 0.0, 0.0, 1.0, torch.Generator().manual_seed(0))
    assert torch.equal(exact, images.float() / 255)


def test_the_rotation_is_torch_affine_grid_and_grid_sample_bit_for_bit() -> None:
    pixels = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(4))
    degrees = random_angles(64, 15.0, torch.Generator().manual_seed(5))
    radians = degrees * (math.pi / 180.0)
    cos, sin, zeros = torch.cos(radians), torch.sin(radians), torch.zeros(64)
    theta = torch.stack([torch.stack([cos, -sin, zeros], 1), torch.stack([sin, cos, zeros], 1)], 1)
    grid = F.affine_grid(theta, [64, 1, 28, 28], align_corners=False)
    expected = F.grid_sample(pixels, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    assert torch.equal(rotate(pixels, degrees), expected)


def test_each_image_gets_its_own_rotation() -> None:
    bar = torch.zeros(1, 1, 28, 28)
    bar[..., 13:15, 4:24] = 1.0  # a horizontal bar through the centre
    batch = bar.repeat(3, 1, 1, 1)
    rotated = rotate(batch, torch.tensor([0.0, 90.0, -90.0]))
    torch.testing.assert_close(rotated[0], bar[0], atol=1e-6, rtol=0)
    vertical = bar[0].transpose(-1, -2)
    assert (rotated[1] - vertical).abs().max() < 1e-4
    assert (rotated[2] - vertical).abs().max() < 1e-4
    assert not torch.equal(
        rotate(batch, torch.tensor([0.0, 7.0, -7.0]))[1], rotate(batch, torch.tensor([0.0, 7.0, -7.0]))[2]
    )


def test_rotation_matches_torchvision_direction() -> None:
    import torchvision.transforms.v2.functional as TF

    image = torch.zeros(1, 1, 28, 28)
    image[..., 4:10, 4:10] = 1.0  # a blob in the top-left corner
    ours = rotate(image, torch.tensor([30.0]))
    theirs = TF.rotate(image, 30.0, interpolation=TF.InterpolationMode.BILINEAR)
    # Same direction of rotation: the blob's centre of mass lands in the same place.
    ys, xs = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")

    def centre(img: torch.Tensor) -> torch.Tensor:
        weight = img[0, 0]
        return torch.stack([(weight * ys).sum(), (weight * xs).sum()]) / weight.sum()

    assert (centre(ours) - centre(theirs)).abs().max() < 0.6


@pytest.mark.parametrize("degrees", [0.0, 7.0])
def test_training_batch_is_normalized_floats(degrees: float) -> None:
    images = torch.full((4, 1, 28, 28), 255, dtype=torch.uint8)
    out = training_batch(images, degrees, 0.5, 0.25, torch.Generator().manual_seed(0))
    assert out.dtype == torch.float32
    centre = out[:, :, 10:18, 10:18]
    torch.testing.assert_close(centre, torch.full_like(centre, 2.0))  # (1 - 0.5) / 0.25


def test_the_random_crop_is_a_window_of_the_zero_padded_image_at_its_own_offset() -> None:
    pixels = torch.rand(6, 3, 8, 8)
    cropped = random_crop(pixels, 2, torch.Generator().manual_seed(3))
    offsets = torch.randint(0, 5, (2, 6), generator=torch.Generator().manual_seed(3))  # the same draws
    padded = F.pad(pixels, (2, 2, 2, 2))
    for image in range(6):
        top, left = int(offsets[0, image]), int(offsets[1, image])
        torch.testing.assert_close(cropped[image], padded[image, :, top : top + 8, left : left + 8], rtol=0, atol=0)
    assert len({tuple(offsets[:, image].tolist()) for image in range(6)}) > 1  # each image its own offset


def test_the_random_flip_mirrors_about_half_the_images_left_right() -> None:
    pixels = torch.rand(400, 1, 4, 4)
    flipped = random_flip(pixels, torch.Generator().manual_seed(0))
    mirrored = [bool((flipped[i] == pixels[i].flip(-1)).all()) for i in range(400)]
    kept = [bool((flipped[i] == pixels[i]).all()) for i in range(400)]
    assert all(m != k for m, k in zip(mirrored, kept, strict=True)) and 160 < sum(mirrored) < 240


def test_augmentation_left_off_draws_nothing_so_earlier_runs_are_unchanged() -> None:
    # MNIST's recipe (rotation only) must draw exactly what it drew before crops and flips existed.
    images = torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8)
    plain, extended = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    before = training_batch(images, 7.0, 0.1, 0.3, plain)
    after = training_batch(images, 7.0, 0.1, 0.3, extended, crop_padding=0, horizontal_flip=False)
    torch.testing.assert_close(before, after, rtol=0, atol=0)
    assert torch.equal(plain.get_state(), extended.get_state())
    colour = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8)
    out = training_batch(colour, 0.0, 0.5, 0.25, torch.Generator().manual_seed(1), crop_padding=4, horizontal_flip=True)
    assert out.shape == (5, 3, 32, 32) and not torch.equal(out, eval_batch(colour, 0.5, 0.25))


def test_colour_images_are_n_c_h_w_idx_files_checked_against_the_spec() -> None:
    # A dataset of C > 1 channels keeps [N, C, H, W] IDX image files; its spec's shape is checked on every read.
    arrays = {
        RAW_FILES[0]: torch.randint(0, 256, (12, 3, 32, 32), dtype=torch.uint8).numpy(),
        RAW_FILES[1]: torch.randint(0, 10, (12,), dtype=torch.uint8).numpy(),
        RAW_FILES[2]: torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8).numpy(),
        RAW_FILES[3]: torch.randint(0, 10, (4,), dtype=torch.uint8).numpy(),
    }
    assert expected_dims((3, 32, 32))[RAW_FILES[0]] == (0, 3, 32, 32)
    assert expected_dims((1, 28, 28))[RAW_FILES[0]] == (0, 28, 28)
    data = {name: encode_idx(array) for name, array in arrays.items()}
    assert check_raw_file(RAW_FILES[0], data[RAW_FILES[0]], (3, 32, 32)).shape == (12, 3, 32, 32)
    with pytest.raises(IdxError, match=r"shape \[12, 3, 32, 32\] does not fit \[0, 32, 32\]"):
        check_raw_file(RAW_FILES[0], data[RAW_FILES[0]], (1, 32, 32))


def test_eval_batch_does_not_augment() -> None:
    images = torch.randint(0, 256, (3, 1, 28, 28), dtype=torch.uint8)
    torch.testing.assert_close(eval_batch(images, 0.0, 1.0), images.float() / 255)


@pytest.mark.parametrize("name", dataset_names())
def test_every_dataset_fits_the_network_it_names(name: str) -> None:
    # A dataset's spec chooses its network: the network must take the dataset's images and score its classes.
    spec = dataset_spec(name)
    network = network_spec(spec.network)
    assert network.input_shape == spec.image_shape
    assert network.num_classes == len(spec.classes) == len(set(spec.classes))
    assert spec.fetched == bool(spec.sources) and set(spec.md5) <= set(RAW_FILES)
