"""Named studies: a study's folders under results/ and report/, and which names are safe folder names."""

from __future__ import annotations

import re
from pathlib import Path

# The config key `study`; config.yaml's own study is `default`.
DEFAULT_STUDY = "default"
STUDY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}")
# Folders beside the studies': the shared download and make compare's output.
RESERVED_NAMES = {"data": "the shared download", "compare": "make compare's output"}
# The file every finished study holds (describe_study.py): how make compare recognizes a study folder.
STUDY_FACTS_FILE = "study.json"


def study_name_problem(name: object) -> str | None:
    """Why `name` cannot name a study folder (None when it can)."""
    if not isinstance(name, str) or not STUDY_NAME.fullmatch(name):
        return (
            f"'study': {name!r} is not a safe folder name: letters, digits, '_' or '-' only, starting with a letter "
            "or digit, at most 40, with nothing after it"
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
