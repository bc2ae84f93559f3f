#!/usr/bin/env python3
"""Write the configuration reference (docs/configuration.md) from the config schema and the registries."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from normstudy.cli import run_cli
from normstudy.config.reference import reference
from normstudy.tables import write_text


def main(out: Path) -> str:
    """Write the reference to `out` and return it."""
    text = reference()
    write_text(out, text)
    print(f"wrote {out}: {text.count(chr(10))} lines")
    return text


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="the Markdown file to write")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    run_cli(lambda: main(args.out))
