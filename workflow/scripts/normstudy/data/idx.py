"""The IDX file format of MNIST: reading, writing and structural checks."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from normstudy import atomic
from normstudy.data.datasets import RAW_FILES, SPLITS, dataset_spec, expected_dims, paths_by_name
from normstudy.settings import DataSettings

_UBYTE = 0x08


class IdxError(ValueError):
    """A file that is not a well-formed IDX file of the expected shape."""


class DataIntegrityError(ValueError):
    """Data files that are not the ones their provenance.json recorded, or not the dataset the run expects."""


def encode_idx(array: np.ndarray) -> bytes:
    """Serialize a uint8 array as IDX bytes (big-endian header, then the raw values)."""
    if array.dtype != np.uint8:
        raise IdxError(f"IDX here holds uint8 values, got {array.dtype}")
    header = struct.pack(">BBBB", 0, 0, _UBYTE, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array).tobytes()


def decode_idx(data: bytes, name: str = "IDX data") -> np.ndarray:
    """Parse IDX bytes into a uint8 array, refusing truncated, padded or malformed data."""
    if len(data) < 4:
        raise IdxError(f"{name}: {len(data)} bytes is too short for an IDX header (truncated?)")
    zero1, zero2, dtype_code, ndim = struct.unpack(">BBBB", data[:4])
    if zero1 or zero2 or dtype_code != _UBYTE or not 1 <= ndim <= 4:
        raise IdxError(f"{name}: bad IDX magic {data[:4].hex()} (expected 000008 then the dimension count)")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise IdxError(f"{name}: truncated inside its header ({len(data)} bytes)")
    shape = struct.unpack(f">{ndim}I", data[4:header_len])
    expected = header_len + int(np.prod(shape, dtype=np.int64))
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "has trailing bytes"
        raise IdxError(f"{name}: {what}: {len(data)} bytes, expected {expected} for shape {list(shape)}")
    return np.frombuffer(data, dtype=np.uint8, offset=header_len).reshape(shape)


def check_raw_file(name: str, data: bytes, image_shape: tuple[int, int, int] = (1, 28, 28)) -> np.ndarray:
    """Decode one of the four IDX files and check its shape against its role and the dataset's image shape (one
    channel: an IDX image file is [N, H, W])."""
    array = decode_idx(data, name)
    want = expected_dims(image_shape)[name]
    if array.ndim != len(want) or any(w and w != got for w, got in zip(want, array.shape, strict=True)):
        raise IdxError(f"{name}: shape {list(array.shape)} does not fit {list(want)} (0 = any count)")
    return array


def md5_hex(data: bytes) -> str:
    """MD5 of `data` as hex (the checksum MNIST and torchvision publish)."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def sha256_hex(data: bytes) -> str:
    """SHA-256 of `data` as hex."""
    return hashlib.sha256(data).hexdigest()


def check_counts(arrays: dict[str, np.ndarray], where: str | Path) -> None:
    """Each split has as many labels as images."""
    for split, (images_name, labels_name) in SPLITS.items():
        if images_name not in arrays:
            continue  # a tuning run reads the training pair only
        images, labels = arrays[images_name], arrays[labels_name]
        if labels.shape[0] != images.shape[0]:
            raise IdxError(f"{where}: {images.shape[0]} {split} images but {labels.shape[0]} labels")


def redo_hint(provenance_path: Path) -> str:
    """What to do about data that is not what its run expects."""
    return f"delete {provenance_path.parent} and rerun the workflow to fetch or generate the data again"


def sha256_as_recorded(path: Path, data: bytes, recorded: dict[str, dict], provenance_path: Path) -> str:
    """The SHA-256 of `data` (the bytes of `path`), or DataIntegrityError if provenance.json recorded another."""
    digest, expected = sha256_hex(data), recorded[path.name]["sha256"]
    if digest != expected:
        raise DataIntegrityError(
            f"{path}: SHA-256 {digest[:16]}... differs from {expected[:16]}..., recorded in {provenance_path} "
            f"when the file was written: it has been changed since; {redo_hint(provenance_path)}"
        )
    return digest


def read_verified(
    paths: Sequence[str | Path],
    provenance_path: str | Path,
    dataset: str,
    expected_md5: dict[str, str] | None = None,
    generator: dict[str, int] | None = None,
    names: Sequence[str] = RAW_FILES,
    expected_gz_md5: dict[str, str] | None = None,
    expected_archive_md5: str | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Read the IDX files `names` (all four unless told) after checking them against provenance.json.

    Returns arrays and SHA-256s. Fails with DataIntegrityError naming the file when one was edited after it
    was fetched or generated, when the provenance is of another dataset or generator setting, or when a canonical
    checksum differs: the file's MD5 (`expected_md5`), or the MD5 of the gz file provenance.json records it came out
    of (`expected_gz_md5`, a dataset defined by its gz files), or of the archive it was read out of
    (`expected_archive_md5`, a dataset published as one archive).
    """
    provenance_path = Path(provenance_path)
    provenance = atomic.read_json(provenance_path)
    by_name = paths_by_name(paths, names)
    redo = redo_hint(provenance_path)
    if provenance.get("dataset") != dataset:
        raise DataIntegrityError(f"{provenance_path}: holds dataset {provenance.get('dataset')!r}, not {dataset!r}")
    if generator is not None:
        made_with = {key: provenance.get("fetched", {}).get(key) for key in generator}
        if made_with != generator:
            raise DataIntegrityError(
                f"{provenance_path}: generated with {made_with}, the run expects {generator}; {redo}"
            )
    arrays, sha256 = {}, {}
    for name in names:
        path = by_name[name]
        data = path.read_bytes()
        sha256[name] = sha256_as_recorded(path, data, provenance["files"], provenance_path)
        if expected_md5 is not None and md5_hex(data) != expected_md5[name]:
            raise DataIntegrityError(f"{path}: MD5 {md5_hex(data)} is not the canonical {expected_md5[name]}; {redo}")
        packed = provenance["files"][name].get("gz_md5")
        if expected_gz_md5 is not None and packed != expected_gz_md5[name]:
            raise DataIntegrityError(
                f"{path}: came out of a gz file of MD5 {packed}, not the canonical {expected_gz_md5[name]}; {redo}"
            )
        archive = provenance["files"][name].get("archive_md5")
        if expected_archive_md5 is not None and archive != expected_archive_md5:
            raise DataIntegrityError(
                f"{path}: read out of an archive of MD5 {archive}, not the canonical {expected_archive_md5}; {redo}"
            )
        arrays[name] = check_raw_file(name, data, dataset_spec(dataset).image_shape)
    check_counts(arrays, provenance_path.parent)
    return arrays, sha256


def read_dataset(
    paths: Sequence[str | Path], provenance: str | Path, data: DataSettings, names: Sequence[str] = RAW_FILES
) -> tuple[dict, dict]:
    """The verified IDX arrays (`names`, all four unless told) of the dataset a run's settings name, and SHA-256s."""
    generator = None if data.synthetic is None else vars(data.synthetic)
    canonical = (data.md5 or None, generator, names, data.gz_md5 or None, data.archive_md5 or None)
    return read_verified(paths, provenance, data.dataset, *canonical)


def check_present(paths: Sequence[str | Path], provenance_path: str | Path) -> None:
    """When a dataset's provenance.json exists, refuse any of `paths` that is missing.

    Snakemake would not notice (the runs trained on it are up to date), or would fetch all four again and retrain
    every run on files that are newer, not different.
    """
    provenance_path = Path(provenance_path)
    if not provenance_path.exists():
        return  # nothing there yet, or a fetch that did not finish (provenance.json is written last)
    missing = [str(path) for path in paths if not Path(path).exists()]
    if missing:
        raise DataIntegrityError(
            f"{', '.join(missing)}: missing, though {provenance_path} records it as fetched and verified; restore"
            f" it, or delete {provenance_path} to fetch the data again (every run then retrains)"
        )


def check_unchanged(paths: Sequence[str | Path], provenance_path: str | Path) -> None:
    """When a dataset and its provenance.json exist, refuse those of `paths` changed since they were written.

    Run before Snakemake plans any job: an edited file would otherwise make it delete every trained model
    downstream before the train job could refuse the data. A missing file is left to check_present, asked by the
    jobs that read it.
    """
    provenance_path = Path(provenance_path)
    if not provenance_path.exists():
        return
    recorded = atomic.read_json(provenance_path)["files"]
    for path in map(Path, paths):
        if path.exists():
            sha256_as_recorded(path, path.read_bytes(), recorded, provenance_path)
