"""Text from a telemetry file or a run, made safe to print on a terminal.

Run names, exception messages, deployment names and resource attributes are user text, and a
telemetry file may come from anywhere. Printed raw, a newline in a run name fakes a line of its own
(``✓ flow ...``), and ESC or OSC sequences move the cursor, retitle the window or hide text.
:func:`printable` escapes every character that :meth:`str.isprintable` rejects (control characters,
line and paragraph separators, bidirectional overrides and other format characters) the way ``repr``
does (``\\n``, ``\\x1b``, ``\\u202e``), so what is printed is one line that says what the text holds.

>>> printable("etl\\n✓ flow fake")
'etl\\\\n✓ flow fake'
"""

from __future__ import annotations

__all__ = ["printable", "printable_lines"]


def _escaped(character: str) -> str:
    return character if character.isprintable() else repr(character)[1:-1]


def printable(text: str) -> str:
    """``text`` as one printable line: every non-printable character escaped as ``repr`` would."""
    if text.isprintable():
        return text
    return "".join(map(_escaped, text))


def printable_lines(text: str) -> str:
    """``text`` with its line breaks kept (``\\n``) and every other non-printable character escaped."""
    return "\n".join(map(printable, text.split("\n")))
