"""``OTEL_RUNTIME_SEMCONV=cicd``: run spans also carry the CI/CD semantic conventions.

A span processor, added to a tracer provider only once the opt-in is first chosen (so without it a run
pays nothing), copies a run span's start attributes to the CI/CD names as the span starts:

| run span | CI/CD attribute | from |
|---|---|---|
| flow | ``cicd.pipeline.name`` | ``flow.name`` |
| flow | ``cicd.pipeline.run.id`` | ``flow_run.id`` |
| flow | ``cicd.pipeline.run.url.full`` | ``OTEL_RUNTIME_UI_URL`` filled with the trace id, when set |
| flow | ``cicd.pipeline.run.state`` | ``executing`` (the span covers the run's execution) |
| flow | ``cicd.pipeline.result`` | the final state (``_core.cicd``) |
| task | ``cicd.pipeline.task.name`` | ``task.name`` |
| task | ``cicd.pipeline.task.run.id`` | ``task_run.id`` |
| task | ``cicd.pipeline.task.run.url.full`` | as for flows |
| task | ``cicd.pipeline.task.run.result`` | the final state |

The results start as ``success``, like the state attributes start as ``COMPLETED``; the engine writes
another one as a run ends in another state (a span's attributes are frozen when ``on_end`` sees it).
"""

from __future__ import annotations

import weakref
from typing import Final

from opentelemetry.context import Context
from opentelemetry.sdk.trace import Span, SpanProcessor, TracerProvider

from otel_runtime._base import keys as _keys
from otel_runtime._base.environ import read_env
from otel_runtime._base.settings import settings
from otel_runtime._core import cicd
from otel_runtime.environment_variables import OTEL_RUNTIME_SEMCONV, OTEL_RUNTIME_UI_URL

__all__ = ["CicdSpanProcessor", "set_up_cicd"]

_FLOW: Final = (
    (_keys.FLOW_NAME, cicd.CICD_PIPELINE_NAME),
    (_keys.FLOW_RUN_ID, cicd.CICD_PIPELINE_RUN_ID),
)
_TASK: Final = (
    (_keys.TASK_NAME, cicd.CICD_PIPELINE_TASK_NAME),
    (_keys.TASK_RUN_ID, cicd.CICD_PIPELINE_TASK_RUN_ID),
)


class CicdSpanProcessor(SpanProcessor):
    """Adds the CI/CD attributes to run spans as they start, while ``settings.semconv_cicd`` holds."""

    def __init__(self, ui_url: str | None) -> None:
        self.ui_url = ui_url

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Copy the run's names and ids to the CI/CD names (other spans are left alone)."""
        attributes = span.attributes
        if not settings.semconv_cicd or attributes is None:
            return
        run_type = attributes.get(_keys.RUN_TYPE)
        if run_type == _keys.RUN_TYPE_FLOW:
            pairs, extra = (
                _FLOW,
                {cicd.CICD_PIPELINE_RUN_STATE: cicd.EXECUTING, cicd.CICD_PIPELINE_RESULT: cicd.SUCCESS},
            )
            url_key = cicd.CICD_PIPELINE_RUN_URL_FULL
        elif run_type == _keys.RUN_TYPE_TASK:
            pairs, extra = _TASK, {cicd.CICD_PIPELINE_TASK_RUN_RESULT: cicd.SUCCESS}
            url_key = cicd.CICD_PIPELINE_TASK_RUN_URL_FULL
        else:
            return
        added = {new: attributes[old] for old, new in pairs if old in attributes}
        if self.ui_url is not None:
            trace_id = format(span.get_span_context().trace_id, "032x")
            added[url_key] = self.ui_url.replace("{trace_id}", trace_id)
        span.set_attributes({**added, **extra})


_processors: weakref.WeakKeyDictionary[TracerProvider, CicdSpanProcessor] = weakref.WeakKeyDictionary()


def set_up_cicd(provider: TracerProvider) -> bool:
    """Follow ``OTEL_RUNTIME_SEMCONV`` (a comma list; ``cicd`` turns the CI/CD attributes on); return
    whether they are on. The processor is added to ``provider`` the first time they are."""
    chosen = {name.strip().lower() for name in (read_env(OTEL_RUNTIME_SEMCONV) or "").split(",")}
    settings.semconv_cicd = "cicd" in chosen
    ui_url = read_env(OTEL_RUNTIME_UI_URL)
    processor = _processors.get(provider)
    if processor is not None:
        processor.ui_url = ui_url
    elif settings.semconv_cicd:
        processor = _processors[provider] = CicdSpanProcessor(ui_url)
        provider.add_span_processor(processor)
    return settings.semconv_cicd
