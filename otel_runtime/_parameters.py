"""Run parameters as span attributes: a bounded ``repr``, secrets redacted.

The ``repr`` is bounded in length (``MAX_REPR_LENGTH``) and in cost: containers are walked only a few
levels deep and a few dozen items wide (``reprlib``), strings and bytes are cut before they are
represented, so a 200 MB ``bytes`` or a ten-million-item list costs microseconds, not seconds. A value
whose parameter name looks secret is replaced by ``[REDACTED]``, and so is a value under a secret-looking
key of a mapping nested in a parameter (``config={"password": ...}``). Other objects are represented
by their own ``repr`` (cut to the limit): a secret inside one (a dataclass field, say) is not found.
"""

from __future__ import annotations

import re
import reprlib
from collections.abc import Mapping
from itertools import islice
from typing import Any, Final

__all__ = ["MAX_REPR_LENGTH", "REDACTED", "looks_secret", "parameter_attributes", "safe_repr"]

MAX_REPR_LENGTH: Final = 256
REDACTED: Final = "[REDACTED]"
_SECRET = re.compile(
    r"pass(word|wd|phrase)?|secret|token|api_?key|auth(orization)?|credentials?|private_?key|"
    r"access_?key|session_?key|cookie|signature|dsn|pwd",
    re.IGNORECASE,
)


def looks_secret(name: str) -> bool:
    """Whether a parameter named ``name`` probably holds a secret (``password``, ``api_key``, ...)."""
    return _SECRET.search(name) is not None


_MAX_ITEMS: Final = 24
_MAX_LEVEL: Final = 4


class _BoundedRepr(reprlib.Repr):
    """``reprlib`` limits, mappings in their own order with secret-looking keys redacted, bytes cut."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.maxlevel = _MAX_LEVEL
        self.maxdict = self.maxlist = self.maxtuple = _MAX_ITEMS
        self.maxset = self.maxfrozenset = self.maxdeque = self.maxarray = _MAX_ITEMS
        self.maxstring = self.maxlong = self.maxother = limit

    def repr1(self, x: Any, level: int) -> str:
        if isinstance(x, Mapping):
            return self._repr_mapping(x, level)
        if isinstance(x, (bytes, bytearray)):
            return self._repr_bytes(x)
        return super().repr1(x, level)

    def _repr_mapping(self, x: Mapping[Any, Any], level: int) -> str:
        if not x:
            body = ""
        elif level <= 0:
            body = "..."
        else:
            pieces = [
                f"{self.repr1(key, level - 1)}: "
                + (REDACTED if isinstance(key, str) and looks_secret(key) else self.repr1(value, level - 1))
                for key, value in islice(x.items(), self.maxdict)
            ]
            if len(x) > self.maxdict:
                pieces.append("...")
            body = ", ".join(pieces)
        return f"{{{body}}}" if type(x) is dict else f"{type(x).__qualname__}({{{body}}})"

    def repr_instance(self, x: Any, level: int) -> str:
        try:
            text = repr(x)
        except Exception:
            return f"<unrepresentable {type(x).__qualname__}>"
        return text if len(text) <= self.maxother else text[: self.maxother - 3] + "..."

    def _repr_bytes(self, x: bytes | bytearray) -> str:
        text = repr(x[: self.maxstring])
        return text[:-1] + "...'" if len(x) > self.maxstring and text.endswith("'") else text


_reprs: dict[int, _BoundedRepr] = {}


def safe_repr(value: object, limit: int = MAX_REPR_LENGTH) -> str:
    """A ``repr(value)`` of at most ``limit`` characters, bounded in cost, secrets in mappings redacted.

    Never raises, even for a broken ``__repr__``.
    """
    bounded = _reprs.get(limit)
    if bounded is None:
        bounded = _reprs[limit] = _BoundedRepr(limit)
    try:
        text = bounded.repr(value)
    except Exception:
        return f"<unrepresentable {type(value).__qualname__}>"
    if len(text) > limit:
        return text[: limit - 3] + "..."
    return text


def parameter_attributes(prefix: str, parameters: Mapping[str, Any]) -> dict[str, str]:
    """``{prefix + name: bounded repr}`` for every parameter, with secret-looking ones redacted."""
    return {
        prefix + name: REDACTED if looks_secret(name) else safe_repr(value)
        for name, value in parameters.items()
    }
