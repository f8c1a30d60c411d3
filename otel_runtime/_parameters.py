"""Run parameters as span attributes: a bounded ``repr``, secrets redacted."""

from __future__ import annotations

import re
from collections.abc import Mapping
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


def safe_repr(value: object, limit: int = MAX_REPR_LENGTH) -> str:
    """``repr(value)`` cut to ``limit`` characters; never raises, even for a broken ``__repr__``."""
    try:
        text = repr(value)
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
