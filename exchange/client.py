"""The one Python client of a Strata server: the CLI, the tests, the benches and the Blender add-on use it.

It depends on zmq, msgpack, numpy and the standard library only, and reaches the protocol and the
asset codec through RELATIVE imports, because the Blender add-on vendors this file together with
the rest of the exchange package (``wire/``, ``asset/``) as its ``_lib``. Do not import anything else of
ours here.

Model: one DEALER socket. Every request carries a request id (``rid``) that the server echoes, so a
reply is matched to its request even when job events (progress, heartbeat, result, error — they carry
a ``job_id`` and no ``rid``) arrive in between; those are buffered, never dropped, until someone asks
for them (`poll_event`, `events`, `wait`). A Client is not thread-safe: use it from one thread (the
add-on drives it from a timer or a single receiver thread).

Large data is sent and received zero-copy: asset arrays leave as views of the caller's numpy arrays
and results are decoded as read-only views of the received frames.

Failure model: a request that gets no reply within `timeout` raises `ServerUnavailable` and resets the
socket, so a request that never reached a server cannot surprise a server started later. Events the
server sent before it went away stay readable. Jobs are the server's, not the connection's: after any
reconnect, `watch(job_id)` or `fetch(job_id)` picks a job up again (its state survives restarts).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import zmq

from .asset import codec
from .asset.schema import HumanAsset
from .wire import jobs as job_specs
from .wire import protocol
from .wire.protocol import ErrorCode, ProtocolError

DEFAULT_ADDRESS = "tcp://127.0.0.1:5555"
HEARTBEAT_IVL_MS = 1000
HEARTBEAT_TIMEOUT_MS = 5000
EVENT_TYPES = frozenset({"progress", "heartbeat", "result", "error"})
TERMINAL_TYPES = frozenset({"result", "error"})
MAX_BUFFERED_EVENTS = 10_000
START_HINT = "start one with `strata-server` (or `make server`)"


class ServerUnavailable(ConnectionError):
    """No server answered in time: not started, wrong address, or (with CURVE) our key is not authorized."""

    def __init__(self, address: str, timeout: float, what: str = "") -> None:
        doing = f" to {what}" if what else ""
        super().__init__(f"no Strata server answered{doing} at {address} within {timeout:g} s; {START_HINT}")
        self.address = address
        self.timeout = timeout


class RemoteError(ProtocolError):
    """The server refused a request or a job failed; `code` is a stable ErrorCode or a pipeline's code."""

    def __init__(self, code: str, message: str, detail: dict[str, Any] | None = None,
                 job_id: str | None = None) -> None:
        super().__init__(code, message, detail)
        self.job_id = job_id

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


# ---------------------------------------------------------------------------------------------
# CURVE keys


@dataclass(frozen=True)
class CurveKeys:
    """What a client needs to talk to a CURVE-secured server: the server's public key and its own pair.

    Keys are the Z85 text form used by zmq.auth certificate files (40 bytes each).
    """

    server_public: bytes
    client_public: bytes
    client_secret: bytes

    @classmethod
    def load(cls, directory: str | os.PathLike, client: str = "client") -> CurveKeys:
        """Load from a key directory laid out by `generate_keys`: ``server.key`` and
        ``clients/<client>.key_secret`` (a directory holding just those two files works too)."""
        import zmq.auth

        d = Path(directory)
        server_public, _ = zmq.auth.load_certificate(d / "server.key")
        for candidate in (d / "clients" / f"{client}.key_secret", d / f"{client}.key_secret"):
            if candidate.exists():
                public, secret = zmq.auth.load_certificate(candidate)
                if secret is None:
                    raise ValueError(f"{candidate} holds no secret key")
                return cls(server_public, public, secret)
        raise FileNotFoundError(f"no client key {client!r} in {d} (expected clients/{client}.key_secret); "
                                f"create keys with `strata-server keys --out {d}`")


def generate_keys(directory: str | os.PathLike, clients: Sequence[str] = ("client",)) -> Path:
    """Create a CURVE key directory (existing keys are kept, so adding a client never locks others out)::

        server.key, server.key_secret     the server's pair (give server.key to clients)
        authorized_clients/<name>.key     public keys the server accepts
        clients/<name>.key(_secret)       each client's pair, to copy to that client
    """
    import shutil

    import zmq.auth

    d = Path(directory)
    (d / "authorized_clients").mkdir(parents=True, exist_ok=True)
    (d / "clients").mkdir(exist_ok=True)
    if not (d / "server.key_secret").exists():
        zmq.auth.create_certificates(d, "server")
    for name in clients:
        if not (d / "clients" / f"{name}.key_secret").exists():
            zmq.auth.create_certificates(d / "clients", name)
        shutil.copyfile(d / "clients" / f"{name}.key", d / "authorized_clients" / f"{name}.key")
    for secret in [d / "server.key_secret", *(d / "clients").glob("*.key_secret")]:
        secret.chmod(0o600)
    return d


# ---------------------------------------------------------------------------------------------
# events


@dataclass
class Event:
    """A job event pushed by the server: progress, heartbeat, or the terminal result / error.

    `fields` is the message header (stage, fraction, text, elapsed, state, code, message, ...).
    For a result, `frames` are the raw asset frames (save them as a .strata without re-encoding)
    and `asset` decodes them on first access (zero-copy views of the frames).
    """

    type: str
    job_id: str
    fields: dict[str, Any]
    frames: list[Any] = field(default_factory=list, repr=False)

    @property
    def terminal(self) -> bool:
        return self.type in TERMINAL_TYPES

    @cached_property
    def asset(self) -> HumanAsset | None:
        return codec.decode(self.frames) if self.type == "result" else None

    def error(self) -> RemoteError | None:
        if self.type != "error":
            return None
        return RemoteError(self.fields.get("code", ErrorCode.JOB_FAILED), self.fields.get("message", ""),
                           self.fields.get("detail"), self.job_id)


# ---------------------------------------------------------------------------------------------
# the client


class Client:
    """A connection to one Strata server. See the module docstring for the model."""

    def __init__(self, address: str = DEFAULT_ADDRESS, *, timeout: float = 5.0, curve: CurveKeys | None = None,
                 context: zmq.Context | None = None) -> None:
        self.address = address
        self.timeout = float(timeout)
        self._context = context or zmq.Context.instance()
        self._curve = curve
        self._sock, self._poller = self._connect()
        self._rids = itertools.count(1)
        self._buffer: deque[Event] = deque()
        self.welcome: dict[str, Any] | None = None

    def _connect(self) -> tuple[zmq.Socket, zmq.Poller]:
        sock = self._context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        # Not IMMEDIATE: with it, libzmq discards messages already received but not yet read when the
        # connection drops (e.g. the terminal events a stopping server sends). Instead, a request that
        # times out resets the socket (`_reset`), so it can never reach a server that starts later.
        sock.setsockopt(zmq.RECONNECT_IVL, 100)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 2000)
        sock.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_IVL_MS)
        sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_MS)
        sock.setsockopt(zmq.HEARTBEAT_TTL, HEARTBEAT_TIMEOUT_MS)
        if self._curve is not None:
            sock.curve_serverkey = self._curve.server_public
            sock.curve_publickey = self._curve.client_public
            sock.curve_secretkey = self._curve.client_secret
        sock.connect(self.address)
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        return sock, poller

    def _reset(self) -> None:
        """Drop the socket and whatever it still queues for sending; connect afresh."""
        self._sock.close(linger=0)
        self._sock, self._poller = self._connect()

    # -- context manager -----------------------------------------------------------------------

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the socket (the shared zmq context stays; it belongs to the process)."""
        if not self._sock.closed:
            self._sock.close(linger=0)

    # -- requests ------------------------------------------------------------------------------

    def hello(self) -> dict[str, Any]:
        """Negotiate the protocol version; returns the welcome fields: version, server, capabilities."""
        msg = self._request("hello", {"versions": list(protocol.SUPPORTED_VERSIONS),
                                      "client": "strata-python-client"}, expect="welcome")
        if msg.fields["version"] not in protocol.SUPPORTED_VERSIONS:
            raise ProtocolError(ErrorCode.UNSUPPORTED_VERSION,
                                f"server chose protocol version {msg.fields['version']}, this client speaks "
                                f"{list(protocol.SUPPORTED_VERSIONS)}")
        self.welcome = {k: v for k, v in msg.fields.items() if k != "rid"}
        return self.welcome

    def submit(self, kind: str, params: dict[str, Any] | None = None, *, image: bytes | None = None,
               asset: HumanAsset | Sequence[Any] | None = None, files: dict[str, bytes] | None = None) -> str:
        """Queue a job; returns its id. `asset` may be a HumanAsset or its already-encoded frames
        (resent as they are); `files` are further bytes inputs by name (e.g. reconstruct's "views").
        Parameters are validated by the server against its job spec."""
        frames: list[Any] = []
        inputs: dict[str, Any] = {}
        if image is not None:
            frames.append(image)
            inputs[_input_name(kind, "bytes", "image")] = {"kind": "bytes", "frames": [1, 1]}
        for name, data in (files or {}).items():
            frames.append(data)
            inputs[name] = {"kind": "bytes", "frames": [len(frames), 1]}
        if asset is not None:
            asset_frames = codec.encode(asset) if isinstance(asset, HumanAsset) else list(asset)
            inputs[_input_name(kind, "asset", "asset")] = {"kind": "asset",
                                                           "frames": [len(frames) + 1, len(asset_frames)]}
            frames.extend(asset_frames)
        fields: dict[str, Any] = {"kind": kind, "params": dict(params or {})}
        if inputs:
            fields["inputs"] = inputs
        return self._request("submit", fields, frames, expect="accepted").fields["job_id"]

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Ask the server to cancel; returns the job record. The job's terminal event (error code
        "cancelled") follows once the job reaches its next progress check."""
        return self._request("cancel", {"job_id": job_id}, expect="job").fields["job"]

    def status(self, job_id: str) -> dict[str, Any]:
        return self._request("status", {"job_id": job_id}, expect="job").fields["job"]

    def jobs(self, limit: int = 50) -> list[dict[str, Any]]:
        """The server's most recent jobs, newest first."""
        return self._request("jobs", {"limit": int(limit)}, expect="job_list").fields["jobs"]

    def watch(self, job_id: str) -> dict[str, Any]:
        """Subscribe to a job's events (after reconnecting, or for a job another client submitted);
        returns its record. If the job already finished, its terminal event follows at once."""
        return self._request("watch", {"job_id": job_id}, expect="job").fields["job"]

    def fetch_frames(self, job_id: str) -> list[Any]:
        """The raw asset frames of a finished job's result, e.g. to save a .strata without re-encoding."""
        return self._request("fetch", {"job_id": job_id}, expect="result").frames

    def fetch(self, job_id: str) -> HumanAsset:
        return codec.decode(self.fetch_frames(job_id))

    def release(self) -> dict[str, Any]:
        """Free the server's cached models (and GPU memory); returns {"models": [...], "memory": {...}}."""
        msg = self._request("release", {}, expect="released")
        return {"models": msg.fields["models"], "memory": msg.fields["memory"]}

    def ping(self) -> float:
        """Round-trip time in seconds."""
        start = time.perf_counter()
        self._request("ping", {}, expect="pong")
        return time.perf_counter() - start

    # -- job events ----------------------------------------------------------------------------

    def poll_event(self, timeout: float) -> Event | None:
        """The oldest pending event of any job, waiting up to `timeout` seconds (0: don't wait)."""
        if self._buffer:
            return self._buffer.popleft()
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            msg = self._recv(max(deadline - time.monotonic(), 0.0))
            if msg is None:
                return None
            event = _as_event(msg)
            if event is not None:
                return event
            if time.monotonic() >= deadline:
                return None

    def events(self, job_id: str, timeout: float | None = None) -> Iterator[Event]:
        """Yield `job_id`'s events until its terminal one (result or error), which is yielded last.

        `timeout` bounds the whole wait (TimeoutError; the job keeps running). If the server goes
        quiet about the job for longer than the client timeout (it normally sends a heartbeat every
        second), the client re-subscribes with `watch`; that raises ServerUnavailable if it is gone.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        quiet_limit = max(self.timeout, 3 * HEARTBEAT_IVL_MS / 1000)
        last_heard = time.monotonic()
        while True:
            event = self._take_buffered(job_id)
            if event is None:
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    raise TimeoutError(f"job {job_id} did not finish within {timeout:g} s (it is still running; "
                                       f"cancel it or wait again)")
                wait = quiet_limit - (now - last_heard)
                if deadline is not None:
                    wait = min(wait, deadline - now)
                if wait <= 0:
                    self.watch(job_id)  # lost events or a restarted server: re-attach (raises if gone)
                    last_heard = time.monotonic()
                    continue
                event = self._next_event_for(job_id, wait)
                if event is None:
                    continue
            last_heard = time.monotonic()
            yield event
            if event.terminal:
                return

    def wait(self, job_id: str, on_event: Callable[[Event], None] | None = None,
             timeout: float | None = None) -> HumanAsset:
        """Block until the job ends; return its asset or raise RemoteError with the job's error code
        ("cancelled" when it was cancelled). `on_event` sees every event, the terminal one included."""
        for event in self.events(job_id, timeout):
            if on_event is not None:
                on_event(event)
            if event.type == "result":
                return event.asset
            error = event.error()
            if error is not None:
                raise error
        raise AssertionError("events() ended without a terminal event")  # pragma: no cover

    def run(self, kind: str, params: dict[str, Any] | None = None, *, image: bytes | None = None,
            asset: HumanAsset | Sequence[Any] | None = None, files: dict[str, bytes] | None = None,
            on_event: Callable[[Event], None] | None = None) -> HumanAsset:
        """Submit and wait. A KeyboardInterrupt while waiting cancels the job on the server first."""
        job_id = self.submit(kind, params, image=image, asset=asset, files=files)
        try:
            return self.wait(job_id, on_event)
        except KeyboardInterrupt:
            with contextlib.suppress(ServerUnavailable, ProtocolError):
                self.cancel(job_id)
            raise

    # -- plumbing ------------------------------------------------------------------------------

    def _request(self, type_: str, fields: dict[str, Any], frames: Sequence[Any] = (), *,
                 expect: str) -> protocol.Message:
        rid = next(self._rids)
        self._send(protocol.pack(type_, {**fields, "rid": rid}, frames), type_)
        deadline = time.monotonic() + self.timeout
        while True:
            msg = self._recv(max(deadline - time.monotonic(), 0.0))
            if msg is None:
                self._reset()
                raise ServerUnavailable(self.address, self.timeout, type_)
            if msg.rid != rid:
                event = _as_event(msg)  # a job event (kept) or a stale reply to a timed-out request (dropped)
                if event is not None:
                    self._keep(event)
                continue
            if msg.type == "error":
                raise RemoteError(msg.fields["code"], msg.fields["message"], msg.fields.get("detail"),
                                  msg.fields.get("job_id"))
            if msg.type != expect:
                raise ProtocolError(ErrorCode.BAD_MESSAGE, f"{type_}: expected a {expect!r} reply, got {msg.type!r}")
            _check_result(msg)
            return msg

    def _send(self, frames: list[Any], what: str) -> None:
        if self._sock.closed:
            raise RuntimeError("the client is closed")
        try:
            # copy=False: big frames go out as views of the caller's buffers (pyzmq still copies the
            # small ones below its copy threshold, which is cheaper for them).
            self._sock.send_multipart(frames, copy=False, flags=zmq.NOBLOCK)
        except zmq.Again:  # the send queue is full: nothing has been read from it for a long time
            self._reset()
            raise ServerUnavailable(self.address, self.timeout, what) from None

    def _recv(self, timeout: float) -> protocol.Message | None:
        if not self._poller.poll(int(timeout * 1000)):
            return None
        parts = self._sock.recv_multipart(copy=False)
        return protocol.unpack([p.buffer for p in parts], from_client=False)

    def _keep(self, event: Event) -> None:
        if event.terminal and any(e.terminal and e.job_id == event.job_id for e in self._buffer):
            return  # a second terminal for the same job (e.g. watch after it finished): keep one
        self._buffer.append(event)
        if len(self._buffer) > MAX_BUFFERED_EVENTS:
            for i, old in enumerate(self._buffer):
                if not old.terminal:  # drop the oldest progress/heartbeat, never a result or error
                    del self._buffer[i]
                    break

    def _take_buffered(self, job_id: str) -> Event | None:
        for i, event in enumerate(self._buffer):
            if event.job_id == job_id:
                del self._buffer[i]
                return event
        return None

    def _next_event_for(self, job_id: str, timeout: float) -> Event | None:
        deadline = time.monotonic() + timeout
        while True:
            msg = self._recv(max(deadline - time.monotonic(), 0.0))
            if msg is None:
                return None
            event = _as_event(msg)
            if event is not None and event.job_id == job_id:
                return event
            if event is not None:
                self._keep(event)
            if time.monotonic() >= deadline:
                return None


def _as_event(msg: protocol.Message) -> Event | None:
    """An event is a progress/heartbeat/result/error message with a job_id and no rid."""
    job_id = msg.fields.get("job_id")
    if msg.rid is not None or msg.type not in EVENT_TYPES or not isinstance(job_id, str):
        return None
    _check_result(msg)
    fields = {k: v for k, v in msg.fields.items() if k != "rid"}
    return Event(msg.type, job_id, fields, msg.frames)


def _check_result(msg: protocol.Message) -> None:
    if msg.type == "result" and msg.fields["frames"] != len(msg.frames):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"result announces {msg.fields['frames']} asset frames but "
                            f"carries {len(msg.frames)}")


def _input_name(kind: str, input_kind: str, fallback: str) -> str:
    """The name of `kind`'s first input of `input_kind` per the job specs this client knows
    (`fallback` for kinds it does not know, e.g. a newer server's)."""
    spec = job_specs.JOB_SPECS.get(kind)
    if spec is not None:
        for spec_input in spec.inputs:
            if spec_input.kind == input_kind:
                return spec_input.name
    return fallback
