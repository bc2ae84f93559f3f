"""Fashion-MNIST and KMNIST, the registry's datasets defined by their gz files' MD5s: format-exact archives built here
(their hosts are out of reach), served through the real fetch code with the checksums injected, refused when corrupt,
of another checksum or truncated, and a whole study run on each to its report."""

from __future__ import annotations

import dataclasses
import gzip
import json
from pathlib import Path

import fetch_dataset
import make_synthetic
import numpy as np
import pandas as pd
import pytest
from background import BackgroundRuns, background_study
from conftest import REPO, background_snakemake, copy_workflow, planned_counts
from helpers import inject_spec
from markupsafe import escape
from plot_confusion import confusion_heatmaps

from normstudy.data.datasets import RAW_FILES, TEST_IMAGES, TRAIN_LABELS, DatasetSpec, dataset_spec
from normstudy.data.fetch import DownloadError, fetch_local
from normstudy.data.idx import DataIntegrityError, md5_hex, read_verified, sha256_hex
from normstudy.report.plots import misclassified_grid

GZ_DATASETS = ("fashion_mnist", "kmnist")
TRAIN, TEST = 600, 200


def idx_files(folder: Path, seed: int = 7) -> dict[str, bytes]:
    """Four IDX files in MNIST's exact format (stroke digits, TRAIN and TEST of them), written to `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    make_synthetic.main([folder / name for name in RAW_FILES], folder / "provenance.json", TRAIN, TEST, seed=seed)
    (folder / "provenance.json").unlink()  # an archive has none: the fetch writes its own
    return {name: (folder / name).read_bytes() for name in RAW_FILES}


def gz_mirror(folder: Path, files: dict[str, bytes]) -> dict[str, str]:
    """`files` gzipped into `folder` as a mirror serves them; the MD5 of each gz file."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / f"{name}.gz").write_bytes(gzip.compress(data, mtime=0))
    return {name: md5_hex((folder / f"{name}.gz").read_bytes()) for name in files}


def injected(name: str, gz_md5: dict[str, str], mirror: Path) -> DatasetSpec:
    """The registry's spec of `name` with the checksums, sizes and mirror of the archive a test built."""
    return dataclasses.replace(
        dataset_spec(name), gz_md5=gz_md5, train_size=TRAIN, test_size=TEST, mirrors=(mirror.as_uri() + "/",)
    )


def fetch(spec: DatasetSpec, out: Path, sources: tuple[str, ...] = ("mirrors",), local: Path | None = None) -> None:
    """The fetch rule's script, as the rule calls it."""
    files = [out / name for name in RAW_FILES]
    fetch_dataset.main(spec, files, out / "provenance.json", list(sources), list(spec.mirrors), local and str(local), 5)


@pytest.mark.parametrize("name", GZ_DATASETS)
def test_a_gz_defined_dataset_is_fetched_verified_and_recorded(name: str, tmp_path: Path) -> None:
    files = idx_files(tmp_path / "built")
    gz_md5 = gz_mirror(tmp_path / "mirror", files)
    spec = injected(name, gz_md5, tmp_path / "mirror")
    fetch(spec, tmp_path / "raw")
    provenance = json.loads((tmp_path / "raw" / "provenance.json").read_text())
    assert provenance["dataset"] == name and provenance["source"] == "mirrors"
    for file, entry in provenance["files"].items():
        assert entry["gz_md5"] == gz_md5[file] and entry["sha256"] == sha256_hex(files[file])
        assert (tmp_path / "raw" / file).read_bytes() == files[file]
    paths = [tmp_path / "raw" / file for file in RAW_FILES]
    arrays, _ = read_verified(paths, tmp_path / "raw" / "provenance.json", name, expected_gz_md5=gz_md5)
    assert arrays[TEST_IMAGES].shape == (TEST, 28, 28)
    # Files of another archive than the canonical one are refused where a run reads them, naming the file.
    other = {**gz_md5, TRAIN_LABELS: "0" * 32}
    said = f"{TRAIN_LABELS}: came out of a gz file of MD5 {gz_md5[TRAIN_LABELS]}"
    with pytest.raises(DataIntegrityError, match=said):
        read_verified(paths, tmp_path / "raw" / "provenance.json", name, expected_gz_md5=other)


def corrupt_archive(mirror: Path, name: str, data: bytes) -> None:
    """A gz file whose header is sound and whose deflate stream is not."""
    packed = bytearray(gzip.compress(data, mtime=0))
    packed[40:60] = bytes(20)
    (mirror / f"{name}.gz").write_bytes(bytes(packed))


@pytest.mark.parametrize("name", GZ_DATASETS)
@pytest.mark.parametrize("damage", ["wrong checksum", "corrupt archive", "truncated file"])
def test_a_bad_archive_is_refused_naming_the_file_and_leaves_nothing(name: str, damage: str, tmp_path: Path) -> None:
    files = idx_files(tmp_path / "built")
    mirror = tmp_path / "mirror"
    gz_md5 = gz_mirror(mirror, files)
    bad = TEST_IMAGES
    if damage == "wrong checksum":
        gz_md5[bad] = "0" * 32
        said = f"{bad}.gz: md5 .* != 0{{32}}"
    elif damage == "corrupt archive":  # the publisher's own checksum of a damaged file: only gunzip can tell
        corrupt_archive(mirror, bad, files[bad])
        gz_md5[bad] = md5_hex((mirror / f"{bad}.gz").read_bytes())
        said = f"{bad}.gz: corrupt or truncated gzip"
    else:  # a complete gz of an IDX file cut short
        (mirror / f"{bad}.gz").write_bytes(gzip.compress(files[bad][:-100], mtime=0))
        gz_md5[bad] = md5_hex((mirror / f"{bad}.gz").read_bytes())
        said = f"{bad}: truncated"
    out = tmp_path / "raw"
    with pytest.raises(DownloadError, match=said):
        fetch(injected(name, gz_md5, mirror), out)
    assert not out.exists() or list(out.iterdir()) == []  # nothing that looks finished


@pytest.mark.parametrize("name", GZ_DATASETS)
def test_a_local_copy_of_a_gz_defined_dataset_must_be_its_gz_files(name: str, tmp_path: Path) -> None:
    files = idx_files(tmp_path / "plain")
    gz_md5 = gz_mirror(tmp_path / "packed", files)
    spec = injected(name, gz_md5, tmp_path / "nowhere")
    with pytest.raises(DownloadError, match=f"{RAW_FILES[0]}: delivered uncompressed, but .* gz files alone"):
        fetch(spec, tmp_path / "raw", ("local",), tmp_path / "plain")
    fetch(spec, tmp_path / "raw", ("local",), tmp_path / "packed")
    assert fetch_local(tmp_path / "packed").gz_md5 == gz_md5


@pytest.mark.parametrize("name", GZ_DATASETS)
def test_the_figures_name_the_datasets_classes(name: str) -> None:
    classes = dataset_spec(name).classes
    cells = [(true, predicted) for true in range(10) for predicted in range(10)]
    confusion = pd.DataFrame(
        [{"variant": "bn", "true": t, "predicted": p, "count_mean": float(t == p)} for t, p in cells]
    )
    axis = confusion_heatmaps(confusion, ["bn"], classes).axes[0]
    assert [label.get_text() for label in axis.get_yticklabels()] == list(classes)
    mistakes = pd.DataFrame([{"index": 0, "label": 9, "prediction": 0, "confidence": 0.9}])
    grid = misclassified_grid(np.zeros((1, 28, 28), np.uint8), mistakes, 1, 1, "mistakes", classes)
    title = grid.axes[0].get_title()
    assert title.replace("\n→", " →").startswith(f"true {classes[9]} → pred {classes[0]}\nconf 0.90 · #0")
    # Fashion-MNIST's long names take a line each, to stay over their own panel; KMNIST's short ones share one.
    assert len(title.splitlines()) == {"fashion_mnist": 3, "kmnist": 2}[name]


def study_on(name: str, folder: Path, runs: BackgroundRuns) -> Path:
    """A workflow copy whose registry module of `name` carries the checksums, sizes and mirror of an archive built
    here (injected as a test does), and a one-epoch study on it run to its report; the copy's folder."""
    study = copy_workflow(folder / "study")
    files = idx_files(folder / "built", seed=11)
    mirror = folder / "mirror"
    gz_md5 = gz_mirror(mirror, files)
    inject_spec(study, name, gz_md5=gz_md5, train_size=TRAIN, test_size=TEST, mirrors=(mirror.as_uri() + "/",))
    (study / "on_dataset.yaml").write_text(
        f"study: on_{name}\nseeds: [1]\ntrain: {{epochs: 1}}\n"
        f"data: {{dataset: {name}, sources: [mirrors], mirrors: []}}\n"
        "variants: {ln: {enabled: false}, in: {enabled: false}, bn_l1: {enabled: false}, none: {enabled: false}}\n"
        "analysis: {control: null}\n"
        "batch_study: {design: sgd_batch, variants: [bn], batch_sizes: [4, 64], seeds: [1, 2]}\n"
        "robustness: {corruptions: [contrast], endpoint: all}\n"
    )
    args = ("--cores", "2", "--configfile", "tests/smoke.yaml", "on_dataset.yaml")
    background_snakemake(runs, study, *args)
    return study


@background_study
def fashion_mnist_study(runs: BackgroundRuns, folder: Path) -> Path:
    """A one-epoch study on a Fashion-MNIST-format archive built here."""
    return study_on("fashion_mnist", folder, runs)


@background_study
def kmnist_study(runs: BackgroundRuns, folder: Path) -> Path:
    """A one-epoch study on a KMNIST-format archive built here."""
    return study_on("kmnist", folder, runs)


def check_study(name: str, study: Path) -> None:
    """Its data fetched from the mirror by the gz checksums, its runs trained on it, its report naming it."""
    spec = dataset_spec(name)
    provenance = json.loads((study / "results/data" / spec.folder / "raw/provenance.json").read_text())
    assert provenance["dataset"] == name and provenance["source"] == "mirrors"
    assert all(entry["gz_md5"] and entry["sha256"] for entry in provenance["files"].values())
    settings = json.loads((study / f"results/on_{name}/runs/bn/seed1/settings.json").read_text())
    assert settings["data"]["dataset"] == name and settings["data"]["md5"] == {}
    assert settings["data"]["gz_md5"] == {file: entry["gz_md5"] for file, entry in provenance["files"].items()}
    assert (settings["data"]["mean"], settings["data"]["std"]) == (spec.mean, spec.std)  # its own constants
    page = (study / f"report/on_{name}/index.html").read_text()
    assert f"{escape(spec.title)}: {TRAIN} training and {TEST} test images, normalized with mean" in page
    assert escape(spec.corruption_note.split(".")[0]) in page  # its spec's word on the corruptions, as Jinja escapes
    assert "MNIST-C" in page and (study / f"results/on_{name}/runs/gn/seed1/misclassified.png").is_file()


@pytest.mark.workflow
def test_a_study_runs_on_a_fashion_mnist_format_archive_to_its_report(fashion_mnist_study: Path) -> None:
    check_study("fashion_mnist", fashion_mnist_study)


@pytest.mark.workflow
def test_a_study_runs_on_a_kmnist_format_archive_to_its_report(kmnist_study: Path) -> None:
    check_study("kmnist", kmnist_study)


def test_each_gz_defined_dataset_is_torchvisions() -> None:
    # The checksums, mirrors and class names are torchvision's own lists, read from the installed package.
    from torchvision.datasets import KMNIST, FashionMNIST

    for name, published in (("fashion_mnist", FashionMNIST), ("kmnist", KMNIST)):
        spec = dataset_spec(name)
        assert {f"{file}.gz": md5 for file, md5 in spec.gz_md5.items()} == dict(published.resources)
        assert list(spec.mirrors) == published.mirrors and list(spec.classes) == published.classes
        assert spec.folder == published.__name__ and not spec.md5 and spec.fetched


@pytest.mark.workflow
@pytest.mark.parametrize("name", GZ_DATASETS)
def test_each_datasets_study_plans_the_default_study_on_its_own_files(name: str) -> None:
    jobs = planned_counts(REPO, "--configfile", f"studies/{name}.yaml")
    default = planned_counts(REPO, "--config", f"study=planned_{name}")
    assert jobs["fetch_dataset"] == 1 and jobs["train"] == default["train"] == 18
    assert jobs["batch_train"] == default["batch_train"] and jobs["report"] == 1
