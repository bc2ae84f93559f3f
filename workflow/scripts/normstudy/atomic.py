"""Atomic file writes: a reader sees either the old file or the whole new one, never a part."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Same directory as the target, so that os.replace is a rename within one file system.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        # mkstemp makes the file private (0600); give it the mode a plain open() would, for publishing.
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file for writing that replaces `path` when the block succeeds."""
    with atomic_path(path) as tmp, open(tmp, mode, encoding=None if "b" in mode else "utf-8") as handle:
        yield handle


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write `obj` as indented, key-sorted JSON to `path` atomically; NaN or infinity is an error, never written."""
    text = json.dumps(obj, indent=2, sort_keys=True, allow_nan=False)
    with atomic_open(path, "w") as handle:
        handle.write(text)
        handle.write("\n")


class UnreadableFileError(ValueError):
    """A file the study wrote, or must read, that is missing, not UTF-8, or not the JSON it should hold."""


def read_json(path: str | os.PathLike[str]) -> Any:
    """A JSON file's contents; a missing, truncated or non-UTF-8 file is refused in one line naming it."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UnreadableFileError(f"{path}: missing; rebuild it (snakemake {path})") from None
    except UnicodeDecodeError as error:
        raise UnreadableFileError(f"{path}: not UTF-8 text (byte {error.start}); rebuild it or restore it") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise UnreadableFileError(
            f"{path}: not valid JSON ({error.msg} at line {error.lineno}, column {error.colno}; truncated or edited?);"
            " rebuild it or restore it"
        ) from None


# Below this many free bytes a job's outputs, and even its log, can no longer be written.
LOW_SPACE_BYTES = 1 << 20


def no_space_message(path: str | os.PathLike[str]) -> str | None:
    """Why jobs writing under `path` fail when its file system is (nearly) full, naming it; None when it is not."""
    folder = Path(path).resolve()
    while not folder.exists():
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if free >= LOW_SPACE_BYTES:
        return None
    return (
        f"No space left on device: the file system of {folder} has {free:,} bytes free, so a job's outputs, and its "
        "log too, could not be written (a log may be empty or cut short). Free some space and run again: finished "
        "jobs are kept, and the failed ones' partial outputs were removed"
    )
