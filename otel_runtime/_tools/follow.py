"""The live run tree of ``otel-runtime traces --follow``: runs as they start and end, from the local file.

:class:`Follower` reads the telemetry file incrementally (complete lines only, across a rotation to
``<file>.1``). A run appears with its start event (``otel_runtime.run.start``), so a running run shows
with its elapsed time; it ends with its end event or its span, whichever is read first. A running run
whose process is gone is **lost**: its start event names the process (``process.pid``, ``host.name``),
and when that host is this one and no such process exists any more (a SIGKILL, a power cut of the
worker), the run is shown as ``LOST`` instead of running for ever. Runs started on another host stay
running until their end arrives. A killed process that its parent has not reaped yet still counts as
alive.

:func:`follow` draws them: on a terminal the tree of the last runs is redrawn in place twice a second;
piped, one line is appended per run that starts, ends or is lost.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Final, TextIO

from otel_runtime._base import keys as _keys
from otel_runtime._tools.otlp_read import MALFORMED, FlatSpan, iter_logs, iter_spans, parse_line
from otel_runtime._tools.printable import printable
from otel_runtime._tools.tree import RunInfo, Style, format_duration

__all__ = ["Change", "Follower", "LiveRun", "follow", "process_alive"]

_SHOWN_STATES: Final = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
_CLEAR_BELOW: Final = "\033[J"
_MAX_PID: Final = 2**31


def process_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host (one we may not signal counts as existing)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return True
    return True


@dataclasses.dataclass(slots=True)
class LiveRun:
    """One flow run or task run as far as the file tells: started, ended, or lost."""

    trace_id: str
    span_id: str
    kind: str
    name: str
    run_name: str = ""
    run_id: str = ""
    flow_run_id: str | None = None
    parent_span_id: str | None = None
    deployment: str | None = None
    start_ns: int = 0
    pid: int | None = None
    host: str | None = None
    ended: RunInfo | None = None
    lost: bool = False
    children: list[LiveRun] = dataclasses.field(default_factory=list)

    @property
    def running(self) -> bool:
        """Started, not ended, not lost."""
        return self.ended is None and not self.lost

    def line(self, style: Style, now_ns: int, *, show_deployment: bool = True) -> str:
        """What the tree says about this run now."""
        if self.ended is not None:
            return self.ended.line(style, show_deployment=show_deployment)
        elapsed = format_duration(now_ns - self.start_ns)
        mark, what = ("?", f"LOST after {elapsed}") if self.lost else ("▶", f"RUNNING for {elapsed}")
        if not style.unicode and not self.lost:
            mark = ">"
        if self.lost:
            what += f": process {self.pid} is gone and the run never ended"
        fields = [f"{mark} {self.kind} {printable(self.name)}"]
        if self.run_name:
            fields.append(printable(self.run_name))
        fields.append(style.paint(what, "\033[33m"))
        if show_deployment and self.deployment:
            fields.append(f"deployment {printable(str(self.deployment))}")
        if self.run_id:
            fields.append(style.paint(f"id {printable(self.run_id)}", "\033[2m"))
        return style.dot.join(fields)


@dataclasses.dataclass(frozen=True, slots=True)
class Change:
    """A run started, ended or was found lost."""

    what: str  # "started", "ended" or "lost"
    run: LiveRun


class Follower:
    """Reads the telemetry file as it grows and keeps the runs it describes."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        alive: Callable[[int], bool] = process_alive,
        host: str | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.path = Path(path)
        self.runs: dict[tuple[str, str], LiveRun] = {}
        self._parents: dict[tuple[str, str], str | None] = {}  # every span read: its parent span id
        self._alive = alive
        self._host = host if host is not None else socket.gethostname()
        self._clock = clock
        self._inode: int | None = None
        self._offset = 0
        self._partial = b""
        rotated = self.path.with_name(self.path.name + ".1")
        if rotated.is_file():  # the older lines first
            self._read_lines(rotated.read_bytes(), [])

    def poll(self) -> list[Change]:
        """Read what was appended since the last poll; return the runs that started, ended or got lost."""
        changes: list[Change] = []
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            stat = None
        if stat is not None and stat.st_ino != self._inode:
            if self._inode is not None:  # rotated: the rest of the old file is <path>.1 now
                self._read_rest(self.path.with_name(self.path.name + ".1"), changes)
            self._inode, self._offset, self._partial = stat.st_ino, 0, b""
        if stat is not None:
            self._read_rest(self.path, changes)
        for run in self.runs.values():
            if run.running and run.pid is not None and run.host == self._host and not self._alive(run.pid):
                run.lost = True
                changes.append(Change("lost", run))
        return changes

    def roots(self) -> list[LiveRun]:
        """The runs, each under its nearest run ancestor; the roots, oldest first."""
        for run in self.runs.values():
            run.children = []
        roots: list[LiveRun] = []
        for run in sorted(self.runs.values(), key=lambda r: r.start_ns):
            parent = self._parent_run(run)
            (roots if parent is None else parent.children).append(run)
        return roots

    def render(self, style: Style, *, last: int = 10) -> list[str]:
        """The tree of the last ``last`` root runs (and everything below them), as lines."""
        now = self._clock()
        lines: list[str] = []
        for index, root in enumerate(self.roots()[-last:]):
            if index:
                lines.append("")
            started = datetime.fromtimestamp(root.start_ns / 1e9).astimezone().strftime("%H:%M:%S")
            trace_id = printable(root.trace_id)
            lines.append(style.paint(f"trace {trace_id}{style.dot}started {started}", "\033[2m"))
            lines.append(root.line(style, now))
            _render_children(root, "", style, now, lines)
        return lines

    # -- reading ------------------------------------------------------------------------------------

    def _read_rest(self, path: Path, changes: list[Change]) -> None:
        try:
            with path.open("rb") as file:
                file.seek(self._offset)
                data = file.read()
        except OSError:
            return
        self._offset += len(data)
        data = self._partial + data
        complete, _, self._partial = data.rpartition(b"\n")
        if complete:
            self._read_lines(complete, changes)

    def _read_lines(self, data: bytes, changes: list[Change]) -> None:
        for line in data.splitlines():
            record = parse_line(line)
            if record is None:
                continue
            try:  # a line that is JSON but not OTLP is skipped
                self._record(record, changes)
            except MALFORMED:
                continue

    def _record(self, record: dict[str, Any], changes: list[Change]) -> None:
        spans, logs = list(iter_spans(record)), list(iter_logs(record))
        for span in spans:
            self._span(span, changes)
        for log in logs:
            if log["event_name"] in _keys.RUN_EVENTS and log["trace_id"] and log["span_id"]:
                key = (log["trace_id"], log["span_id"])
                self._event(log["event_name"], key, log["attributes"], changes)

    def _event(
        self, name: str, key: tuple[str, str], attributes: dict[str, Any], changes: list[Change]
    ) -> None:
        trace_id, span_id = key
        run = self.runs.get(key)
        is_flow = attributes.get(_keys.RUN_TYPE) == _keys.RUN_TYPE_FLOW
        if run is None:
            name_key = _keys.LOG_FLOW_RUN_NAME if is_flow else _keys.LOG_TASK_RUN_NAME
            run = self.runs[trace_id, span_id] = LiveRun(
                trace_id=trace_id,
                span_id=span_id,
                kind=_keys.RUN_TYPE_FLOW if is_flow else _keys.RUN_TYPE_TASK,
                name=str(attributes.get(_keys.FLOW_NAME if is_flow else _keys.TASK_NAME, "")),
                run_name=str(attributes.get(name_key) or ""),
                run_id=str(attributes.get(_keys.LOG_FLOW_RUN_ID if is_flow else _keys.LOG_TASK_RUN_ID, "")),
                flow_run_id=attributes.get(_keys.LOG_FLOW_RUN_ID),
                deployment=attributes.get(_keys.LOG_DEPLOYMENT_NAME),
            )
        if name == _keys.RUN_START_EVENT:
            run.parent_span_id = attributes.get(_keys.RUN_PARENT_SPAN_ID)
            pid = attributes.get(_keys.PROCESS_PID)
            # A hostile file could name pid 0 or -1 (a process group) or one too big for os.kill.
            run.pid = pid if type(pid) is int and 0 < pid < _MAX_PID else None
            run.host = attributes.get(_keys.HOST_NAME)
            if run.ended is None and not run.lost:
                changes.append(Change("started", run))
        elif run.ended is None:
            duration_ns = int(float(attributes.get(_keys.RUN_DURATION_S, 0)) * 1e9)
            state = str(attributes.get(_keys.RUN_STATE_TYPE, "COMPLETED"))
            run.ended = RunInfo(
                kind=run.kind,
                name=run.name,
                run_name=run.run_name,
                run_id=run.run_id,
                status=state if state in _SHOWN_STATES else "FAILED",
                message="" if state == "COMPLETED" else str(attributes.get(_keys.RUN_STATE_NAME, state)),
                duration_ns=duration_ns,
                attempts=1,
                deployment=run.deployment,
            )
            changes.append(Change("ended", run))

    def _span(self, span: FlatSpan, changes: list[Change]) -> None:
        key = (span["trace_id"], span["span_id"])
        self._parents[key] = span["parent_span_id"]
        attributes = span["attributes"]
        if attributes.get(_keys.RUN_TYPE) not in (_keys.RUN_TYPE_FLOW, _keys.RUN_TYPE_TASK):
            return
        info = RunInfo.from_flat_span(span)
        run = self.runs.get(key)
        if run is None:
            run = self.runs[key] = LiveRun(
                trace_id=span["trace_id"],
                span_id=span["span_id"],
                kind=info.kind,
                name=info.name,
                run_name=info.run_name,
                run_id=info.run_id,
                flow_run_id=attributes.get(_keys.FLOW_RUN_ID),
                deployment=attributes.get(_keys.DEPLOYMENT_NAME),
                start_ns=span["start_ns"],
            )
        run.start_ns = span["start_ns"]
        run.parent_span_id = span["parent_span_id"]
        was_open = run.ended is None
        run.ended = info  # the span is the whole story: retries, the error message, the version
        if was_open:
            changes.append(Change("ended", run))

    def _parent_run(self, run: LiveRun) -> LiveRun | None:
        """The nearest run above ``run``: up the span parents, else (a span in between not yet ended) the
        flow run a task run belongs to."""
        parent_id, seen = run.parent_span_id, set()
        while parent_id and parent_id not in seen:
            seen.add(parent_id)
            found = self.runs.get((run.trace_id, parent_id))
            if found is not None:
                return found
            if (run.trace_id, parent_id) not in self._parents:
                break
            parent_id = self._parents[run.trace_id, parent_id]
        if run.kind == _keys.RUN_TYPE_TASK and run.flow_run_id:
            for other in self.runs.values():
                if other.kind == _keys.RUN_TYPE_FLOW and other.run_id == run.flow_run_id:
                    return other
        return None


def _render_children(node: LiveRun, indent: str, style: Style, now: int, lines: list[str]) -> None:
    # tree.py draws recorded RunNodes the same way; these are live runs, with an elapsed time.
    child_branch, last_branch, line_on, nothing_on = style.branches
    for index, child in enumerate(node.children):
        last = index == len(node.children) - 1
        line = child.line(style, now, show_deployment=child.deployment != node.deployment)
        lines.append(f"{indent}{last_branch if last else child_branch}{line}")
        _render_children(child, indent + (nothing_on if last else line_on), style, now, lines)


def _change_line(change: Change, style: Style, now_ns: int) -> str:
    clock = datetime.fromtimestamp(now_ns / 1e9).astimezone().strftime("%H:%M:%S")
    run = change.run
    if change.what == "started":
        running = f"RUNNING for {format_duration(now_ns - run.start_ns)}"
        line = run.line(style, now_ns).replace(running, "started")
    else:
        line = run.line(style, now_ns)
    return f"{clock} {line}"


def follow(
    path: str | os.PathLike[str],
    out: TextIO,
    style: Style,
    *,
    terminal: bool,
    last: int = 10,
    interval: float = 0.5,
    keep_going: Callable[[], bool] = lambda: True,
) -> None:
    """Follow ``path`` until ``keep_going()`` is false (or Ctrl-C): redraw on a terminal, else append."""
    follower = Follower(path)
    now = time.time_ns()
    drawn = 0
    if terminal:
        lines = follower.render(style, last=last)
        out.write("\n".join(lines) + ("\n" if lines else ""))
        drawn = len(lines)
    else:
        for change in follower.poll():
            if change.what == "lost" or (change.what == "started" and change.run.running):
                out.write(_change_line(change, style, now) + "\n")
    out.flush()
    for _ in _ticks(interval, keep_going):
        changes = follower.poll()
        now = time.time_ns()
        if terminal:
            lines = follower.render(style, last=last)
            up = f"\033[{drawn}F" if drawn else ""
            out.write(up + _CLEAR_BELOW + "\n".join(lines) + ("\n" if lines else ""))
            drawn = len(lines)
        else:
            for change in changes:
                out.write(_change_line(change, style, now) + "\n")
        out.flush()


def _ticks(interval: float, keep_going: Callable[[], bool]) -> Iterator[None]:
    while keep_going():
        time.sleep(interval)
        yield
