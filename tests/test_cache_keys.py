"""Cache keys: equal content hashes equally in every process; what cannot be hashed has no key."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import threading
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from otel_runtime import task
from otel_runtime._engine.cache_keys import (
    HashError,
    cache_key_digest,
    hash_objects,
    task_input_hash,
    task_key,
)
from otel_runtime.context import TaskRunContext


@dataclasses.dataclass
class Point:
    x: int
    y: int


def test_equal_content_gives_equal_keys_whatever_the_order_of_dict_keys_and_sets() -> None:
    """Dicts in another insertion order and sets built in another order hash the same."""
    one = {"b": {3, 1, 2}, "a": [1, (2, 3)], "when": datetime(2026, 1, 1, tzinfo=timezone.utc)}
    two = {"when": datetime(2026, 1, 1, tzinfo=timezone.utc), "a": [1, (2, 3)], "b": {2, 3, 1}}
    assert hash_objects(one) == hash_objects(two)
    assert hash_objects(one) != hash_objects({**one, "a": [1, (2, 4)]})


def test_values_json_would_confuse_stay_apart() -> None:
    """``1``, ``1.0``, ``True`` and ``"1"`` are different inputs; bytes hash by content."""
    keys = {hash_objects(value) for value in (1, 1.0, True, "1", b"1", Decimal(1))}
    assert len(keys) == 6
    assert hash_objects(b"x" * 10) == hash_objects(bytearray(b"x" * 10))


def test_dataclasses_uuids_paths_and_plain_objects_hash_by_content() -> None:
    """A dataclass hashes by its fields, and an object JSON cannot encode by its pickle."""
    assert hash_objects(Point(1, 2)) == hash_objects(Point(1, 2)) != hash_objects(Point(2, 1))
    uuid = UUID("12345678-1234-5678-1234-567812345678")
    assert hash_objects(uuid, Path("/a")) == hash_objects(UUID(str(uuid)), Path("/a"))
    assert hash_objects(Decimal("1.5")) is not None
    assert hash_objects({(1, 2): "tuple keys"}) == hash_objects({(1, 2): "tuple keys"})


def test_a_pydantic_model_hashes_by_its_fields() -> None:
    """Two equal pydantic models give one key."""
    pydantic = pytest.importorskip("pydantic")

    class Config(pydantic.BaseModel):
        name: str
        size: int

    assert hash_objects(Config(name="a", size=1)) == hash_objects(Config(name="a", size=1))
    assert hash_objects(Config(name="a", size=1)) != hash_objects(Config(name="a", size=2))


def test_an_object_neither_json_nor_pickle_encodes_has_no_key() -> None:
    """A lock has no key (``None``), or raises ``HashError`` when asked to."""
    assert hash_objects({"lock": threading.Lock()}) is None
    with pytest.raises(HashError, match="lock"):
        hash_objects({"lock": threading.Lock()}, raise_on_failure=True)


def test_keys_are_the_same_in_another_process_with_another_hash_seed(tmp_path: Path) -> None:
    """Sets of strings (whose order depends on PYTHONHASHSEED) and dicts give the same key elsewhere."""
    code = (
        "from otel_runtime._engine.cache_keys import hash_objects;"
        "print(hash_objects({'tags': {'a', 'b', 'c', 'd'}, 'n': 1, 'f': frozenset({'x', 'y'})}))"
    )
    keys = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"},
            cwd=tmp_path,
        ).stdout.strip()
        for seed in ("1", "2", "3")
    }
    assert keys == {hash_objects({"tags": {"d", "c", "b", "a"}, "n": 1, "f": frozenset({"y", "x"})})}


@task
def double(x: int) -> int:
    return x * 2


@task
def context_of(x: int) -> Any:
    return TaskRunContext.get()


def test_task_input_hash_depends_on_the_task_and_its_arguments() -> None:
    """Prefect's ``task_input_hash``: same task and arguments, same key; another argument or task, not."""
    context = context_of(1)
    assert isinstance(context, TaskRunContext)
    key = task_input_hash(context, {"x": 1})
    assert key is not None
    assert task_input_hash(context, {"x": 1}) == key
    assert task_input_hash(context, {"x": 2}) != key
    assert task_key(double) != task_key(context_of)
    assert task_input_hash(context, {"x": threading.Lock()}) is None


def test_the_digest_on_spans_hides_the_key() -> None:
    """The span shows 32 hex digits derived from the key, not the key."""
    digest = cache_key_digest("customer-4111111111111111")
    assert len(digest) == 32
    assert "4111111111111111" not in digest
    assert digest == cache_key_digest("customer-4111111111111111") != cache_key_digest("customer-2")
