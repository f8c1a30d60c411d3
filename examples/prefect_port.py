"""The Prefect runtime example, ported by changing only the imports.

Run it: ``python examples/prefect_port.py``. It prints the flow run's name, its deployment (``None``
here, since no deployment is active), the task run's name and the flow run's parameters.
"""

from otel_runtime import flow, runtime, task


@flow(log_prints=True)
def my_flow(x: int) -> None:
    print("My name is", runtime.flow_run.name)
    print("I belong to deployment", runtime.deployment.name)
    my_task(2)


@task
def my_task(y: int) -> None:
    print("My name is", runtime.task_run.name)
    print("Flow run parameters:", runtime.flow_run.parameters)


if __name__ == "__main__":
    my_flow(1)
