"""Reads of the process environment: a setting's value, a boolean setting, a live reader for hot paths."""

from __future__ import annotations

import os
from collections.abc import Callable

__all__ = ["live_reader", "parse_bool", "read_env"]


def read_env(name: str) -> str | None:
    """The value of the variable ``name`` without surrounding blanks; ``None`` when unset or blank."""
    return os.environ.get(name, "").strip() or None


def parse_bool(raw: str | None, *, default: bool) -> bool:
    """A boolean setting: ``"true"`` or ``"false"`` in any case; anything else (unset too) is ``default``.

    The OpenTelemetry rule for boolean variables, which only ever name ``true`` and ``false``.
    """
    if raw is not None:
        word = raw.lower()
        if word == "true":
            return True
        if word == "false":
            return False
    return default


def live_reader(name: str) -> Callable[[], str | None]:
    """Return a function that reads ``name`` from ``os.environ`` each call, at the cost of a dict lookup.

    ``os.environ.get`` raises and catches two ``KeyError`` for a missing name (about 0.7 µs), which is
    too slow for an accessor. ``os.environ`` keeps its values in ``_data``, keyed by the encoded name and
    updated by every assignment through ``os.environ``; reading it directly costs 40 ns.
    """
    environ = os.environ
    data = getattr(environ, "_data", None)
    if not isinstance(data, dict):  # pragma: no cover - a Python without the mapping behind os.environ
        return lambda: environ.get(name)
    key = environ.encodekey(name)
    decode = environ.decodevalue

    def read() -> str | None:
        value = data.get(key)
        return None if value is None else str(decode(value))

    return read
