"""State that a forked child must not inherit: reset it there, for as long as its owner lives."""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable

__all__ = ["after_fork_in_child"]


def after_fork_in_child(method: Callable[[], None]) -> None:
    """Call the bound ``method`` in a forked child, for as long as its object lives."""
    weak = weakref.WeakMethod(method)

    def after_in_child() -> None:
        reset = weak()
        if reset is not None:
            reset()

    os.register_at_fork(after_in_child=after_in_child)
