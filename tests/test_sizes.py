"""The size limits of `make lint`: modules, functions and common.smk, checked on the code and on made-up files."""

from __future__ import annotations

from pathlib import Path

from check_sizes import MAX_FUNCTION_LINES, long_functions, problems


def test_the_workflow_keeps_every_size_limit() -> None:
    assert problems() == []


def test_a_long_function_and_a_long_method_are_named(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    source = tmp_path / "long.py"
    source.write_text(
        f"def short():\n    return 1\n\n\ndef long():\n{body}\n\n\nclass Box:\n    @staticmethod\n    def wide():\n"
        + body.replace("    x", "        x")
        + "\n"
    )
    assert long_functions(source) == [("long", MAX_FUNCTION_LINES + 1), ("Box.wide", MAX_FUNCTION_LINES + 2)]
