"""Reads of the process environment: a setting's value, a boolean setting, a live reader for hot paths."""

from __future__ import annotations

import os
from collections.abc import Callable

__all__ = ["live_reader", "parse_bool", "raw_environ", "read_env"]


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


def raw_environ(*names: str) -> tuple[dict[object, object], tuple[object, ...]] | None:
    """The mapping behind ``os.environ`` and the keys of ``names`` in it, for a check inlined in a hot path.

    ``key in mapping`` is true exactly when the variable is set (any assignment through ``os.environ``
    updates the mapping); ``None`` on a Python without that mapping. See :func:`live_reader`.
    """
    data = getattr(os.environ, "_data", None)
    if not isinstance(data, dict):  # pragma: no cover - a Python without the mapping behind os.environ
        return None
    return data, tuple(os.environ.encodekey(name) for name in names)


def live_reader(name: str, *fallbacks: str) -> Callable[[], str | None]:
    """Return a function that reads ``name`` from ``os.environ`` each call, at the cost of a dict lookup.

    When ``name`` is unset, each of ``fallbacks`` is read in turn (an alias, such as Prefect's spelling
    of the same variable): the first one set answers.

    ``os.environ.get`` raises and catches two ``KeyError`` for a missing name (about 0.7 µs), which is
    too slow for an accessor. ``os.environ`` keeps its values in ``_data``, keyed by the encoded name and
    updated by every assignment through ``os.environ``; reading it directly costs 40 ns.
    """
    environ = os.environ
    data = getattr(environ, "_data", None)
    if not isinstance(data, dict):  # pragma: no cover - a Python without the mapping behind os.environ
        names = (name, *fallbacks)
        return lambda: next((environ[each] for each in names if each in environ), None)
    key = environ.encodekey(name)
    decode = environ.decodevalue
    if not fallbacks:

        def read() -> str | None:
            value = data.get(key)
            return None if value is None else str(decode(value))

        return read
    if len(fallbacks) == 1:  # the usual case (an accessor and its Prefect spelling): no loop
        alias = environ.encodekey(fallbacks[0])

        def read_or_alias() -> str | None:
            value = data.get(key)
            if value is None:
                value = data.get(alias)
                if value is None:
                    return None
            return str(decode(value))

        return read_or_alias
    alias_keys = tuple(environ.encodekey(each) for each in fallbacks)

    def read_with_aliases() -> str | None:
        value = data.get(key)
        if value is None:
            for alias_key in alias_keys:
                value = data.get(alias_key)
                if value is not None:
                    break
            else:
                return None
        return str(decode(value))

    return read_with_aliases
