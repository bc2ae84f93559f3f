"""The IDX file format of MNIST: reading, writing and structural checks."""

from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np

RAW_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
# The four files' expected shapes; 0 stands for "any count" (the synthetic set is smaller than MNIST).
EXPECTED_DIMS = {
    "train-images-idx3-ubyte": (0, 28, 28),
    "train-labels-idx1-ubyte": (0,),
    "t10k-images-idx3-ubyte": (0, 28, 28),
    "t10k-labels-idx1-ubyte": (0,),
}
_UBYTE = 0x08


class IdxError(ValueError):
    """A file that is not a well-formed IDX file of the expected shape."""


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


def check_raw_file(name: str, data: bytes) -> np.ndarray:
    """Decode one of the four MNIST-layout files and check its shape against its role."""
    array = decode_idx(data, name)
    want = EXPECTED_DIMS[name]
    if array.ndim != len(want) or any(w and w != got for w, got in zip(want, array.shape, strict=True)):
        raise IdxError(f"{name}: shape {list(array.shape)} does not fit {list(want)} (0 = any count)")
    return array


def md5_hex(data: bytes) -> str:
    """MD5 of `data` as hex (the checksum MNIST and torchvision publish)."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def sha256_hex(data: bytes) -> str:
    """SHA-256 of `data` as hex."""
    return hashlib.sha256(data).hexdigest()


def read_raw_dir(raw_dir: str | Path) -> dict[str, np.ndarray]:
    """Read the four MNIST-layout files of a directory (plain or .gz) into arrays keyed by file name."""
    raw_dir = Path(raw_dir)
    arrays = {}
    for name in RAW_FILES:
        plain, packed = raw_dir / name, raw_dir / f"{name}.gz"
        if plain.exists():
            data = plain.read_bytes()
        elif packed.exists():
            data = gzip.decompress(packed.read_bytes())
        else:
            raise FileNotFoundError(f"{plain} (or {packed.name}) not found")
        arrays[name] = check_raw_file(name, data)
    counts = {role: arrays[f"{role}-images-idx3-ubyte"].shape[0] for role in ("train", "t10k")}
    for role, count in counts.items():
        labels = arrays[f"{role}-labels-idx1-ubyte"]
        if labels.shape[0] != count:
            raise IdxError(f"{raw_dir}: {count} {role} images but {labels.shape[0]} labels")
    return arrays
