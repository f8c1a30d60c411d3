"""Run states as Prefect models them (re-exported by ``otel_runtime.states``).

A state has a canonical *type* (``StateType.COMPLETED``, ...) that drives the rules, and a *name* for
people (``Completed``, ``Cached``, ``Skipped``, ``NotReady``), defaulting to the type's. Its ``data`` is
the run's return value, or the exception that failed it. The constructors ``Completed(...)``,
``Failed(...)`` ... take ``name=``, ``message=`` and ``data=``::

    from otel_runtime.states import Completed, Failed

    @task
    def check(ok: bool):
        return Completed(name="Skipped") if ok else Failed(message="not ok")

The engine builds a state only when one is asked for (``return_state=True``, ``future.state``, a state
hook, a returned state); a plain run keeps its value and exception and records only the state's type
and name on its span.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Generic, TypeVar

from otel_runtime._engine import made
from otel_runtime._engine.exceptions import (
    CancelledRun,
    CrashedRun,
    FailedRun,
    PausedRun,
    UnfinishedRun,
)

__all__ = [
    "AwaitingRetry",
    "Cancelled",
    "Cancelling",
    "Completed",
    "Crashed",
    "Failed",
    "Paused",
    "Pending",
    "Retrying",
    "Running",
    "Scheduled",
    "State",
    "StateDetails",
    "StateType",
    "get_state_exception",
    "is_state_iterable",
    "raise_state_exception",
]

R = TypeVar("R")


class StateType(str, enum.Enum):
    """The canonical kinds of state; the value is the upper-case name (``"COMPLETED"``)."""

    SCHEDULED = "SCHEDULED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    CRASHED = "CRASHED"
    PAUSED = "PAUSED"
    CANCELLING = "CANCELLING"

    def __str__(self) -> str:
        return self.value


TERMINAL_TYPES = frozenset({StateType.COMPLETED, StateType.FAILED, StateType.CANCELLED, StateType.CRASHED})
"""Types a run ends in: it will not change state again."""
FAILURE_TYPES = frozenset({StateType.FAILED, StateType.CRASHED, StateType.CANCELLED})
"""Types whose ``result()`` raises (unless ``raise_on_failure=False``)."""


@dataclass(slots=True)
class StateDetails:
    """Which run a state belongs to (``None`` for a state a user made and returned)."""

    flow_run_id: str | None = None
    task_run_id: str | None = None


def _default_name(state_type: StateType) -> str:
    return " ".join(part.capitalize() for part in state_type.value.split("_"))


class State(Generic[R]):
    """The state of a flow run or task run: ``type``, ``name``, ``message``, ``data``, ``timestamp``."""

    __slots__ = ("data", "message", "name", "state_details", "timestamp", "type")

    def __init__(
        self,
        type: StateType | str,
        *,
        name: str | None = None,
        message: str | None = None,
        data: Any = None,
        state_details: StateDetails | dict[str, Any] | None = None,
        timestamp: datetime | None = None,
    ) -> None:
        self.type = StateType(type)
        self.name: str = name if name is not None else _default_name(self.type)
        self.message = message
        self.data = data
        if isinstance(state_details, dict):
            state_details = StateDetails(**state_details)
        self.state_details = state_details if state_details is not None else StateDetails()
        self.timestamp = timestamp if timestamp is not None else datetime.now(timezone.utc)
        if not made.anything:
            made.note()

    # One predicate per type, as Prefect's State has them.
    def is_scheduled(self) -> bool:
        """Whether the type is SCHEDULED."""
        return self.type is StateType.SCHEDULED

    def is_pending(self) -> bool:
        """Whether the type is PENDING (``Pending``, ``NotReady``)."""
        return self.type is StateType.PENDING

    def is_running(self) -> bool:
        """Whether the type is RUNNING (``Running``, ``Retrying``)."""
        return self.type is StateType.RUNNING

    def is_completed(self) -> bool:
        """Whether the type is COMPLETED (``Completed``, ``Cached``, ``Skipped``, ...)."""
        return self.type is StateType.COMPLETED

    def is_failed(self) -> bool:
        """Whether the type is FAILED (``Failed``, ``TimedOut``)."""
        return self.type is StateType.FAILED

    def is_crashed(self) -> bool:
        """Whether the type is CRASHED."""
        return self.type is StateType.CRASHED

    def is_cancelled(self) -> bool:
        """Whether the type is CANCELLED."""
        return self.type is StateType.CANCELLED

    def is_cancelling(self) -> bool:
        """Whether the type is CANCELLING."""
        return self.type is StateType.CANCELLING

    def is_paused(self) -> bool:
        """Whether the type is PAUSED."""
        return self.type is StateType.PAUSED

    def is_final(self) -> bool:
        """Whether the run has ended: COMPLETED, FAILED, CANCELLED or CRASHED."""
        return self.type in TERMINAL_TYPES

    def result(self, raise_on_failure: bool = True, fetch: bool = True) -> Any:
        """The run's result. A failed, crashed or cancelled state raises its exception, or returns it
        with ``raise_on_failure=False``; a state that is not final raises ``UnfinishedRun``.
        ``fetch`` is accepted for Prefect's signature; results are always held in memory."""
        if self.type is StateType.PAUSED:
            raise PausedRun("Run is paused, its result is not available.", state=self)
        if self.type not in TERMINAL_TYPES:
            raise UnfinishedRun(f"Run is in {self.type.value} state, its result is not available.")
        if self.type in FAILURE_TYPES:
            if raise_on_failure:
                raise get_state_exception(self)
            return self.data if self.data is not None else get_state_exception(self)
        return self.data

    def __repr__(self) -> str:
        return f"{self.name}(message={self.message!r}, type={self.type.value}, result={self.data!r})"

    def __str__(self) -> str:
        shown = [repr(self.message)] if self.message else []
        if self.type.value.lower() != self.name.lower():
            shown.append(f"type={self.type.value}")
        return f"{self.name}({', '.join(shown)})"


def get_state_exception(state: State[Any]) -> BaseException:
    """The exception a failed, crashed or cancelled ``state`` stands for: the one it holds, the first of
    its failed inner states, or ``FailedRun`` / ``CrashedRun`` / ``CancelledRun`` with its message."""
    if state.type is StateType.FAILED:
        wrapper: type[Exception] = FailedRun
        default = "Run failed."
    elif state.type is StateType.CRASHED:
        wrapper, default = CrashedRun, "Run crashed."
    elif state.type is StateType.CANCELLED:
        wrapper, default = CancelledRun, "Run cancelled."
    else:
        raise ValueError(f"Expected failed or crashed state got {state!r}.")
    data = state.data
    if isinstance(data, BaseException):
        return data
    if isinstance(data, State):
        return get_state_exception(data) if data.type in FAILURE_TYPES else wrapper(state.message or default)
    if is_state_iterable(data):
        for inner in data:
            if inner.type in FAILURE_TYPES:
                return get_state_exception(inner)
    if isinstance(data, str):
        return wrapper(data)
    return wrapper(state.message or default)


def raise_state_exception(state: State[Any]) -> None:
    """Raise the exception of a failed, crashed or cancelled ``state``; do nothing for any other."""
    if state.type in FAILURE_TYPES:
        raise get_state_exception(state)


def is_state_iterable(value: Any) -> bool:
    """Whether ``value`` is a non-empty list, tuple or set of states only (what a run may return to
    take the aggregate of their states)."""
    return isinstance(value, (list, tuple, set)) and bool(value) and all(isinstance(v, State) for v in value)


# The constructors, one per state Prefect names, each with its own docstring (as Prefect's).
def Completed(cls: type[State[Any]] = State, **kwargs: Any) -> State[Any]:  # noqa: N802 - Prefect's name
    """A COMPLETED state (``name=`` for ``Skipped``-style custom names, ``data=`` for its result)."""
    return cls(type=StateType.COMPLETED, **kwargs)


def Failed(cls: type[State[Any]] = State, **kwargs: Any) -> State[Any]:  # noqa: N802
    """A FAILED state; a run that returns one fails without raising inside its function."""
    return cls(type=StateType.FAILED, **kwargs)


def Crashed(cls: type[State[Any]] = State, **kwargs: Any) -> State[Any]:  # noqa: N802
    """A CRASHED state: the run was interrupted from outside its code (a signal, a worker that died)."""
    return cls(type=StateType.CRASHED, **kwargs)


def Cancelled(cls: type[State[Any]] = State, **kwargs: Any) -> State[Any]:  # noqa: N802
    """A CANCELLED state."""
    return cls(type=StateType.CANCELLED, **kwargs)


def Cancelling(cls: type[State[Any]] = State, **kwargs: Any) -> State[Any]:  # noqa: N802
    """A CANCELLING state."""
    return cls(type=StateType.CANCELLING, **kwargs)


def Pending(cls: type[State[Any]] = State, **kwargs: Any) -> State[Any]:  # noqa: N802
    """A PENDING state (``NotReady`` is ``Pending(name="NotReady")``)."""
    return cls(type=StateType.PENDING, **kwargs)


def Running(cls: type[State[Any]] = State, **kwargs: Any) -> State[Any]:  # noqa: N802
    """A RUNNING state."""
    return cls(type=StateType.RUNNING, **kwargs)


def Retrying(cls: type[State[Any]] = State, **kwargs: Any) -> State[Any]:  # noqa: N802
    """A RUNNING state named ``Retrying``."""
    kwargs.setdefault("name", "Retrying")
    return cls(type=StateType.RUNNING, **kwargs)


def Scheduled(  # noqa: N802
    cls: type[State[Any]] = State,
    scheduled_time: datetime | None = None,
    **kwargs: Any,
) -> State[Any]:
    """A SCHEDULED state (``scheduled_time`` is accepted for Prefect's signature; nothing schedules)."""
    return cls(type=StateType.SCHEDULED, **kwargs)


def AwaitingRetry(  # noqa: N802
    cls: type[State[Any]] = State,
    scheduled_time: datetime | None = None,
    **kwargs: Any,
) -> State[Any]:
    """A SCHEDULED state named ``AwaitingRetry``."""
    kwargs.setdefault("name", "AwaitingRetry")
    return cls(type=StateType.SCHEDULED, **kwargs)


def Paused(  # noqa: N802
    cls: type[State[Any]] = State,
    timeout_seconds: int | None = None,
    pause_expiration_time: datetime | None = None,
    reschedule: bool = False,
    pause_key: str | None = None,
    **kwargs: Any,
) -> State[Any]:
    """A PAUSED state. It can be made and returned; pausing a run and resuming it are not supported."""
    if timeout_seconds is not None and pause_expiration_time is not None:
        raise ValueError("Cannot supply both a pause_expiration_time and timeout_seconds")
    return cls(type=StateType.PAUSED, **kwargs)


def aggregate(states: Iterable[State[Any]]) -> State[Any]:
    """The state of a run that returned these states (Prefect's rule): COMPLETED when all completed,
    else CANCELLED if any was cancelled, PAUSED if any paused, else FAILED; ``data`` holds them."""
    group = list(states)
    counts: dict[StateType, int] = {}
    for state in group:
        counts[state.type] = counts.get(state.type, 0) + 1
    total = len(group)
    if counts.get(StateType.COMPLETED, 0) == total:
        return State(StateType.COMPLETED, message="All states completed.", data=states)
    if counts.get(StateType.CANCELLED):
        message = f"{counts[StateType.CANCELLED]}/{total} states cancelled."
        return State(StateType.CANCELLED, message=message, data=states)
    if counts.get(StateType.PAUSED):
        message = f"{counts[StateType.PAUSED]}/{total} states paused."
        return State(StateType.PAUSED, message=message, data=states)
    failed = counts.get(StateType.FAILED, 0) + counts.get(StateType.CRASHED, 0)
    if failed:
        message = f"{failed}/{total} states failed."
    else:
        unfinished = sum(1 for state in group if state.type not in TERMINAL_TYPES)
        message = f"{unfinished}/{total} states are not final."
    return State(StateType.FAILED, message=message, data=states)


for _name in ("State", "StateDetails", "StateType"):
    globals()[_name].__module__ = "otel_runtime.states"
del _name
