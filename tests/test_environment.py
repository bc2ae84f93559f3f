"""The pip requirements and environment.yml pin the same packages at the same versions."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from conftest import REPO

PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s;#]+)$")


def pip_pins(path: Path) -> dict[str, str]:
    """Pins of a requirements file, following `-r` includes."""
    pins: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-r "):
            pins.update(pip_pins(path.parent / line[3:].strip()))
            continue
        match = PIN.match(line)
        assert match, f"{path.name}: '{line}' is not pinned with =="
        pins[match.group(1).lower()] = match.group(2)
    return pins


def conda_pins() -> dict[str, str]:
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_section = next(dep["pip"] for dep in env["dependencies"] if isinstance(dep, dict))
    pins = {}
    for line in pip_section:
        match = PIN.match(line.strip())
        assert match, f"environment.yml: '{line}' is not pinned with =="
        pins[match.group(1).lower()] = match.group(2)
    return pins


def test_environment_yml_lists_the_same_pins_as_requirements() -> None:
    assert conda_pins() == pip_pins(REPO / "requirements-dev.txt")


def test_torch_pins_are_the_ones_on_this_machines_disk() -> None:
    pins = pip_pins(REPO / "requirements.txt")
    assert pins["torch"] == "2.14.1"
    assert pins["torchvision"] == "0.29.1"
    assert pins["snakemake"].startswith("9.")


def test_environment_yml_python_is_311() -> None:
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
