"""The local result store behind task caching: a bounded memory layer over a directory of files.

A record holds a cached value, when it was made and when it expires, and the span context of the run
that produced it (so a cache hit links to it). Within a process a hit is served from memory; the file
layer lets another process (the next run of the script) hit the same key, as Prefect's local result
storage does.

Files: one per key, named by the key's SHA-256 (a key may be any string). Each file is a header, the
SHA-256 of its payload and the payload (a pickle), written to a temporary file in the same directory
and moved into place with ``os.replace``: a reader sees the old file or the new one, never a part, and
of concurrent writers of one key (threads or processes) the last one wins whole. A file that is short,
damaged or not ours fails its checksum and is a miss, with a warning. Files are created ``0600`` in a
``0700`` directory: cached values are the user's data. They are pickles, so the directory must be
trusted as Prefect's storage is. Writes are not fsynced: a power cut may lose a record, never tear one.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final

try:
    import fcntl
except ImportError:  # Windows: locks exclude this process's threads only
    fcntl = None  # type: ignore[assignment]

from otel_runtime._base.guard import internal_logger, warn_once

__all__ = [
    "MEMORY_LIMIT",
    "CacheRecord",
    "FileStore",
    "KeyLock",
    "MemoryStore",
    "ResultStore",
    "result_store",
]

_MAGIC: Final = b"otel_runtime-cache-1\n"
_DIGEST_SIZE: Final = 32
MEMORY_LIMIT: Final = 1000
"""Records the memory layer keeps (least recently used go first); Prefect's in-memory cache keeps as
many."""


@dataclass(frozen=True, slots=True)
class CacheRecord:
    """A cached value and where it came from. ``expires`` is a Unix time, or ``None`` for never;
    ``trace_id`` / ``span_id`` / ``trace_flags`` are the producing run's span context (0 if unknown)."""

    key: str
    value: Any
    created: float
    expires: float | None = None
    trace_id: int = 0
    span_id: int = 0
    trace_flags: int = 0
    task_run_id: str | None = None

    def expired(self, now: float | None = None) -> bool:
        """Whether the record is past its expiration."""
        return self.expires is not None and (time.time() if now is None else now) >= self.expires


class MemoryStore:
    """Records by (directory, key), at most ``limit`` of them, safe to share between threads."""

    def __init__(self, limit: int = MEMORY_LIMIT) -> None:
        self._records: OrderedDict[tuple[str, str], CacheRecord] = OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()

    def get(self, where: str, key: str) -> CacheRecord | None:
        """The record of ``key``, or ``None``."""
        with self._lock:
            record = self._records.get((where, key))
            if record is not None:
                self._records.move_to_end((where, key))
            return record

    def put(self, where: str, record: CacheRecord) -> None:
        """Keep ``record``, replacing the one of its key."""
        with self._lock:
            self._records[(where, record.key)] = record
            self._records.move_to_end((where, record.key))
            while len(self._records) > self._limit:
                self._records.popitem(last=False)

    def clear(self) -> None:
        """Forget every record."""
        with self._lock:
            self._records.clear()


class FileStore:
    """Records as files in ``directory``, created when the first record is written."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def path_for(self, key: str) -> Path:
        """The file of ``key``."""
        return self.directory / (hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest() + ".pkl")

    def read(self, key: str) -> CacheRecord | None:
        """The record of ``key``; ``None`` if there is none or its file is damaged (with a warning)."""
        path = self.path_for(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            warn_once(f"cache-read:{path}", f"otel_runtime could not read the cache file {path}: {exc}")
            return None
        record = _decode(data)
        if record is None or record.key != key:
            warn_once(
                f"cache-corrupt:{path}",
                f"otel_runtime ignored the damaged cache file {path}; the task runs and replaces it",
            )
            return None
        return record

    def write(self, key: str, payload: bytes) -> None:
        """Write ``payload`` (from :func:`encode`) as the file of ``key``, atomically. Raises ``OSError``."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=".pkl", dir=self.directory)
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(payload)
            os.replace(temporary, self.path_for(key))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    def lock(self, key: str) -> KeyLock:
        """The lock of ``key`` (``SERIALIZABLE`` isolation): one holder at a time, across threads and
        processes."""
        return KeyLock(self.path_for(key).with_suffix(".lock"))


class KeyLock:
    """An exclusive ``flock`` on a lock file beside a key's record. Each ``acquire`` opens the file
    anew, so threads of one process exclude each other as processes do (``flock`` locks belong to
    the open file). Without ``fcntl`` (Windows) it excludes threads of this process only."""

    _local: ClassVar[dict[str, threading.Lock]] = {}
    _local_guard: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        """Wait until the lock is free, then hold it. Raises ``OSError`` if the file cannot be opened."""
        if fcntl is None:
            with KeyLock._local_guard:
                lock = KeyLock._local.setdefault(str(self.path), threading.Lock())
            lock.acquire()
            return
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        """Let the next holder in."""
        if fcntl is None:
            KeyLock._local[str(self.path)].release()
            return
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the file releases its flock


def encode(record: CacheRecord) -> bytes:
    """The file form of ``record``. Raises what pickling the value raises."""
    fields = (
        record.key,
        record.value,
        record.created,
        record.expires,
        record.trace_id,
        record.span_id,
        record.trace_flags,
        record.task_run_id,
    )  # a tuple: the file does not depend on this class's layout
    payload = pickle.dumps(fields, protocol=pickle.HIGHEST_PROTOCOL)
    return _MAGIC + hashlib.sha256(payload).digest() + payload


def _decode(data: bytes) -> CacheRecord | None:
    start = len(_MAGIC) + _DIGEST_SIZE
    if not data.startswith(_MAGIC) or len(data) <= start:
        return None
    payload = data[start:]
    if hashlib.sha256(payload).digest() != data[len(_MAGIC) : start]:
        return None
    try:
        fields = pickle.loads(payload)  # our own checksummed file, in a trusted directory
        return CacheRecord(*fields)
    except Exception:  # a value whose class is gone, or a file of another layout
        internal_logger.debug("a cache file did not load", exc_info=True)
        return None


class ResultStore:
    """The memory layer in front of one file store per directory."""

    def __init__(self) -> None:
        self.memory = MemoryStore()
        self._files: dict[str, FileStore] = {}
        self._lock = threading.Lock()

    def files(self, directory: str | os.PathLike[str]) -> FileStore:
        """The file store of ``directory`` (one object per directory)."""
        where = os.fspath(directory)
        store = self._files.get(where)
        if store is None:
            with self._lock:
                store = self._files.setdefault(where, FileStore(where))
        return store

    def lookup(self, directory: str, key: str, *, in_memory: bool = True) -> CacheRecord | None:
        """The unexpired record of ``key``: from memory, else from its file (then kept in memory when
        ``in_memory``); ``None`` on a miss."""
        now = time.time()
        record = self.memory.get(directory, key) if in_memory else None
        if record is not None and not record.expired(now):
            return record
        record = self.files(directory).read(key)
        if record is None or record.expired(now):
            return None
        if in_memory:
            self.memory.put(directory, record)
        return record

    def store(self, directory: str, record: CacheRecord, *, in_memory: bool = True, owner: str = "") -> bool:
        """Keep ``record`` in its file (and in memory when ``in_memory``). A value that cannot be
        pickled, or a file that cannot be written, is not cached: ``False``, and one warning (per
        ``owner``, a task name)."""
        try:
            payload = encode(record)
        except Exception as exc:
            warn_once(
                f"cache-serialize:{owner}",
                f"otel_runtime did not cache a result of {owner or 'a task'!r}: it cannot be pickled "
                f"({type(exc).__name__}: {exc})",
            )
            return False
        try:
            self.files(directory).write(record.key, payload)
        except OSError as exc:
            warn_once(
                f"cache-write:{directory}", f"otel_runtime could not write to the cache in {directory}: {exc}"
            )
            return False
        if in_memory:
            self.memory.put(directory, record)
        return True


result_store = ResultStore()
"""The process's result store."""
