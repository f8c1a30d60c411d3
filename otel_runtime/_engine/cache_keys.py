"""Cache keys: stable hashes of task inputs, Prefect's ``task_input_hash``, and the digest on spans.

A key must be the same for equal inputs in every process, so objects are hashed by their content: a
canonical JSON form (keys sorted, sets sorted, bytes by their digest, dataclasses and pydantic models
as fields) and, for what JSON cannot say, the object's pickle. Prefect does the same (JSON, then
cloudpickle); an object neither can encode (a lock, an open file, a generator) has no key.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import pickle
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import PurePath
from typing import TYPE_CHECKING, Any
from uuid import UUID

if TYPE_CHECKING:
    from otel_runtime._engine.run_context import TaskRunContext

__all__ = ["HashError", "cache_key_digest", "hash_objects", "task_input_hash", "task_key"]


class HashError(ValueError):
    """The objects could not be hashed: neither JSON nor pickle can encode one of them."""


def _canonical(value: Any) -> Any:  # noqa: PLR0911 - one return per kind of value
    """A JSON-encodable stand-in for ``value`` (``json.dumps``'s ``default`` hook)."""
    if isinstance(value, (set, frozenset)):
        items = [json.dumps(item, sort_keys=True, default=_canonical) for item in value]
        return {"__set__": sorted(items)}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"__bytes__": hashlib.sha256(value).hexdigest()}
    if isinstance(value, (datetime, date, time)):
        return {"__time__": value.isoformat()}
    if isinstance(value, (UUID, Decimal, PurePath, timedelta, complex)):
        return {f"__{type(value).__name__}__": str(value)}
    if isinstance(value, enum.Enum):
        return {"__enum__": f"{type(value).__module__}.{type(value).__qualname__}.{value.name}"}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}
        return {"__dataclass__": _qualified(type(value)), "fields": fields}
    dump = getattr(value, "model_dump", None)  # a pydantic model, without importing pydantic
    if callable(dump) and not isinstance(value, type):
        return {"__model__": _qualified(type(value)), "fields": dump(mode="python")}
    if isinstance(value, Mapping):
        return {"__mapping__": _qualified(type(value)), "items": dict(value)}
    try:
        return {"__pickle__": hashlib.sha256(pickle.dumps(value, protocol=4)).hexdigest()}
    except Exception as exc:
        raise HashError(f"cannot hash {type(value).__qualname__} objects: {exc}") from exc


def _qualified(kind: type) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


def hash_objects(*objects: Any, raise_on_failure: bool = False) -> str | None:
    """A hex digest of ``objects`` that is the same for equal content in every process, or ``None``
    when one cannot be hashed (``HashError`` with ``raise_on_failure=True``), as Prefect's
    ``hash_objects`` does."""
    try:
        try:
            data = json.dumps(objects, sort_keys=True, default=_canonical).encode("utf-8", "surrogatepass")
        except (TypeError, ValueError, RecursionError) as exc:
            if isinstance(exc, HashError):
                raise
            # keys JSON cannot sort (tuples, mixed types) or a cycle: the pickle of the whole
            data = b"pickle:" + pickle.dumps(objects, protocol=4)
    except HashError:
        if raise_on_failure:
            raise
        return None
    except Exception as exc:
        if raise_on_failure:
            raise HashError(f"cannot hash the objects: {exc}") from exc
        return None
    return hashlib.sha256(data).hexdigest()


def task_key(task: Any) -> str:
    """A task's identity across processes: the qualified name of its function."""
    fn = getattr(task, "fn", task)
    return f"{getattr(fn, '__module__', None)}.{getattr(fn, '__qualname__', getattr(task, 'name', ''))}"


def task_input_hash(context: TaskRunContext, arguments: dict[str, Any]) -> str | None:
    """Prefect's ``task_input_hash``: a cache key from the task's identity, its function's bytecode and
    all its arguments; ``None`` (no caching) when the arguments cannot be hashed."""
    code = getattr(context.task.fn, "__code__", None)
    return hash_objects(task_key(context.task), code.co_code.hex() if code is not None else "", arguments)


def cache_key_digest(key: str) -> str:
    """What a span shows of a cache key: 32 hex digits of its SHA-256, never the key (nor the inputs a
    ``cache_key_fn`` may have spelled in it)."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
