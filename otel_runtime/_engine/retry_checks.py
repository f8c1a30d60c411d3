"""Retry settings checked when a flow or task is decorated, so a mistake is told there, by name.

Checked late, a negative delay surfaced at the first failure as ``ValueError: sleep length must be
non-negative``, raised from the sleep between attempts in place of the function's own exception. So
``retries`` must be a whole number (0 or more) and every delay a finite number of seconds, 0 or more.
A callable giving the delays is checked on what it returns, by the retry policy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["check_retries", "check_retry_delays"]


def check_retries(retries: Any) -> None:
    """``ValueError`` unless ``retries`` is a whole number, 0 or more."""
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be a whole number, 0 or more, got {retries!r}")


def _check_delay(delay: Any, shown: str) -> None:
    if (
        isinstance(delay, bool)
        or not isinstance(delay, (int, float))
        or not math.isfinite(delay)
        or delay < 0
    ):
        raise ValueError(f"retry_delay_seconds must be seconds, 0 or more, got {shown}")


def check_retry_delays(delays: Any) -> None:
    """``ValueError`` unless ``delays`` is a number of seconds or a sequence of them, each finite and 0 or
    more; a callable (it gives the delays later) is let through."""
    if callable(delays):
        return
    if isinstance(delays, Sequence) and not isinstance(delays, (str, bytes)):
        for delay in delays:
            _check_delay(delay, f"{delay!r} in {delays!r}")
        return
    _check_delay(delays, repr(delays))
