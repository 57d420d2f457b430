"""The add-on's network side: one background thread owns the Strata client; it never touches bpy.

ZeroMQ sockets are not thread-safe and Blender data may only be touched on the main thread, so the
split is strict: the main thread puts commands on `commands` and drains `updates` (from a
`bpy.app.timers` callback in the UI, or a loop in background mode); the worker thread alone creates,
uses and closes the `Client`. Everything that crosses is plain data plus, for results, the decoded
`HumanAsset` (read-only numpy views; the worker has already written it to disk and decoded it, so the
main thread only builds Blender data).

This module imports no bpy, so it can be tested with a fake client in any Python.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

QUIET_LIMIT = 10.0
"""Seconds without any event for a running job before the worker re-attaches to it (`watch`); the
server sends a heartbeat every second, so silence this long means a lost connection."""
IDLE_POLL = 0.25
"""How long the idle worker waits for a command before it looks at the server again."""
JOB_POLL = 0.05
"""How long the worker waits for server events while jobs run: also the worst-case cancel latency."""
REFRESH_EVERY = 15.0
"""Seconds between status refreshes (device, memory, loaded models) while connected, jobs running or not."""
PROBE_REFRESH = 1.0
"""Seconds between status refreshes while the server still looks for its device (its welcome says
`probe: running`, for the few seconds torch takes to import after a start): the status line names the
device as soon as it is known rather than at the next 15 s refresh."""
ALIVE_EVERY = 2.0
"""Seconds between pings while idle and connected, so a server that stopped shows as gone within a few
seconds (not at the next refresh)."""
ALIVE_TIMEOUT = 1.5
"""How long such a ping waits for the answer."""


@dataclass
class Update:
    """One thing the main thread should know. `kind` is one of:

    connecting, connected (data = the server's welcome), disconnected (data: code, message),
    accepted (job_id; data: token, kind), progress / heartbeat (job_id; data = the event fields),
    result (job_id; asset, path; data: kind), failed (job_id or ""; data: code, message, detail),
    released (data: models, memory).
    """

    kind: str
    job_id: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    asset: Any = None
    path: str = ""


@dataclass
class _Job:
    kind: str
    token: int
    last_heard: float
    stage: str = ""


ClientFactory = Callable[[str, float, Any], Any]
"""(address, timeout, curve) -> an object with the `Client` API of exchange/client.py."""


def default_client_factory(address: str, timeout: float, curve: Any) -> Any:
    """The vendored client; imported here, in the worker, so importing the add-on never needs zmq."""
    from ._lib.client import Client

    return Client(address, timeout=timeout, curve=curve)


def load_curve_keys(directory: str, client_name: str = "client") -> Any:
    """CURVE keys from a key directory made by `strata-server keys` (see exchange/client.py)."""
    from ._lib.client import CurveKeys

    return CurveKeys.load(directory, client_name)


class Connection:
    """A background thread talking to one server address. All public methods are non-blocking and
    safe to call from the main thread; results arrive as `Update`s from `drain()`."""

    def __init__(self, address: str, *, timeout: float = 5.0, curve: Any = None, results_dir: str | Path | None = None,
                 client_factory: ClientFactory | None = None) -> None:
        self.address = address
        self.timeout = timeout
        self.curve = curve
        self.results_dir = Path(results_dir) if results_dir else None
        self.updates: queue.Queue[Update] = queue.Queue()
        self.commands: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self._factory = client_factory or default_client_factory
        self._client: Any = None
        self._welcome: dict[str, Any] = {}
        self._jobs: dict[str, _Job] = {}
        self._tokens = 0
        self._token_lock = threading.Lock()
        self._last_refresh = 0.0
        self._last_alive = 0.0
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()

    # -- main-thread API ----------------------------------------------------------------------

    def start(self) -> Connection:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="strata-connection", daemon=True)
            self._thread.start()
        return self

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 2.0) -> None:
        """Ask the worker to close its socket and end; waits up to `timeout` seconds."""
        self._stopped.set()  # also ends a connect that is still retrying
        self.commands.put(("stop", {}))
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def connect(self, wait: float = 0.0, alive: Callable[[], bool] | None = None) -> None:
        """Say hello; with `wait` > 0 keep trying that many seconds (a server that is starting), as
        long as `alive()` (e.g. "the local server process has not exited") stays true."""
        self.commands.put(("connect", {"wait": wait, "alive": alive}))

    def submit(self, kind: str, params: dict[str, Any], *, image: bytes | None = None) -> int:
        """Queue a job; returns a token that the matching `accepted` / `failed` update carries."""
        with self._token_lock:
            self._tokens += 1
            token = self._tokens
        self.commands.put(("submit", {"kind": kind, "params": params, "image": image, "token": token}))
        return token

    def cancel(self, job_id: str) -> None:
        self.commands.put(("cancel", {"job_id": job_id}))

    def release(self) -> None:
        self.commands.put(("release", {}))

    def refresh(self) -> None:
        self.commands.put(("refresh", {}))

    def drain(self) -> list[Update]:
        """Every update waiting, oldest first, without blocking."""
        out = []
        while True:
            try:
                out.append(self.updates.get_nowait())
            except queue.Empty:
                return out

    # -- worker thread --------------------------------------------------------------------------

    def _post(self, update_kind: str, job_id: str = "", /, **data: Any) -> None:
        self.updates.put(Update(update_kind, job_id, data))

    def _run(self) -> None:
        try:
            while not self._stopped.is_set():
                self._step()
        except Exception as exc:  # never die silently: the panel must say what happened
            self._post("disconnected", code="internal", message=f"connection thread failed: {exc!r}")
        finally:
            self._close()

    def _step(self) -> None:
        wait = 0.0 if self._jobs else IDLE_POLL
        try:
            name, args = self.commands.get(timeout=wait) if wait else self.commands.get_nowait()
        except queue.Empty:
            name, args = "", {}
        if name:
            getattr(self, f"_cmd_{name}")(**args)
            return
        now = time.monotonic()
        if self._jobs and self._client is not None:
            self._pump_events()
            if self._client is not None and self._refresh_due(now):
                self._cmd_refresh()  # the status too (a device still being probed at connect, models loaded)
        elif self._client is not None and self._refresh_due(now):
            self._cmd_refresh()
        elif self._client is not None and now - max(self._last_alive, self._last_refresh) > ALIVE_EVERY:
            self._check_alive(now)

    def _refresh_due(self, now: float) -> bool:
        """Time to ask for the status again: every REFRESH_EVERY, every PROBE_REFRESH while the server is
        still finding its device, and at once when a job enters a stage or ends (it may have loaded models)."""
        caps = self._welcome.get("capabilities", {}) if isinstance(self._welcome, dict) else {}
        probing = isinstance(caps, dict) and caps.get("probe", "done") != "done"
        return now - self._last_refresh > (PROBE_REFRESH if probing else REFRESH_EVERY)

    def _check_alive(self, now: float) -> None:
        """A quick ping; no answer means the server is gone (the panel says so at once)."""
        client = self._client
        saved = getattr(client, "timeout", None)
        try:
            if saved is not None:
                client.timeout = min(saved, ALIVE_TIMEOUT)
            client.ping()
            self._last_alive = now
        except Exception as exc:
            self._unavailable(exc)
        finally:
            if saved is not None and self._client is client:
                client.timeout = saved

    def _close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):  # closing a broken socket must not mask the real error
                self._client.close()
            self._client = None

    def _unavailable(self, exc: Exception) -> None:
        """The server went away: forget the socket (a new one reconnects cleanly) and the jobs."""
        self._close()
        for job_id in list(self._jobs):
            self._post("failed", job_id, code="server_lost", detail={"reason": str(exc)},
                       message=f"The connection to the server was lost while job {job_id} ran; if the server "
                               f"still runs, `strata fetch {job_id}` gets its result.")
        self._jobs.clear()
        self._post("disconnected", code="server_unavailable", message=_in_words(exc))

    def _ensure_client(self) -> Any:
        if self._client is None:
            self._client = self._factory(self.address, self.timeout, self.curve)
        return self._client

    def _hello(self) -> dict[str, Any]:
        welcome = self._ensure_client().hello()
        self._last_refresh = time.monotonic()
        self._welcome = welcome
        return welcome

    def _refusal(self, kind: str) -> tuple[str, str] | None:
        """(code, message) when the server said in its welcome that it cannot run `kind`."""
        return refusal(self._welcome, kind)

    def _cmd_stop(self) -> None:
        self._stopped.set()

    def _cmd_connect(self, wait: float, alive: Callable[[], bool] | None) -> None:
        self._post("connecting", address=self.address)
        deadline = time.monotonic() + wait
        while True:
            try:
                welcome = self._hello()
            except Exception as exc:
                self._close()
                if time.monotonic() < deadline and (alive is None or alive()) and not self._stopped.is_set():
                    time.sleep(0.2)
                    continue
                if alive is not None and not alive():
                    self._post("disconnected", code="server_exited",
                               message="the local server process exited before it answered")
                else:
                    self._post("disconnected", code=_code(exc, "server_unavailable"), message=_in_words(exc))
                return
            self._post("connected", **welcome)
            return

    def _cmd_refresh(self) -> None:
        try:
            self._post("connected", **self._hello())
        except Exception as exc:
            self._unavailable(exc)

    def _cmd_submit(self, kind: str, params: dict[str, Any], image: bytes | None, token: int) -> None:
        try:
            if self._client is None:
                self._post("connected", **self._hello())
            refusal = self._refusal(kind)
            if refusal is not None:  # say why now rather than send a job that cannot run
                self._post("failed", "", code=refusal[0], message=refusal[1], detail={}, token=token, kind=kind)
                return
            job_id = self._client.submit(kind, params, image=image)
        except Exception as exc:
            code = _code(exc, "server_unavailable")
            if code == "server_unavailable":
                self._close()
                self._post("disconnected", code=code, message=_in_words(exc))
            self._post("failed", "", code=code, message=_message(exc), detail=_detail(exc), token=token)
            return
        self._jobs[job_id] = _Job(kind, token, time.monotonic())
        self._post("accepted", job_id, token=token, kind=kind)

    def _cmd_cancel(self, job_id: str) -> None:
        if self._client is None:
            return
        try:
            self._client.cancel(job_id)
        except Exception as exc:
            code = _code(exc, "server_unavailable")
            if code == "server_unavailable":
                self._unavailable(exc)
            elif code != "not_found":
                self._post("failed", job_id, code=code, message=_message(exc), detail=_detail(exc))

    def _cmd_release(self) -> None:
        try:
            if self._client is None:
                self._hello()
            info = self._client.release()
        except Exception as exc:
            code = _code(exc, "server_unavailable")
            if code == "server_unavailable":
                self._unavailable(exc)
            else:
                self._post("failed", "", code=code, message=_message(exc), detail=_detail(exc))
            return
        self._post("released", **info)
        self._cmd_refresh()

    def _pump_events(self) -> None:
        try:
            event = self._client.poll_event(JOB_POLL)
        except Exception as exc:
            self._unavailable(exc)
            return
        now = time.monotonic()
        if event is None:
            for job_id, job in list(self._jobs.items()):
                if now - job.last_heard > QUIET_LIMIT:
                    try:
                        self._client.watch(job_id)
                        job.last_heard = now
                    except Exception as exc:
                        self._unavailable(exc)
                        return
            return
        job = self._jobs.get(event.job_id)
        if job is None:
            return  # a job of an earlier session or another client
        job.last_heard = now
        if event.type in ("progress", "heartbeat"):
            stage = str(event.fields.get("stage", ""))
            if event.type == "progress" and stage != job.stage:
                job.stage = stage
                self._last_refresh = 0.0  # a new stage may have loaded models: the status line says so now
            self._post(event.type, event.job_id, **event.fields)
            return
        del self._jobs[event.job_id]
        self._last_refresh = 0.0  # the job may have loaded models: the status line says so now
        if event.type == "result":
            self._deliver(event, job)
        elif event.type == "error":
            fields = event.fields
            self._post("failed", event.job_id, code=str(fields.get("code", "job_failed")),
                       message=str(fields.get("message", "")), detail=dict(fields.get("detail") or {}),
                       kind=job.kind, token=job.token)

    def _deliver(self, event: Any, job: _Job) -> None:
        """Save the result frames as they came (a .strata file, no re-encoding), decode, hand over."""
        path = ""
        try:
            if self.results_dir is not None:
                from ._lib.asset import container

                self.results_dir.mkdir(parents=True, exist_ok=True)
                target = self.results_dir / f"{event.job_id}.strata"
                container.write_frames(target, event.frames)
                path = str(target)
            asset = event.asset
        except Exception as exc:
            self._post("failed", event.job_id, code="bad_result", message=f"the result could not be read: {exc}",
                       detail={}, kind=job.kind, token=job.token)
            return
        self.updates.put(Update("result", event.job_id, {"kind": job.kind, "token": job.token}, asset, path))


def _in_words(exc: Exception) -> str:
    """An exception as the panel says it: no request names ("hello", "watch") from a server that is gone."""
    address, timeout = getattr(exc, "address", None), getattr(exc, "timeout", None)
    if address is not None and timeout is not None:  # ServerUnavailable
        return f"No Strata server answered at {address} within {timeout:g} s"
    return str(exc)


def _code(exc: Exception, unavailable: str) -> str:
    """A stable code for any exception the client raises: RemoteError/ProtocolError carry one;
    ServerUnavailable and other connection trouble become `unavailable`."""
    code = getattr(exc, "code", None)
    if isinstance(code, str) and code:
        return code
    if isinstance(exc, ConnectionError | TimeoutError | OSError) or type(exc).__name__ == "ServerUnavailable":
        return unavailable
    return "internal"


def _message(exc: Exception) -> str:
    return str(getattr(exc, "message", "") or exc)


def _detail(exc: Exception) -> dict[str, Any]:
    detail = getattr(exc, "detail", None)
    return dict(detail) if isinstance(detail, dict) else {}


#: Job kinds in the words of the panel's modes (diagnostic kinds such as `echo` are never listed to users).
KIND_WORDS = {"reconstruct": "humans from photos", "generate": "layered humans", "body": "bodies"}


def refusal(welcome: dict[str, Any], kind: str) -> tuple[str, str] | None:
    """(code, message in words) when a server's welcome says it cannot run `kind`, else None (also when the
    welcome lists no kinds: the job itself will say)."""
    caps = welcome.get("capabilities", {}) if isinstance(welcome, dict) else {}
    kinds, refused = caps.get("job_kinds"), caps.get("unavailable_kinds") or {}
    what = KIND_WORDS.get(kind, f"'{kind}' jobs")
    if isinstance(refused, dict) and kind in refused:  # protocol 1.1: known but cannot run here
        return "unavailable", f"The server cannot make {what} here: {refused[kind] or 'unavailable'}"
    if isinstance(kinds, list):  # an older server may list names only
        kinds = dict.fromkeys(kinds)
    if not isinstance(kinds, dict) or not kinds:
        return None
    if kind not in kinds:
        offered = [KIND_WORDS[k] for k in KIND_WORDS if k in kinds]
        return "unknown_job_kind", (f"This server is an older Strata and cannot make {what}"
                                    + (f" (it makes {' and '.join(offered)})" if offered else ""))
    info = kinds[kind] or {}
    if info.get("available") is False:
        return "unavailable", f"The server cannot make {what} here: {info.get('unavailable_reason') or '?'}"
    return None
