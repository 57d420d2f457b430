"""A real `strata-server` subprocess for the server and CLI tests, and the tests of starting one.

Everything runs on loopback with a temporary data dir and a free port; the helper waits until the
server answers a ping, and reports the server's stderr if it dies instead.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from strata.exchange.client import Client, ServerUnavailable

VENV_BIN = Path(sys.executable).parent
SERVER_SCRIPT = VENV_BIN / "strata-server"
CLI_SCRIPT = VENV_BIN / "strata"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_command() -> list[str]:
    """The installed entry point when there is one (what users run), else the module."""
    if SERVER_SCRIPT.exists():
        return [str(SERVER_SCRIPT)]
    return [sys.executable, "-m", "strata.server.main"]


class ServerProcess:
    def __init__(self, data_dir: Path, *args: str, bind: str | None = None) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.bind = bind or f"tcp://127.0.0.1:{self.port}"
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.args = list(args)
        self.proc: subprocess.Popen | None = None
        self.stderr_path = data_dir.parent / f"{data_dir.name}-stderr-{self.port}.log"

    def start(self, wait: bool = True, timeout: float = 30.0) -> ServerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen([*server_command(), "--bind", self.bind, "--data-dir", str(self.data_dir),
                                          *self.args], stdout=subprocess.DEVNULL, stderr=err, env=env)
        if wait:
            self.wait_ready(timeout)
        return self

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def wait_ready(self, timeout: float = 30.0, **client_kwargs) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"strata-server exited with {self.proc.returncode}:\n{self.stderr}")
            try:
                with Client(self.address, timeout=0.5, **client_kwargs) as client:
                    client.ping()
                return
            except ServerUnavailable:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"strata-server did not answer within {timeout} s:\n{self.stderr}") from None

    def client(self, **kwargs) -> Client:
        kwargs.setdefault("timeout", 10.0)
        return Client(self.address, **kwargs)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        """Signal the server and wait for it; returns its exit code (kills it if it does not exit)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"strata-server ignored signal {sig} for {timeout} s:\n{self.stderr}") from None
        return self.proc.returncode


def test_server_entry_point_is_installed():
    assert shutil.which("strata-server", path=str(VENV_BIN)), "pip install -e . should install strata-server"
    assert shutil.which("strata", path=str(VENV_BIN))


def test_prepare_builds_rigs_ahead_and_refuses_unknown_ones():
    """`strata-server prepare` (what `make setup` runs): each rig loaded once, with a line when it is ready;
    an unknown rig is a usage error naming the rigs."""
    exe = str(VENV_BIN / "strata-server")
    done = subprocess.run([exe, "prepare", "--rigs", "anny"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and "anny rig ready" in done.stdout, done.stderr[-2000:]
    bad = subprocess.run([exe, "prepare", "--rigs", "anny,elf"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "unknown rig 'elf'" in bad.stderr and "mixamo" in bad.stderr


def test_refuses_non_loopback_bind_without_keys(tmp_path):
    """Exit 2 with a message that says why and what to do; it never binds."""
    server = ServerProcess(tmp_path / "data", bind=f"tcp://0.0.0.0:{free_port()}").start(wait=False)
    assert server.proc.wait(15) == 2
    err = server.stderr
    assert "refusing to bind" in err and "--curve-dir" in err and "strata-server keys" in err


def test_refuses_curve_dir_without_keys(tmp_path):
    (tmp_path / "keys").mkdir()
    server = ServerProcess(tmp_path / "data", "--curve-dir", str(tmp_path / "keys")).start(wait=False)
    assert server.proc.wait(15) == 2
    assert "server.key_secret" in server.stderr


def test_second_server_on_the_same_data_dir_refuses(tmp_path):
    first = ServerProcess(tmp_path / "data").start()
    try:
        second = ServerProcess(tmp_path / "data").start(wait=False)
        assert second.proc.wait(15) == 1
        assert "another strata-server is using the data dir" in second.stderr
    finally:
        assert first.stop() == 0


@pytest.mark.timeout(60)
def test_address_in_use_exits_1(tmp_path):
    first = ServerProcess(tmp_path / "a").start()
    try:
        second = ServerProcess(tmp_path / "b", bind=first.bind).start(wait=False)
        assert second.proc.wait(15) == 1
        assert "server.bind_failed" in second.stderr
    finally:
        first.stop()
