"""The one timing helper every row uses: ours and the floor, side by side, interleaved, medians.

A *workload* is a function ``run(n)`` that does its operation ``n`` times. :func:`compare` times ours
and the floor in alternating rounds (ours first in even rounds, the floor first in odd ones), so a
drift of the machine (frequency, another process, the allocator warming up) hits both alike. Each
timed loop runs with the garbage collector off; a full collection runs between loops, untimed.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["QUICK", "Comparison", "compare", "rounds", "time_once"]

Workload = Callable[[int], object]

QUICK = False
"""``--quick``: fewer rounds and smaller counts, for a smoke test of the bench itself."""


def rounds(full: int) -> int:
    """``full`` rounds, or 5 under ``--quick``."""
    return 5 if QUICK else full


@dataclass(frozen=True)
class Comparison:
    """Nanoseconds per operation: the median of the rounds, ours and the floor."""

    ours_ns: float
    floor_ns: float
    ratio: float
    """The median of the per-round ratios (each round pairs one loop of ours with one of the floor)."""

    @property
    def added_ns(self) -> float:
        return self.ours_ns - self.floor_ns


def time_once(run: Workload, n: int) -> int:
    """Nanoseconds ``run(n)`` took, with the collector off; collects before starting."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter_ns()
        run(n)
        return time.perf_counter_ns() - start
    finally:
        gc.enable()


def _empty(n: int) -> None:
    for _ in range(n):
        pass


def compare(ours: Workload, floor: Workload, *, n: int, rounds: int, minus_loop: bool = False) -> Comparison:
    """Time ``ours(n)`` and ``floor(n)`` over ``rounds`` interleaved rounds, after one untimed warm-up.

    ``minus_loop``: subtract the cost of an empty ``for`` loop of ``n`` from both, for operations so
    cheap (an attribute read) that the loop itself would otherwise pull the ratio towards 1.
    """
    ours(n)
    floor(n)
    ours_ns: list[float] = []
    floor_ns: list[float] = []
    ratios: list[float] = []
    for round_ in range(rounds):
        pair = [(ours, ours_ns), (floor, floor_ns)]
        if round_ % 2:
            pair.reverse()
        loop = time_once(_empty, n) if minus_loop else 0
        for run, out in pair:
            out.append(max(time_once(run, n) - loop, 1) / n)
        ratios.append(ours_ns[-1] / floor_ns[-1])
    return Comparison(statistics.median(ours_ns), statistics.median(floor_ns), statistics.median(ratios))
