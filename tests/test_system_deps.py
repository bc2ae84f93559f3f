"""The check `make test` runs before pytest: install what the selected tests need, or stop and say how."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import system_deps

SCRIPT = Path(system_deps.__file__)
BROWSER, SLURM = system_deps.REQUIREMENTS
EVERYTHING = "chromium chromium-driver slurmctld slurmd slurm-client munge"


def run_check(tmp_path: Path, *args: str, present: tuple = (), uid: int = 1000, commands: tuple[str, ...] = ()):
    """The script as `make test` runs it, on a simulated machine: its files under a prefix, its user, its PATH."""
    prefix = tmp_path / "machine"
    for requirement in present:
        for path in requirement.files:
            (prefix / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
            (prefix / path.lstrip("/")).write_text("")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name in commands:  # stand-ins that record how they were called
        tool = bin_dir / name
        tool.write_text(f'#!/bin/sh\necho "{name} $*" >> {tmp_path}/calls\n')
        tool.chmod(0o755)
    env = {
        "PATH": str(bin_dir),
        system_deps.PREFIX_VARIABLE: str(prefix),
        system_deps.UID_VARIABLE: str(uid),
        "HOME": os.environ.get("HOME", "/root"),
    }
    return subprocess.run(
        [sys.executable, SCRIPT, *args], capture_output=True, text=True, env=env, check=False, cwd=tmp_path
    )


def test_nothing_missing_runs_no_apt_get(tmp_path: Path) -> None:
    done = run_check(tmp_path, present=(BROWSER, SLURM), commands=("apt-get",))
    assert done.returncode == 0
    assert f"all present ({EVERYTHING}); no apt-get run" in done.stdout
    assert not (tmp_path / "calls").exists()


def test_no_apt_get_and_not_root_stops_with_the_command_and_the_way_around(tmp_path: Path) -> None:
    done = run_check(tmp_path)
    assert done.returncode == 2
    assert f"missing Debian packages {EVERYTHING}" in done.stderr
    assert f"sudo apt-get update && sudo apt-get install -y {EVERYTHING}" in done.stderr
    assert "make test PYTEST_ARGS='-m \"not browser and not slurm\"'" in done.stderr


def test_only_what_is_missing_is_named(tmp_path: Path) -> None:
    done = run_check(tmp_path, present=(BROWSER,))
    assert done.returncode == 2
    assert "missing Debian packages slurmctld slurmd slurm-client munge, needed by the SLURM test" in done.stderr
    assert "make test PYTEST_ARGS='-m \"not slurm\"'" in done.stderr


def test_not_root_without_password_less_sudo_stops_too(tmp_path: Path) -> None:
    done = run_check(tmp_path, commands=("apt-get",))  # apt-get there, but neither root nor sudo
    assert done.returncode == 2
    assert "not root, and sudo -n needs a password or is absent" in done.stderr
    assert not (tmp_path / "calls").exists()


def test_root_installs_what_is_missing(tmp_path: Path) -> None:
    done = run_check(tmp_path, "--dry-run", uid=0, commands=("apt-get",))
    assert done.returncode == 0, done.stderr
    assert f"installing {EVERYTHING} with apt-get, for the report's browser tests" in done.stdout
    assert "would run: apt-get update -qq" in done.stdout
    assert f"would run: env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {EVERYTHING}" in done.stdout


def test_deselected_browser_tests_need_no_browser(tmp_path: Path) -> None:
    done = run_check(tmp_path, "--pytest-args", '-m "not browser and not slurm"')
    assert done.returncode == 0
    assert "none for the selected tests" in done.stdout
    only_slurm = run_check(tmp_path, "--pytest-args", '-m "not browser"', present=(SLURM,))
    assert only_slurm.returncode == 0 and "all present (slurmctld slurmd slurm-client munge)" in only_slurm.stdout


@pytest.mark.parametrize(
    ("markexpr", "needed"),
    [(None, True), ("workflow", True), ("browser", True), ("not browser", False), ("not workflow", False)],
)
def test_browser_packages_follow_pytest_marker_selection(markexpr: str | None, needed: bool) -> None:
    args = "" if markexpr is None else f'-q -m "{markexpr}"'
    assert system_deps.selected(BROWSER, system_deps.marker_expression(args)) is needed
