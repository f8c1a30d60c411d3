"""Span and log exporters that append OTLP/JSON lines to a local file.

The embedded default of ``configure()`` when no OTLP endpoint is set: every batch becomes one line
of ``.otel_runtime/telemetry.jsonl`` (the Collector's ``file`` exporter format, see ``otlp_json``),
which ``otel-runtime traces`` draws and a Collector's ``otlpjsonfile`` receiver can replay.

Several threads and processes may append to the same file: each line is written with one
``O_APPEND`` write under an exclusive file lock, so lines never interleave. The file is capped at
``max_bytes``: the writer that would cross the cap renames it to ``<path>.1`` (replacing an older
one) and starts a new file. A new file is created readable by its owner only (0600), and a new
folder for it 0700: the lines hold log records and exception messages. Write errors never reach the
caller: the export fails and one warning is logged.
"""

from __future__ import annotations

import errno
import itertools
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final, Generic

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from otel_runtime._base.guard import warn_once
from otel_runtime._sdk.otlp_json import encode_logs, encode_spans
from otel_runtime._sdk.signals import LOGS, NOUNS, SPANS, ItemT, ResultT, SignalResults

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_TELEMETRY_PATH",
    "JsonLinesExporter",
    "JsonLinesLogExporter",
    "JsonLinesSpanExporter",
    "JsonLinesWriter",
]

DEFAULT_TELEMETRY_PATH: Final = Path(".otel_runtime") / "telemetry.jsonl"
"""Where telemetry goes when no endpoint is configured, relative to the working directory."""

DEFAULT_MAX_BYTES: Final = 50 * 1024 * 1024
"""The size at which the telemetry file is rotated to ``<path>.1``."""

_OPEN_FLAGS: Final[int] = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
# The file holds log records and exception messages: readable by its owner only (before the umask).
_FILE_MODE: Final = 0o600
_FOLDER_MODE: Final = 0o700
# How often one write may find the file renamed under it (another process rotated it) and reopen.
_MAX_REOPENS: Final = 8
_LOCK_TIMEOUT_S: Final = 10.0

if sys.platform == "win32":  # pragma: no cover - no fcntl; the in-process lock still serializes threads

    def _lock_file(fd: int) -> None:
        pass

else:
    import fcntl

    def _lock_file(fd: int) -> None:
        """Block until this process holds an exclusive lock on the whole file; closing ``fd`` releases it.

        A POSIX record lock (``lockf``) rather than ``flock``: a ``flock`` belongs to the open file
        description, which a child forked mid-write shares, so the child could never take the lock
        again. A POSIX lock belongs to the process and is not inherited.
        """
        deadline = time.monotonic() + _LOCK_TIMEOUT_S
        while not _lock_unless_deadlock(fd):
            if time.monotonic() > deadline:
                raise OSError(errno.EDEADLK, "could not lock the telemetry file", str(fd))
            time.sleep(0.001)

    def _lock_unless_deadlock(fd: int) -> bool:
        """Take the lock, or return ``False`` when the kernel refuses it as a deadlock.

        The kernel's deadlock check sees processes, not threads, so it can report one that is not
        (other threads of ours, or of the host program, holding other POSIX locks): wait and retry.
        """
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX)
        except OSError as error:
            if error.errno == errno.EDEADLK:
                return False
            # Any other error: a filesystem without locks; the single O_APPEND write keeps lines whole.
        return True


# One lock for every file this process writes: besides serializing its threads (POSIX locks do
# not), it means the process waits for at most one file lock at a time, which keeps the kernel's
# deadlock check from firing between two processes that write two files each.
_process_lock = threading.Lock()


def _reset_lock_after_fork() -> None:
    # A fork taken while another thread held the lock would leave it held forever in the child.
    global _process_lock  # noqa: PLW0603 - rebuilt in the child, whose other threads are gone
    _process_lock = threading.Lock()


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_reset_lock_after_fork)

_writer_ids = itertools.count()


class JsonLinesWriter:
    """Appends whole lines to one file, safely shared by threads and processes, with a size cap.

    ``path`` defaults to :data:`DEFAULT_TELEMETRY_PATH`; a relative path is resolved against the
    working directory now, at construction. A line larger than ``max_bytes`` is still written, alone
    in a fresh file.
    """

    def __init__(
        self, path: str | os.PathLike[str] | None = None, *, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes!r}")
        self.path: Final = Path(DEFAULT_TELEMETRY_PATH if path is None else path).expanduser().absolute()
        self.rotated_path: Final = self.path.with_name(self.path.name + ".1")
        self.max_bytes: Final = max_bytes
        self._closed = False
        self._warning_topic = f"file-export:{self.path}:{next(_writer_ids)}"  # one warning per writer

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def write_line(self, line: str) -> bool:
        """Append ``line`` and a newline; ``False`` (never an exception) when it was not written."""
        if self._closed:
            return False
        try:
            data = (line + "\n").encode("utf-8")
            with _process_lock:
                self._append(data)
        except (OSError, UnicodeEncodeError) as error:
            self.warn_once(f"otel_runtime could not write telemetry to {self.path}: {error}")
            return False
        return True

    def close(self) -> None:
        """Make every later ``write_line`` a no-op returning ``False``."""
        self._closed = True

    def warn_once(self, message: str, *, exc_info: bool = False) -> None:
        """Log ``message`` as a warning on the ``otel_runtime`` logger, the first time only."""
        warn_once(self._warning_topic, f"{message} (further failures here are not logged)", exc_info=exc_info)

    def _append(self, data: bytes) -> None:
        for _ in range(_MAX_REOPENS):
            fd = self._open()
            try:
                _lock_file(fd)
                # Another process may have rotated the file while we waited for the lock: then
                # ``fd`` is the old file, now ``<path>.1``, and we must reopen ``path``.
                if not _is_current(fd, self.path):
                    continue
                size = os.fstat(fd).st_size
                if size and size + len(data) > self.max_bytes:
                    os.replace(self.path, self.rotated_path)
                    continue
                _write_all(fd, data)
                return
            finally:
                os.close(fd)
        raise OSError(f"{self.path} kept being replaced while writing to it")

    def _open(self) -> int:
        try:
            return os.open(self.path, _OPEN_FLAGS, _FILE_MODE)
        except FileNotFoundError:
            self.path.parent.mkdir(mode=_FOLDER_MODE, parents=True, exist_ok=True)
            return os.open(self.path, _OPEN_FLAGS, _FILE_MODE)


def _is_current(fd: int, path: Path) -> bool:
    """Whether ``fd`` is still the file at ``path``."""
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (opened.st_dev, opened.st_ino) == (on_disk.st_dev, on_disk.st_ino)


def _write_all(fd: int, data: bytes) -> None:
    # One os.write in practice; the loop only matters for a short write (e.g. a full disk).
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class JsonLinesExporter(Generic[ItemT, ResultT]):
    """Appends each batch as one OTLP/JSON line, written by ``encode``, to ``path``."""

    def __init__(
        self,
        results: SignalResults[ItemT, ResultT],
        encode: Callable[[Sequence[ItemT]], str],
        path: str | os.PathLike[str] | None = None,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self._results = results
        self._encode = encode
        self._writer = JsonLinesWriter(path, max_bytes=max_bytes)

    @property
    def path(self) -> Path:
        """The absolute path written to."""
        return self._writer.path

    def export(self, batch: Sequence[ItemT]) -> ResultT:
        """Append ``batch``; ``FAILURE`` after shutdown or when the file cannot be written."""
        if self._writer.closed:
            return self._results.failure
        if not batch:
            return self._results.success
        try:
            line = self._encode(batch)
        except Exception as error:  # telemetry must not break the program
            noun = NOUNS[self._results.signal]
            self._writer.warn_once(f"otel_runtime could not encode {noun}: {error!r}", exc_info=True)
            return self._results.failure
        return self._results.of(self._writer.write_line(line))

    def shutdown(self) -> None:
        """Make later exports no-ops that return ``FAILURE``."""
        self._writer.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered: every export is written before it returns."""
        return True


# The SDK's processors take a SpanExporter or a LogRecordExporter (different base classes with
# differently typed ``export`` methods), so each signal keeps a class that only adds its base.
class JsonLinesSpanExporter(JsonLinesExporter[ReadableSpan, SpanExportResult], SpanExporter):
    """Appends each batch of spans as one OTLP/JSON line to ``path``."""

    def __init__(
        self, path: str | os.PathLike[str] | None = None, *, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        super().__init__(SPANS, encode_spans, path, max_bytes=max_bytes)


class JsonLinesLogExporter(JsonLinesExporter[ReadableLogRecord, LogRecordExportResult], LogRecordExporter):
    """Appends each batch of log records as one OTLP/JSON line to ``path``."""

    def __init__(
        self, path: str | os.PathLike[str] | None = None, *, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        super().__init__(LOGS, encode_logs, path, max_bytes=max_bytes)
