"""Whether this process has made anything a run's argument could wait on: a future, a state or an
annotation. Until it has, a call skips looking through its arguments for them (one global read)."""

from __future__ import annotations

__all__ = ["anything", "note"]

anything = False
"""Set, once and for good, by the first future, state or annotation made in this process."""


def note() -> None:
    """Record that an upstream-like object now exists."""
    global anything  # noqa: PLW0603 - a fact about this process that only ever turns true
    anything = True
