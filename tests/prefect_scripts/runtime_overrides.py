"""Prefect 3 docs, "Runtime context": mock values through an environment variable,
``PREFECT__RUNTIME__{SUBMODULE}__{KEY_NAME}=value``, cast to the type of the real attribute (bool,
int, float, str, datetime); an unknown key answers with the raw string.
"""

from otel_runtime import flow
from otel_runtime.runtime import deployment, flow_run, task_run

print(f"fake_key: {task_run.fake_key}")


@flow
def my_flow():
    start = flow_run.scheduled_start_time
    return flow_run.name, flow_run.run_count, start.year, start.tzinfo is not None, deployment.name


print(f"my_flow: {my_flow()}")
