"""Prefect 3 docs, "Emit custom logs": ``get_run_logger()`` in a flow and in a task, with the standard
``logging`` methods; DEBUG lines are dropped at the default level. Then what a logging user relies on:
``%``-style arguments, ``extra=``, ``logger.exception``, and the run's fields in a ``logging`` format.

``python run_logger.py plain`` sets up no logging (the run logger prints as Prefect's does);
``basic`` calls ``logging.basicConfig`` with a format using Prefect's record attributes; ``export``
also calls ``otel_runtime.configure()`` (the lines go to the local telemetry file as well).
"""

import logging
import sys

from otel_runtime import flow, task
from otel_runtime.logging import get_run_logger

mode = sys.argv[1]
if mode == "basic":
    logging.basicConfig(
        format="%(levelname)s|%(flow_name)s|%(flow_run_name)s|%(task_name)s|%(task_run_name)s|%(message)s"
    )
if mode == "export":
    import otel_runtime

    telemetry = otel_runtime.configure()


@task(name="log-example-task")
def logger_task():
    # this logger instance will emit logs
    # associated with both the flow run *and* the individual task run
    logger = get_run_logger()
    logger.info("INFO level log message from a task.")
    logger.debug("DEBUG level log message from a task.")


@flow(name="log-example-flow")
def logger_flow():
    # this logger instance will emit logs
    # associated with the flow run only
    logger = get_run_logger()
    logger.info("INFO level log message.")
    logger.debug("DEBUG level log message.")
    logger.error("ERROR level log message.")
    logger.critical("CRITICAL level log message.")

    logger_task()
    logger.info("fetched %d rows from %s", 42, "events", extra={"table": "events"})
    try:
        {}["missing"]
    except KeyError:
        logger.exception("lookup failed")


logger_flow()
if mode == "export":
    telemetry.shutdown()
