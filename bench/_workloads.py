"""The flows and tasks the rows run, and the probes that take the floor's shape from them.

Every run row runs inside the deployment :data:`DEPLOYMENT`, so a run carries everything it can:
deployment attributes on its span and deployment entries in its baggage.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from opentelemetry import baggage

from bench._floor import SpanShape, probe
from otel_runtime import flow, task

__all__ = [
    "DEPLOYMENT",
    "empty_flow",
    "flow_shape",
    "gather",
    "in_flow",
    "in_task",
    "map_item",
    "noop_async_task",
    "noop_task",
    "one_int",
    "one_int_unrecorded",
    "run_tasks",
    "task_shape",
]

DEPLOYMENT = "bench-deployment"
T = TypeVar("T")


@task
def noop_task() -> None:
    """A task run with an empty body."""


@task
async def noop_async_task() -> None:
    """An async task run with an empty body."""


@task
def map_item(item: int) -> None:
    """The mapped task: one small int, an empty body."""


@task
def one_int(x: int) -> None:
    """A task run with one small int parameter, recorded on its span (the default)."""


@task(record_parameters=False)
def one_int_unrecorded(x: int) -> None:
    """:func:`one_int` without recording its parameter."""


@flow
def empty_flow() -> None:
    """A flow run with no tasks."""


@flow(record_parameters=False)
def in_flow(work: Callable[[], T]) -> T:
    """Call ``work`` inside a flow run (the host of the task run rows)."""
    return work()


@task(record_parameters=False)
def in_task(work: Callable[[], T]) -> T:
    """Call ``work`` inside a task run (the host of the accessor and log rows)."""
    return work()


def run_tasks(n: int) -> None:
    """``n`` task runs of ``noop_task``, one after another."""
    for _ in range(n):
        noop_task()


async def gather(make: Callable[[], object], n: int) -> None:
    """``asyncio.gather`` of ``n`` coroutines from ``make()``."""
    await asyncio.gather(*(make() for _ in range(n)))  # type: ignore[misc]


@task
def _task_baggage() -> dict[str, object]:
    return dict(baggage.get_all())


@flow
def _flow_baggage() -> dict[str, object]:
    return dict(baggage.get_all())


def _added(before: dict[str, object], after: dict[str, object]) -> dict[str, object]:
    return {key: value for key, value in after.items() if before.get(key) != value}


def task_shape(call: Callable[[], object] = noop_task, span_name: str = "task noop_task") -> SpanShape:
    """The span name, attributes and baggage entries of the task run ``call()`` starts inside a flow run."""

    def run() -> dict[str, object]:
        call()
        return _added(dict(baggage.get_all()), _task_baggage())

    return probe(lambda: in_flow(run), span_name)


def flow_shape() -> SpanShape:
    """The span name, attributes and baggage entries of an ``empty_flow`` run."""

    def run() -> dict[str, object]:
        empty_flow()
        return _added(dict(baggage.get_all()), _flow_baggage())

    return probe(run, "flow empty_flow")
