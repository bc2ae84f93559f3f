#!/usr/bin/env python3
"""The size limits `make lint` holds the code to: no Python module of the workflow over 400 lines, no function
over 60, and common.smk at most 300 lines. Prints each offender and exits 1 if there is one."""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
MAX_COMMON_LINES = 300


def long_functions(path: Path, limit: int = MAX_FUNCTION_LINES) -> list[tuple[str, int]]:
    """(qualified name, lines) of every function or method in `path` longer than `limit` lines."""
    found = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    # From the decorator (or def) line to the last line of the body.
                    first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                    lines = child.end_lineno - first + 1
                    if lines > limit:
                        found.append((name, lines))
                visit(child, f"{name}.")

    visit(ast.parse(path.read_text(encoding="utf-8")), "")
    return found


def problems(root: Path = REPO) -> list[str]:
    """Every module, function and rule file over its limit, one line each."""
    found = []
    for path in sorted((root / "workflow" / "scripts").rglob("*.py")):
        where = path.relative_to(root)
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_MODULE_LINES:
            found.append(f"{where}: {lines} lines (at most {MAX_MODULE_LINES})")
        found += [f"{where}: {name}() has {n} lines (at most {MAX_FUNCTION_LINES})" for name, n in long_functions(path)]
    common = root / "workflow" / "rules" / "common.smk"
    lines = len(common.read_text(encoding="utf-8").splitlines())
    if lines > MAX_COMMON_LINES:
        found.append(f"{common.relative_to(root)}: {lines} lines (at most {MAX_COMMON_LINES})")
    return found


def main(root: Path) -> int:
    """Print the offenders; 0 when there are none."""
    found = problems(root)
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, default=REPO, help="the repository to check")
    sys.exit(main(parser.parse_args().root))
