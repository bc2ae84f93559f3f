"""The check `make test` runs before pytest: install what the selected tests need, or stop and say how."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import system_deps

SCRIPT = Path(system_deps.__file__)
BROWSER = system_deps.REQUIREMENTS[0]


def run_check(tmp_path: Path, *args: str, present: bool = False, uid: int = 1000, commands: tuple[str, ...] = ()):
    """The script as `make test` runs it, on a simulated machine: its files under a prefix, its user, its PATH."""
    prefix = tmp_path / "machine"
    if present:
        for path in BROWSER.files:
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
    done = run_check(tmp_path, present=True, commands=("apt-get",))
    assert done.returncode == 0
    assert "all present (chromium chromium-driver); no apt-get run" in done.stdout
    assert not (tmp_path / "calls").exists()


def test_no_apt_get_and_not_root_stops_with_the_command_and_the_way_around(tmp_path: Path) -> None:
    done = run_check(tmp_path)
    assert done.returncode == 2
    assert "missing Debian packages chromium chromium-driver" in done.stderr
    assert "sudo apt-get update && sudo apt-get install -y chromium chromium-driver" in done.stderr
    assert "make test PYTEST_ARGS='-m \"not browser\"'" in done.stderr


def test_not_root_without_password_less_sudo_stops_too(tmp_path: Path) -> None:
    done = run_check(tmp_path, commands=("apt-get",))  # apt-get there, but neither root nor sudo
    assert done.returncode == 2
    assert "not root, and sudo -n needs a password or is absent" in done.stderr
    assert not (tmp_path / "calls").exists()


def test_root_installs_what_is_missing(tmp_path: Path) -> None:
    done = run_check(tmp_path, "--dry-run", uid=0, commands=("apt-get",))
    assert done.returncode == 0, done.stderr
    assert "installing chromium chromium-driver with apt-get, for the report's browser tests" in done.stdout
    assert "would run: apt-get update -qq" in done.stdout
    assert (
        "would run: env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver" in done.stdout
    )


def test_deselected_browser_tests_need_no_browser(tmp_path: Path) -> None:
    done = run_check(tmp_path, "--pytest-args", '-m "not browser"')
    assert done.returncode == 0
    assert "none for the selected tests" in done.stdout


@pytest.mark.parametrize(
    ("markexpr", "needed"),
    [(None, True), ("workflow", True), ("browser", True), ("not browser", False), ("not workflow", False)],
)
def test_browser_packages_follow_pytest_marker_selection(markexpr: str | None, needed: bool) -> None:
    args = "" if markexpr is None else f'-q -m "{markexpr}"'
    assert system_deps.selected(BROWSER, system_deps.marker_expression(args)) is needed
