"""A flow run as a run of the deployment ``nightly-etl``, with submitted tasks and a subflow.

Run it: ``python examples/nightly_deployment.py``. Telemetry goes to ``.otel_runtime/telemetry.jsonl``
(or to ``OTEL_EXPORTER_OTLP_ENDPOINT`` when set); ``otel-runtime traces`` draws it.
"""

from otel_runtime import configure, deployment, flow, runtime, task


@task(retries=1)
def load(day: str) -> int:
    return len(day)


@flow
def summarize(total: int) -> str:
    return f"{runtime.deployment.name}: {total} rows (subflow of {runtime.flow_run.parent_flow_run_id})"


@flow
def nightly(days: list[str]) -> str:
    total = sum(future.result() for future in load.map(days))
    return summarize(total)


if __name__ == "__main__":
    telemetry = configure(service_name="nightly-example")
    with deployment("nightly-etl", version="1.0"):
        print(nightly(["mon", "tue", "wed"]))
    telemetry.force_flush()
