"""otel_runtime.propagation: the run identity and the trace across threads, processes and carriers."""

from __future__ import annotations

import asyncio
import concurrent.futures
import doctest
import json
import multiprocessing
import os
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import entry_points
from typing import Any

import pytest
import structlog
from opentelemetry import baggage, propagate, trace
from opentelemetry import context as otel_context
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from structlog.testing import capture_logs

from otel_runtime import deployment, flow, propagation, runtime, task
from otel_runtime.logging import add_run_context
from otel_runtime.propagation import BaggagePolicy, BaggagePropagator
from otel_runtime.testing import CapturedSpans, OtlpReceiver

TRICKY = " a b+c%d,e;f=g ü 漢字 "
"""A baggage value that the SDK's quote_plus encoding does not carry exactly to other languages."""
TRICKY_ON_THE_WIRE = "%20a%20b%2Bc%25d%2Ce%3Bf%3Dg%20%C3%BC%20%E6%BC%A2%E5%AD%97%20"


@pytest.fixture(autouse=True)
def global_propagators() -> Iterator[None]:
    """Each test starts with the SDK's default propagators and every baggage key allowed; restored after."""
    saved = propagate.get_global_textmap()
    sdk_default = CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
    propagate.set_global_textmap(sdk_default)
    try:
        yield
    finally:
        propagation.configure_baggage()
        propagate.set_global_textmap(saved)


def _hex(value: int, width: int) -> str:
    return format(value, f"0{width}x")


def _seen_flow_run_id() -> str | None:
    """Module level, so a process pool can import it."""
    return runtime.flow_run.id


@flow
def remote() -> dict[str, str]:
    """A flow run whose carrier the tests play back elsewhere."""
    return propagation.inject()


# -- inject / extract / attach -------------------------------------------------------------------


def test_inject_writes_traceparent_and_the_run_baggage(spans: CapturedSpans) -> None:
    """Inside a flow run, inject() returns a traceparent naming the flow span and baggage with the run ids."""
    with deployment("nightly"):
        carrier = remote()
    flow_span = spans.find("flow remote")
    assert flow_span.context is not None
    trace_id, span_id = _hex(flow_span.context.trace_id, 32), _hex(flow_span.context.span_id, 16)
    flags = _hex(flow_span.context.trace_flags, 2)
    assert carrier["traceparent"] == f"00-{trace_id}-{span_id}-{flags}"
    entries = dict(member.split("=", 1) for member in carrier["baggage"].split(","))
    assert entries["flow_run.id"] == flow_span.attributes["flow_run.id"]
    assert entries["deployment.name"] == "nightly"
    assert entries["flow.name"] == "remote"
    assert "task_run.id" not in entries


def test_inject_fills_a_given_carrier_and_is_empty_outside_any_run() -> None:
    """inject(carrier) writes into the mapping given; with no span and no baggage it writes nothing."""
    headers = {"accept": "application/json"}
    assert propagation.inject(headers) == {"accept": "application/json"}
    remote_carrier = remote()
    with propagation.attach(remote_carrier):
        propagation.inject(headers)
    assert headers["traceparent"] == remote_carrier["traceparent"]


def test_attach_makes_the_remote_run_visible_to_accessors_logs_and_new_spans(spans: CapturedSpans) -> None:
    """Inside attach(carrier), with no run of this process active, runtime accessors answer from the
    carrier, add_run_context stamps log lines, new spans are children of the remote span, and a flow
    run started there is a child of the remote flow run; after the block all of it is gone."""
    with deployment("nightly", id="dep-1"):
        carrier = remote()
    flow_span = spans.find("flow remote")
    assert flow_span.context is not None
    remote_id = flow_span.attributes["flow_run.id"]

    @flow
    def downstream() -> tuple[str | None, str | None]:
        return runtime.flow_run.parent_flow_run_id, runtime.deployment.name

    with capture_logs(processors=[add_run_context]) as logs, propagation.attach(carrier):
        seen = {
            "flow_run.id": runtime.flow_run.id,
            "flow_run.name": runtime.flow_run.name,
            "flow_run.flow_name": runtime.flow_run.flow_name,
            "flow_run.trace_id": runtime.flow_run.trace_id,
            "deployment.name": runtime.deployment.name,
            "deployment.id": runtime.deployment.id,
            "task_run.id": runtime.task_run.id,
        }
        structlog.get_logger().info("remote work")
        with trace.get_tracer("test").start_as_current_span("remote child"):
            pass
        parent_of_downstream, downstream_deployment = downstream()
    assert seen == {
        "flow_run.id": remote_id,
        "flow_run.name": flow_span.attributes["flow_run.name"],
        "flow_run.flow_name": "remote",
        "flow_run.trace_id": _hex(flow_span.context.trace_id, 32),
        "deployment.name": "nightly",
        "deployment.id": "dep-1",
        "task_run.id": None,
    }
    (line,) = logs
    assert line["flow_run_id"] == remote_id and line["deployment_name"] == "nightly"
    assert line["trace_id"] == _hex(flow_span.context.trace_id, 32)
    assert line["span_id"] == _hex(flow_span.context.span_id, 16)
    assert spans.children(flow_span) == [spans.find("remote child"), spans.find("flow downstream")]
    assert (parent_of_downstream, downstream_deployment) == (remote_id, "nightly")
    assert spans.find("flow downstream").attributes["flow_run.parent_id"] == remote_id
    assert runtime.flow_run.id is None and runtime.deployment.name is None


def test_attach_inside_a_local_run_makes_the_carrier_run_the_current_one(spans: CapturedSpans) -> None:
    """A carrier attached inside a flow run of this process (a queue consumer, say) wins: accessors
    name the carrier's run and a task run started there belongs to it, as a child of the remote span."""
    carrier = remote()
    remote_span = spans.find("flow remote")
    assert remote_span.context is not None

    @task
    def handle() -> str | None:
        return runtime.flow_run.id

    @flow
    def consumer() -> tuple[str | None, str | None, str | None]:
        with propagation.attach(carrier):
            inside = runtime.flow_run.id
            handled = handle()
        return inside, handled, runtime.flow_run.id

    inside, handled, after = consumer()
    assert inside == handled == remote_span.attributes["flow_run.id"]
    assert after == spans.find("flow consumer").attributes["flow_run.id"]
    handle_span = spans.find("task handle")
    assert handle_span.parent is not None and handle_span.parent.span_id == remote_span.context.span_id
    assert handle_span.attributes["flow_run.id"] == remote_span.attributes["flow_run.id"]


def test_a_carrier_made_in_a_task_run_carries_the_task_run_id() -> None:
    """A carrier injected inside a task run makes runtime.task_run.id answer on the far side."""

    @task
    def make_carrier() -> tuple[str | None, dict[str, str]]:
        return runtime.task_run.id, propagation.inject()

    @flow
    def outer() -> tuple[str | None, dict[str, str]]:
        return make_carrier()

    task_run_id, carrier = outer()
    with propagation.attach(carrier):
        assert runtime.task_run.id == task_run_id


def test_attach_takes_a_bare_traceparent_and_headers_in_any_case(spans: CapturedSpans) -> None:
    """attach("00-...") joins that trace; header names are matched without regard to case."""
    carrier = remote()
    flow_span = spans.find("flow remote")
    assert flow_span.context is not None
    with propagation.attach(carrier["traceparent"]):
        joined = trace.get_current_span().get_span_context()
        assert (joined.trace_id, joined.span_id) == (flow_span.context.trace_id, flow_span.context.span_id)
        assert runtime.flow_run.id is None  # a bare traceparent carries no baggage
    with propagation.attach({"TraceParent": carrier["traceparent"], "Baggage": carrier["baggage"]}):
        assert runtime.flow_run.id == flow_span.attributes["flow_run.id"]
        assert trace.get_current_span().get_span_context().span_id == flow_span.context.span_id


def test_attach_ignores_malformed_inbound_values_without_raising() -> None:
    """Baggage values that are not well-formed ids or names, and a broken traceparent, are ignored."""
    carrier = {
        "traceparent": "00-not-a-trace-01",
        "baggage": "flow_run.id=not%20an%20id,deployment.name=%07bell,flow_run.name=" + "x" * 300,
    }
    with propagation.attach(carrier):
        assert runtime.flow_run.id is None
        assert runtime.deployment.name is None
        assert runtime.flow_run.name is None
        assert not trace.get_current_span().get_span_context().is_valid


# -- wrap --------------------------------------------------------------------------------------------


def test_wrap_carries_the_context_into_a_thread_pool() -> None:
    """A function wrapped in a flow run runs in an executor thread with that flow run and span current."""

    def look() -> tuple[str | None, int]:
        return runtime.flow_run.id, trace.get_current_span().get_span_context().span_id

    @flow
    def submits() -> tuple[Any, Any, Any]:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            wrapped = pool.submit(propagation.wrap(look)).result()
            bare = pool.submit(look).result()
        here = runtime.flow_run.id, trace.get_current_span().get_span_context().span_id
        return wrapped, bare, here

    wrapped, bare, here = submits()
    assert wrapped == here
    assert bare == (None, 0)


def test_wrap_awaits_async_functions_inside_the_captured_context(spans: CapturedSpans) -> None:
    """A wrapped coroutine function (an async task too) sees the captured run when awaited later."""

    async def look() -> str | None:
        await asyncio.sleep(0)
        return runtime.flow_run.id

    @task
    async def async_look() -> str | None:
        return await look()

    @flow
    def captures() -> tuple[str, Any, Any]:
        return runtime.flow_run.id, propagation.wrap(look), propagation.wrap(async_look)

    flow_run_id, wrapped, wrapped_task = captures()
    assert asyncio.run(wrapped()) == flow_run_id
    assert asyncio.run(wrapped_task()) == flow_run_id
    assert wrapped.__name__ == "look"
    assert spans.children(spans.find("flow captures")) == [spans.find("task async_look")]


def test_wrap_pickles_as_a_carrier_into_a_spawned_process_pool() -> None:
    """A wrapped module-level function sent to a spawn process pool runs there with the flow run current."""

    @flow
    def ships() -> tuple[str, str | None]:
        spawn = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=spawn) as pool:
            return runtime.flow_run.id, pool.submit(propagation.wrap(_seen_flow_run_id)).result()

    here, there = ships()
    assert there == here


# -- environment carrier -------------------------------------------------------------------------


def test_to_env_and_from_env_round_trip_the_carrier(spans: CapturedSpans) -> None:
    """to_env() names the fields as upper-case variables; from_env() reads them back as the carrier and
    attach_env() makes that run current."""
    carrier = remote()
    with propagation.attach(carrier):
        env = propagation.to_env()
    assert env == {"TRACEPARENT": carrier["traceparent"], "BAGGAGE": carrier["baggage"]}
    assert propagation.from_env({**env, "PATH": "/bin"}) == carrier
    with propagation.attach_env(env):
        assert runtime.flow_run.id == spans.find("flow remote").attributes["flow_run.id"]


CHILD = """
import json
from opentelemetry import baggage
import otel_runtime
from otel_runtime import flow, propagation, runtime

telemetry = otel_runtime.configure()
with propagation.attach_env():
    attached = {"flow_run_id": runtime.flow_run.id, "note": baggage.get_baggage("note")}

@flow
def child() -> dict:
    return {
        "flow_run_id": runtime.flow_run.id,
        "parent_flow_run_id": runtime.flow_run.parent_flow_run_id,
        "deployment_name": runtime.deployment.name,
        "trace_id": runtime.flow_run.trace_id,
        "note": baggage.get_baggage("note"),
    }

runs = [child(), child()]
with propagation.attach({"baggage": "flow_run.id=explicit-run"}):
    explicit = child()
telemetry.force_flush()
carrier = propagation.from_env()
print(json.dumps({"carrier": carrier, "attached": attached, "runs": runs, "explicit": explicit}))
"""


def test_child_process_started_with_to_env_joins_the_parent_trace_and_run(spans: CapturedSpans) -> None:
    """A child process started with to_env() (and OTEL_PROPAGATORS naming our entry point) reads the
    parent's run back: attach_env() shows it, its root flow runs are children of the parent's span and
    subflows of the parent flow run, and baggage values round-trip exactly, percent-encoded on the way.
    A flow run under baggage attached in the child goes by that baggage instead of the environment."""
    propagation.install_baggage_propagator()

    @flow
    def parent() -> tuple[str, dict[str, str], dict[str, Any]]:
        token = otel_context.attach(baggage.set_baggage("note", TRICKY))
        try:
            env = propagation.to_env()
        finally:
            otel_context.detach(token)
        with OtlpReceiver() as receiver:
            child_env = {
                **os.environ,
                **env,
                "OTEL_PROPAGATORS": "tracecontext,otel_runtime_baggage",
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.http_endpoint,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_TRACES_EXPORTER": "otlp",
                "OTEL_LOGS_EXPORTER": "none",
            }
            done = subprocess.run(
                [sys.executable, "-c", CHILD],
                env=child_env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert done.returncode == 0, done.stderr
            exported = {"spans": receiver.spans()}
        return runtime.flow_run.id, env, {**json.loads(done.stdout), **exported}

    with deployment("nightly etl"):
        parent_id, env, child = parent()
    parent_span = spans.find("flow parent")
    assert parent_span.context is not None
    assert f"note={TRICKY_ON_THE_WIRE}" in env["BAGGAGE"]
    assert child["carrier"] == {"traceparent": env["TRACEPARENT"], "baggage": env["BAGGAGE"]}
    assert child["attached"] == {"flow_run_id": parent_id, "note": TRICKY}
    for run in child["runs"]:
        assert run["parent_flow_run_id"] == parent_id
        assert run["deployment_name"] == "nightly etl"
        assert run["trace_id"] == _hex(parent_span.context.trace_id, 32)
        assert run["note"] == TRICKY
    assert child["explicit"]["parent_flow_run_id"] == "explicit-run"
    assert child["explicit"]["trace_id"] != _hex(parent_span.context.trace_id, 32)
    exported = sorted(child["spans"], key=lambda span: span["start_ns"])
    assert [span["name"] for span in exported] == ["flow child"] * 3
    for span in exported[:2]:
        assert span["trace_id"] == _hex(parent_span.context.trace_id, 32)
        assert span["parent_span_id"] == _hex(parent_span.context.span_id, 16)
        assert span["attributes"]["flow_run.parent_id"] == parent_id


# -- untrusted callers ---------------------------------------------------------------------------


def test_untrusted_attach_starts_a_new_trace_that_only_links_to_the_caller(spans: CapturedSpans) -> None:
    """attach(carrier, trust=False): the caller's baggage is ignored and a flow run started inside is
    the root of a new trace with one link to the caller's span."""
    with deployment("public"):
        carrier = remote()
    caller = spans.find("flow remote")
    assert caller.context is not None

    @flow
    def handle() -> tuple[str | None, str | None]:
        return runtime.flow_run.parent_flow_run_id, runtime.deployment.name

    with propagation.attach(carrier, trust=False):
        assert runtime.flow_run.id is None and runtime.deployment.name is None
        assert not trace.get_current_span().get_span_context().is_valid
        assert handle() == (None, None)
    handled = spans.find("flow handle")
    assert handled.parent is None and handled.context is not None
    assert handled.context.trace_id != caller.context.trace_id
    assert [(link.context.trace_id, link.context.span_id) for link in handled.links] == [
        (caller.context.trace_id, caller.context.span_id)
    ]
    assert "flow_run.parent_id" not in handled.attributes


def test_new_root_links_to_the_current_span_and_clears_its_baggage(spans: CapturedSpans) -> None:
    """new_root() inside a span that carries baggage: a flow run started there is a new root linked to
    that span, and sees none of its baggage; a span of the user's inside the block nests as usual."""

    @flow
    def handle() -> str | None:
        return baggage.get_baggage("tenant")

    with trace.get_tracer("test").start_as_current_span("request") as request:
        token = otel_context.attach(baggage.set_baggage("tenant", "acme"))
        try:
            with propagation.new_root():
                assert handle() is None
                with trace.get_tracer("test").start_as_current_span("inner") as inner, propagation.new_root():
                    pass
        finally:
            otel_context.detach(token)
    handled = spans.find("flow handle")
    assert handled.parent is None
    assert [link.context for link in handled.links] == [request.get_span_context()]
    assert inner.get_span_context().trace_id != request.get_span_context().trace_id


# -- the baggage propagator and policy ------------------------------------------------------------


def _header(entries: dict[str, str], propagator: BaggagePropagator | None = None) -> str:
    context = Context()
    for key, value in entries.items():
        context = baggage.set_baggage(key, value, context)
    carrier: dict[str, str] = {}
    (propagator or BaggagePropagator()).inject(carrier, context)
    return carrier.get("baggage", "")


def _entries(header: str, propagator: BaggagePropagator | None = None) -> dict[str, object]:
    return dict(baggage.get_all((propagator or BaggagePropagator()).extract({"baggage": header}, Context())))


def test_baggage_is_percent_encoded_as_the_w3c_spec_says_and_decodes_exactly() -> None:
    """Space goes out as %20 (never '+'); '+', '%', ',', ';', '=' and non-ASCII are percent-encoded;
    decoding gives the exact value back, leading and trailing spaces included."""
    header = _header({"note": TRICKY, "plain": "a-b_c.d~e/f:g"})
    assert header == f"note={TRICKY_ON_THE_WIRE},plain=a-b_c.d~e/f:g"
    assert _entries(header) == {"note": TRICKY, "plain": "a-b_c.d~e/f:g"}


def test_baggage_decoder_reads_plus_literally_unless_told_otherwise() -> None:
    """A raw '+' is a '+', as in other languages' SDKs; plus_as_space=True reads legacy form encoding."""
    assert _entries("k=a+b%20c") == {"k": "a+b c"}
    assert _entries("k=a+b%2Bc", BaggagePropagator(plus_as_space=True)) == {"k": "a b+c"}


def test_baggage_decoder_skips_malformed_members_and_drops_properties() -> None:
    """Members without '=', with a non-token key, bad octets or broken UTF-8 are skipped; properties go."""
    header = 'good=1;prop=x, =nokey,bad key=2,novalue,quote="x",utf=%FF,empty=,spaced = 3 '
    assert _entries(header) == {"good": "1", "empty": "", "spaced": "3"}


def test_outbound_baggage_holds_the_w3c_limits_and_sends_run_keys_first() -> None:
    """At most 180 members and 8192 bytes go out, whole members only; a member over 4096 bytes is left
    out alone; otel_runtime's run keys go first, so user entries cannot crowd them out."""
    many = {f"k{index}": "v" for index in range(200)}
    members = _header({**many, "flow_run.id": "run-1"}).split(",")
    assert len(members) == 180 and members[0] == "flow_run.id=run-1"

    header = _header({"huge": "x" * 5000, "small": "y"})
    assert header == "small=y"

    big = {f"big{index}": "z" * 1000 for index in range(10)}
    header = _header({**big, "deployment.name": "nightly"})
    assert len(header) <= 8192 and header.startswith("deployment.name=nightly,")
    assert all(member.endswith("z" * 1000) for member in header.split(",")[1:])
    assert len(header.split(",")) == 9


def test_inbound_baggage_holds_the_w3c_limits() -> None:
    """A receiver takes at most 180 members and 8192 bytes, and skips members over 4096 bytes."""
    header = ",".join(f"k{index}=v" for index in range(200))
    assert len(_entries(header)) == 180
    assert _entries(f"huge={'x' * 5000},small=y") == {"small": "y"}
    assert len(_entries(",".join(f"b{index}={'z' * 1000}" for index in range(10)))) == 8


def test_configure_baggage_restricts_which_keys_leave_the_process() -> None:
    """configure_baggage(allowed_keys=...) sends only those keys (a trailing * is a prefix) plus the run
    keys; run_keys=False holds the run identity back too. inject() applies it from then on."""
    token = otel_context.attach(
        baggage.set_baggage(
            "secret", "s", baggage.set_baggage("feature.x", "on", baggage.set_baggage("tenant", "acme"))
        )
    )
    try:
        with deployment("nightly"):
            propagation.configure_baggage(allowed_keys=["tenant", "feature.*"])

            @flow
            def sends() -> str:
                return propagation.inject()["baggage"]

            header = sends()
            propagation.configure_baggage(allowed_keys=["tenant"], run_keys=False)
            without_run_keys = sends()
    finally:
        otel_context.detach(token)
    keys = {member.split("=")[0] for member in header.split(",")}
    assert keys == {
        "tenant",
        "feature.x",
        "flow_run.id",
        "flow_run.name",
        "flow.name",
        "deployment.id",
        "deployment.name",
    }
    assert without_run_keys == "tenant=acme"


def test_baggage_policy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_RUNTIME_BAGGAGE_ALLOWED_KEYS lists the keys allowed besides the run keys; 'none' allows none."""
    monkeypatch.setenv("OTEL_RUNTIME_BAGGAGE_ALLOWED_KEYS", "tenant, region")
    policy = BaggagePolicy.from_environment()
    assert policy.allows("tenant") and policy.allows("flow_run.id") and not policy.allows("secret")
    monkeypatch.setenv("OTEL_RUNTIME_BAGGAGE_ALLOWED_KEYS", "none")
    assert BaggagePolicy.from_environment() == BaggagePolicy(allowed_keys=frozenset())
    monkeypatch.delenv("OTEL_RUNTIME_BAGGAGE_ALLOWED_KEYS")
    assert BaggagePolicy.from_environment() == BaggagePolicy()


def test_install_baggage_propagator_swaps_only_the_sdk_baggage_propagator() -> None:
    """install_baggage_propagator() replaces the SDK's baggage propagator in the global composite and
    keeps the others; it is idempotent and adds nothing where no baggage is propagated."""
    installed = propagation.install_baggage_propagator()
    assert propagate.get_global_textmap() is installed
    assert installed.fields == {"traceparent", "tracestate", "baggage"}
    assert propagation.install_baggage_propagator() is installed
    assert propagation.inject(context=baggage.set_baggage("k", "a b", Context())) == {"baggage": "k=a%20b"}

    trace_only = CompositePropagator([TraceContextTextMapPropagator()])
    propagate.set_global_textmap(trace_only)
    assert propagation.install_baggage_propagator() is trace_only


def test_our_propagator_is_registered_under_the_opentelemetry_propagator_entry_point() -> None:
    """OTEL_PROPAGATORS=tracecontext,otel_runtime_baggage finds BaggagePropagator by its entry point."""
    (found,) = entry_points(group="opentelemetry_propagator", name="otel_runtime_baggage")
    assert found.load() is BaggagePropagator


@pytest.mark.parametrize("first", ["opentelemetry.propagate", "otel_runtime", "otel_runtime.propagation"])
def test_otel_propagators_naming_our_propagator_imports_in_any_order(first: str) -> None:
    """With OTEL_PROPAGATORS naming otel_runtime_baggage, a fresh process can import OpenTelemetry's
    propagate module or otel_runtime first: loading the entry point causes no import cycle."""
    code = (
        f"import {first}\n"
        "from opentelemetry import propagate\n"
        "from otel_runtime import propagation\n"
        "print(type(propagate.get_global_textmap()._propagators[1]).__name__)\n"
    )
    env = {**os.environ, "OTEL_PROPAGATORS": "tracecontext,otel_runtime_baggage"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "BaggagePropagator"


def test_module_docstring_example_runs() -> None:
    """The example in otel_runtime.propagation's docstring runs as written."""
    results = doctest.testmod(propagation, optionflags=doctest.ELLIPSIS)
    assert results.attempted > 0 and results.failed == 0
