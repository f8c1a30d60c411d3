"""``otel-runtime run``: a flow from a file, as a run of a deployment, with typed parameters."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from otel_runtime._base import keys as _keys
from otel_runtime._core.deployments import deployment
from otel_runtime._engine.flows import Flow
from otel_runtime._sdk.configure import latest
from otel_runtime._tools.printable import printable
from otel_runtime._tools.tree import RunInfo
from otel_runtime.cli.errors import CliError, print_user_traceback
from otel_runtime.cli.loading import find_flow, import_file, parse_target
from otel_runtime.cli.params import parse_parameters
from otel_runtime.cli.progress import start_progress
from otel_runtime.cli.telemetry import configure_telemetry, flush_telemetry, telemetry_destination
from otel_runtime.cli.terminal import terminal_style

__all__ = ["run_command"]


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


def run_command(arguments: argparse.Namespace) -> int:
    """Run the flow the target names, as a run of ``--deployment``, printing task runs as they finish."""
    path, name = parse_target(arguments.target)
    flow = find_flow(import_file(path), name, path)
    telemetry = latest() or configure_telemetry()  # a configure() the file made at import time wins
    parameters = parse_parameters(flow, arguments.param)
    style = terminal_style()
    progress = start_progress(telemetry, style)
    print(
        f"running flow {printable(flow.name)}"
        + (f" as deployment {printable(arguments.deployment)}" if arguments.deployment else "")
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
            print_user_traceback(error)
    flush_telemetry(telemetry)
    span = progress.flow_run
    if span is not None:
        print(RunInfo.from_span(span).line(style, show_id=False))
        print(f"flow run id: {(span.attributes or {}).get(_keys.FLOW_RUN_ID)}")
        if span.context is not None:
            print(f"trace id: {span.context.trace_id:032x}")
    elif failure is None:
        print(f"flow {printable(flow.name)} finished")
    if failure is None and result is not None:
        text = printable(repr(result))
        print(f"result: {text if len(text) <= 200 else text[:199] + '…'}")
    print(telemetry_destination(telemetry))
    if isinstance(failure, KeyboardInterrupt):
        return 130
    return 0 if failure is None else 1


# -- traces ----------------------------------------------------------------------------------------
