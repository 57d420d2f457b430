"""Fixtures for the tests that run INSIDE Blender (.venv-blender: bpy as a Python module).

Run them with `.venv-blender/bin/python -m pytest tests/blender` (tests/test_addon.py does that from
the main environment). Blender's user folders are redirected to a temporary directory BEFORE bpy is
imported, so installing the extension never touches the real user's Blender; the server child gets
the real HOME back (its model caches live there).

bpy 4.5 hangs at interpreter exit while a `bpy.app.timers` timer is registered, so the session ends
by disabling the add-on (which unregisters its timer) and then checking that no timer is left.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MODULE = "bl_ext.user_default.strata"
SERVER_EXE = REPO / ".venv" / "bin" / "strata-server"

if importlib.util.find_spec("bpy") is None:
    # The main environment's pytest (`make test`) walks tests/ too: these tests need bpy and run
    # through tests/test_addon.py instead. Collect nothing here, and leave HOME alone.
    collect_ignore_glob = ["test_*.py"]
else:
    REAL_HOME = os.environ.get("STRATA_REAL_HOME") or os.environ.get("HOME", "")
    _USER_ROOT = Path(os.environ.get("STRATA_BLENDER_TEST_HOME") or tempfile.mkdtemp(prefix="strata-blender-home-"))
    os.environ["HOME"] = str(_USER_ROOT)
    os.environ["BLENDER_USER_RESOURCES"] = str(_USER_ROOT / "blender")
    os.environ.setdefault("STRATA_REAL_HOME", REAL_HOME)
    import bpy  # after the environment above, on purpose: Blender reads it once, at import


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if importlib.util.find_spec("bpy") is None:
        return
    import addon_utils

    if MODULE in bpy.context.preferences.addons:
        addon_utils.disable(MODULE, default_set=True)
    runtime = sys.modules.get(f"{MODULE}.runtime")
    if runtime is not None and bpy.app.timers.is_registered(runtime.tick):
        bpy.app.timers.unregister(runtime.tick)
    if os.environ.get("STRATA_BLENDER_TEST_HOME") is None:
        shutil.rmtree(_USER_ROOT, ignore_errors=True)


@pytest.fixture(scope="session")
def addon_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The linux-x64 extension zip, built fresh from the working tree (wheels from the cache)."""
    given = os.environ.get("STRATA_ADDON_ZIP")
    if given:
        return Path(given)
    sys.path.insert(0, str(REPO))
    try:
        import build_addon
    finally:
        sys.path.remove(str(REPO))
    out = tmp_path_factory.mktemp("dist")
    try:
        return build_addon.build("linux-x64", out, REPO / "build" / "wheels-cache")
    except build_addon.BuildError as exc:
        if "pip download failed" in str(exc):
            pytest.skip(f"the wheels are not cached and PyPI is unreachable: {exc}")
        raise


@pytest.fixture(scope="session")
def addon(addon_zip: Path):
    """The installed, enabled extension's package module."""
    result = bpy.ops.extensions.package_install_files(filepath=str(addon_zip), repo="user_default",
                                                      enable_on_install=True)
    assert result == {"FINISHED"}
    assert MODULE in bpy.context.preferences.addons
    return importlib.import_module(MODULE)


@pytest.fixture(scope="session")
def lib(addon):
    """The vendored shared modules inside the installed add-on."""
    class Lib:
        schema = importlib.import_module(f"{MODULE}._lib.asset.schema")
        container = importlib.import_module(f"{MODULE}._lib.asset.container")
        jobs = importlib.import_module(f"{MODULE}._lib.wire.jobs")
        client = importlib.import_module(f"{MODULE}._lib.client")

    return Lib


@pytest.fixture(scope="session")
def runtime(addon):
    return importlib.import_module(f"{MODULE}.runtime")


@pytest.fixture()
def prefs(addon):
    p = bpy.context.preferences.addons[MODULE].preferences
    saved = {k: getattr(p, k) for k in ("address", "server_env", "start_local", "timeout")}
    yield p
    for k, v in saved.items():
        setattr(p, k, v)


@pytest.fixture()
def fresh_scene():
    """An empty scene for each test that imports."""
    bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)  # keeps the add-on enabled
    yield bpy.context.scene


def free_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def server_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLENDER_")}
    env["HOME"] = os.environ["STRATA_REAL_HOME"]
    return env


@pytest.fixture(scope="session")
def server(lib, tmp_path_factory: pytest.TempPathFactory):
    """A real strata-server child on a free port; yields its address."""
    if not SERVER_EXE.is_file():
        pytest.skip(f"{SERVER_EXE} is missing: create the main environment (make setup)")
    address = free_address()
    data = tmp_path_factory.mktemp("server")
    log = open(data / "test-server.log", "wb")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen([str(SERVER_EXE), "--bind", address, "--data-dir", str(data / "data")],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=server_env())
    client = lib.client.Client(address, timeout=1.0)
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                client.ping()
                break
            except lib.client.ServerUnavailable:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.close()
                    pytest.fail(f"strata-server did not start:\n{(data / 'test-server.log').read_text()[-3000:]}")
        client.hello()
        yield address
    finally:
        client.close()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture()
def connected(runtime, prefs, server):
    """The add-on's runtime connected to the test server (synchronous background path)."""
    prefs.address = server
    runtime.FORCE_ASYNC = False
    assert bpy.ops.strata.connect() == {"FINISHED"}
    assert runtime.RUNTIME.session.connected
    yield runtime
    runtime.FORCE_ASYNC = False
    runtime.stop_timer()
