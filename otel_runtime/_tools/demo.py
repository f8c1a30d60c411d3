"""The flow ``otel-runtime demo`` runs: tasks, a mapped task, a subflow, a retry and a deployment."""

from __future__ import annotations

from otel_runtime import flow, runtime, task
from otel_runtime.logging import get_run_logger

_attempts: dict[str, int] = {}


@task(retries=2, retry_delay_seconds=0.05)
def extract(source: str) -> list[int]:
    """Fails on its first attempt, as a flaky source would, and succeeds on the retry."""
    _attempts[source] = _attempts.get(source, 0) + 1
    if _attempts[source] == 1:
        raise ConnectionError(f"{source} did not answer")
    return [1, 2, 3, 4]


@task
def square(value: int) -> int:
    """A small unit of work, mapped over the extracted values."""
    return value * value


@flow(log_prints=True)
def report(total: int) -> str:
    """A subflow: its own flow run, a child span of the calling flow."""
    print(f"report for deployment {runtime.deployment.name}: total={total}")
    return f"total={total}"


@flow(name="demo-etl", log_prints=True)
def demo_etl(source: str = "warehouse") -> dict[str, str | None]:
    """Extract with a retry, square each value in parallel, report in a subflow; return the run's ids."""
    get_run_logger().info("starting", source=source)
    values = extract(source)
    total = sum(future.result() for future in square.map(values))
    return {
        "report": report(total),
        "flow_run_id": runtime.flow_run.id,
        "flow_run_name": runtime.flow_run.name,
        "trace_id": runtime.flow_run.trace_id,
    }
