"""Recorded flow runs and task runs as a tree in the terminal: what ``otel-runtime traces`` draws.

The spans come from the OTLP/JSON lines file (``_otlp_json.iter_spans``). Each flow run and task run
span is placed under its nearest run ancestor (spans of other instrumentation in between are skipped);
runs with none are the roots, one tree each, oldest first::

    trace 4bf92f3577b34da6a3ce929d0e0e4736 · started 2026-01-02 03:04:05 · service otel-runtime
    ✓ flow demo-etl · brave-otter · COMPLETED in 1.52 s · deployment demo v1 · id 0f3d...
    ├── ✓ task extract · extract-3a1c · COMPLETED in 112 ms · retried 1x · id 5e2a...
    └── ✗ flow report · calm-heron · FAILED in 20 ms: ValueError: boom · id 7b1e...

:class:`RunInfo` is one run's line, built from a file's span or from a live SDK span (the progress lines
of ``otel-runtime run`` use the same format).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from opentelemetry.sdk.resources import SERVICE_NAME
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.trace import StatusCode

from otel_runtime._base import keys as _keys
from otel_runtime._tools.otlp_read import FlatSpan
from otel_runtime._tools.printable import printable

__all__ = ["RunInfo", "RunNode", "Style", "build_forest", "find_flow_runs", "format_duration", "render"]

_STATUS_ERROR: Final = 2  # OTLP Status.code ERROR
_CANCELLED_PREFIX: Final = "Cancelled"
_WAITING: Final = frozenset({"PENDING", "SCHEDULED", "RUNNING", "PAUSED"})  # not ended badly: yellow
_RED: Final = "\033[31m"
_YELLOW: Final = "\033[33m"
_DIM: Final = "\033[2m"
_RESET: Final = "\033[0m"


def _with_error_type(message: str, error_type: object) -> str:
    """``"ValueError: boom"``: the span status holds the message alone, ``error.type`` the type."""
    if not isinstance(error_type, str) or not error_type or message.startswith(_CANCELLED_PREFIX):
        return message
    short = error_type.rsplit(".", 1)[-1]
    if message.startswith(f"{short}:") or message == short:
        return message  # written before the status held the message alone
    return f"{short}: {message}" if message else short


@dataclasses.dataclass(frozen=True, slots=True)
class Style:
    """How to draw: ANSI colours (only for a terminal), and Unicode or ASCII marks."""

    color: bool = False
    unicode: bool = True

    @property
    def marks(self) -> Mapping[str, str]:
        """The mark of each status."""
        if self.unicode:
            return {"COMPLETED": "✓", "FAILED": "✗", "CRASHED": "✗", "CANCELLED": "⊘", "PENDING": "◌"}
        return {"COMPLETED": "+", "FAILED": "x", "CRASHED": "x", "CANCELLED": "-", "PENDING": "."}

    @property
    def branches(self) -> tuple[str, str, str, str]:
        """Tree drawing: a child, the last child, a line going on, nothing going on."""
        if self.unicode:
            return "├── ", "└── ", "│   ", "    "
        return "|-- ", "`-- ", "|   ", "    "

    @property
    def dot(self) -> str:
        """The separator between the fields of a line."""
        return " · " if self.unicode else " | "

    def paint(self, text: str, colour: str) -> str:
        """``text`` in ``colour`` when colours are on."""
        return f"{colour}{text}{_RESET}" if self.color else text


def format_duration(nanoseconds: int) -> str:
    """``850 µs``, ``12 ms``, ``1.52 s``, ``2 min 03 s``."""
    seconds = max(nanoseconds, 0) / 1e9
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


@dataclasses.dataclass(frozen=True, slots=True)
class RunInfo:
    """What one line says about a flow run or task run."""

    kind: str  # "flow" or "task"
    name: str  # the flow or task name
    run_name: str
    run_id: str
    status: str  # the state type: COMPLETED, FAILED, CRASHED, CANCELLED, PENDING, ...
    message: str
    duration_ns: int
    attempts: int
    deployment: str | None
    state_name: str = ""  # shown when it is not the type's own name: Skipped, NotReady, Cached

    @classmethod
    def from_attributes(
        cls,
        attributes: Mapping[str, Any],
        *,
        span_name: str,
        status_code: int,
        status_message: str,
        duration_ns: int,
        retry_events: int,
    ) -> RunInfo:
        """The run described by a span's attributes and status."""
        is_flow = attributes.get(_keys.RUN_TYPE) == _keys.RUN_TYPE_FLOW
        prefix = _keys.FLOW_SPAN_PREFIX if is_flow else _keys.TASK_SPAN_PREFIX
        name = attributes.get(_keys.FLOW_NAME if is_flow else _keys.TASK_NAME) or span_name.removeprefix(
            prefix
        )
        run_count = attributes.get(_keys.FLOW_RUN_RUN_COUNT if is_flow else _keys.TASK_RUN_RUN_COUNT)
        state_type = attributes.get(_keys.FLOW_RUN_STATE_TYPE if is_flow else _keys.TASK_RUN_STATE_TYPE)
        state_name = attributes.get(_keys.FLOW_RUN_STATE_NAME if is_flow else _keys.TASK_RUN_STATE_NAME)
        status = "COMPLETED"
        if isinstance(state_type, str) and state_type:
            status = state_type
        elif status_code == _STATUS_ERROR:
            status = "CANCELLED" if status_message.startswith(_CANCELLED_PREFIX) else "FAILED"
        deployment = attributes.get(_keys.DEPLOYMENT_NAME)
        version = attributes.get(_keys.DEPLOYMENT_VERSION)
        if deployment is not None and version is not None:
            deployment = f"{deployment} v{version}"
        message = (
            "" if status == "COMPLETED" else _with_error_type(status_message, attributes.get(ERROR_TYPE))
        )
        return cls(
            kind=_keys.RUN_TYPE_FLOW if is_flow else _keys.RUN_TYPE_TASK,
            name=str(name),
            run_name=str(attributes.get(_keys.FLOW_RUN_NAME if is_flow else _keys.TASK_RUN_NAME, "")),
            run_id=str(attributes.get(_keys.FLOW_RUN_ID if is_flow else _keys.TASK_RUN_ID, "")),
            status=status,
            message=message,
            duration_ns=duration_ns,
            attempts=max(int(run_count) if isinstance(run_count, int) else 1, retry_events + 1),
            deployment=None if deployment is None else str(deployment),
            state_name=state_name if isinstance(state_name, str) else "",
        )

    @classmethod
    def from_flat_span(cls, span: FlatSpan) -> RunInfo:
        """The run a span of the telemetry file records."""
        return cls.from_attributes(
            span["attributes"],
            span_name=span["name"],
            status_code=span["status_code"],
            status_message=span["status_message"],
            duration_ns=span["end_ns"] - span["start_ns"],
            retry_events=sum(event["name"] == _keys.RETRY_EVENT for event in span["events"]),
        )

    @classmethod
    def from_span(cls, span: ReadableSpan) -> RunInfo:
        """The run a finished SDK span records."""
        return cls.from_attributes(
            span.attributes or {},
            span_name=span.name,
            status_code=_STATUS_ERROR if span.status.status_code is StatusCode.ERROR else 0,
            status_message=span.status.description or "",
            duration_ns=(span.end_time or 0) - (span.start_time or 0),
            retry_events=sum(event.name == _keys.RETRY_EVENT for event in span.events),
        )

    def line(self, style: Style, *, show_deployment: bool = True, show_id: bool = True) -> str:
        """One line: mark, kind and name, run name, status and duration, retries, deployment, id.

        Every text from the run (names, the message, the deployment) is escaped (``_tools.printable``):
        a newline or an ESC in it is shown as ``\\n`` or ``\\x1b``, never sent to the terminal.
        """
        dot = style.dot
        named = f" ({self.state_name})" if self.state_name and self.state_name.upper() != self.status else ""
        outcome = printable(f"{self.status}{named}") + f" in {format_duration(self.duration_ns)}"
        if self.message:
            outcome += f": {printable(self.message)}"
        if self.status in _WAITING:
            outcome = style.paint(outcome, _YELLOW)
        elif self.status != "COMPLETED":
            outcome = style.paint(outcome, _RED)
        fields = [f"{style.marks.get(self.status, '?')} {self.kind} {printable(self.name)}"]
        if self.run_name:
            fields.append(printable(self.run_name))
        fields.append(outcome)
        if self.attempts > 1:
            retries = self.attempts - 1
            fields.append(style.paint(f"retried {retries}x", _YELLOW))
        if show_deployment and self.deployment:
            fields.append(f"deployment {printable(self.deployment)}")
        if show_id and self.run_id:
            fields.append(style.paint(f"id {printable(self.run_id)}", _DIM))
        return dot.join(fields)


@dataclasses.dataclass(slots=True)
class RunNode:
    """A flow run or task run span and the runs nested in it, oldest first."""

    span: FlatSpan
    children: list[RunNode] = dataclasses.field(default_factory=list)

    @property
    def info(self) -> RunInfo:
        """What its line says."""
        return RunInfo.from_flat_span(self.span)

    def walk(self) -> Iterator[RunNode]:
        """This node and every node below it, depth first."""
        yield self
        for child in self.children:
            yield from child.walk()


def _is_run(span: FlatSpan) -> bool:
    return span["attributes"].get(_keys.RUN_TYPE) in (_keys.RUN_TYPE_FLOW, _keys.RUN_TYPE_TASK)


def build_forest(spans: Iterable[FlatSpan]) -> list[RunNode]:
    """The runs among ``spans``, each under its nearest run ancestor; the roots, oldest first.

    A span recorded twice (a replayed file) counts once. A run whose parent run was not recorded (still
    running, or lost) is a root.
    """
    by_id: dict[tuple[str, str], FlatSpan] = {}
    for span in spans:
        by_id[span["trace_id"], span["span_id"]] = span
    nodes = {key: RunNode(span) for key, span in by_id.items() if _is_run(span)}
    roots: list[RunNode] = []
    for (trace_id, _), node in nodes.items():
        parent = _nearest_run(trace_id, node.span["parent_span_id"], by_id, nodes)
        (roots if parent is None else parent.children).append(node)
    for node in nodes.values():
        node.children.sort(key=lambda child: child.span["start_ns"])
    roots.sort(key=lambda root: root.span["start_ns"])
    return roots


def _nearest_run(
    trace_id: str,
    parent_id: str | None,
    by_id: Mapping[tuple[str, str], FlatSpan],
    nodes: Mapping[tuple[str, str], RunNode],
) -> RunNode | None:
    seen: set[str] = set()
    while parent_id and parent_id not in seen:
        seen.add(parent_id)
        key = (trace_id, parent_id)
        if key in nodes:
            return nodes[key]
        parent = by_id.get(key)
        if parent is None:
            return None
        parent_id = parent["parent_span_id"]
    return None


def find_flow_runs(roots: Sequence[RunNode], flow_run_id: str) -> list[RunNode]:
    """The flow runs whose id is ``flow_run_id``, or else the ones whose id starts with it."""
    flows = [
        node
        for root in roots
        for node in root.walk()
        if node.span["attributes"].get(_keys.RUN_TYPE) == _keys.RUN_TYPE_FLOW
    ]
    wanted = flow_run_id.strip().lower()
    exact = [
        node for node in flows if str(node.span["attributes"].get(_keys.FLOW_RUN_ID, "")).lower() == wanted
    ]
    if exact:
        return exact
    return [
        node
        for node in flows
        if wanted and str(node.span["attributes"].get(_keys.FLOW_RUN_ID, "")).lower().startswith(wanted)
    ]


def _header(root: RunNode, style: Style) -> str:
    span = root.span
    started = datetime.fromtimestamp(span["start_ns"] / 1e9).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    fields = [f"trace {printable(span['trace_id'])}", f"started {started.strip()}"]
    service = span["resource"].get(SERVICE_NAME)
    if service:
        fields.append(f"service {printable(str(service))}")
    return style.paint(style.dot.join(fields), _DIM)


def render(roots: Sequence[RunNode], style: Style) -> list[str]:
    """The lines drawing ``roots`` and everything below them, a blank line between trees."""
    lines: list[str] = []
    for index, root in enumerate(roots):
        if index:
            lines.append("")
        lines.append(_header(root, style))
        info = root.info
        lines.append(info.line(style))
        _render_children(root, info.deployment, "", style, lines)
    return lines


def _render_children(
    node: RunNode, deployment: str | None, indent: str, style: Style, lines: list[str]
) -> None:
    child_branch, last_branch, line_on, nothing_on = style.branches
    for index, child in enumerate(node.children):
        last = index == len(node.children) - 1
        info = child.info
        # Runs inherit their caller's deployment: name it only where it changes.
        line = info.line(style, show_deployment=info.deployment != deployment)
        lines.append(f"{indent}{last_branch if last else child_branch}{line}")
        _render_children(child, info.deployment, indent + (nothing_on if last else line_on), style, lines)
