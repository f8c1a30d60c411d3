"""Cheap reads of the process environment, for the few values that must follow it live."""

from __future__ import annotations

import os
from collections.abc import Callable

__all__ = ["live_reader"]


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
