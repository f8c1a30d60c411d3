"""Prefect 3 docs, "Write and run workflows" / "Write tasks": run names from templates and from
functions that read ``prefect.runtime`` (or take ``parameters``); a name that cannot be made.
"""

import datetime

from otel_runtime import flow, task
from otel_runtime.runtime import flow_run, task_run


def generate_flow_run_name():
    flow_name = flow_run.flow_name

    parameters = flow_run.parameters
    name = parameters["name"]
    limit = parameters["limit"]

    return f"{flow_name}-with-{name}-and-{limit}"


def generate_task_name():
    flow_name = flow_run.flow_name
    task_name = task_run.task_name

    parameters = task_run.parameters
    name = parameters["name"]
    limit = parameters["limit"]

    return f"{flow_name}-{task_name}-with-{name}-and-{limit}"


def name_from_parameters(parameters):
    return f"sum-of-{parameters['a']}-and-{parameters['b']}"


@task(name="my-example-task", description="An example task for a tutorial.", task_run_name=generate_task_name)
def my_task(name, limit=100):
    return task_run.name


@task(task_run_name=name_from_parameters)
def add(a, b):
    return task_run.name


@task(task_run_name="hello-{name}-on-{date:%A}")
def templated(name: str, date: datetime.datetime):
    return task_run.name


@task(task_run_name="needs-{missing}")
def badly_named():
    return task_run.name


@task(task_run_name=lambda: 42)
def not_a_string():
    return task_run.name


@flow(flow_run_name=generate_flow_run_name)
def my_flow(name: str, limit: int = 100):
    print("flow run name:", flow_run.name)
    print("task run name:", my_task(name="marvin", limit=limit))
    print("parameters name:", add(1, 2))
    print("template:", templated("marvin", datetime.datetime(2024, 1, 1)))
    print("bad template starts generated:", badly_named().startswith("badly_named-"))
    print("not a string starts generated:", not_a_string().startswith("not_a_string-"))


if __name__ == "__main__":
    my_flow(name="marvin")
