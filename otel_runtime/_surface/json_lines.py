"""The serializer of ``configure_logging(json=True)``'s lines: ``orjson`` if installed, else stdlib ``json``.

Both are passed to structlog's ``JSONRenderer(serializer=...)``, as structlog's performance docs
recommend for ``orjson``, and both return ``str`` (a ``logging`` handler writes text).

- stdlib ``json``: exactly ``json.dumps(event_dict, default=...)``, with the encoder built once instead
  of on every line (``json.dumps`` builds a new one whenever ``default`` is given).
- ``orjson`` (the ``fast`` extra: ``pip install 'otel-runtime[fast]'``): several times faster. Lines
  are compact (no space after ``,`` and ``:``) and non-ASCII text is written as UTF-8, except the
  characters ``str.splitlines()`` breaks on (``U+0085``, ``U+2028``, ``U+2029``), which are escaped so
  one event stays one line. Values neither encodes go through structlog's fallback (``__structlog__``,
  else ``repr``), datetimes and dataclasses included, as with ``json``. What ``orjson`` refuses (an
  integer beyond 64 bits, a dict with keys that are not strings) is rendered by stdlib ``json``
  instead, so such a line reads exactly as without ``orjson``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

__all__ = ["Serializer", "serializer"]

Serializer = Callable[..., str]
"""``serializer(event_dict, default=fallback) -> str``, as structlog's ``JSONRenderer`` calls it."""

_LINE_BREAKS = re.compile(b"|".join(re.escape(c.encode()) for c in "\u0085\u2028\u2029"))
"""The UTF-8 bytes of the three breaks (alternatives, not a class: a class would match single bytes)."""


def _escape_break(match: re.Match[bytes]) -> bytes:
    return b"\\u%04x" % ord(match.group().decode())


def serializer(*, use_orjson: bool | None = None) -> Serializer:
    """The line serializer: ``orjson``'s when it is importable (or ``use_orjson``), else stdlib ``json``'s.

    Made once, by ``configure_logging()``: the import happens here, never on a log line.
    """
    encoders: dict[object, Callable[[Any], str]] = {}

    def stdlib(event_dict: Any, default: Callable[[Any], Any] | None = None) -> str:
        encode = encoders.get(default)
        if encode is None:
            encode = encoders[default] = json.JSONEncoder(default=default).encode
        return encode(event_dict)

    if use_orjson is False:
        return stdlib
    try:
        import orjson
    except ImportError:
        if use_orjson:
            raise
        return stdlib
    dumps, encode_error = orjson.dumps, orjson.JSONEncodeError
    options = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS

    def fast(event_dict: Any, default: Callable[[Any], Any] | None = None) -> str:
        try:
            line = dumps(event_dict, default=default, option=options)
        except encode_error:
            return stdlib(event_dict, default)
        if not line.isascii():
            line = _LINE_BREAKS.sub(_escape_break, line)
        return line.decode()

    return fast
