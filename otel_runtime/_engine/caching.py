"""Task caching on a run: a task's cache options, its run's key, the lookup, the store, the span.

A task made with a cache policy (``cache_policy=``, ``cache_key_fn=``, ``persist_result=True``) holds a
:class:`TaskCache`; a task without one holds ``None`` and its runs do nothing for caching. A run of a
caching task computes its key once its span and run context exist (a ``cache_key_fn`` reads the
context), before its first attempt:

- a hit returns the stored value without calling the function: the run's state is ``Cached`` (type
  ``COMPLETED``), its span links to the span of the run that stored the value;
- a miss runs the function and, when the run completes, stores its value with the run's span context;
- a key that cannot be computed (unhashable inputs, a ``cache_key_fn`` that raises) means no caching
  for that run, with one warning per task, never an error.

The span carries ``otel_runtime.cache.key`` (a digest of the key) and ``otel_runtime.cache.outcome``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Final

from opentelemetry.trace import Span, SpanContext, TraceFlags

from otel_runtime._base import keys as _keys
from otel_runtime._base.guard import warn_once
from otel_runtime._core.identity import FLOW_RUN_CONTEXT, TASK_RUN_CONTEXT
from otel_runtime._engine.cache_keys import cache_key_digest
from otel_runtime._engine.cache_policies import DEFAULT, CacheKeyFn, CachePolicy, _None
from otel_runtime._engine.futures import TaskRunFuture
from otel_runtime._engine.result_store import CacheRecord, KeyLock, result_store
from otel_runtime._engine.run_context import FlowRunContext, TaskRunContext
from otel_runtime._engine.run_states import settle_task
from otel_runtime._engine.states import State, StateType, is_state_iterable
from otel_runtime.environment_variables import OTEL_RUNTIME_CACHE_DIR

if TYPE_CHECKING:
    from otel_runtime._engine.run_scope import RunScope

__all__ = [
    "DEFAULT_CACHE_DIR",
    "TaskCache",
    "answer",
    "cache_directory",
    "call_cached",
    "call_cached_async",
    "finish",
    "key_lock",
    "run_key",
    "task_cache",
]

DEFAULT_CACHE_DIR: Final = os.path.join(".otel_runtime", "cache")
_directory: list[str] = []  # the environment's directory, read at the first cached run


def cache_directory(policy: CachePolicy) -> str:
    """Where ``policy``'s records are filed (an absolute path): its ``key_storage``, else
    ``OTEL_RUNTIME_CACHE_DIR``, else ``.otel_runtime/cache``; a relative one is in the working directory."""
    if policy.key_storage is not None:
        return os.path.abspath(policy.key_storage)
    if not _directory:
        _directory.append(os.environ.get(OTEL_RUNTIME_CACHE_DIR) or DEFAULT_CACHE_DIR)
    return os.path.abspath(_directory[0])  # the memory layer is by directory: a chdir moves it


def _expiration(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise TypeError(f"cache_expiration must be a datetime.timedelta, got {type(value).__name__}")


@dataclass(frozen=True, slots=True)
class TaskCache:
    """A task's cache options, settled at decoration."""

    owner: str
    policy: CachePolicy
    expiration: float | None
    refresh: bool
    in_memory: bool
    serializable: bool = False

    def key(
        self, context: TaskRunContext, parameters: dict[str, Any], flow_parameters: dict[str, Any]
    ) -> str | None:
        """The run's cache key, or ``None`` (no caching for this run) when none can be computed."""
        try:
            key = self.policy.compute_key(context, parameters, flow_parameters)
        except Exception as exc:
            warn_once(
                f"cache-key:{self.owner}",
                f"otel_runtime could not compute a cache key for task {self.owner!r}; its runs are not "
                f"cached ({type(exc).__name__}: {exc})",
            )
            return None
        if key is not None and not isinstance(key, str):
            warn_once(
                f"cache-key-type:{self.owner}",
                f"the cache key of task {self.owner!r} is a {type(key).__name__}, not a str: not cached",
            )
            return None
        return key

    def lookup(self, span: Span, key: str | None) -> CacheRecord | None:
        """The record to answer the run with (``None``: run the function). Marks the span."""
        try:
            if key is None:
                span.set_attribute(_keys.CACHE_OUTCOME, _keys.CACHE_OUTCOME_NO_KEY)
                return None
            attributes: dict[str, Any] = {_keys.CACHE_KEY: cache_key_digest(key)}
            if self.refresh:
                attributes[_keys.CACHE_REFRESH] = True
            span.set_attributes(attributes)
            record = (
                None
                if self.refresh  # run whatever is stored, then store anew
                else result_store.lookup(cache_directory(self.policy), key, in_memory=self.in_memory)
            )
        except Exception:
            warn_once("cache-lookup", "otel_runtime could not look a task run up in the cache", exc_info=True)
            return None
        try:
            if record is not None:
                _mark_hit(span, record)
            else:
                span.set_attribute(_keys.CACHE_OUTCOME, _keys.CACHE_OUTCOME_MISS)  # "stored" once stored
        except Exception:
            warn_once("cache-mark", "otel_runtime could not mark a task run's cache lookup", exc_info=True)
        return record

    def store(self, span: Span, key: str, value: Any, task_run_id: str) -> None:
        """Store the value of a completed run under ``key``; marks the span (never raises)."""
        try:
            context = span.get_span_context()
            now = time.time()
            record = CacheRecord(
                key=key,
                value=value,
                created=now,
                expires=None if self.expiration is None else now + self.expiration,
                trace_id=context.trace_id,
                span_id=context.span_id,
                trace_flags=int(context.trace_flags),
                task_run_id=task_run_id,
            )
            stored = result_store.store(
                cache_directory(self.policy), record, in_memory=self.in_memory, owner=self.owner
            )
            attributes: dict[str, Any] = {
                _keys.CACHE_OUTCOME: _keys.CACHE_OUTCOME_STORED if stored else _keys.CACHE_OUTCOME_NOT_STORED
            }
            if stored and record.expires is not None:
                attributes[_keys.CACHE_EXPIRES] = _iso(record.expires)
            span.set_attributes(attributes)
        except Exception:
            warn_once("cache-store", "otel_runtime could not store a task run's value", exc_info=True)


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).isoformat()


def _mark_hit(span: Span, record: CacheRecord) -> None:
    attributes: dict[str, Any] = {_keys.CACHE_OUTCOME: _keys.CACHE_OUTCOME_HIT}
    if record.expires is not None:
        attributes[_keys.CACHE_EXPIRES] = _iso(record.expires)
    span.set_attributes(attributes)
    if record.trace_id and record.span_id:
        origin = SpanContext(
            record.trace_id, record.span_id, is_remote=True, trace_flags=TraceFlags(record.trace_flags)
        )
        link: dict[str, Any] = {_keys.LINK_KIND: _keys.LINK_KIND_CACHE}
        if record.task_run_id is not None:
            link[_keys.LINK_TASK_RUN_ID] = record.task_run_id
        span.add_link(origin, link)


def run_key(cache: TaskCache, scope: RunScope) -> str | None:
    """In a caching task's run, its context attached: the run's cache key (``None``: no caching)."""
    task_context = scope.context.get(TASK_RUN_CONTEXT)
    if not isinstance(task_context, TaskRunContext):
        return None
    flow_context = scope.context.get(FLOW_RUN_CONTEXT)
    flow_parameters = dict(flow_context.parameters) if isinstance(flow_context, FlowRunContext) else {}
    return cache.key(task_context, dict(task_context.parameters), flow_parameters)


def key_lock(cache: TaskCache, key: str | None) -> KeyLock | None:
    """The lock a ``SERIALIZABLE`` policy's run holds from its lookup to its store, else ``None``."""
    if key is None or not cache.serializable:
        return None
    return result_store.files(cache_directory(cache.policy)).lock(key)


def answer(scope: RunScope, record: CacheRecord) -> Any:
    """End a run from the cache: state ``Cached`` (type ``COMPLETED``) holding the value, end hooks
    run; returns the value."""
    run: Any = scope.record
    state: State[Any] = State(StateType.COMPLETED, name=_keys.CACHE_STATE_NAME, data=record.value)
    state.state_details.task_run_id = run.id
    state.state_details.flow_run_id = run.flow_run_id
    scope.state = state
    return settle_task(scope, record.value)


def finish(cache: TaskCache, scope: RunScope, key: str | None, result: Any) -> None:
    """The function ran and returned ``result`` (what the caller gets): store it under ``key`` if the
    run completed with a plain value (not states or futures)."""
    if key is None:
        return
    state = scope.state
    if state is not None and state.type is not StateType.COMPLETED:
        return
    if isinstance(result, (State, TaskRunFuture)) or is_state_iterable(result):
        return
    run: Any = scope.record
    cache.store(scope.span, key, result, run.id)


def _acquired(lock: KeyLock | None) -> KeyLock | None:
    """``lock``, held; ``None`` (the run goes on unlocked, one warning) if it cannot be taken."""
    if lock is None:
        return None
    try:
        lock.acquire()
    except OSError as exc:
        warn_once(f"cache-lock:{lock.path.parent}", f"otel_runtime could not lock {lock.path}: {exc}")
        return None
    return lock


# ``call_cached`` and ``call_cached_async`` are one run written twice (the async one awaits): the run's
# frame stays ``Runnable._run_sync`` / ``_run_async``'s, which hand a caching task's run over here.
def call_cached(
    owner: Any, scope: RunScope, args: tuple[Any, ...], kwargs: dict[str, Any], control: Any
) -> Any:
    """A caching task's run, its context attached: answered from the cache, or run (with its retries),
    settled, and its value stored; under the key's lock for a ``SERIALIZABLE`` policy."""
    cache: TaskCache = owner._cache
    key = run_key(cache, scope)
    lock = _acquired(key_lock(cache, key))
    try:
        hit = cache.lookup(scope.span, key)
        if hit is not None:
            return answer(scope, hit)
        retry = owner._retry
        result = owner.fn(*args, **kwargs) if retry is None else retry.call(scope, owner.fn, args, kwargs)
        if control is not None or owner._settle_always or owner._has_end_hooks or isinstance(result, State):
            result = owner._settle(scope, result)
        finish(cache, scope, key, result)
        return result
    finally:
        if lock is not None:
            lock.release()


async def call_cached_async(
    owner: Any, scope: RunScope, args: tuple[Any, ...], kwargs: dict[str, Any], control: Any
) -> Any:
    """:func:`call_cached` for an async task (the lock is waited for in a thread)."""
    cache: TaskCache = owner._cache
    key = run_key(cache, scope)
    lock = key_lock(cache, key)
    if lock is not None:
        import asyncio  # only SERIALIZABLE async runs wait for a lock

        lock = await asyncio.to_thread(_acquired, lock)
    try:
        hit = cache.lookup(scope.span, key)
        if hit is not None:
            return answer(scope, hit)
        retry = owner._retry
        if retry is None:
            result = await owner.fn(*args, **kwargs)
        else:
            result = await retry.call_async(scope, owner.fn, args, kwargs)
        if control is not None or owner._settle_always or owner._has_end_hooks or isinstance(result, State):
            result = owner._settle(scope, result)
        finish(cache, scope, key, result)
        return result
    finally:
        if lock is not None:
            lock.release()


def task_cache(
    owner: str,
    *,
    cache_policy: Any = None,
    cache_key_fn: CacheKeyFn | None = None,
    cache_expiration: Any = None,
    refresh_cache: bool | None = None,
    cache_result_in_memory: bool = True,
    persist_result: bool | None = None,
) -> TaskCache | None:
    """A task's cache options, or ``None`` when it does not cache (Prefect's rules: a ``cache_key_fn``
    wins over a ``cache_policy``; ``persist_result=True`` alone means ``DEFAULT``;
    ``persist_result=False`` or ``NO_CACHE`` means no caching)."""
    if cache_policy is not None and not isinstance(cache_policy, CachePolicy):
        raise TypeError(
            f"cache_policy must be a CachePolicy (otel_runtime.cache_policies), got {cache_policy!r}"
        )
    if cache_key_fn is not None and not callable(cache_key_fn):
        raise TypeError(f"cache_key_fn must be callable, got {cache_key_fn!r}")
    expiration = _expiration(cache_expiration)
    if cache_key_fn is not None:
        if cache_policy is not None:
            warn_once(
                f"cache-both:{owner}",
                f"Both `cache_policy` and `cache_key_fn` are set on task {owner!r}. "
                "`cache_key_fn` will be used.",
            )
        cache_policy = CachePolicy.from_cache_key_fn(cache_key_fn)
    if cache_policy is None and persist_result:
        cache_policy = DEFAULT
    if cache_policy is None or isinstance(cache_policy, _None):
        return None
    if persist_result is False:
        warn_once(
            f"cache-persist:{owner}",
            f"Ignoring `cache_policy` of task {owner!r} because `persist_result` is False",
        )
        return None
    serializable = cache_policy.isolation_level == "SERIALIZABLE"
    return TaskCache(
        owner, cache_policy, expiration, bool(refresh_cache), bool(cache_result_in_memory), serializable
    )
