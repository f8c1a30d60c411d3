"""Cache policies as Prefect 3 defines them (re-exported by ``otel_runtime.cache_policies``).

A policy is a recipe for a task run's cache key: ``INPUTS`` (the task's arguments), ``TASK_SOURCE``
(its function's source), ``FLOW_PARAMETERS`` (the flow run's parameters), ``RUN_ID`` (the flow run id,
or the task run id outside a flow), ``NONE`` / ``NO_CACHE`` (no key: no caching), and ``DEFAULT``
(``INPUTS + TASK_SOURCE + RUN_ID``). ``+`` combines policies (the key hashes each part's key);
``- "name"`` leaves an argument out of ``INPUTS``::

    from otel_runtime.cache_policies import INPUTS, TASK_SOURCE

    @task(cache_policy=TASK_SOURCE + INPUTS - "debug")
    def load(path: str, debug: bool = False) -> bytes: ...

``configure(key_storage=...)`` picks the directory of the file store for the policy's records (a
``str`` or ``Path``; Prefect's storage blocks need its server). ``isolation_level="SERIALIZABLE"``
runs one run of a key at a time, across threads and processes (a lock file per key in that
directory); the default, Prefect's ``READ_COMMITTED``, lets concurrent runs of a key all run, the
store staying consistent either way. ``lock_manager`` is accepted and kept, not used.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from otel_runtime._engine.cache_keys import HashError, hash_objects

if TYPE_CHECKING:
    from otel_runtime._engine.run_context import TaskRunContext

__all__ = [
    "DEFAULT",
    "FLOW_PARAMETERS",
    "INPUTS",
    "NONE",
    "NO_CACHE",
    "RUN_ID",
    "TASK_SOURCE",
    "CacheKeyFn",
    "CacheKeyFnPolicy",
    "CachePolicy",
    "CompoundCachePolicy",
    "FlowParameters",
    "Inputs",
    "RunId",
    "TaskSource",
]

CacheKeyFn = Callable[["TaskRunContext", dict[str, Any]], str | None]
"""``cache_key_fn(context, parameters) -> str | None``: the task run context and the bound arguments."""

_ISOLATION_LEVELS = ("READ_COMMITTED", "SERIALIZABLE")


def _storage(key_storage: Any) -> str | Path | None:
    if key_storage is None or isinstance(key_storage, (str, Path)):
        return key_storage
    raise TypeError(
        f"key_storage must be a directory (str or Path), got {type(key_storage).__name__}: storage blocks "
        "live in the Prefect server"
    )


def _isolation(level: Any) -> str | None:
    value = getattr(level, "value", level)  # Prefect's IsolationLevel enum, or its string
    if value is None or value in _ISOLATION_LEVELS:
        return None if value is None else str(value)
    raise ValueError(f"isolation_level must be one of {_ISOLATION_LEVELS}, got {level!r}")


@dataclass
class CachePolicy:
    """Base class of all cache policies."""

    key_storage: str | Path | None = None
    isolation_level: str | None = None
    lock_manager: Any = None

    @classmethod
    def from_cache_key_fn(cls, cache_key_fn: CacheKeyFn) -> CacheKeyFnPolicy:
        """The policy whose key is ``cache_key_fn(context, parameters)``."""
        return CacheKeyFnPolicy(cache_key_fn=cache_key_fn)

    def configure(
        self,
        key_storage: str | Path | None = None,
        lock_manager: Any = None,
        isolation_level: Any = None,
    ) -> CachePolicy:
        """A copy of this policy with the given key storage (a directory), lock manager and isolation
        level; those not given keep their value. The lock manager is recorded, not used."""
        new = copy.copy(self)
        if key_storage is not None:
            new.key_storage = _storage(key_storage)
        if lock_manager is not None:
            new.lock_manager = lock_manager
        if isolation_level is not None:
            new.isolation_level = _isolation(isolation_level)
        return new

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        """The cache key of a task run, or ``None`` for no caching."""
        raise NotImplementedError

    def __sub__(self, other: str) -> CachePolicy:
        if not isinstance(other, str):
            raise TypeError("Can only subtract strings from key policies.")
        return self  # only policies that use the inputs leave one out

    def __add__(self, other: CachePolicy) -> CachePolicy:
        if isinstance(other, _None):
            return self
        return CompoundCachePolicy(policies=[self, other], **_merged_settings(self, other))


def _merged_settings(one: CachePolicy, other: CachePolicy) -> dict[str, Any]:
    """The storage, isolation and lock manager of ``one + other`` (they must not disagree)."""
    merged: dict[str, Any] = {}
    for name, what in (
        ("key_storage", "storage locations"),
        ("isolation_level", "isolation levels"),
        ("lock_manager", "lock implementations"),
    ):
        mine, theirs = getattr(one, name), getattr(other, name)
        if mine is not None and theirs is not None and mine != theirs:
            raise ValueError(f"Cannot add CachePolicies with different {what}.")
        merged[name] = mine if mine is not None else theirs
    return merged


@dataclass
class CacheKeyFnPolicy(CachePolicy):
    """The key is what ``cache_key_fn(task_run_context, parameters)`` returns (``None``: no caching)."""

    cache_key_fn: CacheKeyFn | None = None

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        if self.cache_key_fn is None:
            return None
        return self.cache_key_fn(task_ctx, inputs)


@dataclass
class CompoundCachePolicy(CachePolicy):
    """Two or more policies: the key hashes the keys of those that gave one (``None`` if none did)."""

    policies: list[CachePolicy] = field(default_factory=list)

    def __post_init__(self) -> None:
        flat = [
            policy
            for part in self.policies
            for policy in (part.policies if isinstance(part, CompoundCachePolicy) else [part])
        ]
        inputs = [policy for policy in flat if isinstance(policy, Inputs)]
        self.policies = [policy for policy in flat if not isinstance(policy, Inputs)]
        if inputs:  # one Inputs part, leaving out everything any of them left out
            self.policies.append(Inputs(exclude=sorted({name for part in inputs for name in part.exclude})))

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        keys = [
            key
            for policy in self.policies
            if (key := policy.compute_key(task_ctx, inputs, flow_parameters, **kwargs)) is not None
        ]
        return hash_objects(*keys, raise_on_failure=True) if keys else None

    def __add__(self, other: CachePolicy) -> CachePolicy:
        if isinstance(other, _None):
            return self
        extra = other.policies if isinstance(other, CompoundCachePolicy) else [other]
        return CompoundCachePolicy(policies=[*self.policies, *extra], **_merged_settings(self, other))

    def __sub__(self, other: str) -> CachePolicy:
        if not isinstance(other, str):
            raise TypeError("Can only subtract strings from key policies.")
        if not any(isinstance(policy, Inputs) for policy in self.policies):
            return self
        settings = _merged_settings(self, CachePolicy())
        return CompoundCachePolicy(policies=[*self.policies, Inputs(exclude=[other])], **settings)


@dataclass
class _None(CachePolicy):
    """No key: the task is never cached (``NONE``, ``NO_CACHE``)."""

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        return None

    def __add__(self, other: CachePolicy) -> CachePolicy:
        return other


_source_hashes: weakref.WeakKeyDictionary[Any, str | None] = weakref.WeakKeyDictionary()


def _source_hash(fn: Any) -> str | None:
    """The hash of ``fn``'s source lines, computed once per function; ``None`` without source."""
    try:
        return _source_hashes[fn]
    except (KeyError, TypeError):
        pass
    try:
        lines: str | None = inspect.getsource(fn)
    except (OSError, TypeError):
        lines = None
    digest = hash_objects(lines) if lines is not None else None
    with contextlib.suppress(TypeError):  # not weak-referenceable: computed again next time
        _source_hashes[fn] = digest
    return digest


@dataclass
class TaskSource(CachePolicy):
    """The key is a hash of the task function's source code (not that of the tasks it calls)."""

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        if not task_ctx:
            return None
        return _source_hash(task_ctx.task.fn)


@dataclass
class FlowParameters(CachePolicy):
    """The key is a hash of the flow run's parameters (``None`` when it has none)."""

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        if not flow_parameters:
            return None
        return hash_objects(dict(flow_parameters), raise_on_failure=True)


@dataclass
class RunId(CachePolicy):
    """The key is the flow run's id, or the task run's id for a task run outside any flow."""

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        if not task_ctx:
            return None
        run = task_ctx.task_run
        return str(run.flow_run_id if run.flow_run_id is not None else run.id)


@dataclass
class Inputs(CachePolicy):
    """The key is a hash of the task's arguments, leaving out those named in ``exclude``."""

    exclude: list[str] = field(default_factory=list)

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        if not inputs:
            return None
        kept = {name: value for name, value in inputs.items() if name not in self.exclude}
        try:
            return hash_objects(kept, raise_on_failure=True)
        except HashError as exc:
            raise ValueError(
                f"{exc}\n\nThis often occurs when task inputs contain objects that cannot be cached, such "
                "as locks, file handles or other system resources. Leave them out with "
                '`cache_policy=INPUTS - "name"`, define a `cache_key_fn`, or pass `cache_policy=NO_CACHE`.'
            ) from exc

    def __sub__(self, other: str) -> CachePolicy:
        if not isinstance(other, str):
            raise TypeError("Can only subtract strings from key policies.")
        return Inputs(
            exclude=[*self.exclude, other],
            key_storage=self.key_storage,
            isolation_level=self.isolation_level,
            lock_manager=self.lock_manager,
        )


INPUTS = Inputs()
NONE = _None()
NO_CACHE = _None()
TASK_SOURCE = TaskSource()
FLOW_PARAMETERS = FlowParameters()
RUN_ID = RunId()
DEFAULT = INPUTS + TASK_SOURCE + RUN_ID

for _kind in (CachePolicy, CacheKeyFnPolicy, CompoundCachePolicy, Inputs, TaskSource, FlowParameters, RunId):
    _kind.__module__ = "otel_runtime.cache_policies"
_None.__module__ = "otel_runtime.cache_policies"
del _kind
