"""The table: rows, their formatting, and ``bench/results.md`` with the machine and versions."""

from __future__ import annotations

import datetime
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from bench._timing import Comparison

__all__ = ["NOTES", "RESULTS", "TIMES", "Row", "format_ns", "machine", "ratio_row", "table", "write_results"]

RESULTS = Path(__file__).parent / "results.md"
TIMES = "\N{MULTIPLICATION SIGN}"
_VERSIONS = ("opentelemetry-api", "opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-grpc", "structlog",
             "grpcio", "prefect")  # fmt: skip

NOTES = [
    "## How each row is measured",
    "",
    "One function per row in `bench/rows.py`; the timing helper is `bench/_timing.py`.",
    "",
    "- Times are medians over interleaved rounds: ours and its floor alternate (ours first in even "
    "rounds, the floor first in odd ones), the collector is off while timing and runs between loops. "
    "The ratio is the median of the per-round ratios.",
    "- Floor of the run rows: bare OpenTelemetry doing the same work. It starts a span with the same name "
    "and attributes (copied from a real run) as a child of the current context, sets the same baggage "
    "entries, attaches once, runs an empty body, detaches and ends the span. Both sides export through "
    "a `BatchSpanProcessor` to an exporter that drops; its queue is 16,384 spans, not 2,048, because a "
    "busy loop starves the export thread and every span dropped from a full queue costs a `logging` "
    "call. Every run row runs inside a deployment, so runs carry deployment attributes and baggage.",
    "- Accessors are read inside a task run inside a flow run. The floor reads one baggage entry with "
    "`opentelemetry.baggage.get_baggage` (`task_run.id` for `task_run.name`, which is not in baggage). "
    "The cost of the empty loop is subtracted from both.",
    "- Log row: structlog `merge_contextvars`, `add_log_level`, `TimeStamper` and `JSONRenderer`, "
    "writing to an in-memory `WriteLogger`, inside a task run, with and without `add_run_context`. "
    "The added time is split by a third chain that stamps the same seven fields as constants: "
    '"the processor" (ours against that chain) is reading the run context; "rendering" (the rest) is '
    "`json.dumps` writing the fields. "
    "The fields are always present (`None` when absent), so the rendering share is the price of the "
    "log schema, whatever the processor does.",
    "- Map row: `task.map` of 1,000 items in a flow (the default thread-pool runner, started once "
    "in the warm-up), waited for with `.result()`, per task run. The floor submits 1,000 bare runs "
    "with `contextvars.copy_context().run` to a `ThreadPoolExecutor` of the same default size.",
    "- Parameter row: a task with one `int` parameter, recorded on its span (the default) against "
    "the same task with `record_parameters=False`; the difference is the price of recording it.",
    "- Line rows: `configure_logging(json=True)` writing to an in-memory stream, a line logged inside "
    "a task run, against a bare line: structlog `add_log_level`, `TimeStamper` and `JSONRenderer` "
    "(no run fields, no `logging`), and for stdlib lines a non-propagating logger with a "
    "`StreamHandler` and a formatter that `json.dumps` the time, level, logger name and message. "
    "The target is 1 times the bare line where `orjson` is installed, 1.5 times without it.",
    "- OTLP without decoding: the same 50,000 spans to a gRPC server in a child process that "
    "answers each export with the empty response without parsing the request, so the exporter "
    "(encoding, gRPC) and the processor set the pace; dropped is spans created minus spans the "
    "exporter reported exported.",
    "- Async row: per task run, one `asyncio.gather` of 1,000 task runs against 1,000 bare-span "
    "coroutines, on one event loop, inside a flow run.",
    "- Memory: resident set size (`/proc/self/statm`) before and after the flow, after a warm-up "
    'flow; "retained" counts run contexts, run records and SDK spans still reachable after a full '
    "collection.",
    "- OTLP: `OtlpReceiver` runs in a child process, as a collector would. Spans go through a "
    "`BatchSpanProcessor` with a 65,536-span queue (more than the run, so it cannot drop) and 512-span "
    'batches; the time runs from the first task run to the end of `force_flush()`. "Dropped" is '
    "spans created minus distinct span ids received. The receiver, not the exporter, sets the pace: it "
    "turns every request into OTLP/JSON and flat dicts in Python, about twice the exporter's time "
    "to encode the same batch, and the processor waits for each batch's answer before the next.",
    "- Prefect row (only when `prefect` is importable: `pip install prefect`): a Prefect task run with "
    "an empty body inside a Prefect flow, against the same floor as the first row; Prefect's temporary "
    "local server, its console logging at WARNING.",
    "",
    "## What the profiles showed",
    "",
    "- Task and flow runs: most of a run is the SDK's `start_span` (attribute checks, sampling, ids), "
    "which the floor pays too. Our own share was mostly run ids from `uuid.uuid4()` (an `os.urandom` "
    "system call each), `inspect.Signature.bind` on every call, a second `set_attribute` at the end of "
    "every span for `run_count`, and repeated context look-ups. Each is now cheaper: ids from a private "
    "PRNG (still UUID4), a positional fast path for binding, `run_count` set at span start and "
    "updated only on a retry, and fewer `get_current()` calls.",
    "- Accessors: on Python 3.11 a module `__getattr__` runs only after the normal lookup has raised "
    "and caught an `AttributeError`, half the cost of a read. The accessor modules now carry their "
    "attributes as descriptors on the module's class, and keep `__getattr__` for unknown names.",
    "- Log row: the processor itself stays well under 1 µs (a cache keyed by the active context, then "
    "one dict update). The target is missed by the JSON rendering of the seven fields it adds.",
]


@dataclass(frozen=True)
class Row:
    """One line of the table. ``met`` is ``None`` for a row without a target."""

    name: str
    ours: str
    floor: str
    result: str
    target: str
    met: bool | None


def format_ns(ns: float) -> str:
    """``850 ns``, ``12.3 µs``, ``2.10 ms``."""
    if ns < 1_000:
        return f"{ns:.0f} ns"
    if ns < 1_000_000:
        return f"{ns / 1_000:.1f} µs"
    return f"{ns / 1_000_000:.2f} ms"


def ratio_row(name: str, result: Comparison, max_ratio: float, max_ns: float | None = None) -> Row:
    """A row judged by its ratio to the floor (and, with ``max_ns``, by its own time)."""
    target = f"≤ {max_ratio:g}{TIMES}" + (f" and ≤ {format_ns(max_ns)}" if max_ns is not None else "")
    met = result.ratio <= max_ratio and (max_ns is None or result.ours_ns <= max_ns)
    return Row(
        name, format_ns(result.ours_ns), format_ns(result.floor_ns), f"{result.ratio:.2f}{TIMES}", target, met
    )


def table(rows: Sequence[Row]) -> str:
    """The rows as a Markdown table."""
    lines = ["| row | ours | floor | result | target | met |", "|---|---:|---:|---:|---|---|"]
    for row in rows:
        met = "—" if row.met is None else ("yes" if row.met else "**no**")
        lines.append(f"| {row.name} | {row.ours} | {row.floor} | {row.result} | {row.target} | {met} |")
    return "\n".join(lines)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def machine() -> list[str]:
    """Where and with what the numbers were taken, one Markdown bullet per fact."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    versions = ", ".join(f"{name} {version}" for name in _VERSIONS if (version := _version(name)))
    return [
        f"- CPU: {_cpu_model()}, {usable} usable core(s) of {os.cpu_count()}",
        f"- {platform.python_implementation()} {platform.python_version()} on {platform.system()} "
        f"{platform.release()}",
        f"- {versions}",
        f"- {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
    ]


def write_results(rows: Sequence[Row], notes: Sequence[str], seconds: float, path: Path = RESULTS) -> None:
    """Write the table, the machine, the versions and the notes to ``path``."""
    text = "\n".join(
        [
            "# Benchmark results",
            "",
            f"Written by `python -m bench` (from the repository root); the whole run took {seconds:.0f} s.",
            "",
            *machine(),
            "",
            table(rows),
            "",
            *notes,
            "",
        ]
    )
    path.write_text(text, encoding="utf-8")
