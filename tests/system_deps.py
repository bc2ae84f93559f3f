#!/usr/bin/env python3
"""Install the Debian packages the selected tests need beyond Python, or say exactly how to.

`make test` runs this before pytest. Each group of packages belongs to a pytest marker: when the tests of
that marker are selected (by default all are) and a package is missing, it is installed with
`apt-get update` + `apt-get install` (as root, or through password-less `sudo -n`). Where that is
impossible the check stops with the install command and the marker expression that leaves those tests
out; it never lets them be skipped silently. With everything present it runs no apt-get at all.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# Tests run as a person would: simulate another machine by looking for the files under this prefix,
# as another user id, or with other commands on PATH.
PREFIX_VARIABLE = "NORMSTUDY_SYSTEM_PREFIX"
UID_VARIABLE = "NORMSTUDY_SYSTEM_UID"


@dataclass(frozen=True)
class Requirement:
    """A group of Debian packages, the files that show they are installed, and the tests that need them."""

    marker: str
    packages: tuple[str, ...]
    files: tuple[str, ...]
    needed_by: str
    # Every marker a test of the group carries: pytest's -m expression is evaluated against these.
    test_markers: frozenset[str]


REQUIREMENTS = (
    Requirement(
        marker="browser",
        packages=("chromium", "chromium-driver"),
        files=("/usr/bin/chromium", "/usr/bin/chromedriver"),
        needed_by="the report's browser tests (tests/test_report.py)",
        test_markers=frozenset({"browser", "workflow"}),
    ),
    Requirement(
        marker="slurm",
        packages=("slurmctld", "slurmd", "slurm-client", "munge"),
        files=("/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/bin/sbatch", "/usr/sbin/munged"),
        needed_by="the SLURM test, which runs the study through a real single-node cluster (tests/test_slurm.py)",
        test_markers=frozenset({"slurm", "workflow"}),
    ),
)


def marker_expression(pytest_args: str) -> str | None:
    """The -m expression among pytest's arguments, if any."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("-m", dest="markexpr", default=None)
    known, _ = parser.parse_known_args(shlex.split(pytest_args))
    return known.markexpr


def selected(requirement: Requirement, markexpr: str | None) -> bool:
    """Whether pytest, given `-m markexpr`, would run the tests that need `requirement`."""
    if not markexpr:
        return True
    from _pytest.mark.expression import Expression  # pytest's own -m parser, so the two never disagree

    return Expression.compile(markexpr).evaluate(lambda name: name in requirement.test_markers)


def missing_packages(requirements: tuple[Requirement, ...], prefix: str) -> list[str]:
    """Packages of `requirements` whose files are not there."""
    return [
        package
        for requirement in requirements
        if not all(Path(prefix + path).exists() for path in requirement.files)
        for package in requirement.packages
    ]


def privilege() -> list[str] | None:
    """The command prefix that runs apt-get as root: [] when root, ['sudo', '-n'] when that works, else None."""
    uid = int(os.environ.get(UID_VARIABLE, os.geteuid()))
    if uid == 0:
        return []
    sudo = shutil.which("sudo")
    if sudo and subprocess.run([sudo, "-n", "true"], capture_output=True, check=False).returncode == 0:
        return [sudo, "-n"]
    return None


def install_commands(packages: list[str], prefix: list[str]) -> list[list[str]]:
    """apt-get update, then a quiet non-interactive install of `packages`."""
    install = ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-qq", *packages]
    return [[*prefix, "apt-get", "update", "-qq"], [*prefix, *install]]


def cannot_install(missing: list[str], needs: list[Requirement], why: str) -> str:
    """The message for a machine where the check cannot install what the selected tests need."""
    markers = " and ".join(f"not {r.marker}" for r in needs)
    return (
        f"system-deps: missing Debian packages {' '.join(missing)}, needed by "
        f"{'; '.join(r.needed_by for r in needs)}; cannot install them here ({why}).\n"
        f"  Install them:  sudo apt-get update && sudo apt-get install -y {' '.join(missing)}\n"
        f"  Or run the rest of the suite without those tests:  make test PYTEST_ARGS='-m \"{markers}\"'"
    )


def main(pytest_args: str = "", dry_run: bool = False) -> int:
    """Check, install or explain; return the exit status (0: ready for pytest, 2: cannot be)."""
    prefix = os.environ.get(PREFIX_VARIABLE, "")
    markexpr = marker_expression(pytest_args)
    needs = [r for r in REQUIREMENTS if selected(r, markexpr)]
    missing = missing_packages(tuple(needs), prefix)
    if not missing:
        names = " ".join(p for r in needs for p in r.packages) or "none for the selected tests"
        print(f"system-deps: all present ({names}); no apt-get run")
        return 0
    lacking = [r for r in needs if missing_packages((r,), prefix)]
    if not shutil.which("apt-get"):
        print(cannot_install(missing, lacking, "no apt-get on PATH"), file=sys.stderr)
        return 2
    run_as = privilege()
    if run_as is None:
        print(cannot_install(missing, lacking, "not root, and sudo -n needs a password or is absent"), file=sys.stderr)
        return 2
    print(f"system-deps: installing {' '.join(missing)} with apt-get, for {'; '.join(r.needed_by for r in lacking)}")
    for command in install_commands(missing, run_as):
        if dry_run:
            print("would run: " + shlex.join(command))
            continue
        done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
        if done.returncode != 0:
            print(f"system-deps: {shlex.join(command)} failed:\n{done.stderr.strip()}", file=sys.stderr)
            return 2
    still = [] if dry_run else missing_packages(tuple(needs), prefix)
    if still:
        print(f"system-deps: apt-get finished but {' '.join(still)} is still missing", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pytest-args", default="", help="the arguments make test passes to pytest (its -m counts)")
    parser.add_argument("--dry-run", action="store_true", help="print the apt-get commands instead of running them")
    args = parser.parse_args()
    sys.exit(main(args.pytest_args, args.dry_run))
