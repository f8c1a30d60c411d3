"""How the command reports mistakes and failures: ``CliError`` and the user's own traceback."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Final

from otel_runtime._tools.printable import printable_lines

__all__ = ["CliError", "print_user_traceback"]

_PACKAGE_DIR: Final = str(Path(__file__).resolve().parent.parent)


class CliError(Exception):
    """A mistake in the command line, or an outcome told in one line: printed without a traceback."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# -- output ----------------------------------------------------------------------------------------


def _is_ours(filename: str) -> bool:
    return filename.startswith(_PACKAGE_DIR) or filename.startswith("<frozen importlib")


def print_user_traceback(error: BaseException) -> None:
    """The traceback of ``error`` (and of its causes) without the frames of otel_runtime and importlib."""
    report = traceback.TracebackException.from_exception(error)
    pending: list[traceback.TracebackException | None] = [report]
    while pending:
        current = pending.pop()
        if current is not None:
            frames = [frame for frame in current.stack if not _is_ours(frame.filename)]
            current.stack = traceback.StackSummary.from_list(frames)
            pending += [current.__cause__, current.__context__]
    # Its lines as Python prints them, but a message's ESC, OSC or carriage return is shown escaped.
    sys.stderr.write(printable_lines("".join(report.format())))
