"""strata.start_server / strata.stop_server with the repository's .venv as the server environment."""

from __future__ import annotations

import time

import bpy
import pytest

from .conftest import MODULE, REPO, SERVER_EXE, free_address


def test_start_and_stop_local_server(runtime, prefs, monkeypatch: pytest.MonkeyPatch) -> None:
    if not SERVER_EXE.is_file():
        pytest.skip(f"{SERVER_EXE} is missing")
    monkeypatch.setenv("HOME", __import__("os").environ["STRATA_REAL_HOME"])  # the server's model caches
    prefs.server_env = str(REPO / ".venv")
    prefs.address = free_address()
    prefs.start_local = True
    assert bpy.ops.strata.start_server(wait=60.0) == {"FINISHED"}
    rt = runtime.RUNTIME
    server = rt.server
    try:
        assert server is not None and server.running
        assert rt.session.connected
        assert server.log_path.is_file() and server.log_path.parent.name == "server"
        assert "strata" in server.log_path.parent.parent.name  # under the extension's user folder
        # Each line once: the process's own output goes to console.log, not into the log shown.
        lines = [line for line in server.log_path.read_text().splitlines() if line.strip()]
        assert lines and len(lines) == len(set(lines)), lines[:6]
        assert server.console_path.is_file() and server.log_tail()
        # A job running when the user stops the server ends with it, told as news (not left 'running').
        runtime.FORCE_ASYNC = True
        assert bpy.ops.strata.run_job(job_kind="echo", params_json='{"hold": 30}') == {"FINISHED"}
        deadline = time.monotonic() + 20
        while not rt.session.jobs:
            assert time.monotonic() < deadline, "the job was never accepted"
            runtime.tick()
            time.sleep(0.05)
    finally:
        runtime.FORCE_ASYNC = False
        assert bpy.ops.strata.stop_server() == {"FINISHED"}
    assert not server.running
    assert rt.server is None and rt.connection is None
    assert not rt.session.busy and rt.session.problem is None
    assert rt.session.notice.startswith("The server was stopped; the job that was running ended with it")
    runtime.stop_timer()


def test_start_refuses_a_network_address(runtime, prefs) -> None:
    prefs.server_env = str(REPO / ".venv")
    prefs.address = "tcp://0.0.0.0:5555"
    with pytest.raises(RuntimeError, match="loopback address"):
        bpy.ops.strata.start_server(wait=1.0)
    assert runtime.RUNTIME.server is None


def test_start_without_environment_explains(runtime, prefs, tmp_path) -> None:
    prefs.server_env = str(tmp_path)
    prefs.address = free_address()
    with pytest.raises(RuntimeError, match="(?i)no strata-server.*Preferences > Add-ons > Strata") as err:
        bpy.ops.strata.start_server(wait=1.0)
    assert str(tmp_path / "bin" / "strata-server") in str(err.value)
    assert "Scripts" not in str(err.value) and ".exe" not in str(err.value)  # no Windows path on Linux


def test_listening_tells_a_running_server_from_nothing(addon) -> None:
    """Connect with 'Run the server on this computer' starts one only where nothing listens yet."""
    import importlib
    import socket

    runtime = importlib.import_module(f"{MODULE}.runtime")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        assert runtime.listening(f"tcp://127.0.0.1:{port}")
    assert not runtime.listening(f"tcp://127.0.0.1:{port}")
    assert not runtime.listening("tcp://nonsense")
