"""Atomic writes: all or nothing, with the permissions of an ordinary file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from normstudy import atomic


def test_written_files_get_the_mode_a_plain_open_gives(tmp_path: Path) -> None:
    plain = tmp_path / "plain.html"
    plain.write_bytes(b"<html></html>")
    target = tmp_path / "index.html"
    atomic.write_bytes(target, b"<html></html>")
    # mkstemp alone would leave 0600, which a web server serving the report could not read.
    assert stat.S_IMODE(target.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)


def test_failure_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "table.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic.atomic_open(target, "w") as handle:
        handle.write("half of the new")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]
