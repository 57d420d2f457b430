"""Start and stop a Strata server on this machine, from the server's own Python environment.

The server needs torch and the model packages, which never go into Blender's Python; the user points
the add-on at the environment where `strata-server` is installed and the add-on runs that program as
a child process, with its output in a log file the panel names. The child is stopped when Blender
quits (atexit) or the add-on is disabled. No bpy here.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


class LocalServerError(RuntimeError):
    """The server cannot be started: a wrong path or address, said in words a user can act on."""


def server_executable(env_dir: str | os.PathLike) -> Path:
    """`<env>/bin/strata-server` (`<env>\\Scripts\\strata-server.exe` on Windows: a Linux error names no
    Windows path)."""
    env = Path(env_dir).expanduser()
    exe = env / "Scripts" / "strata-server.exe" if os.name == "nt" else env / "bin" / "strata-server"
    if exe.is_file():
        return exe
    raise LocalServerError(f"no strata-server in {env} (looked for {exe}); set the server environment folder "
                           f"(the one holding {exe.relative_to(env)}) in the add-on preferences")


def check_local_address(address: str) -> str:
    """The address a local server binds: tcp on a loopback host, or ipc. Refuse anything else, so the
    add-on never opens the server to the network by accident."""
    parsed = urlparse(address)
    if parsed.scheme == "ipc":
        return address
    if parsed.scheme != "tcp" or parsed.hostname not in ("127.0.0.1", "localhost", "::1") or not parsed.port:
        raise LocalServerError(f"a local server needs a loopback address like tcp://127.0.0.1:5555, not {address!r}")
    return address


class LocalServer:
    """One child `strata-server --bind ADDRESS --data-dir DIR`, logging to DIR/server.log (the server's own
    log); what the process prints (the same lines, and any traceback before its logging starts) goes to
    DIR/console.log, so the log the panel points at holds each line once."""

    def __init__(self, env_dir: str | os.PathLike, address: str, data_dir: str | os.PathLike,
                 extra_env: dict[str, str] | None = None) -> None:
        self.executable = server_executable(env_dir)
        self.address = check_local_address(address)
        self.data_dir = Path(data_dir)
        self.log_path = self.data_dir / "server.log"
        self.console_path = self.data_dir / "console.log"
        self.extra_env = {k: v for k, v in (extra_env or {}).items() if v}
        self.process: subprocess.Popen | None = None

    @property
    def command(self) -> list[str]:
        return [str(self.executable), "--bind", self.address, "--data-dir", str(self.data_dir)]

    def start(self) -> None:
        if self.running:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.extra_env, "PYTHONUNBUFFERED": "1"}
        # Blender sets PYTHONHOME/PYTHONPATH for its own interpreter; the server has its own.
        for key in ("PYTHONHOME", "PYTHONPATH"):
            env.pop(key, None)
        log = open(self.console_path, "wb")  # noqa: SIM115 - handed to the child, closed below
        try:
            kwargs: dict = {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP} if sys.platform == "win32" else {
                "start_new_session": True}
            self.process = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT, env=env, **kwargs)
        finally:
            log.close()
        atexit.register(self.stop)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def stop(self, timeout: float = 5.0) -> int | None:
        """Terminate (the server finishes or cancels its job and exits), kill after `timeout`."""
        process, self.process = self.process, None
        atexit.unregister(self.stop)
        if process is None:
            return None
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        return process.returncode

    def log_tail(self, lines: int = 20) -> str:
        """The end of what the process printed (its log lines and any traceback), for error messages."""
        try:
            with open(self.console_path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - 16384))
                return "\n".join(fh.read().decode("utf-8", "replace").splitlines()[-lines:])
        except OSError:
            return ""
