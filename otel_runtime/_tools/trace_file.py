"""Choosing what ``otel-runtime traces`` draws from telemetry files, in two streamed passes.

A telemetry file can be hundreds of megabytes, and only the last few runs are drawn. So the files are
read twice, one line at a time, and only what is drawn is kept whole:

1. the **index** pass reads every line and keeps, per trace, the start of its earliest and latest run
   span and where its lines are (a few numbers per trace, never a span);
2. the **load** pass reads again only the lines of the traces that can hold what is drawn, and builds
   their run trees (``_tools.tree.build_forest``).

The last ``last`` root runs are exactly those of the whole file: every trace's earliest run is a root
(a run starts after its parent), so the ``last``-th latest trace start bounds the start of every root
drawn, and only traces with a run starting at or after it are loaded. ``--flow-run`` loads the traces
that hold a flow run with that id (or id prefix).

A line that is JSON but not OTLP (``{"resourceSpans": 5}``, a timestamp that is not a number, brackets
nested deeper than the parser goes) or not JSON at all (a line cut by a killed writer) is skipped and
counted in :attr:`Selection.skipped_lines`. Lines that hold only log records are not parsed.
"""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

from otel_runtime._base import keys as _keys
from otel_runtime._tools.otlp_read import MALFORMED, FlatSpan, iter_spans, parse_line
from otel_runtime._tools.tree import RunNode, build_forest, find_flow_runs

__all__ = ["Selection", "select_runs"]

_RUN_TYPES: Final = (_keys.RUN_TYPE_FLOW, _keys.RUN_TYPE_TASK)
_LOGS_ONLY: Final = b'{"resourceLogs"'
_SPANS_KEY: Final = b'"resourceSpans"'


@dataclasses.dataclass(slots=True)
class _Trace:
    """What the index pass keeps of one trace: its run starts and the lines that hold its spans."""

    first_run_ns: int | None = None
    last_run_ns: int | None = None
    lines: list[tuple[int, int]] = dataclasses.field(default_factory=list)  # (file index, offset)
    flow_run_ids: set[str] = dataclasses.field(default_factory=set)


@dataclasses.dataclass(frozen=True, slots=True)
class Selection:
    """The runs to draw: ``roots`` (oldest first), how many traces hold runs, lines skipped as not OTLP."""

    roots: list[RunNode]
    more: bool  # some root runs of the files are not in ``roots``
    traces: int
    skipped_lines: int


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as file:
        offset = 0
        for line in file:
            yield offset, line
            offset += len(line)


def _spans_of_line(line: bytes) -> list[FlatSpan] | None:
    """The spans on one line (``[]`` for a log line or a blank one); ``None`` when the line is not OTLP."""
    if not line.strip() or (line.startswith(_LOGS_ONLY) and _SPANS_KEY not in line):
        return []
    record = parse_line(line)
    if record is None:
        return None
    try:
        return list(iter_spans(record))
    except MALFORMED:
        return None


def _index(files: Sequence[Path]) -> tuple[dict[str, _Trace], int]:
    traces: dict[str, _Trace] = {}
    skipped = 0
    for number, path in enumerate(files):
        for offset, line in _lines(path):
            spans = _spans_of_line(line)
            if spans is None:
                skipped += 1
                continue
            for span in spans:
                trace = traces.get(span["trace_id"])
                if trace is None:
                    trace = traces[span["trace_id"]] = _Trace()
                where = (number, offset)
                if not trace.lines or trace.lines[-1] != where:
                    trace.lines.append(where)
                attributes = span["attributes"]
                run_type = attributes.get(_keys.RUN_TYPE)
                if run_type not in _RUN_TYPES:
                    continue
                start = span["start_ns"]
                if trace.first_run_ns is None or start < trace.first_run_ns:
                    trace.first_run_ns = start
                if trace.last_run_ns is None or start > trace.last_run_ns:
                    trace.last_run_ns = start
                if run_type == _keys.RUN_TYPE_FLOW:
                    trace.flow_run_ids.add(str(attributes.get(_keys.FLOW_RUN_ID, "")).lower())
    return traces, skipped


def _load(files: Sequence[Path], traces: dict[str, _Trace], wanted: set[str]) -> list[FlatSpan]:
    """The spans of the ``wanted`` traces, read from their lines only."""
    places = sorted({place for trace_id in wanted for place in traces[trace_id].lines})
    spans: list[FlatSpan] = []
    for number, path in enumerate(files):
        offsets = [offset for file_number, offset in places if file_number == number]
        if not offsets:
            continue
        with path.open("rb") as file:
            for offset in offsets:
                file.seek(offset)
                found = _spans_of_line(file.readline())
                spans.extend(span for span in found or () if span["trace_id"] in wanted)
    return spans


def _latest(traces: dict[str, _Trace], last: int) -> set[str]:
    """The traces that can hold one of the ``last`` latest root runs.

    The ``last`` traces whose earliest run started last (ties: the later in the file), and any other
    trace with a run that started after the earliest of those (a trace running alongside them).
    """
    ranked = heapq.nlargest(
        last,
        ((trace.first_run_ns, order, trace_id) for order, (trace_id, trace) in enumerate(traces.items())),
        key=lambda item: (item[0] is not None, item[0] or 0, item[1]),
    )
    chosen = {trace_id for first_run_ns, _, trace_id in ranked if first_run_ns is not None}
    if not chosen:
        return chosen
    bound = min(first_run_ns or 0 for first_run_ns, _, _ in ranked if first_run_ns is not None)
    return chosen | {trace_id for trace_id, trace in traces.items() if (trace.last_run_ns or -1) > bound}


def _holding(traces: dict[str, _Trace], flow_run_id: str) -> set[str]:
    """The traces holding a flow run whose id is ``flow_run_id``, else one whose id starts with it."""
    wanted = flow_run_id.strip().lower()
    exact = {trace_id for trace_id, trace in traces.items() if wanted in trace.flow_run_ids}
    if exact or not wanted:
        return exact
    return {
        trace_id
        for trace_id, trace in traces.items()
        if any(run_id.startswith(wanted) for run_id in trace.flow_run_ids)
    }


def select_runs(files: Sequence[Path], *, last: int, flow_run: str | None = None) -> Selection:
    """The last ``last`` root runs of ``files`` (read in order), or the flow runs ``flow_run`` names.

    Raises ``OSError`` when a file cannot be read.
    """
    traces, skipped = _index(files)
    with_runs = sum(trace.first_run_ns is not None for trace in traces.values())
    wanted = _latest(traces, last) if flow_run is None else _holding(traces, flow_run)
    roots = build_forest(_load(files, traces, wanted))
    if flow_run is not None:
        return Selection(find_flow_runs(roots, flow_run), False, with_runs, skipped)
    more = len(roots) > last or with_runs > len(wanted)
    return Selection(roots[-last:], more, with_runs, skipped)
