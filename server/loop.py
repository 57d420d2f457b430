"""The socket loop: one ROUTER answering every request at all times, plus the worker's event PAIR.

All socket I/O happens on this thread. Requests are cheap to answer (validation, lookups, queueing);
jobs run on the worker thread, which reports back over an inproc PAIR that this loop polls with the
ROUTER. Every request gets exactly one reply echoing its `rid` — malformed input included — and a
handler bug is answered with `internal` instead of taking the loop down.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Callable
from typing import Any

import msgpack
import zmq
import zmq.auth.thread

from ..core.cache import process_cache
from ..exchange.asset import codec
from ..exchange.wire import protocol
from ..exchange.wire.jobs import JobSpec, job_spec
from ..exchange.wire.protocol import ErrorCode, JobState, Message, ProtocolError
from .capabilities import Probe, capabilities
from .config import ServerConfig
from .kinds import KINDS, JobInput, JobKind
from .logs import log_event
from .models import memory_report
from .security import bind_host
from .store import JobRecord, JobStore, new_job_id
from .version import SERVER_VERSION
from .worker import Worker

HEARTBEAT_IVL_MS = 1000
HEARTBEAT_TIMEOUT_MS = 5000
MAX_REQUESTS_PER_TURN = 64
"""Requests handled before the loop looks at worker events again, so progress is never starved."""
MAX_JOBS_LISTED = 1000
DROP_WARN_INTERVAL = 10.0


class Server:
    def __init__(self, config: ServerConfig, log: logging.Logger, kinds: dict[str, JobKind] | None = None) -> None:
        self.config = config
        self.log = log
        self.kinds = kinds if kinds is not None else KINDS
        self.context = zmq.Context()
        self.store = JobStore(config.data_dir, config.keep_jobs, log)
        self.models = process_cache()
        self.probe = Probe(config, log)
        self.stopping = False
        self.clean_exit = True
        self._closing = False
        self._router: zmq.Socket | None = None
        self._pair: zmq.Socket | None = None
        self._auth: zmq.auth.thread.ThreadAuthenticator | None = None
        self._worker: Worker | None = None
        self._drop_warned: dict[bytes, float] = {}
        self._handlers: dict[str, Callable[[bytes, Message], None]] = {
            "hello": self._hello, "submit": self._submit, "cancel": self._cancel, "status": self._status,
            "watch": self._watch, "jobs": self._jobs, "fetch": self._fetch, "release": self._release,
            "ping": self._ping,
        }

    # -- lifecycle -----------------------------------------------------------------------------

    def request_stop(self, *_: object) -> None:
        """Signal handler: the loop notices within one poll interval and shuts down cleanly.
        A second signal while shutting down means "now": exit at once (results not yet on disk are lost)."""
        if self.stopping:
            log_event(self.log, "server.forced_exit", logging.WARNING)
            logging.shutdown()
            os._exit(1)
        self.stopping = True

    def start(self) -> None:
        """Load past jobs, bind, start the worker. zmq.ZMQError if the address cannot be bound."""
        restored = self.store.load()
        self._router = self._make_router()
        self._pair = self.context.socket(zmq.PAIR)
        self._pair.setsockopt(zmq.LINGER, 0)
        sink = f"inproc://strata-worker-{secrets.token_hex(4)}"
        self._pair.bind(sink)
        self.probe.start()  # the compute environment, found while the server already answers
        self._worker = Worker(self.context, sink, self.store, self.models, self.log, self.kinds, env=self.probe.wait)
        self._worker.start()
        log_event(self.log, "server.started", bind=self.config.bind, data_dir=str(self.config.data_dir),
                  version=SERVER_VERSION, curve=self.config.curve is not None, jobs_restored=restored)

    def serve(self) -> int:
        """Run until `request_stop`; returns the process exit code (0 after a clean shutdown)."""
        self.start()
        try:
            self._loop()
        finally:
            self._shutdown()
        return 0

    def _make_router(self) -> zmq.Socket:
        sock = self.context.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 1000)  # let terminal events flush at shutdown
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)  # a vanished client is an error we can clean up after
        sock.setsockopt(zmq.MAXMSGSIZE, self.config.max_message_bytes)
        sock.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_IVL_MS)
        sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_MS)
        sock.setsockopt(zmq.HEARTBEAT_TTL, HEARTBEAT_TIMEOUT_MS)
        if ":" in bind_host(self.config.bind)[1]:
            sock.setsockopt(zmq.IPV6, 1)
        curve = self.config.curve
        if curve is not None:
            self._auth = zmq.auth.thread.ThreadAuthenticator(self.context, log=self.log.getChild("auth"))
            self._auth.start()
            self._auth.configure_curve(domain="*", location=str(curve.authorized_dir))
            sock.curve_secretkey = curve.secret
            sock.curve_publickey = curve.public
            sock.curve_server = True
        try:
            sock.bind(self.config.bind)
        except zmq.ZMQError:
            sock.close(linger=0)
            if self._auth is not None:
                self._auth.stop()
            raise
        return sock

    def _loop(self) -> None:
        assert self._router is not None and self._pair is not None
        poller = zmq.Poller()
        poller.register(self._router, zmq.POLLIN)
        poller.register(self._pair, zmq.POLLIN)
        next_beat = time.monotonic() + self.config.heartbeat
        while not self.stopping:
            wait = min(max(next_beat - time.monotonic(), 0.0), 0.25)
            try:
                ready = dict(poller.poll(int(wait * 1000)))
                if self._pair in ready:
                    self._drain_worker()
                if self._router in ready:
                    self._drain_requests()
                if time.monotonic() >= next_beat:
                    self._heartbeat()
                    next_beat = time.monotonic() + self.config.heartbeat
            except Exception:  # requests have their own handler; this is for bugs elsewhere: log, keep serving
                log_event(self.log, "loop.error", logging.ERROR, exc_info=True)
                time.sleep(0.01)

    def _shutdown(self) -> None:
        """Queued jobs fail with shutting_down, the running one is cancelled (and given a few seconds
        to reach a progress check), subscribers get terminal events, sockets close."""
        log_event(self.log, "server.stopping")
        self._closing = True
        worker = self._worker
        if worker is not None and self._router is not None:
            with self.store.lock:
                queued = self.store.queued()
                for record in queued:
                    record.fail(ErrorCode.SHUTTING_DOWN, "the server shut down before this job started")
                    self.store.save(record)
            for record in queued:
                self._log_finished(record)
                self._send_terminal(record)
            running = worker.current
            if running is not None:
                running.cancel_requested = True
                running.cancel.set()
            worker.jobs.put(None)
            deadline = time.monotonic() + self.config.shutdown_grace
            while worker.is_alive() and time.monotonic() < deadline:
                if self._pair is not None and self._pair.poll(50):
                    self._drain_worker()
                if self._router.poll(0):
                    self._drain_requests()
            self._drain_worker()
            if not worker.is_alive():
                worker.writer.close()  # results still being written reach the disk before we exit
            else:
                # A stage that never reports progress cannot see the cancel; stop waiting for it.
                self.clean_exit = False
                stuck = worker.current
                if stuck is not None and not stuck.terminal_sent:
                    with self.store.lock:
                        stuck.fail(ErrorCode.SHUTTING_DOWN, "the server shut down while this job was running")
                        self.store.save(stuck)
                    self._send_terminal(stuck)
                log_event(self.log, "server.worker_stuck", logging.WARNING,
                          job=stuck.job_id if stuck else "")
        if self._router is not None:
            self._router.close(linger=1000)
        if self._pair is not None:
            self._pair.close(linger=0)
        if self._auth is not None:
            self._auth.stop()
        if self.clean_exit:
            self.context.term()
        log_event(self.log, "server.stopped")

    # -- sending -------------------------------------------------------------------------------

    def _send(self, identity: bytes, frames: list[Any]) -> bool:
        assert self._router is not None
        try:
            self._router.send_multipart([identity, *frames], copy=False, flags=zmq.NOBLOCK)
            return True
        except zmq.Again:  # the client stopped reading and its queue is full: drop, it can fetch later
            now = time.monotonic()
            if now - self._drop_warned.get(identity, -1e9) > DROP_WARN_INTERVAL:  # not once per event
                self._drop_warned[identity] = now
                log_event(self.log, "send.dropped", logging.WARNING, client=identity.hex(),
                          reason="the client is not reading; events are dropped until it does")
        except zmq.ZMQError as exc:
            if exc.errno == zmq.EHOSTUNREACH:  # disconnected: forget its subscriptions
                self._drop_warned.pop(identity, None)
                for record in self.store.active():
                    record.subscribers.discard(identity)
            else:
                log_event(self.log, "send.failed", logging.WARNING, client=identity.hex(), error=str(exc))
        return False

    def _reply(self, identity: bytes, request: Message, type_: str, fields: dict[str, Any],
               frames: list[Any] | tuple = ()) -> None:
        self._send(identity, protocol.pack(type_, {**fields, "rid": request.rid}, frames))

    def _publish(self, record: JobRecord, frames: list[Any]) -> None:
        for identity in list(record.subscribers):
            self._send(identity, frames)

    def _terminal_frames(self, record: JobRecord) -> list[Any]:
        if record.state == JobState.DONE:
            frames = self.store.result_frames(record)
            if frames is not None:
                return protocol.pack("result", {"job_id": record.job_id, "frames": len(frames)}, frames)
            return protocol.error_frames(ErrorCode.NOT_FOUND, "the result of this job is no longer stored",
                                         job_id=record.job_id)
        error = record.error or {"code": ErrorCode.INTERNAL, "message": "the job ended without a result"}
        return protocol.error_frames(error["code"], error["message"], error.get("detail"), job_id=record.job_id)

    def _log_finished(self, record: JobRecord) -> None:
        """For jobs that end without reaching the worker (cancelled while queued, shutdown)."""
        error = record.error or {}
        log_event(self.log, "job.finished", logging.INFO, job=record.job_id, kind=record.kind,
                  state=str(record.state), seconds=0.0, code=error.get("code", ""), message=error.get("message", ""))

    def _send_terminal(self, record: JobRecord) -> None:
        """The job's last event, once, to everyone watching; later watchers get it on `watch`."""
        if record.terminal_sent:
            return
        self._publish(record, self._terminal_frames(record))
        record.subscribers.clear()
        with self.store.lock:
            record.terminal_sent = True
            record.drop_result_if_done()

    # -- worker events -------------------------------------------------------------------------

    def _drain_worker(self) -> None:
        assert self._pair is not None
        while True:
            try:
                data = self._pair.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            event = msgpack.unpackb(data, raw=False)
            record = self.store.get(event["job_id"])
            if record is None:
                continue
            if event["event"] == "progress":
                fields = {k: event[k] for k in ("job_id", "stage", "fraction", "text", "elapsed")}
                self._publish(record, protocol.pack("progress", fields))
            elif event["event"] == "finished":
                self._send_terminal(record)

    def _heartbeat(self) -> None:
        for record in self.store.active():
            if record.subscribers:
                self._publish(record, protocol.pack("heartbeat", {
                    "job_id": record.job_id, "state": str(record.state), "stage": record.stage,
                    "elapsed": round(record.elapsed, 3)}))

    # -- requests ------------------------------------------------------------------------------

    def _drain_requests(self) -> None:
        assert self._router is not None
        for _ in range(MAX_REQUESTS_PER_TURN):
            try:
                parts = self._router.recv_multipart(copy=False, flags=zmq.NOBLOCK)
            except zmq.Again:
                return
            identity = parts[0].bytes
            self._handle(identity, [p.buffer for p in parts[1:]])

    def _handle(self, identity: bytes, frames: list[memoryview]) -> None:
        msg: Message | None = None
        try:
            msg = protocol.unpack(frames, from_client=True)
            total = sum(f.nbytes for f in frames)
            if total > self.config.max_message_bytes:
                raise ProtocolError(ErrorCode.TOO_LARGE, f"message of {total} bytes; this server accepts at most "
                                    f"{self.config.max_message_bytes} (--max-message-mb)",
                                    {"bytes": total, "limit": self.config.max_message_bytes})
            log_event(self.log, "request", logging.DEBUG, type=msg.type, client=identity.hex(), rid=msg.rid)
            self._handlers[msg.type](identity, msg)
        except ProtocolError as exc:
            detail = dict(exc.detail)
            rid = detail.pop("rid", None) if msg is None else msg.rid
            job_id = msg.fields.get("job_id") if msg is not None else None
            log_event(self.log, "request.refused", logging.INFO, type=msg.type if msg else "?", code=exc.code,
                      message=exc.message, client=identity.hex())
            self._send(identity, protocol.error_frames(exc.code, exc.message, detail,
                                                       job_id if isinstance(job_id, str) else None, rid))
        except Exception as exc:  # a bug in a handler: answer it, log it, keep serving
            log_event(self.log, "request.crashed", logging.ERROR, exc_info=True, type=msg.type if msg else "?")
            self._send(identity, protocol.error_frames(ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}",
                                                       rid=msg.rid if msg else None))

    def _record(self, msg: Message) -> JobRecord:
        job_id = msg.fields["job_id"]
        record = self.store.get(job_id)
        if record is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, f"no job {job_id!r} on this server", {"job_id": job_id})
        return record

    def _job_fields(self, record: JobRecord) -> dict[str, Any]:
        data = record.public()
        if record.state == JobState.QUEUED:
            data["position"] = self.store.position(record)
        return {"job": data}

    def _hello(self, identity: bytes, msg: Message) -> None:
        version = protocol.negotiate(msg.fields["versions"])
        self.probe.start()
        self._reply(identity, msg, "welcome", {"version": version, "server": f"strata-server/{SERVER_VERSION}",
                                                "capabilities": self._capabilities()})

    def _capabilities(self) -> dict[str, Any]:
        current = self._worker.current if self._worker else None
        return capabilities(
            kinds=self.kinds, models=self.models, probe=self.probe, data_dir=str(self.config.data_dir),
            limits={"max_message_bytes": self.config.max_message_bytes, "max_queue": self.config.max_queue,
                    "max_header_bytes": protocol.MAX_HEADER_BYTES},
            queue={"running": current.job_id if current else None, "queued": len(self.store.queued())},
            curve=self.config.curve is not None)

    def _submit(self, identity: bytes, msg: Message) -> None:
        if self._closing:
            raise ProtocolError(ErrorCode.SHUTTING_DOWN, "the server is shutting down")
        name = msg.fields["kind"]
        spec = job_spec(name)
        if name not in self.kinds:
            raise ProtocolError(ErrorCode.UNKNOWN_JOB_KIND, f"this server does not run {name!r} jobs; it runs "
                                f"{', '.join(self.kinds)}", {"kind": name})
        params = spec.validate(msg.fields.get("params") or {})
        env, _ = self.probe.snapshot()
        # Said now, not after a queue wait. While the device is still being found (the first second after
        # start), only a missing pipeline refuses: the worker waits for the device anyway.
        reason = self.kinds[name].unavailable(env, stages=env is not None)
        if reason is not None:
            raise ProtocolError(ErrorCode.UNAVAILABLE, f"this server cannot run {name!r} jobs: {reason}",
                                {"kind": name, "reason": reason})
        inputs = self._inputs(spec, msg)
        if len(self.store.queued()) >= self.config.max_queue:
            raise ProtocolError(ErrorCode.BUSY, f"{self.config.max_queue} jobs are already queued; try again later",
                                {"queued": self.config.max_queue})
        record = JobRecord(new_job_id(), name, params, time.time())
        record.inputs = inputs
        record.subscribers.add(identity)
        self.store.add(record)
        assert self._worker is not None
        self._worker.jobs.put(record.job_id)
        log_event(self.log, "job.queued", job=record.job_id, kind=name, client=identity.hex(),
                  input_bytes=sum(i.nbytes for i in inputs.values()))
        self._reply(identity, msg, "accepted", {"job_id": record.job_id, "position": self.store.position(record)})

    def _inputs(self, spec: JobSpec, msg: Message) -> dict[str, JobInput]:
        """The submit's inputs checked against the job spec (names, kinds, sizes) and asset inputs
        decoded, so a bad input is refused now instead of failing a queued job later."""
        declared = msg.fields.get("inputs") or {}
        resolved = protocol.input_frames(declared, msg.frames)
        specs = {s.name: s for s in spec.inputs}
        out: dict[str, JobInput] = {}
        for name, (kind, frames) in resolved.items():
            input_spec = specs.get(name)
            if input_spec is None:
                raise ProtocolError(ErrorCode.INVALID_INPUT, f"{spec.kind} takes no input {name!r}; its inputs: "
                                    f"{', '.join(specs) or 'none'}", {"input": name})
            if kind != input_spec.kind:
                raise ProtocolError(ErrorCode.INVALID_INPUT, f"{spec.kind}: input {name!r} must be of kind "
                                    f"{input_spec.kind!r}, not {kind!r}", {"input": name})
            size = sum(memoryview(f).nbytes for f in frames)
            if size > input_spec.max_bytes:
                raise ProtocolError(ErrorCode.TOO_LARGE, f"{spec.kind}: input {name!r} is {size} bytes; the limit "
                                    f"is {input_spec.max_bytes}", {"input": name, "bytes": size,
                                                                   "limit": input_spec.max_bytes})
            filename = declared[name].get("filename")
            out[name] = JobInput(name, kind, frames, filename=filename if isinstance(filename, str) else None)
        spec.check_inputs(set(out))
        for job_input in out.values():
            if job_input.kind == "asset":
                try:
                    job_input.asset = codec.decode(job_input.frames)
                except codec.AssetError as exc:
                    raise ProtocolError(ErrorCode.INVALID_INPUT, f"input {job_input.name!r} is not a valid asset: "
                                        f"{exc}", {"input": job_input.name, "path": exc.path}) from None
                except Exception as exc:  # numpy on hostile data; still the sender's fault
                    raise ProtocolError(ErrorCode.INVALID_INPUT, f"input {job_input.name!r} is not a valid asset: "
                                        f"{type(exc).__name__}: {exc}", {"input": job_input.name}) from None
        return out

    def _cancel(self, identity: bytes, msg: Message) -> None:
        record = self._record(msg)
        queued_cancel = False
        with self.store.lock:
            if record.state == JobState.QUEUED:
                record.cancel_requested = True
                record.fail(ErrorCode.CANCELLED, "cancelled by the user before it started")
                self.store.save(record)
                queued_cancel = True
            elif record.state == JobState.RUNNING:
                record.cancel_requested = True
                record.cancel.set()
        log_event(self.log, "job.cancel", job=record.job_id, state=str(record.state), client=identity.hex())
        self._reply(identity, msg, "job", self._job_fields(record))
        if queued_cancel:
            record.inputs = None
            self._log_finished(record)
            self._send_terminal(record)

    def _status(self, identity: bytes, msg: Message) -> None:
        self._reply(identity, msg, "job", self._job_fields(self._record(msg)))

    def _watch(self, identity: bytes, msg: Message) -> None:
        record = self._record(msg)
        self._reply(identity, msg, "job", self._job_fields(record))
        if record.terminal_sent:
            self._send(identity, self._terminal_frames(record))
        else:
            record.subscribers.add(identity)

    def _jobs(self, identity: bytes, msg: Message) -> None:
        limit = msg.fields.get("limit", 50)
        if limit < 1:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"jobs.limit must be at least 1, got {limit}")
        records = self.store.recent(min(limit, MAX_JOBS_LISTED))
        self._reply(identity, msg, "job_list", {"jobs": [self._job_fields(r)["job"] for r in records]})

    def _fetch(self, identity: bytes, msg: Message) -> None:
        record = self._record(msg)
        if not record.state.finished:
            raise ProtocolError(ErrorCode.NOT_FINISHED, f"job {record.job_id} is {record.state}",
                                {"state": str(record.state)})
        if record.state != JobState.DONE:
            error = record.error or {}
            raise ProtocolError(error.get("code", ErrorCode.JOB_FAILED), error.get("message", "the job failed"),
                                error.get("detail"))
        frames = self.store.result_frames(record)
        if frames is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, f"the result of job {record.job_id} is no longer stored",
                                {"job_id": record.job_id})
        self._reply(identity, msg, "result", {"job_id": record.job_id, "frames": len(frames)}, frames)

    def _release(self, identity: bytes, msg: Message) -> None:
        released = self.models.release()
        log_event(self.log, "models.released", models=",".join(released))
        self._reply(identity, msg, "released", {"models": released, "memory": memory_report()})

    def _ping(self, identity: bytes, msg: Message) -> None:
        self._reply(identity, msg, "pong", {"time": time.time()})
