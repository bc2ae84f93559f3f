"""The configuration reference (docs/configuration.md) rendered from the schema as the workflow loads it (the
registries' norms, datasets and norm parameters filled in), so the page and the checks can never disagree."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from normstudy.config.schema import load_schema

HEADER = (
    "# Configuration reference\n\n"
    "Every key a study config may set, with its type, default and meaning. The page is generated from the config\n"
    "schema (`workflow/schemas/config.schema.yaml`, with the norm and dataset registries filled in) by\n"
    "`python workflow/scripts/config_reference.py --out docs/configuration.md`, and the test suite checks that it is\n"
    "current. `config.yaml` sets the default study, every key commented; a `--configfile` or `--config` changes keys\n"
    "(how they merge: [design.md](design.md)). `<name>` stands for any variant's name.\n"
)


def _type(node: dict[str, Any]) -> str:
    """The key's type in words, with its allowed values or range."""
    if "enum" in node:
        return "one of " + ", ".join(f"`{value}`" for value in node["enum"])
    if "const" in node:
        return f"`{node['const']}`"
    if "anyOf" in node:
        return " or ".join(_type(option) for option in node["anyOf"])
    kind = node.get("type", "any")
    kind = " or ".join(kind) if isinstance(kind, list) else kind
    if kind == "array" and isinstance(node.get("items"), dict):
        return f"list of {_type(node['items'])}"
    bounds = [
        f"{word} {node[key]}"
        for key, word in (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"), ("exclusiveMaximum", "<"))
        if key in node
    ]
    return kind + (f" ({', '.join(bounds)})" if bounds else "")


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def rows(node: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, str, str, str]]:
    """(key, type, default, description) of every key under `node`, depth first in the schema's order; a variant's
    `train` keys are the train section's and are not repeated."""
    required = set(node.get("required", []))
    for key, child in node.get("properties", {}).items():
        path = f"{prefix}{key}"
        default = json.dumps(child["default"]) if "default" in child else ("required" if key in required else "–")
        yield path, _type(child), default, child.get("description", "")
        if path.endswith(".<name>.train"):
            continue
        if child.get("type") == "object" and "properties" in child:
            yield from rows(child, f"{path}.")
        if isinstance(child.get("additionalProperties"), dict) and "properties" in child["additionalProperties"]:
            yield from rows(child["additionalProperties"], f"{path}.<name>.")


TABLE = "| key | type | default | meaning |\n|---|---|---|---|"


def reference(schema: dict[str, Any] | None = None) -> str:
    """The whole page: the top-level keys in one table, then one table per section."""
    schema = schema or load_schema()
    sections = {key for key, node in schema["properties"].items() if node.get("type") == "object"}
    top = [
        f"| `{path}` | {_cell(kind)} | {_cell(default)} | {_cell(text)} |"
        for path, kind, default, text in rows(schema)
        if path in schema["properties"] and path not in sections
    ]
    out = [HEADER, f"\n## Top level\n\n{TABLE}", *top]
    for path, kind, default, text in rows(schema):
        section = path.split(".")[0]
        if section not in sections:
            continue
        if path == section:
            out.append(
                f"\n## `{path}` ({'required' if default == 'required' else 'optional'})\n\n{_cell(text)}\n\n{TABLE}"
            )
            continue
        out.append(f"| `{path}` | {_cell(kind)} | {_cell(default)} | {_cell(text)} |")
    return "\n".join(out) + "\n"
