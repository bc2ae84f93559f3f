#!/usr/bin/env python3
"""Run a command with the words of environment variables appended (make's user values: STUDY_ARGS, PYTEST_ARGS),
split as a shell splits words (quotes group them) but never interpreted: no substitution, expansion or second command.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys


def command_line(command: list[str], variables: list[str]) -> list[str]:
    """`command` followed by the words of each variable in `variables`; ValueError naming a variable it cannot split."""
    words = list(command)
    for name in variables:
        try:
            words += shlex.split(os.environ.get(name, ""))
        except ValueError as error:
            raise ValueError(f"{name}: {error} (quote each argument whole)") from None
    return words


def main(variables: list[str], command: list[str]) -> None:
    """Replace this process with the command (its exit status is make's)."""
    try:
        words = command_line(command, variables)
    except ValueError as error:
        sys.exit(f"error: {error}")
    os.execvp(words[0], words)  # noqa: S606 -- no shell, on purpose: the words are data


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line: the variables to append, then `--` and the command."""
    parser = argparse.ArgumentParser(description=__doc__, usage="%(prog)s [--append VAR ...] -- COMMAND [ARG ...]")
    parser.add_argument("--append", action="append", default=[], metavar="VAR", help="environment variable to append")
    parser.add_argument("command", nargs="+", help="the command and its own arguments")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    main(args.append, args.command)
