"""How the command talks to a terminal: its name in messages and the styles of its output."""

from __future__ import annotations

import os
import sys
from typing import Final

from otel_runtime._tools.tree import Style

__all__ = ["PROGRAM", "terminal_style"]


PROGRAM: Final = "otel-runtime"


def terminal_style() -> Style:
    """Colours only on a terminal (and never with ``NO_COLOR``); Unicode marks when stdout can encode them."""
    stream = sys.stdout
    color = stream.isatty() and not os.environ.get("NO_COLOR")
    try:
        "✓✗⊘├└│·µ".encode(stream.encoding or "ascii")
    except (LookupError, UnicodeEncodeError):
        return Style(color=color, unicode=False)
    return Style(color=color, unicode=True)
