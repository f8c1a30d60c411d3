"""Prefect 3 docs and tests: ``wait_for`` state dependencies, a downstream task of a failed upstream
(``NotReady``, not run), ``allow_failure`` and ``quote``.
"""

from otel_runtime import allow_failure, flow, quote, task
from otel_runtime.exceptions import UnfinishedRun

ran = []


@task
def task_a():
    ran.append("a")


@task
def task_b():
    ran.append("b")


@task
def task_c():
    ran.append("c")


@task
def task_d():
    ran.append("d")


@flow
def my_flow():
    a = task_a.submit()
    b = task_b.submit()
    # Wait for task_a and task_b to complete
    c = task_c.submit(wait_for=[a, b])
    # task_d will wait for task_c to complete
    # Note: If waiting for one task it must still be in a list.
    d = task_d(wait_for=[c])
    return d


@task
def fails():
    raise RuntimeError("This task fails!")


@task
def fails_and_passes_data():
    raise ValueError("This task fails and passes data downstream!")


@task
def task_c_of(b):
    # This task attempts to use the upstream data and should fail too
    ran.append("c_of")
    return b + "c"


@flow
def test_flow():
    a = fails.submit()
    b = fails_and_passes_data.submit()
    c = task_c_of.submit(b)
    d = task_c_of.submit(c)
    return a, b, c, d


@task
def cleanup(upstream_result):
    return f"cleaned up after {type(upstream_result).__name__}"


@flow
def allowed():
    upstream = fails_and_passes_data.submit()
    blocked = task_d.submit(wait_for=[upstream])
    tolerant = task_d.submit(wait_for=[allow_failure(upstream)])
    blocked.wait()  # a future's state is Pending until its run ends: read them once they have
    tolerant.wait()
    return cleanup(allow_failure(upstream)), blocked.state.name, tolerant.state.name


@task
def count(rows):
    return len(rows)


@flow
def quoted():
    return count(quote(list(range(100_000))))


if __name__ == "__main__":
    my_flow()
    print("ran:", ran)

    ran.clear()
    state = test_flow(return_state=True)
    print("test_flow:", state.type.value, state.message)
    a, b, c, d = state.result(raise_on_failure=False)
    try:
        a.result()
    except RuntimeError as error:
        print("a.result() raised:", type(error).__name__, error)
    try:
        b.result()
    except ValueError as error:
        print("b.result() raised:", type(error).__name__, error)
    for name, downstream in (("c", c), ("d", d)):
        print(f"{name}:", downstream.is_pending(), downstream.name)
    b_id, c_id = b.state_details.task_run_id, c.state_details.task_run_id
    print("c message ok:", f"Upstream task run '{b_id}' did not reach a 'COMPLETED' state" in c.message)
    print("d message ok:", f"Upstream task run '{c_id}' did not reach a 'COMPLETED' state" in d.message)
    try:
        c.result()
    except UnfinishedRun as error:
        print("c.result() raised UnfinishedRun:", error)
    print("downstream ran:", ran)

    print("allowed:", allowed())
    print("quoted:", quoted())
