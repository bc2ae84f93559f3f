"""Provenance: the checkout's state, durations, and each training job's record."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from normstudy.provenance import duration, git_state, package_versions, read_job, wall_time


def git(folder: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=folder, check=True, capture_output=True
    )


def test_git_state_of_a_clean_then_dirty_checkout(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    (tmp_path / "a.txt").write_text("a")
    git(tmp_path, "add", "a.txt")
    git(tmp_path, "commit", "-qm", "a")
    git(tmp_path, "remote", "add", "origin", "https://example.org/normstudy.git")
    clean = git_state(tmp_path)
    assert len(clean.commit) == 40 and not clean.dirty and clean.remote == "https://example.org/normstudy.git"
    (tmp_path / "a.txt").write_text("b")
    assert git_state(tmp_path).dirty


def test_git_state_outside_a_checkout(tmp_path: Path) -> None:
    state = git_state(tmp_path)
    assert (state.commit, state.dirty, state.remote) == ("not a git checkout", False, None)


def test_duration() -> None:
    assert duration(3725.4) == "1:02:05 (3,725 s)"
    assert duration(59.6) == "0:01:00 (60 s)"


def job_files(folder: Path, variant: str, seed: int, started: str, finished: str) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    job = folder / f"{variant}{seed}.json"
    job.write_text(
        json.dumps(
            {
                "variant": variant,
                "seed": seed,
                "settings_digest": "0" * 64,
                "device": "cpu",
                "device_name": "",
                "threads": 1,
                "pack_seeds": [seed],
                "started_utc": started,
                "finished_utc": finished,
            }
        )
    )
    bench = folder / f"{variant}{seed}.tsv"
    bench.write_text("s\th:m:s\tmax_rss\tcpu_time\n12.5\t0:00:12\t480.2\t11.9\n")
    return {"variant": variant, "seed": seed, "job": job, "benchmark": bench}


def test_read_job_and_wall_time(tmp_path: Path) -> None:
    first = read_job(job_files(tmp_path, "bn", 1, "2026-01-01T10:00:00+00:00", "2026-01-01T10:05:00+00:00"))
    second = read_job(job_files(tmp_path, "gn", 1, "2026-01-01T10:01:00+00:00", "2026-01-01T10:07:30+00:00"))
    assert (first["s"], first["max_rss"], first["cpu_time"], first["device"]) == (12.5, 480.2, 11.9, "cpu")
    assert first["pack_seeds"] == [1]
    assert wall_time([first, second]) == 450.0


def test_read_job_refuses_a_job_of_another_run(tmp_path: Path) -> None:
    entry = job_files(tmp_path, "bn", 1, "2026-01-01T10:00:00+00:00", "2026-01-01T10:05:00+00:00")
    with pytest.raises(ValueError, match="is of bn seed 1, not gn seed 1"):
        read_job({**entry, "variant": "gn"})


def test_package_versions_name_the_pinned_torch() -> None:
    assert package_versions()["torch"] == "2.14.1"
