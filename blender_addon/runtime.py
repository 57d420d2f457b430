"""The glue between the pure layer (connection, session, local server) and Blender.

One `Runtime` per Blender session holds the connection, the panel's session state and the local
server. `tick()` is the one `bpy.app.timers` callback: it drains the connection's updates on the
main thread, imports results, and asks the UI to redraw. It is a plain module function so tests
(and background mode, where timers never fire while a script runs) can call it directly.

Background mode (`blender -b`, or bpy as a module): `synchronous()` is true and the operators wait
for their job by calling `tick()` in a loop: the same code path as the UI, minus the timer.
"""

from __future__ import annotations

import atexit
import contextlib
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import bpy

from . import history, importer
from ._lib.wire.jobs import JOB_SPECS
from .connection import Connection, Update, load_curve_keys
from .local_server import LOCAL_HOSTS, LocalServer
from .session import Problem, Session

PACKAGE = __package__
TICK_BUSY = 0.1
"""Timer interval while a job runs: progress and the heartbeat age stay live."""
TICK_IDLE = 0.5
#: While a job runs with no news, the sidebar redraws this often (seconds): its clock shows whole seconds.
BUSY_REDRAW_S = 1.0
FORCE_ASYNC = False
"""Tests set this to run the UI (asynchronous) path in background mode, calling `tick()` by hand."""
FORCE_UNDO = False
"""Tests set this to push the UI path's undo step in background mode too. Headless Blender skips it:
an undo step there is a memory copy of the whole file that nobody can ever undo to."""
DEFAULT_ADDRESS = "tcp://127.0.0.1:5555"


@dataclass
class Request:
    """What the main thread remembers about a submitted job, to import its result properly."""

    kind: str
    source_image: str = ""
    name: str = ""


@dataclass
class Runtime:
    session: Session = field(default_factory=Session)
    connection: Connection | None = None
    server: LocalServer | None = None
    requests: dict[int, Request] = field(default_factory=dict)
    cancel_tokens: set[int] = field(default_factory=set)
    imported: list[str] = field(default_factory=list)
    """Names of the collections results were imported into, oldest first."""
    last_redraw: float = 0.0
    """When the sidebar was last asked to redraw (monotonic seconds)."""


RUNTIME = Runtime()
atexit.register(lambda: shutdown(timers=False))  # Blender quits without unregistering add-ons


class Settings:
    """The add-on preferences, or their defaults when the add-on runs as a plain package (the batch
    script) and has no preferences entry."""

    address = DEFAULT_ADDRESS
    curve_dir = ""
    curve_client = "client"
    start_local = False
    server_env = ""
    smplx_dir = ""
    default_quality = JOB_SPECS["reconstruct"].param("quality").default
    timeout = 5.0
    job_timeout = 3600.0


def prefs(context: bpy.types.Context | None = None) -> Any:
    context = context or bpy.context
    addon = context.preferences.addons.get(PACKAGE) if context.preferences else None
    return addon.preferences if addon is not None and addon.preferences is not None else Settings()


def user_dir(*parts: str) -> Path:
    """A folder for the add-on's own files (results, server data): the extension's user directory,
    or a temp folder when it runs as a plain package."""
    try:
        base = Path(bpy.utils.extension_path_user(PACKAGE, create=True))
    except (ValueError, AttributeError, TypeError):
        base = Path(tempfile.gettempdir()) / "strata-blender"
    path = base.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def synchronous() -> bool:
    """Background mode runs jobs synchronously: no event loop, so no timers."""
    return bool(bpy.app.background) and not FORCE_ASYNC


def listening(address: str, timeout: float = 0.3) -> bool:
    """Whether something accepts TCP connections at ``address`` (tcp://host:port) now: a server started
    elsewhere (a terminal) is connected to, never started a second time on the same port."""
    import socket

    try:
        host, port = address.split("://", 1)[-1].rsplit(":", 1)
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def is_local(address: str) -> bool:
    parsed = urlparse(address)
    return parsed.scheme in ("ipc", "inproc") or (parsed.hostname or "") in LOCAL_HOSTS


# ---------------------------------------------------------------------------------------------
# connection


def ensure_connection(context: bpy.types.Context | None = None, *, reconnect: bool = False,
                      hello: bool = True) -> Connection:
    """The running connection for the address in the preferences; (re)created when the address or
    the keys changed, or when asked. Raises ValueError with advice if the address may not be used."""
    rt = RUNTIME
    p = prefs(context)
    address = (p.address or DEFAULT_ADDRESS).strip()
    if address.startswith(("http://", "https://")):  # a common slip: Strata speaks ZeroMQ over TCP
        address = "tcp://" + address.split("://", 1)[1].rstrip("/")
    if "://" not in address:
        address = f"tcp://{address}"
    if not is_local(address) and not getattr(bpy.app, "online_access", True):
        raise ValueError(f"{address} is not on this computer and Blender's 'Allow Online Access' is off "
                         f"(Preferences > System > Network). Turn it on to use a remote Strata server.")
    curve = None
    if p.curve_dir:
        try:
            curve = load_curve_keys(bpy.path.abspath(p.curve_dir), p.curve_client or "client")
        except (OSError, ValueError) as exc:
            raise ValueError(f"the CURVE keys in {p.curve_dir} could not be loaded ({exc}); set the folder made by "
                             f"`strata-server keys` in the preferences, or clear it for a local server") from None
    conn = rt.connection
    if conn is not None and (reconnect or conn.address != address or conn.curve != curve or not conn.alive):
        conn.stop()
        conn = rt.connection = None
    if conn is None:
        rt.session = Session(address=address)
        conn = rt.connection = Connection(address, timeout=float(p.timeout), curve=curve,
                                          results_dir=user_dir("results")).start()
        if hello:
            conn.connect()
        start_timer()
    return conn


def submit(context: bpy.types.Context, kind: str, params: dict[str, Any], *, image: bytes | None = None,
           source_image: str = "", name: str = "") -> int:
    """Send a job; returns its token (see `wait_for`). The result is imported by `tick()`."""
    conn = ensure_connection(context)
    token = conn.submit(kind, params, image=image)
    RUNTIME.session.expect(token, kind)
    RUNTIME.requests[token] = Request(kind, source_image, name)
    start_timer()
    return token


def cancel_current() -> bool:
    """Cancel the job the panel follows (or the one being submitted); False if there is none."""
    rt = RUNTIME
    if rt.connection is None:
        return False
    job = rt.session.current
    if job is not None:
        rt.connection.cancel(job.job_id)
        job.cancelling = True
        return True
    if rt.session.waiting:
        rt.cancel_tokens.update(rt.session.waiting)
        return True
    return False


def wait_for(token: int, timeout: float) -> Update:
    """Block until job `token` ended (background mode), driving `tick()`; cancels on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        tick()
        update = RUNTIME.session.finished.get(token)
        if update is not None:
            return update
        if RUNTIME.connection is None or not RUNTIME.connection.alive:
            tick()
            problem = RUNTIME.session.problem
            raise ConnectionError(problem.text if problem else "the connection to the server ended")
        if time.monotonic() > deadline:
            for job in list(RUNTIME.session.jobs.values()):
                if job.token == token and RUNTIME.connection is not None:
                    RUNTIME.connection.cancel(job.job_id)
            raise TimeoutError(f"the job did not finish within {timeout:g} s and was cancelled")
        time.sleep(0.02)


def wait_until(predicate: Any, timeout: float) -> bool:
    """Drive `tick()` until `predicate()` holds (background mode); False on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tick()
        if predicate():
            return True
        time.sleep(0.02)
    tick()
    return bool(predicate())


# ---------------------------------------------------------------------------------------------
# local server


def start_local_server(context: bpy.types.Context, wait: float = 120.0) -> LocalServer:
    """Launch `strata-server` from the environment set in the preferences and connect to it."""
    rt = RUNTIME
    p = prefs(context)
    if rt.server is not None and rt.server.running:
        return rt.server
    if not p.server_env:
        raise ValueError("Set the server environment folder (the one holding bin/strata-server) in the add-on "
                         "preferences first.")
    extra = {"STRATA_SMPLX_DIR": bpy.path.abspath(p.smplx_dir) if p.smplx_dir else ""}
    server = LocalServer(bpy.path.abspath(p.server_env), (p.address or DEFAULT_ADDRESS).strip(),
                         user_dir("server"), extra_env=extra)
    server.start()
    rt.server = server
    conn = ensure_connection(context, reconnect=True, hello=False)
    conn.connect(wait=wait, alive=lambda: server.running)
    return server


def stop_local_server() -> int | None:
    rt = RUNTIME
    if rt.connection is not None:
        rt.connection.stop()
        rt.connection = None
    rt.session.stopped_server()
    server, rt.server = rt.server, None
    return server.stop() if server is not None else None


# ---------------------------------------------------------------------------------------------
# the timer


def tick() -> float | None:
    """Drain the connection's updates on the main thread: the `bpy.app.timers` callback.

    Returns the next interval, or None (which unregisters the timer) once there is no connection.
    Never raises: an exception would silently unregister the timer and freeze the panel.
    """
    rt = RUNTIME
    conn = rt.connection
    if conn is None:
        return None
    changed = False
    try:
        for update in conn.drain():
            changed = True
            result = rt.session.apply(update)
            if update.kind == "accepted" and update.data.get("token") in rt.cancel_tokens:
                rt.cancel_tokens.discard(update.data["token"])
                conn.cancel(update.job_id)
            if result is not None:
                _import_result(result)
        if rt.server is not None and not rt.server.running and rt.session.connected:
            rt.session.connected = False
            rt.session.problem = Problem("server_exited", "The local server stopped.",
                                         f"Its log is {rt.server.log_path}.")
            changed = True
    except Exception as exc:  # keep the timer alive; show what happened
        rt.session.problem = Problem("internal", f"The add-on failed to handle a server message: {exc!r}",
                                     "Please report this with the system console output.")
        changed = True
    # The sidebar only, and only when something changed; while a job runs, once a second for its clock.
    now = time.monotonic()
    if changed or (rt.session.busy and now - rt.last_redraw >= BUSY_REDRAW_S):
        rt.last_redraw = now
        _redraw()
    return TICK_BUSY if rt.session.busy else TICK_IDLE


def start_timer() -> None:
    if synchronous():
        return  # timers never fire in background mode, and bpy 4.5 hangs at exit while one is registered
    if not bpy.app.timers.is_registered(tick):
        bpy.app.timers.register(tick, first_interval=TICK_BUSY, persistent=True)


def stop_timer() -> None:
    if bpy.app.timers.is_registered(tick):
        bpy.app.timers.unregister(tick)


def shutdown(timers: bool = True) -> None:
    """Stop everything the runtime started: timer, connection thread, local server."""
    if timers:
        stop_timer()
    stop_local_server()
    RUNTIME.requests.clear()


def _import_result(update: Update) -> None:
    token = update.data.get("token")
    request = RUNTIME.requests.pop(token, None) if isinstance(token, int) else None
    kind = update.data.get("kind") or (request.kind if request else "job")
    name = (request.name if request and request.name else f"Strata {kind} {update.job_id[:8]}")
    try:
        result = importer.import_asset(update.asset, bpy.context, name=name, job_id=update.job_id,
                                       source_image=request.source_image if request else "")
    except Exception as exc:
        RUNTIME.session.fail("import_failed", f"The result of job {update.job_id} could not be imported: {exc!r}")
        update.data["import_error"] = repr(exc)
        return
    update.data["collection"] = result.collection.name
    update.data["import_seconds"] = sum(result.timings.values())
    RUNTIME.imported.append(result.collection.name)
    if update.path:
        result.collection["strata_result_file"] = update.path
        history.remember(update.path, update.asset, name=name, kind=kind, job_id=update.job_id,
                         source_image=request.source_image if request else "")
    if not bpy.app.background or FORCE_UNDO:
        with contextlib.suppress(RuntimeError):
            bpy.ops.ed.undo_push(message=f"Import Strata {kind}")  # one undo step per imported result


def _redraw() -> None:
    """Tag the 3D views' sidebars (where the panel is) for a redraw; the viewports themselves redraw when
    the scene changes, which an import does."""
    wm = getattr(bpy.context, "window_manager", None)
    if wm is None:
        return
    for window in wm.windows:
        for area in window.screen.areas:
            if area.type == "VIEW_3D":
                for region in area.regions:
                    if region.type == "UI":
                        region.tag_redraw()
