"""How every script ends on bad input: one line naming the file or key, exit status 2, no traceback.

The project's own checks raise ValueError subclasses (ConfigError, DataIntegrityError, ...) and the file system
raises OSError naming the path; either is a problem with what the script was given, not a bug to debug, so the
traceback is kept only for developers who ask for it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

DEBUG_VARIABLE = "NORMSTUDY_DEBUG"
BAD_INPUT_STATUS = 2
BAD_INPUT: tuple[type[BaseException], ...] = (ValueError, OSError)


def one_line(error: BaseException) -> str:
    """The error's message on one line (an error without one is named by its type)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return "; ".join(lines) or type(error).__name__


def run_cli(main: Callable[[], object], also: tuple[type[BaseException], ...] = ()) -> None:
    """Run a script's `main`; bad input (and the errors in `also`) ends in one line on stderr and exit status 2.

    NORMSTUDY_DEBUG=1 lets the exception through, with its traceback.
    """
    try:
        main()
    except (*BAD_INPUT, *also) as error:
        if os.environ.get(DEBUG_VARIABLE, "") not in ("", "0"):
            raise
        print(f"error: {one_line(error)}", file=sys.stderr)
        sys.exit(BAD_INPUT_STATUS)


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    return _bounded_int(text, 1)


def non_negative_int(text: str) -> int:
    """argparse type: a whole number of at least 0."""
    return _bounded_int(text, 0)


def _bounded_int(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"{value} is below {least}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a finite number above 0")
    return value


def snakemake_arguments(description: str, example: str, argv: list[str] | None = None) -> list[str]:
    """Parse a command line whose every argument but --help is the study's own Snakemake argument (`example`: what
    the usage line shows, e.g. '--configfile my.yaml')."""
    parser = argparse.ArgumentParser(
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage=f"%(prog)s [SNAKEMAKE_ARGS ...]   (e.g. {example})",
    )
    _, snakemake_args = parser.parse_known_args(argv)
    return snakemake_args
