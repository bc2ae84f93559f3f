"""Config and settings values as the checks see them: the error that names the offending keys, a bounded quote of a
value, strict integers, and nested mappings as dotted keys, their differences and digest. Imports nothing of the
package: every wing's checks use it."""

from __future__ import annotations

import hashlib
import json
import reprlib
from typing import Any

MAX_QUOTED = 60
_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxdict, _SHORT.maxlist, _SHORT.maxstring, _SHORT.maxother = 2, 4, 4, MAX_QUOTED, 40


class ConfigError(ValueError):
    """A config or settings file the study cannot run with; the message names every offending key."""


def short(value: Any) -> str:
    """A bounded repr of a config value, for error messages: huge or deep values are cut."""
    text = _SHORT.repr(value)
    return text if len(text) <= MAX_QUOTED + 20 else text[: MAX_QUOTED + 17] + "..."


def strict_integer(value: Any) -> bool:
    """An int that is not a bool: JSON Schema counts 2.0 as an integer; Python's range(), torch and argparse do
    not."""
    return isinstance(value, int) and not isinstance(value, bool)


ABSENT = "(absent)"


def config_digest(config: dict[str, Any]) -> str:
    """SHA-256 of the config as key-sorted JSON: the same for the same settings, whatever their order in YAML."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def flat_keys(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested mapping as dotted key -> value."""
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flat_keys(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def differences(ours: Any, theirs: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """(dotted key, our value, their value) for every leaf where two JSON values differ."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        found = []
        for key in sorted(set(ours) | set(theirs), key=str):
            found += differences(ours.get(key, ABSENT), theirs.get(key, ABSENT), f"{prefix}{key}.")
        return found
    return [] if ours == theirs else [(prefix.rstrip(".") or "(the file)", ours, theirs)]
