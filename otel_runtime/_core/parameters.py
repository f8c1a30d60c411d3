"""Run parameters as span attributes: a bounded ``repr``, secrets redacted.

The ``repr`` is bounded in length (``MAX_REPR_LENGTH``) and in cost: builtin containers are walked
only a few levels deep, a few dozen items wide and no further than the limit, and strings and bytes
are cut before they are represented, so a 200 MB ``bytes`` or a ten-million-item list costs
microseconds, not seconds. A value whose parameter name looks secret is replaced by ``[REDACTED]``,
and so is a value under a secret-looking key of a mapping nested in a parameter
(``config={"password": ...}``), at any depth. Other objects are represented by their own ``repr``
(cut to the limit): a secret inside one (a dataclass field, say) is not found.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Final

__all__ = ["MAX_REPR_LENGTH", "REDACTED", "looks_secret", "parameter_attributes", "safe_repr"]

MAX_REPR_LENGTH: Final = 256
REDACTED: Final = "[REDACTED]"
# ``api_key``, ``api-key`` (HTTP headers: ``X-Api-Key``), ``api.key``, ``api key`` and ``apikey`` alike.
_SECRET = re.compile(
    r"pass(word|wd|phrase)?|secret|token|api[-_. ]?key|auth(orization)?|credentials?|private[-_. ]?key|"
    r"access[-_. ]?key|session[-_. ]?key|cookie|signature|dsn|pwd",
    re.IGNORECASE,
)


def looks_secret(name: str) -> bool:
    """Whether a name looks like it holds a secret (``password``, ``api_key``, ``X-Api-Key``, ...)."""
    return _SECRET.search(name) is not None


_MAX_ITEMS: Final = 24
_MAX_LEVEL: Final = 4
_Show = Callable[[Any, int, int], str]
"""Represent a value within a depth (``level``) and about a number of characters (``budget``)."""


def _bounded(value: object, level: int, budget: int) -> str:
    """``repr(value)``, giving up (``...``) once about ``budget`` characters are written.

    Builtin containers are walked at most ``level`` deep and ``_MAX_ITEMS`` wide; a value under a
    secret-looking string key of a mapping is redacted; strings and bytes are cut before their repr.
    """
    show = _BY_TYPE.get(type(value))
    if show is not None:
        return show(value, level, budget)
    if isinstance(value, Mapping):
        return _mapping(value, level, budget)
    return _instance(value, level, budget)


def _scalar(value: object, level: int, budget: int) -> str:
    return repr(value)  # an int of more than 4300 digits raises ValueError: safe_repr says so


def _text(value: str, level: int, budget: int) -> str:
    return repr(value) if len(value) <= budget else repr(value[:budget])[:-1] + "..."


def _data(value: bytes | bytearray, level: int, budget: int) -> str:
    cut = repr(value[:budget])
    return cut if len(value) <= budget else cut[:-1] + "..." + cut[-1]


def _sequence(value: list[Any] | tuple[Any, ...] | set[Any] | frozenset[Any], level: int, budget: int) -> str:
    if not value:
        return repr(value)
    left, right = _BRACKETS[type(value)]
    body = _items(value, level, budget, _bounded)
    if type(value) is tuple and len(value) == 1 and body != "...":
        body += ","
    return left + body + right


def _mapping(value: Mapping[Any, Any], level: int, budget: int) -> str:
    body = _items(value.items(), level, budget, _pair)
    return f"{{{body}}}" if type(value) is dict else f"{type(value).__qualname__}({{{body}}})"


def _pair(pair: tuple[Any, Any], level: int, budget: int) -> str:
    key, value = pair
    shown = _bounded(key, level, budget)
    if isinstance(key, str) and looks_secret(key):
        return f"{shown}: {REDACTED}"
    return f"{shown}: {_bounded(value, level, budget - len(shown))}"


def _instance(value: object, level: int, budget: int) -> str:
    try:
        text = repr(value)
    except Exception:
        return f"<unrepresentable {type(value).__qualname__}>"
    return text if len(text) <= budget else text[:budget] + "..."


def _items(items: Any, level: int, budget: int, show: _Show) -> str:
    """The first items of ``items``, comma separated, while they fit ``budget`` (then ``...``)."""
    if level <= 0:
        return "..." if items else ""
    pieces: list[str] = []
    used = 0
    for index, item in enumerate(items):
        if index == _MAX_ITEMS or used > budget:
            pieces.append("...")
            break
        piece = show(item, level - 1, budget - used)
        pieces.append(piece)
        used += len(piece) + 2
    return ", ".join(pieces)


_BRACKETS: Final[dict[type, tuple[str, str]]] = {
    list: ("[", "]"),
    tuple: ("(", ")"),
    set: ("{", "}"),
    frozenset: ("frozenset({", "})"),
}
_BY_TYPE: Final[dict[type, _Show]] = {
    **dict.fromkeys((int, float, bool, complex, type(None)), _scalar),
    str: _text,
    bytes: _data,
    bytearray: _data,
    **dict.fromkeys(_BRACKETS, _sequence),
    dict: _mapping,
}


def safe_repr(value: object, limit: int = MAX_REPR_LENGTH) -> str:
    """A ``repr(value)`` of at most ``limit`` characters, bounded in cost, secrets in mappings redacted.

    Never raises, even for a broken ``__repr__``.
    """
    try:
        text = _bounded(value, _MAX_LEVEL, limit)
    except Exception:
        return f"<unrepresentable {type(value).__qualname__}>"
    if len(text) > limit:
        return text[: limit - 3] + "..."
    return text


_SCALARS: Final = frozenset({int, float, bool, type(None)})
_names: dict[str, dict[str, tuple[str, bool]]] = {}
"""By prefix, each parameter name's attribute key and whether it looks secret (names repeat every run)."""
_MAX_NAMES: Final = 4096


def parameter_attributes(
    prefix: str, parameters: Mapping[str, Any], attributes: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``{prefix + name: bounded repr}`` for every parameter, with secret-looking ones redacted.

    Added to ``attributes`` when given (a run's span attributes: no dict made and merged per run).
    """
    names = _names.get(prefix)
    if names is None:
        names = _names[prefix] = {}
    if attributes is None:
        attributes = {}
    for name, value in parameters.items():
        known = names.get(name)
        if known is None:
            if len(names) >= _MAX_NAMES:
                names.clear()
            known = names[name] = (prefix + name, looks_secret(name))
        key, secret = known
        if secret:
            attributes[key] = REDACTED
        elif type(value) in _SCALARS:  # safe_repr's answer, without its walk when it fits
            try:
                text = repr(value)
            except ValueError:  # an int of more than 4300 digits: safe_repr names it
                text = ""
            attributes[key] = text if 0 < len(text) <= MAX_REPR_LENGTH else safe_repr(value)
        else:
            attributes[key] = safe_repr(value)
    return attributes
