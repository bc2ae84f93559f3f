"""Provenance: the checkout's state, durations, and each training job's record."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from normstudy.report.page import render, reproduce
from normstudy.report.provenance import duration, git_state, package_versions, public_url, read_job, wall_time


def git(folder: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=folder, check=True, capture_output=True
    )


def checkout(folder: Path, origin: str) -> Path:
    """`folder` as a git checkout of one commit, with this origin URL."""
    git(folder, "init", "-q")
    (folder / "a.txt").write_text("a")
    git(folder, "add", "a.txt")
    git(folder, "commit", "-qm", "a")
    git(folder, "remote", "add", "origin", origin)
    return folder


def test_git_state_of_a_clean_then_dirty_checkout(tmp_path: Path) -> None:
    clean = git_state(checkout(tmp_path, "https://example.org/normstudy.git"))
    assert len(clean.commit) == 40 and not clean.dirty and clean.remote == "https://example.org/normstudy.git"
    (tmp_path / "a.txt").write_text("b")
    assert git_state(tmp_path).dirty


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:TOKEN@host.example/o/r.git", "https://host.example/o/r.git"),
        ("https://ghp_TOKEN@github.com/o/r.git?access_token=TOKEN#x", "https://github.com/o/r.git"),
        ("ssh://git:TOKEN@host.example:22/o/r.git", "ssh://host.example:22/o/r.git"),
        ("git@github.com:o/r.git", "git@github.com:o/r.git"),
        ("/srv/git/normstudy.git", "/srv/git/normstudy.git"),
        ("https://host.example/o/r\x1b[2J.git", None),
        ("https://host.example/o/\u202er.git", None),
    ],
)
def test_a_published_url_holds_no_credentials_and_no_controls(url: str, shown: str | None) -> None:
    assert public_url(url) == shown


def test_a_token_in_the_origin_url_never_reaches_the_reproduce_section(tmp_path: Path) -> None:
    state = git_state(checkout(tmp_path, "https://someone:s3cr3t-TOKEN@example.org/normstudy.git"))
    commands = reproduce({"study": "x"}, state, "study.yaml")["commands"]
    assert commands[0] == "git clone https://example.org/normstudy.git normstudy && cd normstudy"
    assert "s3cr3t" not in repr(state)


def test_every_value_on_a_page_shows_its_control_characters_as_escapes(tmp_path: Path) -> None:
    template = tmp_path / "page.html.j2"
    template.write_text("<p>{{ text }}</p><pre>{{ block }}</pre>")
    page = render({"text": "a\x1b[31mred\u202e\x07 <b>", "block": "line 1\n\tline 2"}, template)
    assert page == "<p>a\\x1b[31mred\\u202e\\x07 &lt;b&gt;</p><pre>line 1\n\tline 2</pre>"


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
