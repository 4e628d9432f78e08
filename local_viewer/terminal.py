"""Text from the monitor (reasons, names) made safe for a terminal: no escape sequences, no control codes."""

from __future__ import annotations

import re
import sys
from typing import IO

# CSI/OSC/other escape sequences, then any remaining C0/C1 control character except newline and tab
_ESCAPES = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])|\x9b[0-?]*[ -/]*[@-~]")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def terminal_safe(text: object) -> str:
    """The text with escape sequences removed and other control characters shown as \\xNN."""
    cleaned = _ESCAPES.sub("", str(text))
    return _CONTROLS.sub(lambda m: ascii(m.group())[1:-1], cleaned)


def say(*parts: object, file: IO[str] | None = None) -> None:
    """print() for text that may hold data from the server."""
    print(*(terminal_safe(p) for p in parts), file=file or sys.stdout)
