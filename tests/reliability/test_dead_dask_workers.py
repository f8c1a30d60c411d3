"""A Dask task run whose worker died and that Dask re-ran elsewhere is one span, with the death on it.

A real ``LocalCluster`` of two nanny-managed worker processes on 127.0.0.1; the workers export over
OTLP/HTTP to a loopback ``OtlpReceiver`` (they inherit the variables set before the cluster starts),
the flow process captures its own spans in memory. Each task kills its own worker with ``SIGKILL`` on
its first attempt only (a marker file says which attempt it is), at a point Dask's own code reaches
deterministically, so no timing decides where the death falls:

- mid-run, in the task's body: the attempt exports nothing, Dask runs the task again elsewhere;
- after the run ended, while Dask measures the result (``sizeof``, before the worker tells the
  scheduler the task finished): the attempt's span is exported, the scheduler still sees it running;
- after the run ended and the scheduler holds the result, while the worker serializes it for the
  client: the attempt's span is exported and its result lost; Dask computes it again.
"""

from __future__ import annotations

import collections
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from otel_runtime import flow, task
from otel_runtime._base import keys as _keys
from otel_runtime._engine.task_runners import _LOCAL_CLUSTER_DEFAULTS as LOCAL_CLUSTER_DEFAULTS
from otel_runtime.task_runners import DaskTaskRunner
from otel_runtime.testing import CapturedSpans, OtlpReceiver

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")


def _first_attempt(marker: str) -> bool:
    """True once per marker: on the first attempt (it leaves the marker for the next one)."""
    try:
        Path(marker).touch(exist_ok=False)
    except FileExistsError:
        return False
    return True


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(10)


class DiesWhenMeasured:
    """A result whose size Dask measures right after the task returned: the first attempt dies there."""

    def __init__(self, marker: str, value: int) -> None:
        self.marker, self.value = marker, value

    def __sizeof__(self) -> int:
        if _first_attempt(self.marker):
            _die()
        return 64


class DiesWhenSent:
    """A result the worker serializes when the client fetches it: the first attempt dies there."""

    def __init__(self, marker: str, value: int) -> None:
        self.marker, self.value = marker, value

    def __reduce__(self) -> tuple[Any, ...]:
        if _first_attempt(self.marker):
            _die()
        return (DiesWhenSent, (self.marker, self.value))


@task
def dies_mid_run(marker: str, value: int) -> int:
    if _first_attempt(marker):
        _die()
    return value


@task
def dies_when_measured(marker: str, value: int) -> DiesWhenMeasured:
    return DiesWhenMeasured(marker, value)


@task
def dies_when_sent(marker: str, value: int) -> DiesWhenSent:
    return DiesWhenSent(marker, value)


@pytest.fixture
def receiver(export_workers_to: Callable[..., None]) -> Iterator[OtlpReceiver]:
    """A loopback OTLP receiver, with the variables that make worker processes export to it."""
    with OtlpReceiver() as running, pytest.MonkeyPatch.context() as env:
        export_workers_to(env, running, "dask-worker")
        yield running


@pytest.fixture
def cluster(receiver: OtlpReceiver) -> Iterator[Any]:
    """Two single-threaded worker processes, each under a nanny that restarts it when it dies."""
    with distributed.LocalCluster(n_workers=2, **LOCAL_CLUSTER_DEFAULTS) as running:
        yield running


CASES = {
    "killed mid-run": (dies_mid_run, lambda value: value),
    "killed after the run, before the scheduler knew": (dies_when_measured, lambda value: value.value),
    "killed after the run, before the result reached the client": (dies_when_sent, lambda value: value.value),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_dask_task_run_whose_worker_died_is_one_span_with_the_death_on_it(
    case: str, cluster: Any, receiver: OtlpReceiver, spans: CapturedSpans, tmp_path: Path
) -> None:
    """The run Dask re-ran on another worker after its worker died: its result reaches the flow, and
    exactly one task-run span of it arrives (from the workers or the flow process), COMPLETED, a child
    of the flow span. Killed mid-run, that span (the re-run's) has a ``worker.died`` event naming the
    dead worker's address and ``task_run.attempts`` 2; killed after its span was exported, the re-run
    adds no task-run span but a ``worker.died`` span under the flow span with the same event and count.
    A run of the same flow whose worker did not die has one span and no such event."""
    dying, value_of = CASES[case]

    @dask_flow(cluster)
    def survives(marker: str) -> tuple[int, int, str, str]:
        calm = dies_mid_run.submit(str(tmp_path / "calm"), 1)  # its marker exists: it does not die
        risky = dying.submit(marker, 42)
        return calm.result(), value_of(risky.result()), calm.task_run_id, risky.task_run_id

    (tmp_path / "calm").touch()
    calm_value, value, calm_id, risky_id = survives(str(tmp_path / "marker"))
    assert (calm_value, value) == (1, 42)

    receiver.wait_for_spans(2, timeout=10)
    time.sleep(0.5)  # a second span of the run would arrive with the first
    here = [span for span in spans.spans if span.name.startswith("task ")]
    assert not here, [span.name for span in here]  # nothing recorded as crashed in the flow process
    tasks = [span for span in receiver.spans() if span["name"].startswith("task ")]
    per_run = collections.Counter(span["attributes"][_keys.TASK_RUN_ID] for span in tasks)
    assert per_run == {calm_id: 1, risky_id: 1}

    flow_span = spans.find("flow survives")
    assert flow_span.context is not None
    (risky,) = [span for span in tasks if span["attributes"][_keys.TASK_RUN_ID] == risky_id]
    (calm,) = [span for span in tasks if span["attributes"][_keys.TASK_RUN_ID] == calm_id]
    for span in (risky, calm):
        assert span["parent_span_id"] == format(flow_span.context.span_id, "016x")
        assert span["attributes"][_keys.TASK_RUN_STATE_TYPE] == "COMPLETED"
    exported_before_death = case != "killed mid-run"
    died_spans = [span for span in receiver.spans() if span["name"] == _keys.WORKER_DIED_SPAN]
    if exported_before_death:  # the one span is the first attempt's: the death is in its own span
        (record,) = died_spans
        assert record["attributes"][_keys.TASK_RUN_ID] == risky_id
        assert record["parent_span_id"] == format(flow_span.context.span_id, "016x")
    else:  # the re-run's span, with the death of the first attempt on it
        assert not died_spans
        record = risky
    (died,) = [event for event in record["events"] if event["name"] == _keys.WORKER_DIED_EVENT]
    dead = died["attributes"][_keys.WORKER_ADDRESS]
    assert dead.startswith("tcp://127.0.0.1:")
    assert dead not in {worker.address for worker in cluster.scheduler.workers.values()}
    assert record["attributes"][_keys.TASK_RUN_ATTEMPTS] == 2
    assert not [event for event in calm["events"] if event["name"] == _keys.WORKER_DIED_EVENT]
    assert _keys.TASK_RUN_ATTEMPTS not in calm["attributes"]


def dask_flow(cluster: Any) -> Callable[[Callable[..., Any]], Any]:
    """``@flow`` on a ``DaskTaskRunner`` of ``cluster``."""
    return flow(task_runner=DaskTaskRunner(cluster))
