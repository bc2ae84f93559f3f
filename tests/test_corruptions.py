"""The corrupted test sets: every kind at every severity on synthetic digits, checked for shape, type, range,
determinism and against scikit-image's own operations; the generation and manifest scripts on real files."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import corrupt_test_set
import corrupted_sets
import make_synthetic
import numpy as np
import pytest
import yaml
from conftest import REPO, planned_counts, snakemake
from scipy import stats
from skimage import color, transform

from normstudy import atomic
from normstudy.data.corruptions import (
    BRIGHTNESS,
    CONTRAST,
    KINDS,
    ROTATE,
    SEVERITIES,
    corrupt,
    motion_kernels,
)
from normstudy.data.datasets import TEST_IMAGES, TEST_LABELS, raw_paths
from normstudy.data.idx import DataIntegrityError, decode_idx, encode_idx, md5_hex, sha256_hex
from normstudy.data.shift_sets import MNIST_C_KINDS, MNIST_C_SEVERITY, configured_sets, endpoint_kinds
from normstudy.data.stroke_digits import generate

IMAGES, LABELS = generate(40, 7)
# Kinds that draw nothing at random: the same images whatever the seed.
UNSEEDED = {"scale", "brightness", "contrast", "stripe", "canny_edges"}


def test_the_schema_lists_every_kind_and_nothing_else() -> None:
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    listed = schema["properties"]["robustness"]["properties"]["corruptions"]["items"]["enum"]
    assert listed == list(KINDS)
    assert set(MNIST_C_SEVERITY) == set(KINDS) and set(MNIST_C_SEVERITY.values()) <= set(SEVERITIES[1:])
    assert len(KINDS) == 16  # MNIST-C's fifteen and contrast


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_keeps_shape_type_and_range_and_changes_the_images(kind: str) -> None:
    for severity in SEVERITIES[1:]:
        out = corrupt(IMAGES, kind, severity, seed=0)
        assert out.dtype == np.uint8 and out.shape == IMAGES.shape
        assert not np.array_equal(out, IMAGES), f"{kind} {severity} left the images as they were"
    assert np.array_equal(corrupt(IMAGES, kind, 0, seed=0), IMAGES)  # severity 0: the identity


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_is_a_function_of_its_seed(kind: str) -> None:
    first, again = corrupt(IMAGES, kind, 3, seed=11), corrupt(IMAGES, kind, 3, seed=11)
    assert np.array_equal(first, again)
    other = corrupt(IMAGES, kind, 3, seed=12)
    assert np.array_equal(first, other) == (kind in UNSEEDED)


def test_an_unknown_kind_or_severity_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unknown corruption 'frost'"):
        corrupt(IMAGES, "frost", 3, seed=0)
    with pytest.raises(ValueError, match="severity 6 of fog"):
        corrupt(IMAGES, "fog", 6, seed=0)
    with pytest.raises(ValueError, match="uint8 images"):
        corrupt(IMAGES.astype(np.float32), "fog", 3, seed=0)


def test_brightness_is_scikit_images_hsv_value_shift_for_grey_images() -> None:
    """MNIST-C: grey -> RGB -> HSV, value + c, back to grey; for grey pixels that is the pixel plus c."""
    unit = IMAGES[:5] / 255.0
    hsv = color.rgb2hsv(color.gray2rgb(unit))
    hsv[..., 2] = np.clip(hsv[..., 2] + BRIGHTNESS[2], 0, 1)
    reference = np.round(np.clip(color.rgb2gray(color.hsv2rgb(hsv)), 0, 1) * 255)
    assert np.abs(corrupt(IMAGES[:5], "brightness", 3, seed=0).astype(int) - reference).max() <= 1


def test_contrast_keeps_each_images_mean_and_scales_its_spread() -> None:
    out = corrupt(IMAGES, "contrast", 4, seed=0).astype(float)
    assert np.allclose(out.mean(axis=(1, 2)), IMAGES.mean(axis=(1, 2)), atol=0.6)
    assert np.allclose(out.std(axis=(1, 2)), IMAGES.std(axis=(1, 2)) * CONTRAST[3], atol=0.6)


def test_rotation_is_scikit_images_rotation_about_the_centre_in_either_direction() -> None:
    out = corrupt(IMAGES[:8], "rotate", 2, seed=3).astype(int)
    degrees = np.rad2deg(ROTATE[1])
    for image, rotated in zip(IMAGES[:8] / 255.0, out, strict=True):
        # skimage's rotate turns counter-clockwise by `angle`; the warp here maps output to input: either sign.
        candidates = [np.round(transform.rotate(image, a, order=1) * 255) for a in (degrees, -degrees)]
        assert min(np.abs(rotated - c).max() for c in candidates) <= 1


def test_shot_noise_is_poisson_around_the_image() -> None:
    """At severity 5 (3 photons) a pixel of value 1 becomes k / 3 with k ~ Poisson(3); its mean stays."""
    bright = np.full((400, 28, 28), 255, dtype=np.uint8)
    counts = np.round(corrupt(bright, "shot_noise", 5, seed=1) / 255 * 3).ravel()
    expected = stats.poisson(3).pmf(np.arange(4))
    observed = np.array([np.mean(counts == k) for k in range(3)] + [np.mean(counts >= 3)])
    assert np.allclose(observed[:3], expected[:3], atol=0.01) and observed[3] == pytest.approx(
        1 - expected[:3].sum(), abs=0.01
    )


def test_a_motion_kernel_is_a_normalised_streak_from_the_centre() -> None:
    (kernel,) = motion_kernels(radius=4, sigma=2.0, angles_degrees=np.array([0.0]))
    assert kernel.sum() == pytest.approx(1.0)
    assert np.flatnonzero(kernel.sum(axis=1)).tolist() == [4]  # one row: the centre's
    assert np.flatnonzero(kernel[4]).tolist() == [4, 5, 6, 7, 8]  # from the centre to the right
    assert np.all(np.diff(kernel[4, 4:]) < 0)  # Gaussian decay along the streak


def write_clean_split(folder: Path) -> tuple[list[Path], Path]:
    """The synthetic test split and a provenance.json recording it, as make_synthetic writes them."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {TEST_IMAGES: encode_idx(IMAGES), TEST_LABELS: encode_idx(LABELS)}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    provenance = folder / "provenance.json"
    recorded = {
        name: {"md5": md5_hex(data), "sha256": sha256_hex(data), "bytes": len(data)} for name, data in files.items()
    }
    atomic.write_json(provenance, {"dataset": "synthetic", "files": recorded})
    return [folder / TEST_IMAGES, folder / TEST_LABELS], provenance


def test_a_set_is_written_with_its_checksum_and_the_original_labels(tmp_path: Path) -> None:
    data, provenance = write_clean_split(tmp_path / "raw")
    out, record = tmp_path / "fog" / "t10k-images-idx3-ubyte", tmp_path / "fog" / "set.json"
    corrupt_test_set.main(data, provenance, "synthetic", "fog", 2, 5, out, record)
    facts = json.loads(record.read_text())
    assert facts["images"]["sha256"] == sha256_hex(out.read_bytes())
    assert np.array_equal(decode_idx(out.read_bytes()), corrupt(IMAGES, "fog", 2, seed=5))
    assert facts["labels"] == {"file": TEST_LABELS, "sha256": sha256_hex(data[1].read_bytes())}
    first = out.read_bytes()
    corrupt_test_set.main(data, provenance, "synthetic", "fog", 2, 5, out, record)
    assert out.read_bytes() == first  # byte-identical when made again


def test_the_manifest_refuses_a_set_changed_after_it_was_written(tmp_path: Path) -> None:
    data, provenance = write_clean_split(tmp_path / "raw")
    sets = [
        (kind, tmp_path / kind / "t10k-images-idx3-ubyte", tmp_path / kind / "set.json") for kind in ("fog", "zigzag")
    ]
    for kind, out, record in sets:
        corrupt_test_set.main(data, provenance, "synthetic", kind, 3, 0, out, record)
    records, images = [s[2] for s in sets], [s[1] for s in sets]
    figures = [tmp_path / "corruptions.png"]
    listed = corrupted_sets.main(data, provenance, "synthetic", records, images, tmp_path / "manifest.json", figures)
    assert [s["corruption"] for s in listed["sets"]] == ["fog", "zigzag"] and figures[0].stat().st_size > 0
    tampered = bytearray(images[1].read_bytes())
    tampered[-1] ^= 0xFF
    images[1].write_bytes(bytes(tampered))
    with pytest.raises(DataIntegrityError, match=rf"{images[1]}: SHA-256 .* recorded in {records[1]}"):
        corrupted_sets.main(data, provenance, "synthetic", records, images, tmp_path / "manifest.json", figures)


@pytest.mark.workflow
def test_adding_a_corruption_plans_only_its_set_and_the_manifest(workflow_copy: Path) -> None:
    """Two sets made through the workflow from the smoke study's synthetic data: done, nothing is left to do; a third
    kind added to the config plans its own generation and the manifest, nothing else."""
    # The smoke study's synthetic data, written here as its make_synthetic job would (one Snakemake job fewer).
    raw = raw_paths("synthetic", str(workflow_copy / "results/data"))
    Path(raw["provenance"]).parent.mkdir(parents=True)
    smoke = yaml.safe_load((REPO / "tests/smoke.yaml").read_text())["data"]["synthetic"]
    files = [Path(raw[role]) for role in ("train_images", "train_labels", "test_images", "test_labels")]
    make_synthetic.main(files, Path(raw["provenance"]), smoke["train_size"], smoke["test_size"], smoke["seed"])
    (workflow_copy / "two.yaml").write_text("robustness: {corruptions: [contrast, stripe], severities: [2]}\n")
    # The smoke study changed on purpose: without amend_study, another config under its name is refused.
    (workflow_copy / "three.yaml").write_text(
        "amend_study: true\nrobustness: {corruptions: [contrast, stripe, fog], severities: [2]}\n"
    )
    snakemake(workflow_copy, "corrupted_sets", "--cores", "2", "--configfile", "tests/smoke.yaml", "two.yaml")
    manifest = json.loads((workflow_copy / "results/smoke/robustness/manifest.json").read_text())
    assert [(s["corruption"], s["severity"]) for s in manifest["sets"]] == [("contrast", 2), ("stripe", 2)]
    for listed in manifest["sets"]:
        assert sha256_hex((workflow_copy / listed["images"]["path"]).read_bytes()) == listed["images"]["sha256"]
    assert planned_counts(workflow_copy, "corrupted_sets", "--configfile", "tests/smoke.yaml", "two.yaml") == Counter()
    added = planned_counts(workflow_copy, "corrupted_sets", "--configfile", "tests/smoke.yaml", "three.yaml")
    assert added == Counter({"corrupt_test_set": 1, "corrupted_sets_manifest": 1, "corrupted_sets": 1})


def test_published_names_each_kinds_mnist_c_level_beside_the_graded_ones() -> None:
    assert configured_sets(["shot_noise", "scale", "glass_blur"], [3, "published"]) == [
        ("shot_noise", 3), ("shot_noise", 5), ("scale", 3), ("glass_blur", 3), ("glass_blur", 1)
    ]  # fmt: skip
    assert configured_sets(["contrast"], ["published"]) == [("contrast", 4)]
    # MNIST-C's fifteen kinds are every kind but contrast; the non-intensity endpoint leaves out three.
    assert len(MNIST_C_KINDS) == 15 and "contrast" not in MNIST_C_KINDS
    assert endpoint_kinds("non_intensity", list(KINDS)) == [
        kind for kind in KINDS if kind not in ("brightness", "contrast", "fog")
    ]
    assert endpoint_kinds("mnist_c", ["contrast", "fog"]) == ["fog"]
