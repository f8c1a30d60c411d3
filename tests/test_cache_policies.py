"""Cache policies compute keys as Prefect's do: parts, combinations, exclusions, and no key."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from otel_runtime import flow, task
from otel_runtime.cache_policies import (
    DEFAULT,
    FLOW_PARAMETERS,
    INPUTS,
    NO_CACHE,
    NONE,
    RUN_ID,
    TASK_SOURCE,
    CacheKeyFnPolicy,
    CachePolicy,
    CompoundCachePolicy,
    Inputs,
)
from otel_runtime.context import TaskRunContext


@task
def grab(x: int = 0) -> Any:
    return TaskRunContext.get()


@task
def grab_other(x: int = 0) -> Any:
    return TaskRunContext.get()


@flow
def in_a_flow() -> tuple[Any, Any]:
    return grab(), grab()


def context() -> TaskRunContext:
    found = grab()
    assert isinstance(found, TaskRunContext)
    return found


def test_inputs_hashes_the_arguments_and_leaves_out_subtracted_ones() -> None:
    """``INPUTS - "debug"`` gives one key whatever ``debug`` is, another for other inputs."""
    ctx = context()
    policy = INPUTS - "debug"
    assert isinstance(policy, Inputs)
    assert policy.exclude == ["debug"]
    key = policy.compute_key(ctx, {"x": 1, "debug": True}, {})
    assert key == policy.compute_key(ctx, {"x": 1, "debug": False}, {})
    assert key != policy.compute_key(ctx, {"x": 2, "debug": True}, {})
    assert INPUTS.compute_key(ctx, {}, {}) is None  # no inputs, no part of the key


def test_inputs_that_cannot_be_hashed_raise_a_clear_error() -> None:
    """An unhashable argument raises ``ValueError`` naming the way out (the engine then skips caching)."""
    with pytest.raises(ValueError, match="NO_CACHE"):
        INPUTS.compute_key(context(), {"lock": threading.Lock()}, {})
    assert (INPUTS - "lock").compute_key(context(), {"lock": threading.Lock(), "x": 1}, {}) is not None


def test_task_source_differs_between_tasks_and_is_stable_for_one() -> None:
    """Two tasks with different source have different keys; one task always the same."""
    one, other = grab(), grab_other()
    assert TASK_SOURCE.compute_key(one, {}, {}) == TASK_SOURCE.compute_key(grab(), {}, {})
    assert TASK_SOURCE.compute_key(one, {}, {}) != TASK_SOURCE.compute_key(other, {}, {})


def test_run_id_is_the_flow_run_id_or_the_task_run_id_outside_a_flow() -> None:
    """Two runs in one flow run share the key; runs outside a flow each have their own."""
    first, second = in_a_flow()
    assert (
        RUN_ID.compute_key(first, {}, {}) == RUN_ID.compute_key(second, {}, {}) == first.task_run.flow_run_id
    )
    alone = context()
    assert RUN_ID.compute_key(alone, {}, {}) == alone.task_run.id


def test_flow_parameters_hash_the_flow_run_parameters() -> None:
    """Equal flow parameters give one key; none give no key."""
    ctx = context()
    assert FLOW_PARAMETERS.compute_key(ctx, {}, {"day": "mon"}) == FLOW_PARAMETERS.compute_key(
        ctx, {}, {"day": "mon"}
    )
    assert FLOW_PARAMETERS.compute_key(ctx, {}, {"day": "mon"}) != FLOW_PARAMETERS.compute_key(
        ctx, {}, {"day": "tue"}
    )
    assert FLOW_PARAMETERS.compute_key(ctx, {}, {}) is None


def test_default_is_inputs_task_source_and_run_id() -> None:
    """``DEFAULT`` combines the three, and its key changes with each."""
    assert isinstance(DEFAULT, CompoundCachePolicy)
    assert {type(policy).__name__ for policy in DEFAULT.policies} == {"Inputs", "TaskSource", "RunId"}
    first, second = in_a_flow()
    key = DEFAULT.compute_key(first, {"x": 1}, {})
    assert key == DEFAULT.compute_key(second, {"x": 1}, {})  # same flow run
    assert key != DEFAULT.compute_key(second, {"x": 2}, {})
    assert key != DEFAULT.compute_key(context(), {"x": 1}, {})  # another run id


def test_combining_flattens_deduplicates_inputs_and_subtracts_through() -> None:
    """``(A + B) + C`` is flat, two ``Inputs`` become one with both exclusions, ``-`` reaches inputs,
    ``NONE`` adds nothing."""
    policy = (TASK_SOURCE + (INPUTS - "a")) + (INPUTS - "b") + NONE
    assert isinstance(policy, CompoundCachePolicy)
    assert [type(part).__name__ for part in policy.policies] == ["TaskSource", "Inputs"]
    assert policy.policies[-1].exclude == ["a", "b"]  # type: ignore[attr-defined]
    ctx = context()
    reduced = policy - "x"
    assert reduced.compute_key(ctx, {"x": 1, "y": 1}, {}) == reduced.compute_key(ctx, {"x": 2, "y": 1}, {})
    assert (TASK_SOURCE + RUN_ID) - "x" == TASK_SOURCE + RUN_ID  # no inputs: nothing to leave out
    assert NONE + INPUTS is INPUTS
    assert NO_CACHE.compute_key(ctx, {"x": 1}, {}) is None
    with pytest.raises(TypeError, match="subtract strings"):
        INPUTS - 1  # type: ignore[operator]


def test_a_cache_key_fn_policy_calls_the_function_with_context_and_parameters() -> None:
    """``CachePolicy.from_cache_key_fn`` passes the task run context and the arguments."""
    seen: list[Any] = []

    def key_fn(ctx: TaskRunContext, parameters: dict[str, Any]) -> str:
        seen.append((ctx.task.name, parameters))
        return f"k-{parameters['x']}"

    policy = CachePolicy.from_cache_key_fn(key_fn)
    assert isinstance(policy, CacheKeyFnPolicy)
    assert policy.compute_key(context(), {"x": 3}, {}) == "k-3"
    assert seen == [("grab", {"x": 3})]


def test_configure_sets_storage_and_keeps_isolation_and_disagreeing_ones_do_not_add(tmp_path: Path) -> None:
    """``configure`` returns a copy with the directory; adding policies with two directories fails."""
    here = INPUTS.configure(key_storage=tmp_path, isolation_level="SERIALIZABLE")
    assert here.key_storage == tmp_path and here.isolation_level == "SERIALIZABLE"
    assert INPUTS.key_storage is None
    assert (here + TASK_SOURCE).key_storage == tmp_path
    assert (here - "x").key_storage == tmp_path
    with pytest.raises(ValueError, match="different storage locations"):
        here + TASK_SOURCE.configure(key_storage=tmp_path / "other")
    with pytest.raises(ValueError, match="isolation_level"):
        INPUTS.configure(isolation_level="DIRTY")
    with pytest.raises(TypeError, match="directory"):
        INPUTS.configure(key_storage=object())  # type: ignore[arg-type]
