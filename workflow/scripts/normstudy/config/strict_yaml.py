"""Config files read as they look: safe YAML that refuses what YAML 1.1 would read differently from how it is written.

PyYAML follows YAML 1.1: a key written twice keeps its last value, `010` is octal 8, `1:30` is 90, and `1e-4`
(no decimal point) is text. Each of these is refused here, naming the file, the line and what to write instead.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from normstudy.values import ConfigError

# Plain scalars that YAML 1.1 resolves to something other than what they look like.
LEADING_ZERO = re.compile(r"[-+]?0[0-9_]+")
SEXAGESIMAL = re.compile(r"[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?")
# A number with an exponent but no decimal point: text to YAML 1.1, a float to YAML 1.2 and to JSON.
BARE_EXPONENT = re.compile(r"[-+]?([0-9][0-9_]*)[eE][-+]?[0-9]+")


class StrictLoader(yaml.SafeLoader):
    """SafeLoader whose errors name the file it reads."""

    def __init__(self, stream: Any, name: str) -> None:
        super().__init__(stream)
        self.file_name = name

    def where(self, node: yaml.Node) -> str:
        """'file, line N' for a node."""
        return f"{self.file_name}, line {node.start_mark.line + 1}"


def _construct_mapping(loader: StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # '<<: *alias' merges another mapping in; its keys may be overridden
        key = loader.construct_object(key_node, deep=deep)
        if isinstance(key, list | dict):
            continue  # unhashable: SafeConstructor refuses it below
        line = key_node.start_mark.line + 1
        if key in seen:
            raise ConfigError(
                f"{loader.file_name}: key {key!r} is written twice (lines {seen[key]} and {line}), and YAML would keep "
                "only the second; merge the two into one"
            )
        seen[key] = line
    return SafeConstructor.construct_mapping(loader, node, deep=deep)


def _without_zeros(text: str) -> str:
    """An integer's digits without the leading zeros (and underscores), sign kept."""
    sign = text[0] if text[0] in "+-" else ""
    return sign + (text.lstrip("+-").replace("_", "").lstrip("0") or "0")


def _construct_int(loader: StrictLoader, node: yaml.ScalarNode) -> int:
    text = node.value
    if LEADING_ZERO.fullmatch(text):
        raise ConfigError(
            f"{loader.where(node)}: {text} has a leading zero, which YAML reads as an octal number "
            f"({SafeConstructor.construct_yaml_int(loader, node)}); write {_without_zeros(text)}, "
            "or quote it if it is text"
        )
    if SEXAGESIMAL.fullmatch(text):
        raise ConfigError(
            f"{loader.where(node)}: {text} is read by YAML as a base-60 number "
            f"({SafeConstructor.construct_yaml_int(loader, node)}); quote it if it is text"
        )
    return SafeConstructor.construct_yaml_int(loader, node)


def _construct_float(loader: StrictLoader, node: yaml.ScalarNode) -> float:
    if SEXAGESIMAL.fullmatch(node.value):
        raise ConfigError(
            f"{loader.where(node)}: {node.value} is read by YAML as a base-60 number; quote it if it is text"
        )
    return SafeConstructor.construct_yaml_float(loader, node)


def _construct_str(loader: StrictLoader, node: yaml.ScalarNode) -> str:
    text = node.value if node.style is None else ""  # only plain scalars: a quoted one is text as written
    match = BARE_EXPONENT.fullmatch(text)
    if match and not math.isfinite(float(text)):
        raise ConfigError(f"{loader.where(node)}: {text} is not a finite number (floats end near 1.8e308)")
    if match:
        spelled = text.replace(match.group(1), f"{match.group(1)}.0", 1)
        raise ConfigError(
            f"{loader.where(node)}: {text} is text to YAML, which needs a decimal point in a number with an "
            f"exponent; write {spelled}"
        )
    if LEADING_ZERO.fullmatch(text):
        raise ConfigError(
            f"{loader.where(node)}: {text} has a leading zero, which YAML reads as text; write "
            f"{_without_zeros(text)}, or quote it if it is text"
        )
    return SafeConstructor.construct_yaml_str(loader, node)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
StrictLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
StrictLoader.add_constructor("tag:yaml.org,2002:float", _construct_float)
StrictLoader.add_constructor("tag:yaml.org,2002:str", _construct_str)


def read_strict_yaml(path: str | Path) -> Any:
    """The YAML (or JSON) document in `path`, read strictly; one-line ConfigError for a missing, unreadable, non-UTF-8
    or malformed file."""
    name = str(path)
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{name}: no such config file") from None
    except IsADirectoryError:
        raise ConfigError(f"{name}: is a folder, not a config file") from None
    except PermissionError:
        raise ConfigError(f"{name}: cannot be read (permission denied)") from None
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{name}: not UTF-8 text (byte {error.object[error.start]:#04x} at offset {error.start}); save it as UTF-8"
        ) from None
    loader = StrictLoader(text, name)
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{name}{where}: not valid YAML: {error.problem or error.context}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{name}: not valid YAML: {error}") from None
    finally:
        loader.dispose()
