"""CIFAR-10, the registry's dataset published as one archive of pickled batches: a format-exact archive built here (its
host is out of reach), served through the real fetch code with the checksums injected, refused when corrupt, of
another checksum, truncated or carrying more than arrays; write-up 004's study run on it to its report, and compared
with a study on another dataset by make compare."""

from __future__ import annotations

import dataclasses
import io
import json
import pickle
import re
import tarfile
from pathlib import Path

import fetch_dataset
import make_synthetic
import numpy as np
import pandas as pd
import pytest
import yaml
from background import BackgroundRuns, background_study
from conftest import REPO, background_snakemake, copy_workflow, planned_counts
from helpers import inject_spec
from markupsafe import escape
from test_compare import compare
from test_model import SEED_004_TABLE

from normstudy.config.recipes import merge
from normstudy.config.validation import CORRUPTIBLE_SHAPE, validate_config
from normstudy.data import corruptions
from normstudy.data.datasets import RAW_FILES, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, DatasetSpec, dataset_spec
from normstudy.data.fetch import DownloadError, SourceError, fetch_local, read_archive, verify_files
from normstudy.data.idx import DataIntegrityError, decode_idx, md5_hex, read_verified, sha256_hex
from normstudy.values import ConfigError

BATCHES, PER_BATCH, TEST = 5, 160, 200  # five training batches and a test batch, as the archive has
FOLDER = "cifar-10-batches-py"


def colour_digits(count: int, seed: int, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """`count` stroke digits as 3 x 32 x 32 colour images (padded, each channel its own tone) and their labels: images
    a one-epoch run can learn from, in CIFAR's shape."""
    files = [folder / name for name in RAW_FILES]
    make_synthetic.main(files, folder / "provenance.json", count, 1, seed=seed)
    grey = np.pad(decode_idx((folder / TRAIN_IMAGES).read_bytes()), ((0, 0), (2, 2), (2, 2)))
    colour = np.stack([grey, grey // 2, 255 - grey], axis=1).astype(np.uint8)
    return colour, decode_idx((folder / RAW_FILES[1]).read_bytes())


def batch_pickle(images: np.ndarray, labels: np.ndarray, label: str) -> bytes:
    """One batch as CIFAR's python archive pickles it: channel-major rows of 3,072 bytes and a list of labels."""
    batch = {
        "batch_label": label,
        "labels": [int(value) for value in labels],
        "data": images.reshape(len(images), -1),
        "filenames": [f"image_{i:05d}.png" for i in range(len(images))],
    }
    return pickle.dumps(batch, protocol=2)


def tar_gz(members: dict[str, bytes]) -> bytes:
    """A tar.gz of `members` (name -> bytes) under the archive's folder, deterministic to the byte."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz", format=tarfile.GNU_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(f"{FOLDER}/{name}")
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def cifar_members(folder: Path, seed: int = 3) -> tuple[dict[str, bytes], dict[str, np.ndarray]]:
    """The archive's members (five training batches, the test batch, the metadata) and the images and labels they
    hold, as the four IDX files' arrays."""
    train_images, train_labels = colour_digits(BATCHES * PER_BATCH, seed, folder / "train")
    test_images, test_labels = colour_digits(TEST, seed + 100, folder / "test")
    members = {
        f"data_batch_{i + 1}": batch_pickle(
            train_images[i * PER_BATCH : (i + 1) * PER_BATCH],
            train_labels[i * PER_BATCH : (i + 1) * PER_BATCH],
            f"training batch {i + 1} of {BATCHES}",
        )
        for i in range(BATCHES)
    }
    members["test_batch"] = batch_pickle(test_images, test_labels, "testing batch 1 of 1")
    classes = list(dataset_spec("cifar10").classes)
    members["batches.meta"] = pickle.dumps({"label_names": classes, "num_cases_per_batch": PER_BATCH}, protocol=2)
    arrays = {
        TRAIN_IMAGES: train_images,
        RAW_FILES[1]: train_labels,
        TEST_IMAGES: test_images,
        TEST_LABELS: test_labels,
    }
    return members, arrays


def injected(members: dict[str, bytes], archive: bytes, mirror: Path | None = None) -> DatasetSpec:
    """The registry's CIFAR-10 spec with the checksums of an archive built here, its sizes and its mirror."""
    spec = dataset_spec("cifar10")
    listed = dataclasses.replace(
        spec.archive,
        md5=md5_hex(archive),
        train=tuple((name, md5_hex(members[name])) for name, _ in spec.archive.train),
        test=tuple((name, md5_hex(members[name])) for name, _ in spec.archive.test),
    )
    mirrors = (mirror.as_uri() + "/",) if mirror else ()
    return dataclasses.replace(spec, archive=listed, train_size=BATCHES * PER_BATCH, test_size=TEST, mirrors=mirrors)


def serve(folder: Path, archive: bytes) -> Path:
    """`archive` in a mirror folder, under the name its mirrors serve it by."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / dataset_spec("cifar10").archive.filename).write_bytes(archive)
    return folder


def fetch(spec: DatasetSpec, out: Path, sources: tuple[str, ...] = ("mirrors",), local: Path | None = None) -> None:
    """The fetch rule's script, as the rule calls it."""
    files = [out / name for name in RAW_FILES]
    fetch_dataset.main(spec, files, out / "provenance.json", list(sources), list(spec.mirrors), local and str(local), 5)


def test_the_archive_is_fetched_verified_read_into_idx_files_and_recorded(tmp_path: Path) -> None:
    members, arrays = cifar_members(tmp_path / "built")
    archive = tar_gz(members)
    spec = injected(members, archive, serve(tmp_path / "mirror", archive))
    fetch(spec, tmp_path / "raw")
    provenance = json.loads((tmp_path / "raw" / "provenance.json").read_text())
    assert provenance["dataset"] == "cifar10" and provenance["source"] == "mirrors"
    assert provenance["fetched"] == {"url": spec.mirrors[0] + spec.archive.filename}
    paths = [tmp_path / "raw" / name for name in RAW_FILES]
    for path in paths:
        entry = provenance["files"][path.name]
        assert entry["archive_md5"] == md5_hex(archive) and entry["sha256"] == sha256_hex(path.read_bytes())
        # The batches in order, each image [3, 32, 32] as the rows hold it (red, green, blue planes).
        assert np.array_equal(decode_idx(path.read_bytes()), arrays[path.name])
    read, _ = read_verified(
        paths, tmp_path / "raw" / "provenance.json", "cifar10", expected_archive_md5=spec.archive.md5
    )
    assert read[TEST_IMAGES].shape == (TEST, 3, 32, 32) and read[RAW_FILES[1]].shape == (BATCHES * PER_BATCH,)
    # Files read out of another archive than the canonical one are refused where a run reads them, naming the file.
    with pytest.raises(DataIntegrityError, match=f"{RAW_FILES[0]}: read out of an archive of MD5 {md5_hex(archive)}"):
        read_verified(paths, tmp_path / "raw" / "provenance.json", "cifar10", expected_archive_md5="0" * 32)


def test_a_local_copy_is_the_archive_itself(tmp_path: Path) -> None:
    members, arrays = cifar_members(tmp_path / "built")
    archive = tar_gz(members)
    spec = injected(members, archive)
    local = serve(tmp_path / "local", archive)
    fetch(spec, tmp_path / "raw", ("local",), local)
    assert (tmp_path / "raw" / TEST_LABELS).read_bytes()[-TEST:] == arrays[TEST_LABELS].tobytes()
    assert fetch_local(local, spec).archive_md5 == md5_hex(archive)
    # IDX files are not the dataset, however right their contents: it is defined by its archive's MD5.
    with pytest.raises(DownloadError, match=re.escape(f"{tmp_path / 'raw'}: no cifar-10-python.tar.gz")):
        fetch(spec, tmp_path / "again", ("local",), tmp_path / "raw")
    files = {name: (tmp_path / "raw" / name).read_bytes() for name in RAW_FILES}
    with pytest.raises(SourceError, match=r"cifar-10-python\.tar\.gz: the files were read out of no archive"):
        verify_files(files, spec)
    assert verify_files(files, spec, archive_md5=md5_hex(archive))[TEST_IMAGES]["shape"] == [TEST, 3, 32, 32]


class _RunsACommand:
    """What an attacker would pickle: unpickling it calls os.system."""

    def __reduce__(self) -> tuple:
        import os

        return (os.system, ("echo unpickled",))


def damaged(members: dict[str, bytes], damage: str) -> tuple[dict[str, bytes], bytes, str]:
    """The members and archive of one kind of damage, and what the refusal must say."""
    archive = tar_gz(members)
    if damage == "corrupt archive":  # its publisher's own checksum of a damaged file: only reading it can tell
        broken = bytearray(archive)
        broken[200:260] = bytes(60)
        return members, bytes(broken), "cifar-10-python.tar.gz: corrupt or truncated archive"
    if damage == "truncated archive":  # a download cut short, with the MD5 of what arrived
        return members, archive[: len(archive) // 2], "corrupt or truncated archive"
    if damage == "truncated batch":  # a complete archive of a batch cut short
        members = {**members, "data_batch_3": members["data_batch_3"][:-500]}
        return members, tar_gz(members), "data_batch_3: not a batch of the archive's format"
    if damage == "a pickle that runs code":  # the checksums match: the unpickler is the second guard
        members = {**members, "test_batch": pickle.dumps({"data": _RunsACommand(), "labels": []}, protocol=2)}
        return members, tar_gz(members), "test_batch: not a batch .*refusing to load (posix|os|nt).system"
    assert damage == "a missing batch"
    members = {name: data for name, data in members.items() if name != "data_batch_5"}
    return members, tar_gz(members), f"holds no file {FOLDER}/data_batch_5"


@pytest.mark.parametrize(
    "damage",
    ["wrong checksum", "wrong batch checksum", "corrupt archive", "truncated archive", "truncated batch",
     "a pickle that runs code", "a missing batch"],
)  # fmt: skip
def test_a_bad_archive_is_refused_naming_the_file_and_leaves_nothing(damage: str, tmp_path: Path) -> None:
    members, _ = cifar_members(tmp_path / "built")
    if damage == "wrong checksum":
        archive = tar_gz(members)
        spec = dataclasses.replace(injected(members, archive), archive=dataclasses.replace(
            injected(members, archive).archive, md5="0" * 32))  # fmt: skip
        said = "no mirror served cifar-10-python.tar.gz: .*md5 [0-9a-f]{32} != 0{32}"
    elif damage == "wrong batch checksum":
        archive = tar_gz(members)
        spec = injected({**members, "data_batch_2": b"another batch"}, archive)
        said = f"cifar-10-python.tar.gz: {FOLDER}/data_batch_2: md5 {md5_hex(members['data_batch_2'])} != canonical"
    else:
        members, archive, said = damaged(members, damage)
        spec = injected({**members, "data_batch_5": members.get("data_batch_5", b"")}, archive)
    mirror = serve(tmp_path / "mirror", archive)
    out = tmp_path / "raw"
    with pytest.raises(DownloadError, match=said):
        fetch(dataclasses.replace(spec, mirrors=(mirror.as_uri() + "/",)), out)
    assert not out.exists() or list(out.iterdir()) == []  # nothing that looks finished


def test_a_batch_of_another_shape_is_refused() -> None:
    spec = dataset_spec("cifar10")
    members = {name: batch_pickle(np.zeros((2, 1, 28, 28), np.uint8), np.zeros(2, np.uint8), name) for name, _ in
               (*spec.archive.train, *spec.archive.test)}  # fmt: skip
    archive = tar_gz(members)
    with pytest.raises(SourceError, match="data_batch_1: data is not uint8 rows of 3072 values"):
        read_archive(archive, "built", injected(members, archive), {})
    # Labels outside the dataset's ten classes are refused too.
    members = {name: batch_pickle(np.zeros((2, 3, 32, 32), np.uint8), np.array([3, 10]), name) for name, _ in
               (*spec.archive.train, *spec.archive.test)}  # fmt: skip
    archive = tar_gz(members)
    with pytest.raises(SourceError, match="data_batch_1: labels are not 2 integers of 0-9"):
        read_archive(archive, "built", injected(members, archive), {})


def test_the_robustness_study_is_refused_on_colour_images_naming_the_key() -> None:
    # MNIST-C's kinds are drawn on 28 x 28 grey images (corruptions.SIDE): the study must leave them out on CIFAR-10.
    assert CORRUPTIBLE_SHAPE == (1, corruptions.SIDE, corruptions.SIDE)
    shipped = yaml.safe_load((REPO / "config.yaml").read_text())
    with pytest.raises(ConfigError, match=r"'robustness.corruptions': MNIST-C's kinds .* CIFAR-10's are 3x32x32"):
        validate_config(merge(shipped, {"data": {"dataset": "cifar10"}}))
    # The study file validates: write-up 004's network, no robustness study, CIFAR's augmentation.
    config = validate_config(merge(shipped, yaml.safe_load((REPO / "studies/cifar10.yaml").read_text())))
    assert config["robustness"]["corruptions"] == [] and config["train"]["augment"]["crop_padding"] == 4
    assert dataset_spec(config["data"]["dataset"]).network == "skipnet"


@pytest.mark.workflow
def test_its_study_file_plans_write_up_004s_study_without_a_robustness_study() -> None:
    jobs = planned_counts(REPO, "--configfile", "studies/cifar10.yaml")
    assert jobs["fetch_dataset"] == 1 and jobs["train"] == 18 and jobs["model_summary"] == 1 and jobs["report"] == 1
    assert not {rule for rule in jobs if rule.startswith(("corrupt", "score", "robustness", "precise"))}


@background_study
def cifar10_study(runs: BackgroundRuns, folder: Path) -> Path:
    """A workflow copy whose CIFAR-10 module carries the checksums, sizes and mirror of an archive built here, and a
    one-epoch study on it, with write-up 004's network and CIFAR's augmentation, run to its report and its site."""
    study = copy_workflow(folder / "study")
    members, _ = cifar_members(folder / "built", seed=13)
    archive = tar_gz(members)
    spec = injected(members, archive, serve(folder / "mirror", archive))
    inject_spec(study, "cifar10", archive=spec.archive, train_size=spec.train_size, test_size=spec.test_size,
                mirrors=spec.mirrors)  # fmt: skip
    (study / "on_cifar.yaml").write_text(
        "study: on_cifar10\nseeds: [1]\n"
        "train: {epochs: 1, augment: {rotation_degrees: 0, crop_padding: 4, horizontal_flip: true}}\n"
        "data: {dataset: cifar10, sources: [mirrors], mirrors: []}\n"
        "variants: {in: {enabled: false}, bn_l1: {enabled: false}, none: {enabled: false}}\n"
        "analysis: {control: null}\n"
        "batch_study: {design: sgd_batch, variants: [bn], batch_sizes: [4, 64], seeds: [1, 2]}\n"
        "robustness: {corruptions: []}\n"
    )
    args = ("--configfile", "tests/smoke.yaml", "on_cifar.yaml")
    background_snakemake(runs, study, "--cores", "2", *args)
    background_snakemake(runs, study, "publish", "--cores", "2", *args)
    return study


@pytest.mark.workflow
def test_write_up_004s_study_runs_on_a_cifar_format_archive_to_its_report(cifar10_study: Path) -> None:
    spec = dataset_spec("cifar10")
    results = cifar10_study / "results/on_cifar10"
    provenance = json.loads((cifar10_study / "results/data/CIFAR10/raw/provenance.json").read_text())
    assert provenance["dataset"] == "cifar10" and provenance["source"] == "mirrors"
    settings = json.loads((results / "runs/bn/seed1/settings.json").read_text())
    assert settings["data"]["archive_md5"] == provenance["files"][TEST_IMAGES]["archive_md5"]
    assert settings["train"]["augment"]["crop_padding"] == 4 and settings["train"]["augment"]["horizontal_flip"]
    metrics = json.loads((results / "runs/gn/seed1/metrics.json").read_text())
    assert 0 <= metrics["test_acc"] <= 100 and (results / "runs/gn/seed1/misclassified.png").is_file()
    # The model summary is write-up 004's network: its receptive-field table row by row, its parameter count.
    table = pd.read_csv(results / "tables/receptive_field.csv")
    keys = ["n_in", "rf_in", "jump_in", "padding", "kernel", "stride", "n_out", "rf_out", "jump_out"]
    assert [(i + 1, *map(int, row)) for i, row in enumerate(table[keys].itertuples(index=False))] == SEED_004_TABLE
    summary = pd.read_csv(results / "tables/summary.csv").set_index("variant")
    assert summary.loc["bn", "params"] == 43616
    page = (cifar10_study / "report/on_cifar10/index.html").read_text()
    assert f"{spec.title}: {BATCHES * PER_BATCH} training and {TEST} test images, normalized with mean" in page
    assert "Not run in this study (<code>robustness.corruptions: []</code>)." in page
    assert escape(spec.corruption_note.split(":")[0]) in page
    assert not (results / "robustness").exists()
    site = cifar10_study / "report/on_cifar10/site"
    assert (site / "index.html").is_file() and not list(site.glob("figures/robustness*"))


@pytest.fixture(scope="module")
def across(smoke_study: Path, cifar10_study: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """make compare of the smoke study (synthetic digits) with the CIFAR-format study: its folder and its output."""
    out = tmp_path_factory.mktemp("across") / "out"
    done = compare(smoke_study, "results/smoke", str(cifar10_study / "results" / "on_cifar10"), "--out", str(out))
    assert done.returncode == 0, done.stderr
    return out, done.stdout


@pytest.mark.workflow
def test_two_finished_studies_on_two_datasets_are_ranked_not_paired(across: tuple[Path, str]) -> None:
    out, said = across
    # One CIFAR-10 seed: no ordering can be shown on it, so the transfer is inconclusive, and said to be.
    assert said.startswith("The ranking of the 3 variants on synthetic (smoke) and cifar10 (on_cifar10)")
    assert "Inconclusive: no pairwise ordering was shown to flip" in said
    orderings = pd.read_csv(out / "orderings.csv")
    assert len(orderings) == 3 and set(orderings["b_order"]) == {"?"}
    assert pd.read_csv(out / "predictions.csv").empty  # different test images: nothing paired
    page = (out / "compare.html").read_text()
    assert (
        "Does the ranking hold on cifar10?" in page and "scored different test images (synthetic and cifar10)" in page
    )


@pytest.mark.browser
@pytest.mark.parametrize("width", [1280, 390])
def test_the_cross_dataset_page_fits_without_sideways_scrolling(across: tuple[Path, str], browser, width: int) -> None:
    browser.set_window_size(width, 900)
    browser.get((across[0] / "compare.html").as_uri())
    assert browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth") <= 1
    assert "Does the ranking hold on cifar10?" in browser.find_element("id", "ranking").text
    if width == 1280:  # no table needs a scrollbar of its own on a laptop screen
        boxes = "Array.from(document.querySelectorAll('.scroll')).map(b => b.scrollWidth - b.clientWidth)"
        assert max(browser.execute_script(f"return {boxes}")) <= 0
