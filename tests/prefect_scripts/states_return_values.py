"""Prefect 3 docs, "Manage states": task return values, return_state, and the final state of a flow.

Ported by changing the imports (``prefect`` -> ``otel_runtime``); the asserts are the docs' own, plus
what the docs say in prose (the flow fails because it returns a Failed state).
"""

from otel_runtime import flow, task
from otel_runtime.states import Completed, Failed


@task
def toggle_task(fail: bool):
    if fail:
        return Failed(message="I was instructed to fail.")
    else:
        return Completed(message="I was instructed to succeed.")


@flow
def example():
    # this run will be set to a `Failed` state
    state_one = toggle_task(fail=True)

    # this run will be set to a `Completed` state
    state_two = toggle_task(fail=False)

    # similarly, the flow run will fail because we return a `Failed` state
    return state_one, state_two


@task
def add_one(x):
    return x + 1


@flow
def my_flow():
    result = add_one(1)
    assert isinstance(result, int) and result == 2

    state = add_one(1, return_state=True)
    assert state.is_completed() is True
    assert state.result() == 2


@flow
def my_flow_with_a_hidden_failure():
    # avoided the raising of an exception with return_state flag
    state = add_one("1", return_state=True)
    assert state.is_failed()

    # the flow function returns succesfully!
    return


@task
def skip_me():
    return Completed(name="Skipped", message="nothing to do")


@flow
def skipping():
    return skip_me(return_state=True)


if __name__ == "__main__":
    final = example(return_state=True)
    print("example:", final.type.value, final.name, final.message)
    one, two = final.result(raise_on_failure=False)
    print("state_one:", one.type.value, one.name, one.message)
    print("state_two:", two.type.value, two.name, two.message)
    returned = example()
    print("example() returned:", [str(state) for state in returned])

    my_flow()
    print("my_flow: ok")

    hidden = my_flow_with_a_hidden_failure(return_state=True)
    print("hidden failure flow:", hidden.type.value)

    skipped = skipping(return_state=True)
    print("skipping flow:", skipped.type.value, skipped.name)
    skipped = skip_me(return_state=True)
    print("skip_me:", skipped.type.value, skipped.name, skipped.message)
    inner = add_one("x", return_state=True)
    try:
        inner.result()
    except TypeError as error:
        print("result() raised:", type(error).__name__)
    print("message:", inner.message)
