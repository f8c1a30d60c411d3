"""Lazy accessor modules: each attribute is computed on access, with an environment override."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from types import ModuleType
from typing import Any

from otel_runtime._base.environ import live_reader, parse_bool, raw_environ
from otel_runtime._base.guard import warn_once
from otel_runtime.environment_variables import OTEL_RUNTIME_OVERRIDE_PREFIX, PREFECT_RUNTIME_OVERRIDE_PREFIX

__all__ = ["cast_override", "lazy_module"]


def _parse_datetime(raw: str) -> datetime:
    parsed = datetime.fromisoformat(raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)


def cast_override(qualified_name: str, raw: str, real: Any) -> Any:
    """The override string ``raw`` cast to the type of the real value ``real``.

    ``bool`` is true only for ``"true"`` (any case); ``int``, ``float``, ``str`` and ISO 8601 datetimes
    (naive means UTC) are parsed; an empty real value gives ``raw`` itself. Lists and dicts cannot be
    overridden: ``ValueError``. A value that does not parse (``run_count=abc``) is dropped, with one
    warning per attribute: the accessor answers with the real value and never raises for it.
    """
    if real is None:
        return raw
    if isinstance(real, (list, dict, tuple, set, Mapping)):
        raise ValueError(  # noqa: TRY004 - DESIGN: overriding a list or dict is a ValueError
            f"{qualified_name} cannot be mocked: it is a {type(real).__name__}"
        )
    try:
        if isinstance(real, bool):
            return parse_bool(raw, default=False)
        if isinstance(real, (int, float)):
            return type(real)(raw)
        if isinstance(real, datetime):
            return _parse_datetime(raw)
    except (ValueError, OverflowError) as error:
        warn_once(
            f"runtime-override:{qualified_name}",
            f"otel_runtime ignores the override of runtime.{qualified_name}: {raw!r} is not a "
            f"{type(real).__name__} ({error})",
        )
        return real
    return raw


class _Computed:
    """One accessor attribute, computed on each read: the getter's value, or its override.

    A non-data descriptor on the accessor module's class. Python finds it on the class without first
    failing a lookup in the module's namespace, which a module ``__getattr__`` costs (an
    ``AttributeError`` raised and caught inside every read, about 0.4 µs on Python 3.11). Being a
    non-data descriptor, a value assigned to the module attribute (a test's ``monkeypatch.setattr``)
    still shadows it, as it shadowed ``__getattr__``.
    """

    __slots__ = ("alias", "environ", "getter", "key", "qualified_name", "read_override")

    def __init__(self, getter: Callable[[], Any], qualified_name: str, names: tuple[str, str]) -> None:
        self.getter = getter
        self.qualified_name = qualified_name
        self.read_override = live_reader(*names)
        # The two override variables, checked inline on each read (calling read_override costs more);
        # without a mapping behind os.environ, a key that is always "set": read_override on each read.
        no_mapping: tuple[dict[object, object], tuple[object, ...]] = ({None: None}, (None, None))
        self.environ, (self.key, self.alias) = raw_environ(*names) or no_mapping

    def read(self) -> Any:
        """The attribute's value now."""
        value = self.getter()
        raw = self.read_override()
        return value if raw is None else cast_override(self.qualified_name, raw, value)

    def __get__(self, module: object, owner: type | None = None) -> Any:
        if module is None:
            return self
        value = self.getter()  # read(), inlined: this is the hot path
        environ = self.environ
        if self.key not in environ and self.alias not in environ:
            return value
        raw = self.read_override()
        return value if raw is None else cast_override(self.qualified_name, raw, value)


def _override_names(prefixes: tuple[str, ...], name: str) -> tuple[str, str]:
    """The override variables of attribute ``name``: ours, then Prefect's spelling."""
    first, alias = (prefix + name.upper() for prefix in prefixes)
    return first, alias


def lazy_module(
    module_name: str, getters: Mapping[str, Callable[[], Any]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of an accessor module with these attribute getters.

    An attribute is overridden by ``OTEL_RUNTIME__<MODULE>__<ATTR>``, or by Prefect's spelling
    ``PREFECT__RUNTIME__<MODULE>__<ATTR>`` when ours is unset; an unknown attribute with an override set
    returns the raw string, any other raises ``AttributeError``. Called while the module
    ``module_name`` is being imported, it also gives that module a class on which each attribute is
    a :class:`_Computed` descriptor: the fast path for every known attribute.
    """
    short_name = module_name.rsplit(".", 1)[-1]
    prefixes = tuple(
        f"{prefix}{short_name.upper()}__"
        for prefix in (OTEL_RUNTIME_OVERRIDE_PREFIX, PREFECT_RUNTIME_OVERRIDE_PREFIX)
    )
    table = {
        name: _Computed(getter, f"{short_name}.{name}", _override_names(prefixes, name))
        for name, getter in getters.items()
    }
    names = sorted(getters)
    module = sys.modules.get(module_name)
    if module is not None and type(module) is ModuleType:
        module.__class__ = type(f"{short_name}_accessors", (ModuleType,), {"__slots__": (), **table})

    def __getattr__(name: str) -> Any:  # noqa: N807 - the module-level hook
        entry = table.get(name)
        if entry is None:
            raw_unknown = None if name.startswith("__") else live_reader(*_override_names(prefixes, name))()
            if raw_unknown is None:
                raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
            return raw_unknown
        return entry.read()

    def __dir__() -> list[str]:  # noqa: N807 - the module-level hook
        return list(names)

    return __getattr__, __dir__
