#!/usr/bin/env python3
"""Write one run's settings.json: the typed settings every later step of the run reads."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from normstudy import atomic
from normstudy.cli import run_cli
from normstudy.settings import RunSettings


def main(settings: dict, out: Path) -> RunSettings:
    """Check `settings` field by field (types, finiteness, no unknown keys) and write them to `out`."""
    typed = RunSettings.from_dict(settings)
    atomic.write_json(out, typed.file_dict())
    print(f"{out}: {typed.variant.name} seed {typed.seed}, settings {typed.digest()[:12]}")
    return typed


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--settings", type=json.loads, required=True, help="the run's settings as JSON")
    parser.add_argument("--out", type=Path, required=True, help="settings.json to write")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    run_cli(lambda: main(args.settings, args.out))
