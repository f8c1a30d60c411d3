"""``otel_runtime.states``: the State object and its constructors, as Prefect's."""

from __future__ import annotations

import pickle

import pytest

from otel_runtime.exceptions import CrashedRun, FailedRun, PausedRun, UnfinishedRun
from otel_runtime.states import (
    Cancelled,
    Completed,
    Crashed,
    Failed,
    Paused,
    Pending,
    Running,
    State,
    StateType,
    raise_state_exception,
)


def test_constructors_give_the_type_and_its_default_name() -> None:
    """Each constructor sets its type; the name defaults to the capitalised type."""
    made = [Completed(), Failed(), Cancelled(), Crashed(), Pending(), Running(), Paused()]
    assert [(state.type.value, state.name) for state in made] == [
        ("COMPLETED", "Completed"),
        ("FAILED", "Failed"),
        ("CANCELLED", "Cancelled"),
        ("CRASHED", "Crashed"),
        ("PENDING", "Pending"),
        ("RUNNING", "Running"),
        ("PAUSED", "Paused"),
    ]
    assert [state.is_final() for state in made] == [True, True, True, True, False, False, False]


def test_custom_names_and_predicates() -> None:
    """``Completed(name="Skipped")`` keeps its type; the ``is_*`` predicates follow the type."""
    skipped = Completed(name="Skipped", message="nothing to do")
    assert (skipped.type, skipped.name, skipped.is_completed(), skipped.is_failed()) == (
        StateType.COMPLETED,
        "Skipped",
        True,
        False,
    )
    assert str(skipped) == "Skipped('nothing to do', type=COMPLETED)"
    assert str(Completed()) == "Completed()"
    assert repr(Failed(message="no")) == "Failed(message='no', type=FAILED, result=None)"


def test_result_gives_the_data_or_raises_the_failure() -> None:
    """``result()`` returns the data; a failed state raises its exception (or ``FailedRun`` with its
    message), or returns it with ``raise_on_failure=False``; an unfinished one raises."""
    assert Completed(data=3).result() == 3
    error = ValueError("inner")
    with pytest.raises(ValueError, match="inner"):
        Failed(data=error).result()
    assert Failed(data=error).result(raise_on_failure=False) is error
    with pytest.raises(FailedRun, match=r"I was instructed to fail\."):
        Failed(message="I was instructed to fail.").result()
    assert isinstance(Failed(message="x").result(raise_on_failure=False), FailedRun)
    with pytest.raises(CrashedRun):
        Crashed().result()
    with pytest.raises(UnfinishedRun, match=r"Run is in PENDING state, its result is not available\."):
        Pending(name="NotReady").result()
    with pytest.raises(PausedRun):
        Paused().result()


def test_raise_state_exception_raises_only_for_failures() -> None:
    """``raise_state_exception`` is silent for a completed state and raises for a failed one."""
    raise_state_exception(Completed())
    with pytest.raises(FailedRun):
        raise_state_exception(Failed())


def test_states_pickle_with_their_data() -> None:
    """A state crosses to another process intact (results of worker runs travel as states)."""
    state = Completed(name="Skipped", message="m", data={"k": 1})
    copy = pickle.loads(pickle.dumps(state))
    assert (copy.type, copy.name, copy.message, copy.data) == (state.type, "Skipped", "m", {"k": 1})
    assert isinstance(copy, State)
