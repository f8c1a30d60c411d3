"""Run states, as Prefect's ``prefect.states``: ``State``, ``StateType`` and the constructors.

::

    from otel_runtime import flow, task
    from otel_runtime.states import Completed, Failed

    @task
    def toggle(fail: bool):
        return Failed(message="I was instructed to fail.") if fail else Completed(message="fine")

    @flow
    def example():
        state = toggle(True, return_state=True)   # the final state instead of a value or a raise
        assert state.is_failed() and state.name == "Failed"

Every run span carries its final state as ``flow_run.state.type`` / ``flow_run.state.name`` (or the
``task_run.`` ones): ``COMPLETED`` / ``Completed``, ``FAILED`` / ``Failed``, ``PENDING`` / ``NotReady``...
"""

from otel_runtime._engine.states import (
    AwaitingRetry,
    Cancelled,
    Cancelling,
    Completed,
    Crashed,
    Failed,
    Paused,
    Pending,
    Retrying,
    Running,
    Scheduled,
    State,
    StateDetails,
    StateType,
    get_state_exception,
    is_state_iterable,
    raise_state_exception,
)

# The names of ``_engine.states.__all__``, listed again so the public surface reads at a glance.
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
