"""The single worker thread that runs jobs one at a time (GPU work is serialised), and its Progress.

The worker never touches the client-facing ROUTER socket (zmq sockets are not thread-safe). It
tells the socket loop what happened over an inproc PAIR socket (`EventSink`); the loop forwards
progress to the job's subscribers and sends the terminal result/error. Result frames themselves do
not travel over the PAIR: they are left on the job record (same process) and the loop sends them.
"""

from __future__ import annotations

import dataclasses
import logging
import platform
import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import msgpack
import zmq

from ..core.cache import ModelCache
from ..core.compute import ComputeEnv
from ..core.progress import Cancelled, Progress
from ..exchange.asset import codec
from ..exchange.asset.schema import HumanAsset
from ..exchange.wire.protocol import PROTOCOL_VERSION, ErrorCode, JobState
from .kinds import KINDS, Encoded, JobContext, JobKind
from .logs import log_event
from .store import JobRecord, JobStore, ResultWriter
from .version import SERVER_VERSION

PROGRESS_INTERVAL = 0.05
"""Seconds between forwarded progress reports of one stage: pipelines may report from tight loops."""


class EventSink:
    """The worker's end of the inproc PAIR to the socket loop. Sends are locked so a pipeline that
    reports progress from a helper thread cannot corrupt the socket."""

    def __init__(self, context: zmq.Context, address: str) -> None:
        self._sock = context.socket(zmq.PAIR)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.connect(address)
        self._lock = threading.Lock()

    def post(self, event: str, **fields: Any) -> None:
        data = msgpack.packb({"event": event, **fields}, use_bin_type=True)
        with self._lock:
            self._sock.send(data)

    def close(self) -> None:
        with self._lock:
            self._sock.close(linger=0)


class JobProgress(Progress):
    """Progress of one job: `check()` raises Cancelled once the job's cancel flag is set, `emit` updates
    the record and forwards (throttled) progress events to the loop."""

    def __init__(self, record: JobRecord, sink: EventSink) -> None:
        super().__init__()
        self.record = record
        self.sink = sink
        self._started = time.monotonic()
        self._last_emit = 0.0
        self._last_stage = ""

    def check(self) -> None:
        if self.record.cancel.is_set():
            raise Cancelled(f"job {self.record.job_id} was cancelled")

    def emit(self, stage: str, fraction: float, text: str) -> None:
        record = self.record
        record.stage, record.fraction, record.text = stage, fraction, text
        now = time.monotonic()
        if stage == self._last_stage and fraction < 1.0 and now - self._last_emit < PROGRESS_INTERVAL:
            return
        self._last_emit, self._last_stage = now, stage
        self.sink.post("progress", job_id=record.job_id, stage=stage, fraction=float(fraction), text=text,
                       elapsed=round(now - self._started, 3))


def server_versions() -> dict[str, str]:
    versions = {"strata": SERVER_VERSION, "python": platform.python_version(), "protocol": str(PROTOCOL_VERSION)}
    for name in ("numpy", "torch"):
        module = sys.modules.get(name)  # only what is loaded: never import torch to report it
        if module is not None:
            versions[name] = str(getattr(module, "__version__", "?"))
    return versions


def error_of(exc: BaseException) -> tuple[str, str, dict[str, Any]] | None:
    """(code, message, detail) of an exception that carries a string `code` (JobError, ProtocolError,
    core's PhotoError...), else None."""
    code = getattr(exc, "code", None)
    if not isinstance(code, str) or not code:
        return None
    message = getattr(exc, "message", None)
    message = message if isinstance(message, str) and message else str(exc)
    detail: dict[str, Any] = {}
    for attr in ("detail", "details"):
        value = getattr(exc, attr, None)
        if isinstance(value, dict):
            detail.update(value)
    hint = getattr(exc, "hint", None)
    if isinstance(hint, str) and hint:
        detail["hint"] = hint
    return code, message, _plain(detail)


def _plain(value: Any) -> Any:
    """`value` reduced to what msgpack and JSON both carry (pipelines may put anything in details)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


class Worker(threading.Thread):
    """Takes job ids off `jobs` and runs them; `None` stops it."""

    def __init__(self, context: zmq.Context, sink_address: str, store: JobStore, models: ModelCache,
                 log: logging.Logger, kinds: dict[str, JobKind] | None = None,
                 env: Callable[[], ComputeEnv] = ComputeEnv) -> None:
        super().__init__(name="strata-worker", daemon=True)
        self.jobs: queue.Queue[str | None] = queue.Queue()
        self.store = store
        self.models = models
        self.log = log
        self.kinds = kinds if kinds is not None else KINDS
        self.env = env
        """Gives the server's compute environment (waits for the start-up probe the first time)."""
        self.current: JobRecord | None = None
        self._sink = EventSink(context, sink_address)
        self.writer = ResultWriter(store)

    def start(self) -> None:
        self.writer.start()  # the owner closes it (flushing queued results) after this thread ends
        super().start()

    def run(self) -> None:
        try:
            while (job_id := self.jobs.get()) is not None:
                record = self._claim(job_id)
                if record is None:
                    continue
                self.current = record
                try:
                    self._run(record)
                except Exception:  # a bug here must not stop the queue: fail this job, keep serving
                    log_event(self.log, "worker.bug", logging.ERROR, exc_info=True, job=record.job_id)
                    if not record.state.finished:
                        record.fail(ErrorCode.INTERNAL, "the server failed while finishing this job")
                        self._sink.post("finished", job_id=record.job_id)
                        self.writer.submit(record, None)
                finally:
                    self.current = None
        finally:
            self._sink.close()

    def _claim(self, job_id: str) -> JobRecord | None:
        with self.store.lock:
            record = self.store.get(job_id)
            if record is None or record.state != JobState.QUEUED:
                return None  # cancelled while queued
            record.state = JobState.RUNNING
            record.started = time.time()
            self.store.save(record)
        return record

    def _run(self, record: JobRecord) -> None:
        log_event(self.log, "job.started", job=record.job_id, kind=record.kind)
        self._sink.post("progress", job_id=record.job_id, stage="start", fraction=0.0, text=record.kind, elapsed=0.0)
        progress = JobProgress(record, self._sink)
        ctx = JobContext(record.job_id, record.kind, record.params, record.inputs or {}, progress, self.models,
                         self.log, self.env())
        frames: list[Any] | None = None
        try:
            progress.check()
            result = self.kinds[record.kind].run(ctx)
            frames = self._encode(result, record, ctx, progress)
        except Cancelled:
            record.fail(ErrorCode.CANCELLED, "cancelled by the user")
        except Exception as exc:
            known = error_of(exc)
            if known is not None:
                record.fail(*known)
            else:
                log_event(self.log, "job.crashed", logging.ERROR, exc_info=True, job=record.job_id,
                          kind=record.kind, error=repr(exc))
                record.fail(ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}", {"exception": type(exc).__name__})
        record.inputs = None
        ctx.inputs = {}
        if frames is not None:
            record.result_frames = frames
            record.result = {"frames": len(frames), "bytes": sum(memoryview(f).nbytes for f in frames)}
            record.stage, record.fraction = "done", 1.0
            record.state = JobState.DONE
            record.finished = time.time()
        # Tell the loop first, so the client gets its result while the writer stores it.
        self._sink.post("finished", job_id=record.job_id)
        level = logging.WARNING if record.state == JobState.FAILED else logging.INFO
        log_event(self.log, "job.finished", level, job=record.job_id, kind=record.kind, state=str(record.state),
                  seconds=round(record.elapsed, 3), code=(record.error or {}).get("code", ""),
                  message=(record.error or {}).get("message", ""))
        self.writer.submit(record, frames)

    def _encode(self, result: Any, record: JobRecord, ctx: JobContext, progress: JobProgress) -> list[Any]:
        """The asset frames of a job's result, with provenance filled by the server for HumanAssets."""
        if isinstance(result, Encoded):
            return list(result.frames)
        if not isinstance(result, HumanAsset):
            raise TypeError(f"the {record.kind!r} job returned {type(result).__name__}, not a HumanAsset")
        timings = progress.finish()
        record.input_hash = ctx.input_hash()
        p = result.provenance
        provenance = dataclasses.replace(
            p,
            job_kind=record.kind,
            params=dict(record.params),
            input_hash=p.input_hash or record.input_hash,
            created=p.created or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            versions={**server_versions(), **p.versions},
            timings={**{k: round(v, 4) for k, v in timings.items()}, **p.timings},
        )
        frames = codec.encode(dataclasses.replace(result, provenance=provenance))
        try:
            codec.decode(frames)  # clients must never receive an asset they would reject
        except codec.AssetError as exc:
            raise _InvalidResult(exc) from exc
        return frames


class _InvalidResult(Exception):
    code = ErrorCode.INTERNAL

    def __init__(self, exc: codec.AssetError) -> None:
        super().__init__(f"the pipeline produced an invalid asset: {exc}")
        self.detail = {"path": exc.path}
