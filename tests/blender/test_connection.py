"""The pure layer (connection thread + session) against a scripted fake client: no server, no bpy use."""

from __future__ import annotations

import contextlib
import importlib
import queue
import time

import pytest

from .asset_builder import make_test_asset
from .conftest import MODULE


@pytest.fixture(scope="module")
def mods(addon):
    class Mods:
        connection = importlib.import_module(f"{MODULE}.connection")
        session = importlib.import_module(f"{MODULE}.session")
        client = importlib.import_module(f"{MODULE}._lib.client")
        codec = importlib.import_module(f"{MODULE}._lib.asset.codec")
        schema = importlib.import_module(f"{MODULE}._lib.asset.schema")

    return Mods


class FakeClient:
    """Plays back scripted events; records the calls the worker thread makes."""

    def __init__(self, mods, events=(), fail_on_poll=None, kinds=("echo",)):
        self.mods = mods
        self.events: queue.Queue = queue.Queue()
        for event in events:
            self.events.put(event)
        self.fail_on_poll = fail_on_poll
        self.calls: list[tuple] = []
        self.kinds = kinds
        self.alive = True
        self.timeout = 5.0
        self.probing = 0  # how many hellos still answer as a server that is finding its device

    def ping(self):
        if not self.alive:
            raise self.mods.client.ServerUnavailable("tcp://fake:1", self.timeout, "ping")
        return 0.001

    def hello(self):
        self.calls.append(("hello",))
        probing, self.probing = self.probing > 0, max(self.probing - 1, 0)
        device = {"type": "unknown", "name": "finding the device"} if probing else {"name": "FakeGPU"}
        return {"version": 1, "server": "fake/1", "capabilities": {
            "job_kinds": {k: {"available": True} for k in self.kinds}, "device": device,
            "probe": "running" if probing else "done",
            "memory": {"gpu_free_bytes": 3 * 2**30},
            "models_loaded": ["body_model/anny@cpu/float32;rig=anny", "uv_layouts@cpu/float32;size=2048"]}}

    def submit(self, kind, params, image=None):
        self.calls.append(("submit", kind, params))
        if kind == "busy":
            raise self.mods.client.RemoteError("busy", "queue full")
        return "job1"

    def poll_event(self, timeout):
        if self.fail_on_poll is not None:
            raise self.fail_on_poll
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            return None

    def watch(self, job_id):
        self.calls.append(("watch", job_id))
        return {}

    def cancel(self, job_id):
        self.calls.append(("cancel", job_id))
        return {}

    def release(self):
        return {"models": ["anny"], "memory": {}}

    def close(self):
        self.calls.append(("close",))


def _start(mods, fake, *, results_dir=None):
    """A started Connection on `fake` and an empty Session to apply its updates to."""
    conn = mods.connection.Connection("tcp://fake:1", client_factory=lambda *a: fake, results_dir=results_dir)
    session = mods.session.Session(address=conn.address)
    conn.start()
    return conn, session


@contextlib.contextmanager
def _job(mods, fake, kind="echo", params=None, *, connect=False):
    """(conn, session, token) with one ``kind`` job submitted on ``fake`` (after a Connect when ``connect``);
    the worker stops on the way out."""
    conn, session = _start(mods, fake)
    try:
        if connect:
            conn.connect()
        token = conn.submit(kind, params or {})
        session.expect(token, kind)
        yield conn, session, token
    finally:
        conn.stop()


def _pump(conn, session, until, timeout=5.0):
    """Apply the connection's updates to the session until `until(session, updates)` holds."""
    seen = []
    deadline = time.monotonic() + timeout
    while not until(session, seen):
        assert time.monotonic() < deadline, [u.kind for u in seen]
        for update in conn.drain():
            seen.append(update)
            session.apply(update)
        time.sleep(0.01)
    return seen


def test_result_is_saved_decoded_and_matched_to_its_token(mods, tmp_path) -> None:
    asset = make_test_asset(mods.schema)
    frames = mods.codec.encode(asset)
    Event = mods.client.Event
    events = [Event("progress", "job1", {"stage": "fit", "fraction": 0.5, "text": "", "elapsed": 0.1}),
              Event("heartbeat", "job1", {"state": "running", "stage": "fit", "elapsed": 0.2}),
              Event("result", "job1", {"frames": len(frames)}, [bytes(memoryview(f)) for f in frames])]
    fake = FakeClient(mods, events)
    conn, session = _start(mods, fake, results_dir=tmp_path)
    try:
        conn.connect()
        token = conn.submit("echo", {"hold": 0})
        session.expect(token, "echo")
        seen = _pump(conn, session, lambda s, u: token in s.finished)
    finally:
        conn.stop()
    kinds = [u.kind for u in seen]
    assert kinds[:3] == ["connecting", "connected", "accepted"]
    job_news = [k for k in kinds[3:] if k != "connected"]  # status refreshes come between
    assert job_news == ["progress", "heartbeat", "result"]
    result = session.finished[token]
    assert result.asset.layers[0].name == "Body"
    assert (tmp_path / "job1.strata").is_file() and result.path.endswith("job1.strata")
    assert not session.busy and session.problem is None
    assert ("close",) in fake.calls  # the worker closed its socket on stop


def test_quiet_job_is_watched_again(mods, monkeypatch) -> None:
    monkeypatch.setattr(mods.connection, "QUIET_LIMIT", 0.2)
    fake = FakeClient(mods)
    with _job(mods, fake) as (conn, session, token):
        _pump(conn, session, lambda s, u: ("watch", "job1") in fake.calls)


def test_the_status_is_refreshed_while_a_job_runs(mods, monkeypatch) -> None:
    """A job started right after connecting (the device still being probed) does not freeze the status line
    until it ends: the worker asks again while the job runs."""
    monkeypatch.setattr(mods.connection, "REFRESH_EVERY", 0.2)
    fake = FakeClient(mods)
    with _job(mods, fake) as (conn, session, token):
        _pump(conn, session, lambda s, u: "job1" in s.jobs and fake.calls.count(("hello",)) >= 3)
        assert session.busy and session.connected


def test_a_device_still_being_found_is_asked_for_again_soon(mods, monkeypatch) -> None:
    """Connected while the server still imports torch, the status line names the device within a second or
    two, not at the next 15 s refresh; then the quick asking stops."""
    monkeypatch.setattr(mods.connection, "PROBE_REFRESH", 0.1)
    fake = FakeClient(mods)
    fake.probing = 3
    conn, session = _start(mods, fake)
    try:
        conn.connect()
        _pump(conn, session, lambda s, u: "finding the device" in s.status_line())
        _pump(conn, session, lambda s, u: "FakeGPU" in s.status_line(), timeout=2.0)
        hellos = fake.calls.count(("hello",))
        assert hellos == 4  # three while probing, one that found it
        time.sleep(0.5)
        assert fake.calls.count(("hello",)) == hellos  # back to REFRESH_EVERY
    finally:
        conn.stop()


def test_the_status_is_asked_for_when_a_job_ends(mods) -> None:
    """A job that loaded models changes the status line at once (not 15 s later)."""
    Event = mods.client.Event
    fake = FakeClient(mods, [Event("error", "job1", {"code": "job_failed", "message": "no", "detail": {}})])
    with _job(mods, fake, connect=True) as (conn, session, token):
        # REFRESH_EVERY is 15 s: only the job's end asks again, and its answer comes after the failure.
        def refreshed_after_failure(s, updates) -> bool:
            kinds = [x.kind for x in updates]
            return "failed" in kinds and "connected" in kinds[kinds.index("failed"):]

        _pump(conn, session, refreshed_after_failure, timeout=1.0)
        assert token in session.finished
    assert session.problem is not None and session.problem.code == "job_failed"  # the refresh keeps the error


def test_the_status_is_asked_for_when_a_job_enters_a_stage(mods) -> None:
    """Models load as stages start: the status line follows the job's stages, not only the 15 s clock; a
    stage's repeated progress events do not ask again."""
    Event = mods.client.Event
    events = [Event("progress", "job1", {"stage": "fit", "fraction": f, "text": "", "elapsed": f})
              for f in (0.1, 0.2, 0.3)]
    fake = FakeClient(mods, events)
    with _job(mods, fake, connect=True) as (conn, session, token):
        _pump(conn, session, lambda s, u: s.current is not None and s.current.fraction == 0.3, timeout=2.0)
        time.sleep(0.2)
        after_submit = fake.calls[fake.calls.index(("submit", "echo", {})):]
        assert after_submit.count(("hello",)) == 1  # one stage entered, one refresh


def test_server_lost_mid_job(mods) -> None:
    fake = FakeClient(mods, fail_on_poll=mods.client.ServerUnavailable("tcp://fake:1", 1.0, "poll"))
    with _job(mods, fake) as (conn, session, token):
        _pump(conn, session, lambda s, u: token in s.finished and any(x.kind == "disconnected" for x in u))
    assert session.finished[token].data["code"] == "server_lost"
    assert "strata fetch job1" in session.finished[token].data["message"]  # the job was lost, not the result
    assert not session.connected
    # The panel keeps saying the job was lost (and how to get its result), not only that the server is gone.
    assert session.problem.code == "server_lost" and "strata fetch job1" in session.problem.message
    assert "Connect" in session.problem.advice


def test_refused_submit_reports_with_token(mods) -> None:
    fake = FakeClient(mods, kinds=("busy",))
    with _job(mods, fake, "busy") as (conn, session, token):
        _pump(conn, session, lambda s, u: token in s.finished)
    assert session.problem.code == "busy" and "queue" in session.problem.advice
    assert not session.busy


def test_connect_gives_up_when_the_local_process_exits(mods) -> None:
    class Dead(FakeClient):
        def hello(self):
            raise self.mods.client.ServerUnavailable("tcp://fake:1", 0.1, "hello")

    conn, session = _start(mods, Dead(mods))
    try:
        conn.connect(wait=30.0, alive=lambda: False)
        _pump(conn, session, lambda s, u: s.problem is not None, timeout=3.0)
    finally:
        conn.stop()
    assert session.problem.code == "server_exited"


def test_session_status_line_and_capabilities(mods) -> None:
    session = mods.session.Session(address="tcp://x:1")
    assert session.status_line().startswith("Not connected")
    session.apply(mods.connection.Update("connected", data=FakeClient(mods, kinds=("body",)).hello()))
    line = session.status_line()
    assert "FakeGPU" in line and "3.0 GiB GPU free" in line and line.endswith("models: anny body")  # no internals
    assert session.supports("body") == (True, "")
    ok, why = session.supports("generate")
    assert not ok and "cannot make layered humans" in why and "bodies" in why


def test_worker_refuses_a_kind_the_server_lacks(mods) -> None:
    """The UI may submit before the welcome arrived: the worker checks the kinds itself."""
    fake = FakeClient(mods, kinds=("body",))
    with _job(mods, fake, "generate", {"layers": []}) as (conn, session, token):
        _pump(conn, session, lambda s, u: token in s.finished)
    assert not any(call[0] == "submit" for call in fake.calls)
    assert session.problem.code == "no_generate" and "cannot make layered humans" in session.problem.message


def test_a_server_that_stops_shows_as_gone_within_seconds(mods, monkeypatch) -> None:
    """Idle and connected, the worker pings every few seconds: a server that stops answering is reported
    gone at once, not at the next status refresh."""
    monkeypatch.setattr(mods.connection, "ALIVE_EVERY", 0.2)
    fake = FakeClient(mods)
    conn, session = _start(mods, fake)
    try:
        conn.connect()
        _pump(conn, session, lambda s, u: s.connected)
        fake.alive = False
        started = time.monotonic()
        _pump(conn, session, lambda s, u: not s.connected, timeout=3.0)
        assert time.monotonic() - started < 2.0
        assert session.problem is not None and session.problem.code == "server_unavailable"
    finally:
        conn.stop()
