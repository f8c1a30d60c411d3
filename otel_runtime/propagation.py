"""Carry the run context across boundaries: threads, processes, HTTP calls, distributed workers.

A run's identity is its span context plus a few bytes of W3C baggage (``flow_run.id``,
``deployment.name``, ...). :func:`inject` writes them into a carrier (a dict of headers), and on the
other side :func:`attach` makes them current, so the runtime accessors, the structlog processor and
new spans all see the remote run. They use the globally configured OpenTelemetry propagators (W3C
trace context and baggage by default; ``OTEL_PROPAGATORS`` chooses others, B3 or Jaeger say), with
one exception: baggage always goes through :class:`BaggagePropagator`, so it is percent-encoded as the
W3C spec says (a space is ``%20``) even where the SDK's own baggage propagator is the global one.

>>> from otel_runtime import flow, runtime, propagation
>>> @flow
... def caller() -> dict[str, str]:
...     return propagation.inject()  # {"traceparent": ..., "baggage": "flow_run.id=...,..."}
>>> headers = caller()
>>> with propagation.attach(headers):  # in an HTTP handler, a worker, another process
...     runtime.flow_run.id == headers["baggage"].split("flow_run.id=")[1].split(",")[0]
True

Child processes: ``subprocess.run(cmd, env={**os.environ, **propagation.to_env()})``; the first flow
run of the child (or anything inside ``with propagation.attach_env():``) joins the parent's trace.

A request you do not trust: ``with propagation.attach(headers, trust=False):`` (or, inside an
instrumented handler, ``with propagation.new_root():``) makes the next flow run the root of a new trace
that only links to the caller, and ignores the caller's baggage.

Baggage goes out with every request, so :func:`configure_baggage` restricts which keys leave the
process, and :class:`BaggagePropagator` (entry point ``otel_runtime_baggage``) percent-encodes values
as the W3C spec says; :func:`install_baggage_propagator` puts it in the global propagators.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any, Final, ParamSpec, TypeVar, cast

from opentelemetry import propagate, trace
from opentelemetry.context import Context, get_current, get_value, set_value
from opentelemetry.context import attach as _attach
from opentelemetry.context import detach as _detach
from opentelemetry.propagators.textmap import TextMapPropagator

from otel_runtime._base import keys as _keys
from otel_runtime._core.baggage_policy import BaggagePolicy, get_policy, set_policy
from otel_runtime._core.baggage_propagator import BaggagePropagator, spec_textmap, swapped
from otel_runtime._core.identity import FLOW_RUN_CONTEXT, TASK_RUN_CONTEXT
from otel_runtime._core.trace_join import env_name, is_header_text, read_env_carrier, untrusted

__all__ = [
    "RUN_KEYS",
    "BaggagePolicy",
    "BaggagePropagator",
    "attach",
    "attach_env",
    "baggage_policy",
    "configure_baggage",
    "extract",
    "from_env",
    "inject",
    "install_baggage_propagator",
    "new_root",
    "to_env",
    "wrap",
]

P = ParamSpec("P")
R = TypeVar("R")

RUN_KEYS: Final = _keys.BAGGAGE_KEYS
"""The baggage keys otel_runtime sets: the run identity a remote process reads."""

_TRACEPARENT: Final = "traceparent"

Carrier = Mapping[str, str] | str
"""A mapping of header names to values, or a bare ``traceparent`` string."""


def inject(carrier: MutableMapping[str, str] | None = None, context: Context | None = None) -> dict[str, str]:
    """Write the context (default: the current one) into ``carrier`` and return it as a dict.

    With the default propagators the result holds ``traceparent``, ``tracestate`` (if any) and
    ``baggage``. Pass it as HTTP headers or any string map. A given ``carrier`` is filled in place.
    """
    target: MutableMapping[str, str] = {} if carrier is None else carrier
    spec_textmap().inject(target, context=context)
    return dict(target)


def _as_mapping(carrier: Carrier) -> Mapping[str, str]:
    """Header names lower-cased; values that cannot be header text (not UTF-8) dropped."""
    if isinstance(carrier, str):
        carrier = {_TRACEPARENT: carrier}
    return {
        key.lower(): value for key, value in carrier.items() if isinstance(key, str) and is_header_text(value)
    }


def _outside_local_runs(context: Context) -> Context:
    """``context`` without this process's run contexts, so run identity comes from baggage alone."""
    if get_value(FLOW_RUN_CONTEXT, context) is not None:
        context = set_value(FLOW_RUN_CONTEXT, None, context)
    if get_value(TASK_RUN_CONTEXT, context) is not None:
        context = set_value(TASK_RUN_CONTEXT, None, context)
    return context


def extract(carrier: Carrier, context: Context | None = None) -> Context:
    """The context described by ``carrier``, added to ``context``.

    ``carrier`` is a mapping of headers (names in any case) or a bare ``traceparent`` string. The
    default ``context`` is the current one minus any run of this process, so the carrier's run is the
    one the accessors see; ``with deployment(...)`` and ``with tags(...)`` blocks stay in force. A carrier
    without a ``traceparent`` leaves the span as it was; bad values are ignored, never raised.
    """
    base = _outside_local_runs(get_current()) if context is None else context
    return spec_textmap().extract(_as_mapping(carrier), context=base)


@contextmanager
def attach(carrier: Carrier, *, trust: bool = True) -> Iterator[Context]:
    """Make the remote run in ``carrier`` current inside the block.

    Inside, ``runtime.flow_run.id`` and ``runtime.deployment.name`` answer from the carrier's baggage,
    ``add_run_context`` stamps log lines with them, and new spans (a flow run's included) are children of
    the remote span.

    ``trust=False`` is for a carrier from a caller you do not trust (a public request): its baggage is
    ignored and the current span and baggage are cleared, so the next flow run starts a new trace with
    a link to the caller's span instead of joining it.
    """
    if trust:
        context = extract(carrier)
    else:
        caller = trace.get_current_span(spec_textmap().extract(_as_mapping(carrier), context=Context()))
        context = untrusted(_outside_local_runs(get_current()), caller.get_span_context())
    token = _attach(context)
    try:
        yield context
    finally:
        _detach(token)


@contextmanager
def new_root() -> Iterator[Context]:
    """Inside the block, the next flow run starts a new trace that links to the current span.

    For a run started inside a request you do not trust, where the server instrumentation already made
    the caller's span current: the caller's baggage is cleared too.
    """
    current = get_current()
    context = untrusted(_outside_local_runs(current), trace.get_current_span(current).get_span_context())
    token = _attach(context)
    try:
        yield context
    finally:
        _detach(token)


class _WithContext:
    """A callable that runs ``fn`` in the context captured when it was made, in this or another process.

    Pickling (to a process pool) sends the context as a carrier, so the child sees the remote run.
    """

    def __init__(self, fn: Callable[..., Any], context: Context) -> None:
        functools.update_wrapper(self, fn)
        self._fn = fn
        self._context = context

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        token = _attach(self._context)
        try:
            result = self._fn(*args, **kwargs)
        finally:
            _detach(token)
        return self._awaited_in_context(result) if inspect.iscoroutine(result) else result

    async def _awaited_in_context(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        """Run the coroutine ``fn`` returned (an async function's body) with the context attached."""
        token = _attach(self._context)
        try:
            return await coroutine
        finally:
            _detach(token)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_from_carrier, (self._fn, inject(context=self._context)))

    def __repr__(self) -> str:
        return f"propagation.wrap({self._fn!r})"


def _from_carrier(fn: Callable[..., Any], carrier: dict[str, str]) -> _WithContext:
    return _WithContext(fn, spec_textmap().extract(carrier, context=Context()))


def wrap(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn``, made to run in the current context wherever it is called: another thread, an executor.

    The context is captured now. ``executor.submit(propagation.wrap(work), item)`` runs ``work`` with
    the caller's span, baggage and run identity; async functions are awaited inside the context. The
    result also pickles (as a carrier) for a ``ProcessPoolExecutor``, if ``fn`` itself pickles.
    """
    return cast(Callable[P, R], _WithContext(fn, get_current()))


def to_env(context: Context | None = None) -> dict[str, str]:
    """The context as environment variables for a child process: ``TRACEPARENT``, ``TRACESTATE``, ``BAGGAGE``.

    ``subprocess.run(cmd, env={**os.environ, **propagation.to_env()})``; in the child,
    :func:`from_env` reads them back, and the child's first flow run joins the trace on its own.
    """
    return {env_name(field): value for field, value in inject(context=context).items()}


def from_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The carrier a parent process left in ``environ`` (default ``os.environ``) with :func:`to_env`."""
    return read_env_carrier(environ)


@contextmanager
def attach_env(environ: Mapping[str, str] | None = None) -> Iterator[Context]:
    """``attach(from_env())``: inside the block, the parent process's run is current."""
    with attach(from_env(environ)) as context:
        yield context


def install_baggage_propagator() -> TextMapPropagator:
    """Replace the SDK's W3C baggage propagator in the global propagators with :class:`BaggagePropagator`.

    Other propagators (trace context, B3, ...) stay as they are, and nothing is added when the global
    propagators carry no baggage. Safe to call again. Returns the global propagator now in place.
    Without code: ``OTEL_PROPAGATORS=tracecontext,otel_runtime_baggage``.
    """
    current = propagate.get_global_textmap()
    replacement = swapped(current)
    if replacement is not current:
        propagate.set_global_textmap(replacement)
    return replacement


def configure_baggage(*, allowed_keys: Iterable[str] | None = None, run_keys: bool = True) -> BaggagePolicy:
    """Decide which baggage keys leave this process, and use the propagator that enforces it.

    ``allowed_keys``: the keys, besides otel_runtime's run keys, that may be sent (a trailing ``*``
    allows a prefix); ``None`` sends every key. ``run_keys=False`` keeps the run identity in too, at
    the price that workers and services you call no longer know the run. Overrides
    ``OTEL_RUNTIME_BAGGAGE_ALLOWED_KEYS`` and calls :func:`install_baggage_propagator`.
    """
    policy = BaggagePolicy(None if allowed_keys is None else frozenset(allowed_keys), run_keys)
    set_policy(policy)
    install_baggage_propagator()
    return policy


def baggage_policy() -> BaggagePolicy:
    """The baggage policy in force."""
    return get_policy()
