"""The ``otel-runtime`` command: run flows as deployment runs, draw the recorded runs, check an endpoint.

::

    otel-runtime demo                                    # an example flow, written to the local file
    otel-runtime run flows.py:etl --deployment nightly --param day=2024-05-01 --param limit=10
    otel-runtime traces --last 3                         # the last 3 flow runs in the local file
    otel-runtime check --endpoint http://localhost:4317  # does the collector accept a span?

Telemetry goes where ``otel_runtime.configure()`` sends it: the ``OTEL_*`` variables, else the local
file that ``traces`` reads. Mistakes in the command line are one line on stderr and exit code 2; a
failed flow run or an endpoint that does not accept the test span exit with 1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import inspect
import json
import logging
import os
import sys
import threading
import time
import traceback
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Any, Final

from opentelemetry.context import Context
from opentelemetry.sdk.environment_variables import (
    OTEL_EXPORTER_OTLP_ENDPOINT,
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
)
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags

from otel_runtime._base import keys as _keys
from otel_runtime._base.guard import warn_once
from otel_runtime._core.deployments import deployment
from otel_runtime._engine.flows import Flow
from otel_runtime._sdk.configure import Telemetry, configure, latest
from otel_runtime._sdk.exporters import otlp_span_exporter
from otel_runtime._sdk.file_export import DEFAULT_TELEMETRY_PATH
from otel_runtime._sdk.options import check_endpoint, make_resource, resolve_protocol
from otel_runtime._tools.follow import follow
from otel_runtime._tools.otlp_read import iter_spans, read_records
from otel_runtime._tools.tree import RunInfo, Style, build_forest, find_flow_runs, render
from otel_runtime.environment_variables import OTEL_RUNTIME_TELEMETRY_FILE

__all__ = ["CliError", "main"]

_PROGRAM: Final = "otel-runtime"
_FLUSH_TIMEOUT_MILLIS: Final = 5_000
_DEFAULT_LAST: Final = 10
_CHECK_SPAN_NAME: Final = "otel-runtime check"
_TRUE: Final = frozenset({"true", "1", "yes", "on"})
_FALSE: Final = frozenset({"false", "0", "no", "off"})
_PACKAGE_DIR: Final = str(Path(__file__).resolve().parent.parent)


class CliError(Exception):
    """A mistake in the command line, or an outcome told in one line: printed without a traceback."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# -- output ----------------------------------------------------------------------------------------


def _style() -> Style:
    """Colours only on a terminal (and never with ``NO_COLOR``); Unicode marks when stdout can encode them."""
    stream = sys.stdout
    color = stream.isatty() and not os.environ.get("NO_COLOR")
    try:
        "✓✗⊘├└│·µ".encode(stream.encoding or "ascii")
    except (LookupError, UnicodeEncodeError):
        return Style(color=color, unicode=False)
    return Style(color=color, unicode=True)


class _Progress(SpanProcessor):
    """Prints each task run and subflow run as it finishes; remembers the last top-level flow run."""

    def __init__(self, style: Style) -> None:
        self._style = style
        self._lock = threading.Lock()
        self.flow_run: ReadableSpan | None = None

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        attributes = span.attributes or {}
        run_type = attributes.get(_keys.RUN_TYPE)
        if run_type == _keys.RUN_TYPE_FLOW and _keys.FLOW_RUN_PARENT_ID not in attributes:
            self.flow_run = span  # the flow run the command started: printed at the end
            return
        if run_type not in (_keys.RUN_TYPE_FLOW, _keys.RUN_TYPE_TASK):
            return
        try:
            line = RunInfo.from_span(span).line(self._style, show_deployment=False, show_id=False)
            with self._lock:  # not print(): inside a log_prints run that would become a log line
                sys.stdout.write(f"  {line}\n")
                sys.stdout.flush()
        except Exception:  # progress output must not break the run it reports on
            warn_once("cli-progress", "otel-runtime could not print a run's progress", exc_info=True)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _start_progress(telemetry: Telemetry, style: Style) -> _Progress:
    progress = _Progress(style)
    if telemetry.tracer_provider is not None:
        telemetry.tracer_provider.add_span_processor(progress)
    return progress


def _where(telemetry: Telemetry) -> str:
    if telemetry.tracer_provider is None:
        return "telemetry is disabled (OTEL_SDK_DISABLED)"
    parts = []
    if telemetry.telemetry_file is not None:
        parts.append(f"telemetry written to {telemetry.telemetry_file}")
    others = [name for name in telemetry.traces_exporters if name != "file"]
    if others:
        parts.append(f"spans exported with {', '.join(others)}")
    return "; ".join(parts) or "no span exporter is configured (OTEL_TRACES_EXPORTER=none)"


def _flush(telemetry: Telemetry) -> None:
    if not telemetry.force_flush(_FLUSH_TIMEOUT_MILLIS):
        print(
            f"{_PROGRAM}: warning: telemetry not delivered within {_FLUSH_TIMEOUT_MILLIS // 1000} s "
            "(is the OTLP endpoint up? `otel-runtime check` tells)",
            file=sys.stderr,
        )


def _is_ours(filename: str) -> bool:
    return filename.startswith(_PACKAGE_DIR) or filename.startswith("<frozen importlib")


def _print_user_traceback(error: BaseException) -> None:
    """The traceback of ``error`` (and of its causes) without the frames of otel_runtime and importlib."""
    report = traceback.TracebackException.from_exception(error)
    pending: list[traceback.TracebackException | None] = [report]
    while pending:
        current = pending.pop()
        if current is not None:
            frames = [frame for frame in current.stack if not _is_ours(frame.filename)]
            current.stack = traceback.StackSummary.from_list(frames)
            pending += [current.__cause__, current.__context__]
    sys.stderr.write("".join(report.format()))


# -- demo ------------------------------------------------------------------------------------------


def _demo(_: argparse.Namespace) -> int:
    """Run the demo flow as a run of the deployment ``demo``, and say where its telemetry went."""
    from otel_runtime._tools.demo import demo_etl

    telemetry = _configure()
    _start_progress(telemetry, _style())
    with deployment("demo", version="1"):
        result = demo_etl()
    _flush(telemetry)
    print(f"flow run {result['flow_run_name']} ({result['flow_run_id']}) finished: {result['report']}")
    print(f"trace id: {result['trace_id']}")
    print(_where(telemetry))
    return 0


def _configure() -> Telemetry:
    try:
        return configure()
    except ValueError as error:
        raise CliError(f"bad telemetry configuration: {error}") from None


# -- run -------------------------------------------------------------------------------------------


def _module_name(path: Path) -> str:
    stem = path.stem
    if stem.isidentifier() and stem not in sys.modules:
        return stem
    return "__otel_runtime_flow_" + "".join(c if c.isalnum() else "_" for c in stem)


def _import_file(path: Path) -> types.ModuleType:
    """Import the Python file at ``path`` as a module, with its folder on ``sys.path`` as a script has."""
    name = _module_name(path)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise CliError(f"cannot import {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.resolve().parent))
    sys.modules[name] = module  # worker processes and pickle find its tasks by this name
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        del sys.modules[name]
        _print_user_traceback(error)
        raise CliError(f"importing {path} failed: {type(error).__name__}: {error}", 1) from None
    return module


def parse_target(target: str) -> tuple[Path, str]:
    """The file and the flow name of ``path/to/file.py:name``; the file must exist."""
    path_text, separator, name = target.rpartition(":")
    if not separator or not path_text or not name:
        raise CliError(f"expected path/to/file.py:flow_function, got {target!r}")
    path = Path(path_text)
    if not path.is_file():
        raise CliError(f"no such file: {path_text}")
    return path, name


def find_flow(module: types.ModuleType, name: str, path: Path) -> Flow[..., Any]:
    """The flow ``name`` of ``module``: a module attribute, or else a flow with that name."""
    flows = {key: value for key, value in vars(module).items() if isinstance(value, Flow)}
    found = getattr(module, name, None)
    if found is None:
        found = next((value for value in flows.values() if value.name == name), None)
    if found is None:
        known = ", ".join(sorted(flows)) or "none (decorate a function with @flow)"
        raise CliError(f"no flow {name!r} in {path}; flows there: {known}")
    if not isinstance(found, Flow):
        raise CliError(f"{name!r} in {path} is not a flow: decorate it with @flow")
    return found


_ANNOTATION_NAMES: Final[Mapping[str, Any]] = {
    "int": int,
    "float": float,
    "bool": bool,
    "str": str,
    "list": list,
    "dict": dict,
    "tuple": tuple,
    "set": set,
}


def _describe(annotation: Any) -> str:
    """``list[str] | None``, the same on every Python version."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return " | ".join(_describe(option) for option in typing.get_args(annotation))
    if annotation is type(None):
        return "None"
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _json(value: str, what: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        raise ValueError(f"expects {what} as JSON") from None


def convert(value: str, annotation: Any) -> Any:
    """``value`` as the type ``annotation`` names; ``ValueError`` saying what was expected.

    ``str`` stays as it is; ``int``, ``float``, ``bool`` (true/false, 1/0, yes/no, on/off), enums,
    ``datetime`` / ``date`` (ISO 8601) and ``Path`` are parsed; lists, tuples, sets and dicts are JSON;
    ``X | None`` takes ``none`` / ``null``; without an annotation JSON is tried, then the text is kept.
    """
    if isinstance(annotation, str):  # an annotation that did not resolve
        annotation = _ANNOTATION_NAMES.get(annotation.split("[")[0].strip(), Any)
    if annotation is inspect.Parameter.empty or annotation is Any:
        try:
            return json.loads(value)
        except ValueError:
            return value
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        options = typing.get_args(annotation)
        if type(None) in options and value.strip().lower() in ("none", "null"):
            return None
        for option in options:
            if option is not type(None):
                with contextlib.suppress(ValueError):
                    return convert(value, option)
        raise ValueError(f"expects {_describe(annotation)}")
    if origin is typing.Literal:
        for choice in typing.get_args(annotation):
            if str(choice) == value:
                return choice
        raise ValueError(f"expects one of {', '.join(map(str, typing.get_args(annotation)))}")
    return _convert_plain(value, origin or annotation)


def _parse_bool(value: str) -> bool:
    word = value.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError("expects true or false")


def _parse_int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError("expects an integer") from None


def _parse_float(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ValueError("expects a number") from None


def _parse_list(value: str) -> list[Any]:
    parsed = _json(value, "a list")
    if not isinstance(parsed, list):
        raise ValueError("expects a JSON list")  # noqa: TRY004 - bad text typed by the user, not a bug
    return parsed


def _parse_dict(value: str) -> dict[str, Any]:
    parsed = _json(value, "an object")
    if not isinstance(parsed, dict):
        raise ValueError("expects a JSON object")  # noqa: TRY004 - bad text typed by the user, not a bug
    return parsed


def _parse_iso(kind: type[date]) -> Callable[[str], date]:
    def parse(value: str) -> date:
        try:
            return kind.fromisoformat(value)
        except ValueError:
            raise ValueError("expects an ISO 8601 date") from None

    return parse


_PARSERS: Final[Mapping[Any, Callable[[str], Any]]] = {
    str: str,
    bool: _parse_bool,
    int: _parse_int,
    float: _parse_float,
    list: _parse_list,
    Sequence: _parse_list,
    tuple: lambda value: tuple(_parse_list(value)),
    set: lambda value: set(_parse_list(value)),
    frozenset: lambda value: frozenset(_parse_list(value)),
    dict: _parse_dict,
    Mapping: _parse_dict,
    datetime: _parse_iso(datetime),
    date: _parse_iso(date),
    Path: Path,
}


def _convert_plain(value: str, kind: Any) -> Any:
    parse = _PARSERS.get(kind)
    if parse is not None:
        return parse(value)
    if isinstance(kind, type) and issubclass(kind, Enum):
        for member in kind:
            if value in (str(member.value), member.name):
                return member
        raise ValueError(f"expects one of {', '.join(str(member.value) for member in kind)}")
    return value  # a type we cannot parse from text: the function gets the text


def parse_parameters(flow: Flow[..., Any], raw: Sequence[str]) -> dict[str, Any]:
    """``--param key=value`` items as the flow's keyword arguments, typed by its annotations."""
    signature = inspect.signature(flow.fn)
    try:
        hints = typing.get_type_hints(flow.fn)
    except Exception:  # an annotation that does not resolve: fall back to the raw ones
        hints = {}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())
    named = {
        name: parameter
        for name, parameter in signature.parameters.items()
        if parameter.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    parameters: dict[str, Any] = {}
    for item in raw:
        key, separator, value = item.partition("=")
        key = key.strip()
        if not separator or not key:
            raise CliError(f"malformed --param {item!r}: expected key=value")
        parameter = named.get(key)
        if parameter is None and not takes_any:
            known = ", ".join(named) or "none"
            raise CliError(f"flow {flow.name!r} has no parameter {key!r}; its parameters: {known}")
        annotation = hints.get(key, parameter.annotation) if parameter is not None else Any
        try:
            parameters[key] = convert(value, annotation)
        except ValueError as error:
            raise CliError(f"--param {key}={value!r}: {key} {error}") from None
    missing = [
        name
        for name, parameter in named.items()
        if parameter.default is inspect.Parameter.empty and name not in parameters
    ]
    if missing:
        raise CliError(f"flow {flow.name!r} needs {' '.join(f'--param {name}=...' for name in missing)}")
    return parameters


def _call(flow: Flow[..., Any], parameters: Mapping[str, Any]) -> Any:
    """Run the flow, driving it to the end if it is async or a generator."""
    call: Callable[..., Any] = flow
    result = call(**parameters)
    if inspect.iscoroutine(result):
        return asyncio.run(result)
    if inspect.isgenerator(result):
        return list(result)
    if inspect.isasyncgen(result):
        generator = result

        async def drain() -> list[Any]:
            return [item async for item in generator]

        return asyncio.run(drain())
    return result


@contextlib.contextmanager
def _deployment(name: str | None, parameters: Mapping[str, Any]) -> Iterator[None]:
    if name is None:
        yield
        return
    try:
        block = deployment(name, parameters=parameters)
        block.__enter__()
    except ValueError as error:
        raise CliError(f"bad --deployment {name!r}: {error}") from None
    try:
        yield
    finally:
        block.__exit__(None, None, None)


def _run(arguments: argparse.Namespace) -> int:
    """Run the flow the target names, as a run of ``--deployment``, printing task runs as they finish."""
    path, name = parse_target(arguments.target)
    flow = find_flow(_import_file(path), name, path)
    telemetry = latest() or _configure()  # a configure() the file made at import time wins
    parameters = parse_parameters(flow, arguments.param)
    style = _style()
    progress = _start_progress(telemetry, style)
    print(
        f"running flow {flow.name}"
        + (f" as deployment {arguments.deployment}" if arguments.deployment else "")
    )
    failure: BaseException | None = None
    result: Any = None
    try:
        with _deployment(arguments.deployment, parameters):
            result = _call(flow, parameters)
    except CliError:
        raise
    except (Exception, KeyboardInterrupt) as error:
        failure = error
        if isinstance(error, Exception):
            _print_user_traceback(error)
    _flush(telemetry)
    span = progress.flow_run
    if span is not None:
        print(RunInfo.from_span(span).line(style, show_id=False))
        print(f"flow run id: {(span.attributes or {}).get(_keys.FLOW_RUN_ID)}")
        if span.context is not None:
            print(f"trace id: {span.context.trace_id:032x}")
    elif failure is None:
        print(f"flow {flow.name} finished")
    if failure is None and result is not None:
        text = repr(result)
        print(f"result: {text if len(text) <= 200 else text[:199] + '…'}")
    print(_where(telemetry))
    if isinstance(failure, KeyboardInterrupt):
        return 130
    return 0 if failure is None else 1


# -- traces ----------------------------------------------------------------------------------------


def _traces(arguments: argparse.Namespace) -> int:
    """Draw the flow runs recorded in the telemetry file as trees."""
    path = Path(
        arguments.file or os.environ.get(OTEL_RUNTIME_TELEMETRY_FILE, "").strip() or DEFAULT_TELEMETRY_PATH
    )
    if arguments.follow:  # the live tree (_tools.follow): runs as they start and end, until Ctrl-C
        with contextlib.suppress(KeyboardInterrupt):
            follow(path, sys.stdout, _style(), terminal=sys.stdout.isatty(), last=arguments.last)
        return 0
    rotated = path.with_name(path.name + ".1")
    files = [file for file in (rotated, path) if file.is_file()]  # the older lines first
    if not path.is_file():
        hint = "pass --file" if arguments.file else "run a flow first (otel-runtime demo), or pass --file"
        raise CliError(f"no telemetry file at {path}: {hint}", 1)
    try:
        spans = [span for file in files for record in read_records(file) for span in iter_spans(record)]
    except OSError as error:
        raise CliError(f"cannot read {path}: {error}", 1) from None
    roots = build_forest(spans)
    if arguments.flow_run is not None:
        selected = find_flow_runs(roots, arguments.flow_run)
        ids = {str(node.span["attributes"].get(_keys.FLOW_RUN_ID)) for node in selected}
        if not selected:
            raise CliError(f"no flow run {arguments.flow_run!r} in {path}", 1)
        if len(ids) > 1:
            raise CliError(
                f"{arguments.flow_run!r} matches {len(ids)} flow runs: {', '.join(sorted(ids))}", 1
            )
    else:
        selected = roots[-arguments.last :]
    if not roots:
        print(f"no flow runs recorded in {path}")
        return 0
    for line in render(selected, _style()):
        print(line)
    if arguments.flow_run is None and len(selected) < len(roots):
        print(f"\n(the last {len(selected)} of {len(roots)} runs in {path}; --last N shows more)")
    return 0


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return seconds


def _positive(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return number


# -- check -----------------------------------------------------------------------------------------


class _Collect(logging.Handler):
    """Keeps the exporters' own complaints, for the one-line reason of a failed check."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def reason(self) -> str:
        """The exporter's last word, or its first when the last only says it gave up retrying."""
        if not self.records:
            return "no reason given"
        final = max(self.records, key=lambda record: record.levelno).getMessage()
        if "max retries" in final:  # the HTTP exporter's give-up line names no cause; its first warning does
            final = self.records[0].getMessage()
        text = " ".join(final.split())
        return text if len(text) <= 300 else text[:299] + "…"


@contextlib.contextmanager
def _collect_exporter_logs() -> Iterator[_Collect]:
    logger = logging.getLogger("opentelemetry.exporter")
    handler = _Collect()
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False  # told once, in our words, instead of the exporter's stack of warnings
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _test_span() -> ReadableSpan:
    ids = RandomIdGenerator()
    context = SpanContext(
        trace_id=ids.generate_trace_id(),
        span_id=ids.generate_span_id(),
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    now = time.time_ns()
    return ReadableSpan(
        name=_CHECK_SPAN_NAME,
        context=context,
        resource=make_resource(None, None),
        kind=SpanKind.INTERNAL,
        instrumentation_scope=InstrumentationScope("otel_runtime.cli"),
        start_time=now,
        end_time=now,
    )


def _check(arguments: argparse.Namespace) -> int:
    """Send one span to the OTLP endpoint and say whether it was accepted, and how fast."""
    try:
        protocol = resolve_protocol("traces", arguments.protocol)
        endpoint = arguments.endpoint
        if endpoint is not None:
            endpoint = check_endpoint(endpoint)
    except ValueError as error:
        raise CliError(str(error)) from None
    if endpoint is not None:
        shown = f"{endpoint.rstrip('/')}/v1/traces" if protocol == "http/protobuf" else endpoint
    else:
        per_signal = os.environ.get(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, "").strip()
        generic = os.environ.get(OTEL_EXPORTER_OTLP_ENDPOINT, "").strip()
        if not per_signal and not generic:
            raise CliError(
                "no OTLP endpoint to check: pass --endpoint URL or set OTEL_EXPORTER_OTLP_ENDPOINT "
                "(without one, telemetry goes to the local file)"
            )
        shown = per_signal or (f"{generic.rstrip('/')}/v1/traces" if protocol == "http/protobuf" else generic)
    span = _test_span()
    with _collect_exporter_logs() as complaints:
        try:
            exporter = otlp_span_exporter(endpoint=endpoint, protocol=protocol, timeout=arguments.timeout)
        except Exception as error:  # credentials or certificate files the exporter could not load
            raise CliError(f"cannot set up the OTLP exporter: {error}", 1) from None
        started = time.perf_counter()
        try:
            outcome = exporter.export([span])
        finally:
            elapsed = time.perf_counter() - started
            exporter.shutdown()
    took = f"{elapsed * 1000:.0f} ms" if elapsed < 1 else f"{elapsed:.2f} s"
    if outcome is not SpanExportResult.SUCCESS:
        raise CliError(
            f"{shown} ({protocol}) did not accept the test span, after {took}: {complaints.reason()}", 1
        )
    trace_id = span.context.trace_id if span.context is not None else 0
    print(f"OK: {shown} ({protocol}) accepted a test span in {took} (trace id {trace_id:032x})")
    return 0


# -- the parser ------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_PROGRAM,
        description="Prefect-style flow runs and task runs as OpenTelemetry traces.",
        epilog="Telemetry follows the OTEL_* variables; without an endpoint it goes to "
        ".otel_runtime/telemetry.jsonl (OTEL_RUNTIME_TELEMETRY_FILE).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="run a small example flow and write its telemetry",
        description="Run an example flow (tasks, a retry, a mapped task, a subflow) as deployment 'demo'.",
    )
    demo.set_defaults(handler=_demo)

    run = commands.add_parser(
        "run",
        help="run a flow from a Python file as a deployment run",
        description="Import a Python file, run one of its flows (as a run of --deployment, if given) and "
        "print each task run as it finishes. Exits with 1 if the flow run failed.",
        epilog="example: otel-runtime run flows.py:etl --deployment nightly --param day=2024-05-01 "
        '--param tables=\'["a", "b"]\'',
    )
    run.add_argument("target", metavar="FILE.py:FLOW", help="the file and the flow function (or flow name)")
    run.add_argument("--deployment", metavar="NAME", help="run the flow as a run of this deployment")
    run.add_argument(
        "--param",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="a flow parameter, typed by the flow's annotation (int, float, bool, str; JSON for lists and "
        "dicts); repeat for more",
    )
    run.set_defaults(handler=_run)

    traces = commands.add_parser(
        "traces",
        help="draw the recorded flow runs as trees",
        description="Draw the flow runs in the telemetry file as trees: flows, subflows and tasks with "
        "status, duration, retries, deployment and ids; failures stand out.",
    )
    traces.add_argument(
        "--file",
        metavar="FILE",
        help="the OTLP/JSON lines file (default: $OTEL_RUNTIME_TELEMETRY_FILE, "
        "else .otel_runtime/telemetry.jsonl)",
    )
    traces.add_argument(
        "--last",
        metavar="N",
        type=_positive,
        default=_DEFAULT_LAST,
        help=f"show the N most recent flow runs (default {_DEFAULT_LAST})",
    )
    traces.add_argument(
        "--flow-run", metavar="ID", help="show only this flow run (an id or its first characters)"
    )
    traces.add_argument(
        "--follow",
        action="store_true",
        help="keep reading the file: runs as they start and end, running ones with their elapsed time, "
        "a run whose process died as lost (redrawn on a terminal, one line per change when piped); Ctrl-C "
        "stops",
    )
    traces.set_defaults(handler=_traces)

    check = commands.add_parser(
        "check",
        help="send one test span to the OTLP endpoint",
        description="Send one test span to the OTLP endpoint (--endpoint, else OTEL_EXPORTER_OTLP_[TRACES_]"
        "ENDPOINT) and say whether it was accepted and how long it took. Exits with 1 if it was not.",
    )
    check.add_argument(
        "--endpoint", metavar="URL", help="the collector's base URL, e.g. http://localhost:4317"
    )
    check.add_argument(
        "--protocol",
        choices=("grpc", "http/protobuf"),
        help="default: OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL, else grpc",
    )
    check.add_argument(
        "--timeout", metavar="SECONDS", type=_seconds, default=3.0, help="give up after this long (default 3)"
    )
    check.set_defaults(handler=_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``otel-runtime``; returns the exit code."""
    arguments = _parser().parse_args(argv)
    try:
        return int(arguments.handler(arguments))
    except CliError as error:
        print(f"{_PROGRAM} {arguments.command}: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"{_PROGRAM} {arguments.command}: interrupted", file=sys.stderr)
        return 130

