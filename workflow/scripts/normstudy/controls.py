"""Characters a terminal or browser acts on: which they are, how to name one, and how a page shows them as text."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import markupsafe

# Bidirectional controls (Unicode category Cf) can make the report show text in another order than it holds.
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Unicode gives the C0 and C1 controls no names.
CONTROL_NAMES = {0: "NUL", 7: "BEL", 8: "backspace", 9: "tab", 10: "newline", 13: "carriage return", 27: "ESC"}
# Layout a page may hold as it is: a multi-line value (the config's YAML) keeps its lines.
PAGE_LAYOUT = frozenset("\n\t")


def is_control(char: str) -> bool:
    """A C0 or C1 control character (newline and tab included) or a bidirectional control."""
    return unicodedata.category(char) == "Cc" or char in BIDI_CONTROLS


def control_name(char: str) -> str:
    """'U+001B (ESC)': the character's code point and name."""
    return f"U+{ord(char):04X} ({CONTROL_NAMES.get(ord(char)) or unicodedata.name(char, 'control')})"


# Every control but the page's layout: the C0 and C1 controls all lie below U+00A0.
RAW_ON_A_PAGE = re.compile(
    "["
    + "".join(re.escape(chr(code)) for code in range(0xA0) if is_control(chr(code)) and chr(code) not in PAGE_LAYOUT)
    + "".join(sorted(BIDI_CONTROLS))
    + "]"
)


def visible_controls(value: Any) -> Any:
    """Text with every control character but newline and tab written as a visible escape such as \\x1b: a page
    never carries raw what a terminal or browser would act on. Other values pass unchanged."""
    if not isinstance(value, str):
        return value
    escaped = RAW_ON_A_PAGE.sub(lambda match: match.group().encode("unicode_escape").decode(), str(value))
    # Safe markup stays safe: the escapes added are backslashes, letters and digits, never markup.
    return markupsafe.Markup(escaped) if isinstance(value, markupsafe.Markup) else escaped  # noqa: S704
