"""Named studies: a study's folders under results/ and report/, and which names are safe folder names."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Any

from normstudy import atomic
from normstudy.config.study import FetchSettings
from normstudy.values import ABSENT, config_digest, differences, flat_keys

# The config key `study`; config.yaml's own study is `default`.
DEFAULT_STUDY = "default"
STUDY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}")
# Folders beside the studies': the shared download and make compare's output.
RESERVED_NAMES = {"data": "the shared download", "compare": "make compare's output"}
# The file every finished study holds (describe_study.py): how make compare recognizes a study folder.
STUDY_FACTS_FILE = "study.json"


def _quoted(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}... ({len(text):,} characters)"


def study_name_problem(name: object) -> str | None:
    """Why `name` cannot name a study folder (None when it can)."""
    if not isinstance(name, str) or not STUDY_NAME.fullmatch(name):
        return (
            f"'study': {_quoted(name)} is not a safe folder name: letters, digits, '_' or '-' only, starting with a "
            "letter or digit, at most 40, with nothing after it"
        )
    if name in RESERVED_NAMES:
        return f"'study': {name!r} is reserved (results/{name}/ holds {RESERVED_NAMES[name]}); choose another name"
    return None


def study_folders(name: str) -> dict[str, str]:
    """The study's output folders, relative to the workflow: results/<name> and report/<name>."""
    return {"results": f"results/{name}", "report": f"report/{name}"}


def is_study_folder(folder: Path) -> bool:
    """Whether `folder` holds a finished study's outputs (its study.json)."""
    return (folder / STUDY_FACTS_FILE).is_file()


# What a study folder records of the config that made it (written when a run starts, checked at every parse).
IDENTITY_FILE = "study_config.json"
# Keys that say how to run, not what: where the download comes from, and the folder's own name. A config that differs
# only in these is the same study.
NOT_IDENTITY = (
    "study",
    "amend_study",
    *(f"data.{field.name}" for field in dataclasses.fields(FetchSettings)),
)
# The config key that lets a run change the config recorded in an existing study folder.
AMEND_KEY = "amend_study"
SHOWN_KEYS = 6


def study_identity(config: dict[str, Any]) -> dict[str, Any]:
    """The validated config less NOT_IDENTITY, as dotted key -> value: what decides the study's files."""
    return {key: value for key, value in flat_keys(config).items() if key not in NOT_IDENTITY}


def _value(value: Any) -> str:
    if value == ABSENT:
        return "absent"
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


def differing_keys(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """'key: old -> new' for each dotted key whose value differs (a key one side lacks shows as absent)."""
    return [f"{key}: {_value(ours)} -> {_value(theirs)}" for key, ours, theirs in differences(old, new)]


def _listed(lines: list[str]) -> str:
    shown = "; ".join(lines[:SHOWN_KEYS])
    return shown + (f"; and {len(lines) - SHOWN_KEYS} more keys" if len(lines) > SHOWN_KEYS else "")


def recorded_identity(folder: Path) -> dict[str, Any] | None:
    """The identity recorded in the study folder (None: none recorded); ValueError naming the file when unreadable."""
    path = folder / IDENTITY_FILE
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
        identity = record["identity"]
        if not isinstance(identity, dict) or record.get("digest") != config_digest(identity):
            raise ValueError("its digest does not match its contents")
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(
            f"{path}: unreadable record of the config that made this study ({error}); restore it, or remove the "
            f"folder {folder} to start the study afresh"
        ) from None
    return identity


def is_off(value: Any) -> bool:
    """Whether a config value leaves its feature off: null, false or zero."""
    return value is None or value is False or (isinstance(value, int | float) and value == 0)


def identity_problem(folder: Path, values: dict[str, Any], amend: bool) -> str | None:
    """Why this config (`values`, validated) may not write into the study folder (None: it may): another config's
    study is recorded there, and the run does not say it means to change it."""
    recorded = recorded_identity(folder)
    if recorded is None or amend:
        return None
    identity = study_identity(values)
    # A key added to the schema after the study was recorded, with its feature off (null, false or 0: no control, no
    # flip, no crop), is the config the study was made with, not another one.
    added_off = {key for key, value in identity.items() if is_off(value) and key not in recorded}
    changes = differing_keys(recorded, {key: value for key, value in identity.items() if key not in added_off})
    if not changes:
        return None
    name = values["study"]
    return (
        f"study '{name}': {folder}/ holds the study of another config ({_listed(changes)}). Nothing was run or "
        f"written. To keep both, give this config another name (study: <name> in its file, or --config study=<name>); "
        f"to start '{name}' afresh, remove {folder}/ and report/{name}/; to change '{name}' itself on purpose (its "
        f"runs of the old config are kept where they still apply), add --config {AMEND_KEY}=True"
    )


def unnamed_change_problem(own: dict[str, Any], merged: dict[str, Any], others: list[str]) -> str | None:
    """Why config sources that name no study may not change the default study (None: they change nothing of it,
    or they name one): `own` is config.yaml's study alone, `merged` with the other sources."""
    if merged["study"] != own["study"]:
        return None
    changes = differing_keys(study_identity(own), study_identity(merged))
    if not changes:
        return None
    one = len(others) == 1
    return (
        f"{' and '.join(others)} change{'s' * one} what the '{own['study']}' study runs "
        f"({_listed(changes)}) but name{'s' * one} no study, so {'it' if one else 'they'} would "
        f"overwrite results/{own['study']}/. Nothing was run or written. Name the study (study: <name> in the file, "
        f"or --config study=<name>); or, to change '{own['study']}' itself on purpose, add --config {AMEND_KEY}=True"
    )


def record_identity(folder: Path, config: dict[str, Any], sources: list[str]) -> None:
    """Write the folder's record of the config that makes it (atomically)."""
    identity = study_identity(config)
    folder.mkdir(parents=True, exist_ok=True)
    atomic.write_json(
        folder / IDENTITY_FILE, {"digest": config_digest(identity), "sources": sources, "identity": identity}
    )


def _ancestors() -> set[int]:
    """This process and the processes that started it (a `make` or `timeout` around this run is not another run)."""
    found, pid = set(), os.getpid()
    while pid > 1 and pid not in found:
        found.add(pid)
        try:
            pid = int((Path("/proc") / str(pid) / "stat").read_text().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return found


def other_snakemake_runs(workdir: Path) -> list[str]:
    """'pid: command line' of every other live Snakemake process working in `workdir` (Linux /proc; [] elsewhere)."""
    found, own = [], _ancestors()
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if int(entry.name) in own or Path(os.readlink(entry / "cwd")) != workdir.resolve():
                continue
            words = [word for word in (entry / "cmdline").read_bytes().decode(errors="replace").split("\0") if word]
        except (OSError, ValueError):
            continue  # gone, or another user's
        if any(Path(word).name == "snakemake" for word in words[:3]) and "--mode" not in words:
            found.append(f"{entry.name}: {' '.join(words)[:200]}")
    return found


def concurrent_run_note(workdir: Path) -> str | None:
    """What to do when Snakemake is about to find this checkout locked by another study's run (None: no lock held
    by a live run). Snakemake's own message advises --unlock, which would let two runs write the shared download."""
    locks = workdir / ".snakemake" / "locks"
    if not locks.is_dir() or not any(locks.iterdir()):
        return None
    others = other_snakemake_runs(workdir)
    if not others:
        return None
    return (
        f"another Snakemake run is working in {workdir} ({'; '.join(others[:3])}). Snakemake runs one at a time per "
        "checkout, even for two studies (they share the download in results/data/): if this run is refused as "
        "'Directory cannot be locked', wait for that run to end, or run the second study in another clone. Do not "
        "pass --unlock while it runs"
    )
