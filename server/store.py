"""Job records and their persistence under the data directory.

Layout::

    <data-dir>/jobs/<job_id>/job.json        the record (state, params, timings, error), rewritten atomically
    <data-dir>/jobs/<job_id>/result.strata   the result asset's frames (core.asset.container.write_frames)

Persisting results is what lets a client disconnect (Blender closed, laptop asleep) and `fetch` or
`watch` later, even after a server restart. Inputs are not stored: they can be large and the
client has them. Only the newest `keep` finished jobs are kept on disk.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import re
import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..exchange.asset import container
from ..exchange.wire.protocol import ErrorCode, JobState
from .logs import log_event

JOB_ID_RE = re.compile(r"^[0-9a-f]{16}$")
"""Job ids are 16 hex digits; anything else is not one of ours (and never reaches the file system)."""
RESULT_FILE = "result.strata"
RECORD_FILE = "job.json"


def new_job_id() -> str:
    return secrets.token_hex(8)


@dataclass
class JobRecord:
    """One job. The first block is persisted and sent to clients; the rest lives only in this process."""

    job_id: str
    kind: str
    params: dict[str, Any]
    created: float
    state: JobState = JobState.QUEUED
    started: float | None = None
    finished: float | None = None
    stage: str = ""
    fraction: float = 0.0
    text: str = ""
    error: dict[str, Any] | None = None
    result: dict[str, Any] | None = None  # {"frames": n, "bytes": total} once done
    input_hash: str = ""
    cancel_requested: bool = False

    cancel: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)
    inputs: Any = field(default=None, repr=False, compare=False)
    result_frames: list[Any] | None = field(default=None, repr=False, compare=False)
    """The result while it is still being written to disk; `None` once result.strata holds it."""
    subscribers: set[bytes] = field(default_factory=set, repr=False, compare=False)
    terminal_sent: bool = field(default=False, repr=False, compare=False)
    persisted: bool = field(default=False, repr=False, compare=False)
    """result.strata is written; the in-memory frames may go once the loop has sent the terminal event."""

    def drop_result_if_done(self) -> None:
        """Let go of the in-memory result once it is both on disk and sent (call under the store lock)."""
        if self.persisted and self.terminal_sent:
            self.result_frames = None

    _PERSISTED = ("job_id", "kind", "params", "created", "state", "started", "finished", "stage", "fraction",
                  "text", "error", "result", "input_hash", "cancel_requested")

    @property
    def elapsed(self) -> float:
        if self.started is None:
            return 0.0
        return (self.finished or time.time()) - self.started

    def public(self) -> dict[str, Any]:
        """The record as sent to clients (the `job` of `job` and `job_list` replies)."""
        data = {name: getattr(self, name) for name in self._PERSISTED}
        data["state"] = str(self.state)
        data["elapsed"] = round(self.elapsed, 3)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobRecord:
        values = {name: data[name] for name in cls._PERSISTED if name in data}
        values["state"] = JobState(values.get("state", JobState.FAILED))
        return cls(**values)

    def fail(self, code: str, message: str, detail: dict[str, Any] | None = None) -> None:
        self.state = JobState.CANCELLED if code == ErrorCode.CANCELLED else JobState.FAILED
        self.error = {"code": str(code), "message": message, "detail": detail or {}}
        self.finished = time.time()


class JobStore:
    """All jobs of this server, newest last, with their files. `lock` guards state transitions that
    the socket loop and the worker thread can race on (cancel vs claim)."""

    def __init__(self, data_dir: Path, keep: int, log: logging.Logger) -> None:
        self.root = data_dir / "jobs"
        self.root.mkdir(parents=True, exist_ok=True)
        self.keep = keep
        self.log = log
        self.lock = threading.RLock()
        self._jobs: dict[str, JobRecord] = {}

    # -- lookup --------------------------------------------------------------------------------

    def get(self, job_id: str) -> JobRecord | None:
        if not JOB_ID_RE.match(job_id):
            return None
        return self._jobs.get(job_id)

    def _snapshot(self) -> list[JobRecord]:
        with self.lock:  # the worker prunes while the loop lists
            return list(self._jobs.values())

    def recent(self, limit: int) -> list[JobRecord]:
        return sorted(self._snapshot(), key=lambda r: r.created, reverse=True)[:limit]

    def queued(self) -> list[JobRecord]:
        return sorted((r for r in self._snapshot() if r.state == JobState.QUEUED), key=lambda r: r.created)

    def active(self) -> list[JobRecord]:
        return [r for r in self._snapshot() if not r.state.finished]

    def position(self, record: JobRecord) -> int:
        """0 while running, 1 for the next job to run, ... (counting a running job ahead of it)."""
        if record.state != JobState.QUEUED:
            return 0
        running = any(r.state == JobState.RUNNING for r in self._snapshot())
        queued = self.queued()
        return (queued.index(record) if record in queued else 0) + (1 if running else 0)

    # -- persistence ---------------------------------------------------------------------------

    def directory(self, record: JobRecord) -> Path:
        return self.root / record.job_id

    def add(self, record: JobRecord) -> None:
        with self.lock:
            self._jobs[record.job_id] = record
            self.save(record)

    def save(self, record: JobRecord) -> None:
        """Rewrite job.json atomically (temp file + rename): readers never see half a record."""
        directory = self.directory(record)
        directory.mkdir(exist_ok=True)
        tmp = directory / (RECORD_FILE + ".part")
        tmp.write_text(json.dumps({k: (str(v) if k == "state" else v) for k, v in record.public().items()
                                   if k != "elapsed"}, indent=1, default=str))
        os.replace(tmp, directory / RECORD_FILE)

    def write_result(self, record: JobRecord, frames: list[Any]) -> None:
        container.write_frames(self.directory(record) / RESULT_FILE, frames)

    def result_frames(self, record: JobRecord) -> list[Any] | None:
        """The result frames: from memory while it is being persisted, else memory-mapped from disk."""
        frames = record.result_frames
        if frames is not None:
            return frames
        path = self.directory(record) / RESULT_FILE
        if not path.exists():
            return None
        return container.read_frames(path)

    def load(self) -> int:
        """Read the records a previous server left. Jobs it did not finish can never finish now:
        they are marked failed (shutting_down), and a done job whose result file is gone, failed."""
        for path in sorted(self.root.glob(f"*/{RECORD_FILE}")):
            try:
                record = JobRecord.from_json(json.loads(path.read_text()))
            except (OSError, ValueError, TypeError, KeyError) as exc:
                log_event(self.log, "store.unreadable", logging.WARNING, path=str(path), error=str(exc))
                continue
            if not JOB_ID_RE.match(record.job_id) or record.job_id != path.parent.name:
                continue
            record.terminal_sent = record.persisted = True
            if not record.state.finished:
                record.fail(ErrorCode.SHUTTING_DOWN, "the server stopped before this job finished")
                self.save(record)
            elif record.state == JobState.DONE and not (path.parent / RESULT_FILE).exists():
                record.fail(ErrorCode.INTERNAL, "the result file of this job is missing")
                self.save(record)
            self._jobs[record.job_id] = record
        self.prune()
        return len(self._jobs)

    def prune(self) -> None:
        """Delete all but the newest `keep` finished jobs (records and files)."""
        with self.lock:
            finished = sorted((r for r in self._jobs.values() if r.state.finished and r.result_frames is None),
                              key=lambda r: r.created, reverse=True)
            for record in finished[self.keep:]:
                del self._jobs[record.job_id]
                shutil.rmtree(self.directory(record), ignore_errors=True)


class ResultWriter(threading.Thread):
    """Writes finished results to disk in the background, at a lower CPU priority.

    The client already has its result (the loop sends it from memory); writing 100 MB with fsync must
    not slow down the next job or the socket loop on a small machine. Until a result is on disk it is
    served from memory (`JobRecord.result_frames`), and job.json says "done" only once it is, so a
    crash never leaves a done job without its file. `close()` flushes everything queued.
    """

    def __init__(self, store: JobStore) -> None:
        super().__init__(name="strata-result-writer", daemon=True)
        self.store = store
        self._queue: queue.Queue[tuple[JobRecord, list[Any] | None] | None] = queue.Queue()

    def submit(self, record: JobRecord, frames: list[Any] | None) -> None:
        """Persist `record` (and its result `frames`, if it has one)."""
        self._queue.put((record, frames))

    def close(self, timeout: float = 60.0) -> None:
        self._queue.put(None)
        self.join(timeout)

    def run(self) -> None:
        with contextlib.suppress(AttributeError, OSError):  # Linux: per-thread niceness; loop and worker first
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        while (item := self._queue.get()) is not None:
            record, frames = item
            persisted = frames is None
            if frames is not None:
                try:
                    self.store.write_result(record, frames)
                    persisted = True
                except OSError as exc:  # keep serving it from memory; a restart loses it
                    log_event(self.store.log, "job.persist_failed", logging.ERROR, job=record.job_id,
                              error=str(exc))
            with self.store.lock:
                self.store.save(record)
                record.persisted = persisted
                record.drop_result_if_done()
            self.store.prune()
