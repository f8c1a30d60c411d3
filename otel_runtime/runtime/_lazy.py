"""Lazy accessor modules: each attribute is computed on access, with an environment override."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from otel_runtime._environ import live_reader
from otel_runtime.environment_variables import OTEL_RUNTIME_OVERRIDE_PREFIX

__all__ = ["cast_override", "lazy_module"]


def _parse_datetime(raw: str) -> datetime:
    parsed = datetime.fromisoformat(raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)


def cast_override(qualified_name: str, raw: str, real: Any) -> Any:
    """The override string ``raw`` cast to the type of the real value ``real``.

    ``bool`` is true only for ``"true"`` (any case); ``int``, ``float``, ``str`` and ISO 8601 datetimes
    (naive means UTC) are parsed; an empty real value gives ``raw`` itself. Lists and dicts cannot be
    overridden: ``ValueError``.
    """
    if real is None:
        return raw
    if isinstance(real, bool):
        return raw.lower() == "true"
    if isinstance(real, (int, float)):
        return type(real)(raw)
    if isinstance(real, datetime):
        return _parse_datetime(raw)
    if isinstance(real, (list, dict, tuple, set, Mapping)):
        raise ValueError(  # noqa: TRY004 - DESIGN: overriding a list or dict is a ValueError
            f"{qualified_name} cannot be mocked: it is a {type(real).__name__}"
        )
    return raw


def lazy_module(
    module_name: str, getters: Mapping[str, Callable[[], Any]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of an accessor module with these attribute getters.

    An attribute is overridden by ``OTEL_RUNTIME__<MODULE>__<ATTR>``; an unknown attribute with an
    override set returns the raw string, any other raises ``AttributeError``.
    """
    short_name = module_name.rsplit(".", 1)[-1]
    prefix = f"{OTEL_RUNTIME_OVERRIDE_PREFIX}{short_name.upper()}__"
    table = {name: (getter, live_reader(prefix + name.upper())) for name, getter in getters.items()}
    names = sorted(getters)

    def __getattr__(name: str) -> Any:  # noqa: N807 - the module-level hook
        entry = table.get(name)
        if entry is None:
            raw_unknown = None if name.startswith("__") else os.environ.get(prefix + name.upper())
            if raw_unknown is None:
                raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
            return raw_unknown
        getter, read_override = entry
        value = getter()
        raw = read_override()
        return value if raw is None else cast_override(f"{short_name}.{name}", raw, value)

    def __dir__() -> list[str]:  # noqa: N807 - the module-level hook
        return list(names)

    return __getattr__, __dir__
