"""The result store keeps cached values whole: across processes, under concurrent writers of one key,
and against damaged files (a miss with a warning, never a wrong value)."""

from __future__ import annotations

import logging
import multiprocessing
import os
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from otel_runtime._engine.result_store import CacheRecord, FileStore, MemoryStore, ResultStore, encode

KEY = "the-key"
SIZE = 2_000_000  # large enough that a torn write would be visible


def value_of(writer: int, round_: int) -> bytes:
    """A value whose every byte says who wrote it, so a mixed or torn value is detected."""
    return bytes([(writer * 31 + round_) % 251]) * SIZE


def check_whole(value: object) -> None:
    assert isinstance(value, bytes) and len(value) == SIZE
    assert value.count(value[:1]) == SIZE


def test_a_record_survives_a_new_store_as_a_second_process_would_see_it(tmp_path: Path) -> None:
    """What one store wrote, a fresh store (empty memory) reads back with its span context."""
    record = CacheRecord(
        KEY, {"rows": [1, 2]}, time.time(), None, trace_id=7, span_id=9, trace_flags=1, task_run_id="r"
    )
    assert ResultStore().store(str(tmp_path), record)
    found = ResultStore().lookup(str(tmp_path), KEY)
    assert found == record


def test_expired_records_are_misses(tmp_path: Path) -> None:
    """A record past its expiration is not returned, from memory or from its file."""
    store = ResultStore()
    store.store(str(tmp_path), CacheRecord(KEY, 1, time.time(), expires=time.time() - 1))
    assert store.lookup(str(tmp_path), KEY) is None
    assert ResultStore().lookup(str(tmp_path), KEY) is None


def test_without_memory_every_lookup_reads_the_file(tmp_path: Path) -> None:
    """``in_memory=False`` keeps nothing in memory: a file changed by another writer is what is read."""
    store = ResultStore()
    store.store(str(tmp_path), CacheRecord(KEY, "first", time.time()), in_memory=False)
    assert store.memory.get(str(tmp_path), KEY) is None
    ResultStore().store(str(tmp_path), CacheRecord(KEY, "second", time.time()))
    found = store.lookup(str(tmp_path), KEY, in_memory=False)
    assert found is not None and found.value == "second"


def test_the_memory_layer_is_bounded() -> None:
    """The memory layer forgets the least recently used record beyond its limit."""
    memory = MemoryStore(limit=2)
    for name in ("a", "b"):
        memory.put("d", CacheRecord(name, name, 0.0))
    assert memory.get("d", "a") is not None  # "a" is now the most recently used
    memory.put("d", CacheRecord("c", "c", 0.0))
    assert memory.get("d", "b") is None
    assert memory.get("d", "a") is not None and memory.get("d", "c") is not None


def test_a_value_that_cannot_be_pickled_is_not_cached_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A lock is not stored in memory or on disk; the warning names the task once."""
    store = ResultStore()
    with caplog.at_level(logging.WARNING, logger="otel_runtime"):
        for _ in range(3):
            assert not store.store(str(tmp_path), CacheRecord(KEY, threading.Lock(), 0.0), owner="locky")
    assert [r.getMessage() for r in caplog.records if "locky" in r.getMessage()] == [
        "otel_runtime did not cache a result of 'locky': it cannot be pickled (TypeError: cannot pickle "
        "'_thread.lock' object)"
    ]
    assert store.lookup(str(tmp_path), KEY) is None
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind either


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
        pytest.param(lambda data: data[:-10] + bytes(10), id="bytes-changed"),
        pytest.param(lambda data: b"", id="empty"),
        pytest.param(lambda data: b"not a cache file at all", id="foreign"),
    ],
)
def test_a_damaged_file_is_a_miss_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: Callable[[bytes], bytes]
) -> None:
    """A cache file that is cut short, altered or not ours is a miss, with a warning naming the file."""
    files = FileStore(tmp_path)
    files.write(KEY, encode(CacheRecord(KEY, b"x" * 1000, 0.0)))
    path = files.path_for(KEY)
    path.write_bytes(damage(path.read_bytes()))
    with caplog.at_level(logging.WARNING, logger="otel_runtime"):
        assert ResultStore().lookup(str(tmp_path), KEY) is None
    assert any("damaged cache file" in r.getMessage() and str(path) in r.getMessage() for r in caplog.records)


def test_a_file_of_another_key_is_never_returned(tmp_path: Path) -> None:
    """A file holding another key's record (moved, or a digest collision) is a miss."""
    files = FileStore(tmp_path)
    files.write(KEY, encode(CacheRecord("another-key", "wrong", 0.0)))
    assert files.read(KEY) is None


def test_cache_files_are_private_to_the_user(tmp_path: Path) -> None:
    """The directory is 0700 and the files 0600: cached values are the user's data."""
    directory = tmp_path / "cache"
    ResultStore().store(str(directory), CacheRecord(KEY, 1, 0.0))
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert [stat.S_IMODE(path.stat().st_mode) for path in directory.iterdir()] == [0o600]


def test_threads_writing_and_reading_one_key_never_see_a_torn_value(tmp_path: Path) -> None:
    """Eight threads write one key while four read it from disk: every read finds a whole value (none
    is a miss: a reader never sees a file being written)."""
    ResultStore().store(str(tmp_path), CacheRecord(KEY, value_of(0, 0), 0.0))
    stores = [ResultStore() for _ in range(4)]
    errors: list[BaseException] = []
    stop = threading.Event()

    def write(writer: int) -> None:
        store = ResultStore()
        for round_ in range(15):
            assert store.store(
                str(tmp_path), CacheRecord(KEY, value_of(writer, round_), 0.0), in_memory=False
            )

    def read(store: ResultStore) -> None:
        try:
            while not stop.is_set():
                found = store.lookup(str(tmp_path), KEY, in_memory=False)
                assert found is not None
                check_whole(found.value)
        except BaseException as exc:  # reported below: a failed assert in a thread
            errors.append(exc)

    readers = [threading.Thread(target=read, args=(store,)) for store in stores]
    writers = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in readers + writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    for thread in readers:
        thread.join()
    assert errors == []
    final = ResultStore().lookup(str(tmp_path), KEY)
    assert final is not None
    check_whole(final.value)
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".tmp-")] == []


def _write_in_process(directory: str, writer: int, rounds: int) -> None:
    store = ResultStore()
    for round_ in range(rounds):
        if not store.store(directory, CacheRecord(KEY, value_of(writer, round_), 0.0), in_memory=False):
            raise SystemExit(3)


def _read_in_process(directory: str, seconds: float) -> None:
    store = ResultStore()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = store.lookup(directory, KEY, in_memory=False)
        if found is None:
            raise SystemExit(4)  # a miss: the reader saw a file being written
        check_whole(found.value)


def test_processes_writing_and_reading_one_key_never_see_a_torn_value(tmp_path: Path) -> None:
    """Four processes write one key while two processes read it: every read finds a whole value (never
    a miss), no writer fails, and no temporary file remains."""
    spawn = multiprocessing.get_context("spawn")
    ResultStore().store(str(tmp_path), CacheRecord(KEY, value_of(0, 0), 0.0))  # readers always find one
    writers = [spawn.Process(target=_write_in_process, args=(str(tmp_path), n, 10)) for n in range(4)]
    readers = [spawn.Process(target=_read_in_process, args=(str(tmp_path), 3.0)) for _ in range(2)]
    for process in writers + readers:
        process.start()
    for process in writers + readers:
        process.join(timeout=120)
    assert [process.exitcode for process in writers + readers] == [0] * 6
    final = ResultStore().lookup(str(tmp_path), KEY)
    assert final is not None
    check_whole(final.value)
    assert sorted(os.listdir(tmp_path)) == [FileStore(tmp_path).path_for(KEY).name]
