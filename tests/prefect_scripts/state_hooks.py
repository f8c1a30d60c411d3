"""Prefect 3 docs, "State change hooks": hooks as keywords and as decorators, several hooks, kwargs
through ``with_options`` and ``functools.partial``, a failure hook after retries, and a hook that
raises (logged; the run's result is unchanged).
"""

from functools import partial

from otel_runtime import flow, get_run_logger, runtime, task

calls = []


def first_task_hook(tsk, run, state) -> None:
    if not state.name == "Cached":
        print("I run anytime this task executes successfully")
    else:
        print("and can condition my behavior on details of this run")
    calls.append(("first_task_hook", tsk.name, run.name == runtime.task_run.name, state.name))


@task(log_prints=True, on_completion=[first_task_hook])
def nice_task(name: str):
    print(f"Hello {name}!")


# alternatively hooks can be specified via decorator
@nice_task.on_completion
def second_hook(tsk, run, state) -> None:
    print("another hook")
    calls.append(("second_hook", state.type.value))


def my_success_hook(task, task_run, state):
    print("Task run succeeded!")


def my_failure_hook(task, task_run, state):
    print("Task run failed!")


def my_succeed_or_fail_hook(task, task_run, state):
    print("If the task run succeeds or fails, this hook runs.")


@task(
    on_completion=[my_success_hook, my_succeed_or_fail_hook],
    on_failure=[my_failure_hook, my_succeed_or_fail_hook],
)
def maybe(fail: bool):
    if fail:
        raise ValueError("asked to fail")
    return "fine"


data = {}


def my_hook(task, task_run, state, **kwargs):
    data.update(state=state, **kwargs)


@task
def bad_task():
    raise ValueError("meh")


@flow
def ok_with_failure_flow(x: str = "foo", y: int = 42):
    bad_task_with_a_hook = bad_task.with_options(on_failure=[partial(my_hook, **dict(x=x, y=y))])
    # return a tuple of "bar" and the task run state
    # to avoid raising the task's exception
    return "bar", bad_task_with_a_hook(return_state=True)


def notify_slack(flow, flow_run, state):
    get_run_logger().info("notify", flow_run_name=flow_run.name, state=state.name)
    print(f"Your job {flow_run.name} entered {state.name} with message: {state.message}")
    calls.append(("notify_slack", runtime.flow_run.name == flow_run.name, flow_run.run_count))


@flow(on_failure=[notify_slack], retries=1)
def failing_flow():
    raise ValueError("oops!")


def broken_hook(flow, flow_run, state):
    raise RuntimeError("the hook itself is broken")


def running_hook(flow, flow_run, state):
    calls.append(("running_hook", state.type.value))


@flow(on_completion=[broken_hook], on_running=[running_hook])
def survives_its_hook():
    return 7


if __name__ == "__main__":
    nice_task(name="Marvin")
    print("calls:", calls)
    maybe(False)
    try:
        maybe(True)
    except ValueError:
        print("maybe(True) raised ValueError")

    _, task_run_state = ok_with_failure_flow()
    assert data == {"x": "foo", "y": 42, "state": task_run_state}
    print("kwargs hook:", sorted(data), task_run_state.name)

    calls.clear()
    try:
        failing_flow()
    except ValueError as error:
        print("failing_flow raised:", error)
    print("failure hook calls:", calls)

    calls.clear()
    print("survives_its_hook returned:", survives_its_hook())
    print("calls:", calls)
