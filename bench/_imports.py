"""The import row: ``import otel_runtime`` against ``import opentelemetry.sdk.trace``, fresh interpreters."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys

from bench._report import TIMES, Row, format_ns

__all__ = ["import_row"]

_TIMED_IMPORT = (
    "import time\nstart = time.perf_counter_ns()\nimport {module}\nprint(time.perf_counter_ns() - start)"
)


# Bytecode is cached, as for any user after the first import: PYTHONDONTWRITEBYTECODE would make every
# interpreter compile our sources again while the SDK's, byte-compiled by pip, load from .pyc files.
_ENV = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}


def _import_ns(module: str) -> int:
    """Nanoseconds ``import module`` takes in a new interpreter (its own start-up not counted)."""
    code = _TIMED_IMPORT.format(module=module)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=_ENV)
    return int(done.stdout)


def import_row(rounds: int) -> Row:
    """Median of per-round ratios; rounds alternate which import runs first."""
    ours_ns: list[int] = []
    floor_ns: list[int] = []
    ratios: list[float] = []
    for module in ("otel_runtime", "opentelemetry.sdk.trace"):  # warm-up: writes any missing .pyc
        _import_ns(module)
    for round_ in range(rounds):
        pair = [("otel_runtime", ours_ns), ("opentelemetry.sdk.trace", floor_ns)]
        if round_ % 2:
            pair.reverse()
        for module, out in pair:
            out.append(_import_ns(module))
        ratios.append(ours_ns[-1] / floor_ns[-1])
    ratio = statistics.median(ratios)
    return Row(
        "`import otel_runtime` vs `import opentelemetry.sdk.trace` (fresh interpreters)",
        format_ns(statistics.median(ours_ns)),
        format_ns(statistics.median(floor_ns)),
        f"{ratio:.2f}{TIMES}",
        f"≤ 1{TIMES}",
        ratio <= 1.0,
    )
