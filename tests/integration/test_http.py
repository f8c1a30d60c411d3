"""A flow calls a real HTTP service on 127.0.0.1: the run identity and the trace cross the call.

The service is a Starlette app served by uvicorn in a thread, wrapped in OpenTelemetry's ASGI
middleware; the client is httpx with OpenTelemetry's httpx instrumentation. Both use the global
propagators. Client and server share this process's tracer provider, but not their context: the
handler learns everything from the request headers.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import structlog
import uvicorn
from opentelemetry import propagate
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from structlog.testing import capture_logs

from otel_runtime import deployment, flow, propagation, runtime, task
from otel_runtime.logging import add_run_context
from otel_runtime.testing import CapturedSpans


@task
def handler_work() -> dict[str, Any]:
    """A task run inside the request handler: a task of the caller's flow run, in the caller's trace."""
    return {"flow_run_id": runtime.flow_run.id, "task_run_id": runtime.task_run.id}


@flow
def handler_flow() -> dict[str, Any]:
    """A flow run started by the handler."""
    return {
        "flow_run_id": runtime.flow_run.id,
        "parent_flow_run_id": runtime.flow_run.parent_flow_run_id,
        "deployment_name": runtime.deployment.name,
        "trace_id": runtime.flow_run.trace_id,
    }


async def whoami(request: Request) -> JSONResponse:
    """What the service sees of its caller."""
    structlog.get_logger().info("handled", path=request.url.path)
    return JSONResponse(
        {
            "flow_run_id": runtime.flow_run.id,
            "flow_run_name": runtime.flow_run.name,
            "task_run_id": runtime.task_run.id,
            "deployment_name": runtime.deployment.name,
            "deployment_id": runtime.deployment.id,
            "trace_id": runtime.flow_run.trace_id,
            "baggage_header": request.headers.get("baggage"),
            "work": handler_work(),
        }
    )


async def untrusted(request: Request) -> JSONResponse:
    """A public endpoint: whatever it starts is a new trace that only links to the caller."""
    with propagation.new_root():
        return JSONResponse(handler_flow())


async def attached(scope: Any, receive: Any, send: Any) -> None:
    """A bare ASGI app without instrumentation: it attaches the carrier in the headers itself."""
    carrier = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
    with propagation.attach(carrier):
        body = (
            f'{{"flow_run_id": "{runtime.flow_run.id}", "deployment_name": "{runtime.deployment.name}"}}'
        ).encode()
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def instrumented_app() -> Any:
    """The service: Starlette routes inside OpenTelemetry's ASGI middleware."""
    routes = [Route("/whoami", whoami), Route("/untrusted", untrusted)]
    return OpenTelemetryMiddleware(Starlette(routes=routes))


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free port of 127.0.0.1 in a thread; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, lifespan="off", log_level="warning", ws="none", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
def service() -> Iterator[str]:
    """The instrumented service, started for this test (its middleware binds this test's tracer)."""
    with serve(instrumented_app()) as url:
        yield url


@pytest.fixture(autouse=True)
def global_propagators() -> Iterator[None]:
    """Each test starts with the SDK's default global propagators (trace context, baggage); restored after."""
    saved = propagate.get_global_textmap()
    sdk_default = CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
    propagate.set_global_textmap(sdk_default)
    try:
        yield
    finally:
        propagate.set_global_textmap(saved)


def _one(spans: CapturedSpans, kind: SpanKind) -> ReadableSpan:
    """The one finished span of ``kind``; waits a moment, as the server ends its span after replying."""
    deadline = time.monotonic() + 5
    while not (found := [s for s in spans.spans if s.kind is kind]) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(found) == 1, [s.name for s in found]
    return found[0]


def _hex(value: int, width: int) -> str:
    return format(value, f"0{width}x")


def test_instrumented_call_carries_run_identity_and_trace_to_the_handler(
    service: str, spans: CapturedSpans
) -> None:
    """With the default propagators (trace context and baggage), a call made from a task of a flow run
    reaches a handler that knows the flow run, task run and deployment; its log lines are stamped with
    them; its spans (the server span and a task run it starts) are in the caller's trace."""

    @task
    def call_service() -> dict[str, Any]:
        with httpx.Client() as client:
            HTTPXClientInstrumentor().instrument_client(client)
            return dict(client.get(f"{service}/whoami").json())

    @flow
    def caller() -> tuple[str, str, dict[str, Any]]:
        future = call_service.submit()
        return runtime.flow_run.id, future.task_run_id, future.result()

    with capture_logs(processors=[add_run_context]) as logs, deployment("checkout-api"):
        flow_run_id, task_run_id, seen = caller()

    flow_span = spans.find("flow caller")
    assert flow_span.context is not None
    trace_id = _hex(flow_span.context.trace_id, 32)
    assert seen["flow_run_id"] == flow_run_id
    assert seen["flow_run_name"] == flow_span.attributes["flow_run.name"]
    assert seen["task_run_id"] == task_run_id
    assert seen["deployment_name"] == "checkout-api"
    assert seen["deployment_id"] == flow_span.attributes["deployment.id"]
    assert seen["trace_id"] == trace_id
    assert seen["work"]["flow_run_id"] == flow_run_id
    assert seen["work"]["task_run_id"] != task_run_id

    (line,) = [entry for entry in logs if entry["event"] == "handled"]
    assert line["deployment_name"] == "checkout-api"
    assert line["flow_run_id"] == flow_run_id
    assert (line["task_run_id"], line["trace_id"]) == (task_run_id, trace_id)

    task_span = spans.find("task call_service")
    client_span = _one(spans, SpanKind.CLIENT)
    server_span = _one(spans, SpanKind.SERVER)
    work_span = spans.find("task handler_work")
    assert all(s.context is not None for s in (task_span, client_span, server_span, work_span))
    chain = [flow_span, task_span, client_span, server_span, work_span]
    for parent, child in itertools.pairwise(chain):
        assert child.parent is not None and parent.context is not None
        assert child.parent.span_id == parent.context.span_id, (parent.name, child.name)
    assert {s.context.trace_id for s in chain if s.context is not None} == {flow_span.context.trace_id}
    assert work_span.attributes["flow_run.id"] == flow_run_id
    assert work_span.attributes["deployment.name"] == "checkout-api"


def test_async_client_sends_spec_encoded_baggage_that_the_handler_reads_exactly(service: str) -> None:
    """With otel_runtime's baggage propagator installed, an async flow's httpx call carries a deployment
    name with spaces and '+' percent-encoded on the wire (%20, %2B: never '+' for a space), and the
    handler reads it back exactly."""
    propagation.install_baggage_propagator()
    name = "nightly etl + reports, ü"

    @flow
    async def caller() -> dict[str, Any]:
        async with httpx.AsyncClient() as client:
            HTTPXClientInstrumentor().instrument_client(client)
            response = await client.get(f"{service}/whoami")
            return dict(response.json())

    with deployment(name):
        seen = asyncio.run(caller())
    assert seen["deployment_name"] == name
    assert "deployment.name=nightly%20etl%20%2B%20reports%2C%20%C3%BC" in seen["baggage_header"]


def test_uninstrumented_client_and_server_use_inject_and_attach(spans: CapturedSpans) -> None:
    """Without instrumentation, headers=propagation.inject() on the client and
    propagation.attach(headers) in a bare ASGI app carry the flow run and deployment."""

    @flow
    def caller() -> tuple[str, dict[str, Any]]:
        with serve(attached) as url:
            return runtime.flow_run.id, dict(httpx.get(url, headers=propagation.inject()).json())

    with deployment("batch"):
        flow_run_id, seen = caller()
    assert seen == {"flow_run_id": flow_run_id, "deployment_name": "batch"}


def test_untrusted_request_starts_a_new_trace_that_links_to_the_caller(
    service: str, spans: CapturedSpans
) -> None:
    """A flow run started under propagation.new_root() in a handler is the root of a new trace, linked
    to the request's span; the caller's baggage (flow run, deployment) is ignored."""

    @flow
    def caller() -> tuple[str, dict[str, Any]]:
        with httpx.Client() as client:
            HTTPXClientInstrumentor().instrument_client(client)
            return runtime.flow_run.id, dict(client.get(f"{service}/untrusted").json())

    with deployment("public-api"):
        caller_flow_run_id, seen = caller()

    caller_span = spans.find("flow caller")
    server_span = _one(spans, SpanKind.SERVER)
    started = spans.find("flow handler_flow")
    assert caller_span.context is not None and server_span.context is not None and started.context is not None
    assert started.parent is None
    assert started.context.trace_id != caller_span.context.trace_id
    assert [link.context for link in started.links] == [server_span.context]
    assert seen["trace_id"] == _hex(started.context.trace_id, 32)
    assert seen["flow_run_id"] != caller_flow_run_id
    assert seen["parent_flow_run_id"] is None
    assert seen["deployment_name"] is None
